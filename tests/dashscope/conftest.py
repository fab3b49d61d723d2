"""Fixtures of the dashscope instrumentation tests.

Every test runs a small application with the real ``dashscope`` package in its own process,
under the installed ``instrument`` launcher (or plain, to compare), talking to the fake DashScope
server of fake_dashscope.py over loopback (DASHSCOPE_HTTP_BASE_URL) and exporting to the
repository's OTLP receiver (tests/conftest.py). Assertions are made on the spans that arrived.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from fake_dashscope import FakeDashScope

HERE = Path(__file__).resolve().parent

# The API key every app uses: it must never appear in anything llmprobe sends.
from dashscope_secret import SECRET

PRELUDE = f"import sys\nsys.path.insert(0, {str(HERE)!r})\n"


class App(NamedTuple):
    result: Any
    spans: list[dict]
    requests: list[dict]

    def llm(self) -> list[dict]:
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
def fake_dashscope() -> FakeDashScope:
    server = FakeDashScope().start()
    yield server
    server.stop()


@pytest.fixture
def dashscope_app(run, write_script, receiver, fake_dashscope):
    """dashscope_app(source, spans=N or predicate, env={...}, instrument=True) -> App."""

    def _run(
        source: str,
        *,
        spans: int | Callable[[list[dict]], Any] = 1,
        env: dict[str, str | None] | None = None,
        instrument: bool = True,
        check: bool = True,
    ) -> App:
        fake_dashscope.clear()
        path = write_script("app.py", PRELUDE + textwrap.dedent(source))
        full_env = {
            "DASHSCOPE_HTTP_BASE_URL": fake_dashscope.base_url,
            "DASHSCOPE_API_KEY": SECRET,
            **(env or {}),
        }
        result = run(
            ["python", str(path)], receiver=receiver, env=full_env, instrument=instrument, timeout=120
        )
        if check:
            result.check()
        if spans == 0 or not instrument:
            arrived = receiver.settle()
        elif isinstance(spans, int):
            receiver.wait_for(
                lambda got: len([s for s in got if "gen_ai.span.kind" in s["attributes"]]) >= spans
            )
            arrived = receiver.settle()
        else:
            arrived = receiver.wait_for(spans)
        return App(result, arrived, list(fake_dashscope.requests))

    return _run
