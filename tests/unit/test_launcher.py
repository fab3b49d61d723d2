"""The `instrument` launcher and the bootstrap sitecustomize, through real child processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from llmprobe import launcher


def instrument(*args, env, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "llmprobe.launcher", *args],
        check=False,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_command_is_127_with_the_shells_message(child_env):
    result = instrument("lp-no-such-command", "--flag", env=child_env())
    assert result.returncode == 127
    assert result.stderr == "instrument: lp-no-such-command: command not found\n"


def test_missing_path_is_127(child_env, tmp_path):
    missing = str(tmp_path / "nothing-here")
    result = instrument(missing, env=child_env())
    assert result.returncode == 127
    assert result.stderr == f"instrument: {missing}: No such file or directory\n"


def test_not_executable_is_126(child_env, tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    result = instrument(str(script), env=child_env())
    assert result.returncode == 126
    assert result.stderr == f"instrument: {script}: Permission denied\n"
    result = instrument(str(tmp_path), env=child_env())
    assert result.returncode == 126


def test_help_version_and_no_arguments(child_env):
    helped = instrument("--help", env=child_env())
    assert helped.returncode == 0
    assert helped.stdout.startswith("usage: instrument")
    for variable in (
        "OTEL_SERVICE_NAME",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_SDK_DISABLED",
    ):
        assert variable in helped.stdout
    version = instrument("--version", env=child_env())
    assert version.returncode == 0
    assert version.stdout.startswith("instrument (llmprobe) ")
    bare = instrument(env=child_env())
    assert bare.returncode == 2
    assert bare.stderr.startswith("usage: instrument")


def test_python_path_order(tmp_path):
    user = os.pathsep.join(["/opt/a", launcher.BOOTSTRAP_DIR, "/opt/b"])
    assert launcher.python_path(user).split(os.pathsep) == [launcher.BOOTSTRAP_DIR, "/opt/a", "/opt/b"]
    assert launcher.python_path(None) == launcher.BOOTSTRAP_DIR


def test_exec_keeps_arguments_exit_code_and_bootstrap_first(child_env, tmp_path):
    code = "import os, sys; print(repr(sys.argv[1:])); print(os.environ['PYTHONPATH']); sys.exit(3)"
    env = child_env()
    user_path = env["PYTHONPATH"]
    result = instrument(sys.executable, "-c", code, "a b", "--x", env=env)
    assert result.returncode == 3, result.stderr
    argv_line, path_line = result.stdout.splitlines()[:2]
    assert argv_line == repr(["a b", "--x"])
    assert path_line.split(os.pathsep) == [launcher.BOOTSTRAP_DIR, *user_path.split(os.pathsep)]


def test_command_found_on_path(child_env):
    folder, name = os.path.split(sys.executable)
    env = child_env(PATH=folder + os.pathsep + os.environ.get("PATH", ""))
    result = instrument(name, "-c", "print('ran')", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ran\n"


APP_SITECUSTOMIZE = """\
import os
os.environ["LP_APP_SITECUSTOMIZE_RAN"] = "yes"
"""

PROBE_SCRIPT = """\
import json, os, sys
agent = sys.modules.get("llmprobe._agent")
print(json.dumps({
    "app_sitecustomize": os.environ.get("LP_APP_SITECUSTOMIZE_RAN"),
    "sitecustomize_file": sys.modules["sitecustomize"].__file__,
    "agent_imported": agent is not None,
    "started": bool(agent and agent._started),
    "resource": dict(agent.resource) if agent else None,
    "provider": type(__import__("opentelemetry.trace").trace.get_tracer_provider()).__module__,
}))
"""


@pytest.fixture
def app(tmp_path):
    """An application folder with its own sitecustomize and a script reporting what it saw."""
    (tmp_path / "sitecustomize.py").write_text(APP_SITECUSTOMIZE)
    (tmp_path / "probe.py").write_text(PROBE_SCRIPT)
    package = tmp_path / "lp_app_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "serve.py").write_text(PROBE_SCRIPT)
    return tmp_path


def app_env(child_env, app):
    env = child_env()
    env["PYTHONPATH"] = env["PYTHONPATH"] + os.pathsep + str(app)
    return env


def test_the_applications_own_sitecustomize_runs(child_env, app):
    result = instrument(sys.executable, "probe.py", env=app_env(child_env, app), cwd=str(app))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["app_sitecustomize"] == "yes"
    assert seen["sitecustomize_file"] == str(app / "sitecustomize.py")
    assert seen["agent_imported"] and seen["started"]


def test_a_failing_start_warns_once_and_the_application_runs(child_env, tmp_path):
    # A broken llmprobe shadowing the real one, as a damaged installation would.
    broken = tmp_path / "shadow" / "llmprobe"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise RuntimeError('damaged install')\n")
    env = child_env()
    env["PYTHONPATH"] = str(tmp_path / "shadow")
    result = subprocess.run(
        [sys.executable, "-c", "print('app ran')"],
        check=False,
        env={**env, "PYTHONPATH": launcher.python_path(env["PYTHONPATH"])},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stdout == "app ran\n"
    assert result.stderr.count("llmprobe: warning:") == 1
    assert "damaged install" in result.stderr


def test_agent_under_the_launcher(core, child_env, app):
    env = app_env(child_env, app)
    script = json.loads(instrument(sys.executable, "probe.py", env=env, cwd=str(app)).stdout)
    assert script["provider"] == "llmprobe._tracer"
    assert script["resource"]["service.name"] == "probe"
    assert script["resource"]["telemetry.distro.name"] == "llmprobe"
    assert script["resource"]["llmprobe.app.type"] in ("app", "model", "microservice")

    module = instrument(sys.executable, "-m", "lp_app_pkg.serve", env=env, cwd=str(app))
    assert module.returncode == 0, module.stderr
    assert json.loads(module.stdout)["resource"]["service.name"] == "lp_app_pkg.serve"


def test_sdk_disabled_is_a_no_op(core, child_env, app):
    env = {**app_env(child_env, app), "OTEL_SDK_DISABLED": "true"}
    seen = json.loads(instrument(sys.executable, "probe.py", env=env, cwd=str(app)).stdout)
    assert seen["started"]
    assert seen["resource"] == {}
    assert seen["provider"] == "opentelemetry.trace"  # the API's own proxy: nothing installed
    assert seen["app_sitecustomize"] == "yes"


def test_app_type_override(core, child_env, app):
    env = {**app_env(child_env, app), "APSARA_APM_APP_TYPE": "model"}
    seen = json.loads(instrument(sys.executable, "probe.py", env=env, cwd=str(app)).stdout)
    assert seen["resource"]["llmprobe.app.type"] == "model"


@pytest.mark.parametrize(
    ("argv", "orig_argv", "expected"),
    [
        (["app.py", "x"], None, "app"),
        (["/srv/bin/gunicorn", "-w", "2", "app:app"], None, "gunicorn"),
        (["-m", "x"], ["python3", "-m", "pkg.mod", "x"], "pkg.mod"),
        (["-m"], ["python3", "-X", "dev", "-Wignore", "-Bm", "uvicorn", "app:app"], "uvicorn"),
        (["-m"], ["python3", "-mflask", "run"], "flask"),
        (["-m"], ["python3", "-m", "pkg.__main__"], "pkg"),
        (["-c", "y"], None, "unknown_service:"),
        ([], None, "unknown_service:"),
    ],
)
def test_default_service_name(argv, orig_argv, expected):
    from llmprobe import _agent

    name = _agent.default_service_name(argv, orig_argv, main_module="__main__")
    if expected.endswith(":"):
        assert name.startswith(expected)
    else:
        assert name == expected


def test_default_service_name_after_start_up():
    from llmprobe import _agent

    # llmprobe.init() called from a module run with -m: sys.argv[0] is then the module's file.
    assert _agent.default_service_name(["/srv/pkg/mod.py"], None, main_module="pkg.mod") == "pkg.mod"
    assert _agent.default_service_name(["/srv/pkg/__main__.py"], None, main_module="pkg.__main__") == "pkg"
