"""Dify's workflows run exactly as without llmprobe when llmprobe itself fails (dify_faults.py):
the same events, outputs, token totals and streamed text, in every fault mode; each failure is
reported once on stderr."""

from __future__ import annotations

import re

import pytest
from conftest import HERE

APP = """
import sys
sys.argv = ["graphon_workflows.py", "full", "provider"]
import dify_faults
MODE = {mode!r}
if MODE != "plain":
    dify_faults.inject(MODE)
import graphon_workflows
graphon_workflows.run("full")
print("faults:", dify_faults.calls["count"])
"""
# What the application saw, without the times and the (random) execution ids.
SEEN = re.compile(r"(consumer saw .*|total llm usage .*|FakeLLM.invoke_llm .*|FakeToolRuntime.invoke .*)$")


def _seen(stdout: str) -> list[str]:
    return sorted(m.group(1) for line in stdout.splitlines() if (m := SEEN.search(line)))


def _run(run, tmp_path, mode: str):
    script = tmp_path / f"app_{mode}.py"
    script.write_text(APP.format(mode=mode))
    return run(["python", str(script)], env={"PYTHONPATH": str(HERE.parent) + ":" + str(HERE)}, timeout=120)


@pytest.mark.parametrize("mode", ["hooks", "start", "after", "core", "tracer"])
def test_the_workflow_sees_no_difference(run, tmp_path, mode):
    plain = _run(run, tmp_path, "plain").check()
    expected = _seen(plain.stdout)
    assert any("outputs={'answer': 'Paris is the capital of France.'" in line for line in expected), (
        plain.stdout
    )
    faulty = _run(run, tmp_path, mode).check()
    assert _seen(faulty.stdout) == expected
    faults = int(faulty.stdout.rsplit("faults:", 1)[1].split()[0])
    assert faults > 0, "no injected fault was hit"
    warnings = [line for line in faulty.stderr.splitlines() if line.startswith("llmprobe: warning")]
    assert warnings and len(warnings) == len(set(warnings)), faulty.stderr
