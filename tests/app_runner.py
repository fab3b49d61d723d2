"""Running an application under the installed `instrument` launcher, as a user would, with a clean
environment: no OTEL_*/LLMPROBE_* variables of the machine running the tests reach it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import NamedTuple, Protocol

# Variables of the machine that would change what the agent does; never inherited by a test app.
_OWN_PREFIXES = ("OTEL_", "LLMPROBE_", "APSARA_", "PROFILER_GENAI_")


class HasEndpoint(Protocol):
    endpoint: str


def console_script(name: str) -> str:
    """The console script installed with this interpreter (not a shim, not another Python's)."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"`{name}` is not installed: run `python3 -m pip install '.[test]'` first")
    return found


def clean_env(receiver: HasEndpoint | None = None, **overrides: str | None) -> dict[str, str]:
    """The environment of a test app: the machine's, minus the agent's variables, plus a short
    batch delay (spans arrive 100 ms after they end, not 5 s), the receiver's endpoint when given,
    and `overrides` (None removes a variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    env.pop("PYTHONPATH", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["OTEL_BSP_SCHEDULE_DELAY"] = "100"
    if receiver is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def command(args: list[str], instrument: bool = True) -> list[str]:
    """`instrument ARGS...`, where a leading "python" means the interpreter running the tests."""
    if args and args[0] in ("python", "python3"):
        args = [sys.executable, *args[1:]]
    return [console_script("instrument"), *args] if instrument else list(args)


class Result(NamedTuple):
    returncode: int
    stdout: str
    stderr: str
    elapsed: float

    def check(self) -> Result:
        """Assert the command succeeded, showing its output otherwise."""
        assert self.returncode == 0, (
            f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )
        return self

    def last_line(self) -> str:
        lines = self.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    def warnings(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("llmprobe: warning:")]


def run_app(
    args: list[str],
    *,
    receiver: HasEndpoint | None = None,
    env: dict[str, str | None] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: float = 60,
    instrument: bool = True,
) -> Result:
    """Run `instrument ARGS...` to its end: (returncode, stdout, stderr, elapsed seconds)."""
    started = time.monotonic()
    proc = subprocess.run(
        command(args, instrument),
        env=clean_env(receiver, **(env or {})),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,  # the exit status is part of what the tests check
    )
    return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Wait until `proc` listens on `port`; fail at once if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"server exited with {proc.returncode} before listening\n{out}\n{err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listened on port {port} within {timeout}s")
