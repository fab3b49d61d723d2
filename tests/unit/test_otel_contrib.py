"""Activating OpenTelemetry's instrumentations: an instrumentor package that imports another
instrumented library while it is itself being imported (opentelemetry-instrumentation-httpx,
which holds httpx's and httpx2's instrumentors and imports httpx2) gets both instrumented, with no
warning."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import llmprobe

INSTRUMENTORS = """
import lp_second_lib  # the second library, imported while this module is being imported

calls = []


class _Instrumentor:
    is_instrumented_by_opentelemetry = False

    def instrument(self, **kwargs):
        calls.append(type(self).__name__)

    def _check_dependency_conflicts(self):
        return None


class FirstInstrumentor(_Instrumentor):
    pass


class SecondInstrumentor(_Instrumentor):
    pass
"""

SCRIPT = """
from llmprobe.instrumentation import _otel_contrib

_otel_contrib.activate(object)
import lp_first_lib  # noqa: E402,F401
import lp_instrumentors  # noqa: E402

print(sorted(lp_instrumentors.calls))
"""


def test_an_instrumentor_importing_another_library_gets_both_instrumented(tmp_path):
    (tmp_path / "lp_first_lib.py").write_text("")
    (tmp_path / "lp_second_lib.py").write_text("")
    (tmp_path / "lp_instrumentors.py").write_text(textwrap.dedent(INSTRUMENTORS))
    dist = tmp_path / "lp_instrumentors-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lp-instrumentors\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[opentelemetry_instrumentor]\n"
        "lp_first_lib = lp_instrumentors:FirstInstrumentor\n"
        "lp_second_lib = lp_instrumentors:SecondInstrumentor\n"
    )
    package_folder = os.path.dirname(os.path.dirname(os.path.abspath(llmprobe.__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(tmp_path), package_folder))}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['FirstInstrumentor', 'SecondInstrumentor']"
    assert "warning" not in result.stderr, result.stderr
