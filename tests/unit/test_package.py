"""The package face: import cost, llmprobe.init(), the `llmprobe` command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from llmprobe import cli


def run_python(code, env):
    return subprocess.run(
        [sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=60
    )


def test_importing_the_package_starts_and_imports_nothing(child_env):
    code = "import sys, llmprobe; print(sorted(m for m in sys.modules if m.startswith(('llmprobe', 'opentelemetry', 'wrapt'))))"
    result = run_python(code, child_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['llmprobe']"


def test_version():
    import llmprobe
    from llmprobe._version import version

    assert llmprobe.__version__ == version()
    assert version().count(".") >= 2


def test_the_version_is_the_packages_and_the_cores():
    # The version is read from the Rust core at start-up: the two manifests must agree.
    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r'^version = "([^"]+)"', re.MULTILINE)
    python_version = pattern.search((root / "pyproject.toml").read_text()).group(1)
    rust_version = pattern.search((root / "Cargo.toml").read_text()).group(1)
    from llmprobe._version import version

    assert python_version == rust_version == version()


def test_init_twice_is_harmless(core, child_env):
    code = (
        "import json, llmprobe\n"
        "from opentelemetry import trace\n"
        "llmprobe.init()\n"
        "first = trace.get_tracer_provider()\n"
        "llmprobe.init()\n"
        "from llmprobe import _agent\n"
        "print(json.dumps([type(first).__module__, trace.get_tracer_provider() is first,"
        " _agent.resource['service.name']]))\n"
    )
    result = run_python(code, child_env())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        "llmprobe._tracer",
        True,
        "unknown_service:" + sys.executable.split("/")[-1],
    ]
    assert "llmprobe: warning" not in result.stderr


def test_bad_values_warn_once_and_the_application_runs(core, child_env):
    env = child_env(OTEL_TRACES_SAMPLER="sometimes")
    result = run_python("import llmprobe; llmprobe.init(); llmprobe.init(); print('ok')", env)
    assert result.returncode == 0
    assert result.stdout == "ok\n"
    assert result.stderr.count("llmprobe: warning:") == 1
    assert "OTEL_TRACES_SAMPLER" in result.stderr and "sometimes" in result.stderr


def test_cli_config(core, child_env):
    # In a child: configure() replaces the core's configuration of the process it runs in.
    env = child_env(
        OTEL_SERVICE_NAME="checkout", OTEL_TRACES_SAMPLER="sometimes", PROFILER_GENAI_SPLITAPP_ENABLE="true"
    )
    result = subprocess.run(
        [sys.executable, "-m", "llmprobe.cli", "config"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    settings = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert settings["service_name"] == "checkout"
    assert settings["sdk_disabled"] == "false"
    assert settings["traces_exporter"] == "none"
    assert settings["split_app"] == "true"
    assert result.stderr.startswith("llmprobe: warning: OTEL_TRACES_SAMPLER")


def test_cli_version_and_usage(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("llmprobe ")
    assert cli.main([]) == 2
    assert cli.main(["bogus"]) == 2
    assert "usage: llmprobe" in capsys.readouterr().err
