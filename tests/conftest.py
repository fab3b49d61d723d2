"""Fixtures for the end-to-end tests: a real OTLP receiver (HTTP, gRPC), and applications run
under the installed `instrument` launcher in their own processes (see app_runner)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from app_runner import Result, clean_env, command, run_app, wait_for_port
from otlp_receiver import GrpcReceiver, HttpReceiver

# The fake provider servers' folders: their modules are imported by the fixtures below and by
# the apps the tests run.
sys.path[:0] = [
    str(Path(__file__).resolve().parent / "openai"),
    str(Path(__file__).resolve().parent / "dashscope"),
]

from fake_dashscope import FakeDashScope
from fake_openai import FakeOpenAI
from genai_fixtures import serve as serve_fake


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver().start()
    yield r
    r.stop()
    assert not r.errors, f"the receiver could not decode what arrived: {r.errors}"


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    """The fake OpenAI-compatible server (tests/openai/fake_openai.py), one per session."""
    yield from serve_fake(FakeOpenAI())


@pytest.fixture(scope="session")
def fake_dashscope() -> Iterator[FakeDashScope]:
    """The fake DashScope server (tests/dashscope/fake_dashscope.py), one per session."""
    yield from serve_fake(FakeDashScope())


@pytest.fixture
def grpc_receiver() -> Iterator[GrpcReceiver]:
    r = GrpcReceiver().start()
    yield r
    r.stop()
    assert not r.errors, f"the receiver could not decode what arrived: {r.errors}"


@pytest.fixture
def run(tmp_path: Path):
    """run(args, receiver=..., env={...}, instrument=True) -> Result; runs in tmp_path by default."""

    def _run(args: list[str], **kwargs: Any) -> Result:
        kwargs.setdefault("cwd", tmp_path)
        return run_app(args, **kwargs)

    return _run


@pytest.fixture
def write_script(tmp_path: Path):
    """write_script(name, source) -> the path of `source` (dedented) written under tmp_path."""

    def _write(name: str, source: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip())
        return path

    return _write


class Server(NamedTuple):
    proc: subprocess.Popen
    port: int


@pytest.fixture
def serve(tmp_path: Path):
    """serve(args, port, receiver=..., env=...) starts a server under `instrument` in tmp_path and
    waits until it listens on `port`; it is stopped (SIGTERM, then SIGKILL) when the test ends."""
    started: list[subprocess.Popen] = []

    def _serve(
        args: list[str], port: int, *, receiver: Any = None, env: dict[str, str | None] | None = None
    ) -> Server:
        proc = subprocess.Popen(
            command(args),
            env=clean_env(receiver, **(env or {})),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, so its workers stop with it
        )
        started.append(proc)
        wait_for_port(port, proc)
        return Server(proc, port)

    yield _serve
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
