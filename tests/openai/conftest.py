"""Fixtures of the openai instrumentation tests.

Every test runs a small application with the real ``openai`` package, as a user would: in its
own process, under the installed ``instrument`` launcher (or plain, to compare), talking to the
fake OpenAI-compatible server of fake_openai.py over loopback, and exporting to the repository's
OTLP receiver (tests/conftest.py). Assertions are made on the spans as they arrived there.

The same suite runs against any installed openai 1.x to 3.x: tests that need a newer SDK
feature skip, naming it.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from fake_openai import FakeOpenAI
from openai_support import HERE, OPENAI_VERSION, PRELUDE, SECRET, SOURCE_TREE_ENV


class App(NamedTuple):
    result: Any  # app_runner.Result: returncode, stdout, stderr
    spans: list[dict]  # every span the receiver got
    requests: list[dict]  # what the fake server received during the run

    def llm(self) -> list[dict]:
        """The GenAI spans, in start order."""
        return sorted(
            (s for s in self.spans if "gen_ai.span.kind" in s["attributes"]), key=lambda s: s["start_time"]
        )

    def one(self) -> dict:
        spans = self.llm()
        assert len(spans) == 1, (
            f"expected one GenAI span, got {[s['name'] for s in spans]}\n{self.result.stderr}"
        )
        return spans[0]

    def lines(self) -> list[str]:
        return self.result.stdout.strip().splitlines()


@pytest.fixture(scope="session")
def fake_openai() -> FakeOpenAI:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def openai_app(run, write_script, receiver, fake_openai):
    """openai_app(source, spans=N or predicate, env={...}, instrument=True, check=True) -> App.

    Writes `source` (dedented) as app.py, runs it to its end with OPENAI_BASE_URL pointing at
    the fake server and OPENAI_API_KEY=SECRET, then waits for `spans` GenAI spans (or, with
    spans=0, for the receiver to settle)."""

    def _run(
        source: str,
        *,
        spans: int | Callable[[list[dict]], Any] = 1,
        env: dict[str, str | None] | None = None,
        instrument: bool = True,
        check: bool = True,
        name: str = "app.py",
        timeout: float = 120,
    ) -> App:
        fake_openai.clear()
        path = write_script(name, PRELUDE + textwrap.dedent(source))
        full_env = {
            "OPENAI_BASE_URL": fake_openai.base_url,
            "OPENAI_API_KEY": SECRET,
            **SOURCE_TREE_ENV,
            **(env or {}),
        }
        result = run(
            ["python", str(path)], receiver=receiver, env=full_env, instrument=instrument, timeout=timeout
        )
        if check:
            result.check()
        if spans == 0 or not instrument:
            arrived = receiver.settle()
        elif isinstance(spans, int):
            arrived = receiver.wait_for(
                lambda got: len([s for s in got if "gen_ai.span.kind" in s["attributes"]]) >= spans
            )
            arrived = receiver.settle()
        else:
            arrived = receiver.wait_for(spans)
        return App(result, arrived, fake_openai.requests)

    return _run


def pytest_collection_modifyitems(config, items) -> None:
    if OPENAI_VERSION is None:
        skip = pytest.mark.skip(reason="the openai package is not installed (pip install openai)")
        for item in items:
            if Path(str(item.fspath)).resolve().parent == HERE:
                item.add_marker(skip)


def pytest_report_header(config) -> str:
    if OPENAI_VERSION is None:
        return "openai: not installed"
    return f"openai {OPENAI_VERSION} ({os.path.dirname(__import__('openai').__file__)})"
