"""The record the fault-injection transcripts keep (tests/langchain/langchain_transcript.py,
tests/llama_index/llama_index_transcript.py): for each step, what the application got (what was
returned, as `dump` writes it, or what was raised) and whether its own span was still current
after the call."""

from __future__ import annotations

from typing import Any, Callable

from opentelemetry import trace

tracer = trace.get_tracer("transcript")


class Transcript:
    def __init__(self, dump: Callable[[Any], Any]) -> None:
        self.dump = dump
        self.entries: list = []

    def call(self, name: str, fn, *args, **kwargs) -> None:
        with tracer.start_as_current_span(f"user {name}") as mine:
            entry: dict = {}
            try:
                entry["returned"] = self.dump(fn(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001
                entry["raised"] = f"{type(exc).__name__}: {exc}"
            entry["own_span_current"] = trace.get_current_span() is mine
        self.entries.append([name, entry])

    async def acall(self, name: str, fn, *args, **kwargs) -> None:
        with tracer.start_as_current_span(f"user {name}") as mine:
            entry: dict = {}
            try:
                entry["returned"] = self.dump(await fn(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001
                entry["raised"] = f"{type(exc).__name__}: {exc}"
            entry["own_span_current"] = trace.get_current_span() is mine
        self.entries.append([name, entry])
