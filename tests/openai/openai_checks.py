"""Assertions shared by the openai tests, over span dicts as the OTLP receiver decoded them."""

from __future__ import annotations

import json
from typing import Any

from llmprobe import __version__ as LLMPROBE_VERSION

Span = dict[str, Any]

SCOPE = "llmprobe.instrumentation.openai"


def attrs(span: Span) -> dict[str, Any]:
    return span["attributes"]


def content(span: Span, key: str) -> Any:
    """A JSON content attribute (gen_ai.input.messages, ...), parsed: it must be valid JSON."""
    value = attrs(span).get(key)
    assert isinstance(value, str), f"{key} missing or not a string on {span['name']}: {value!r}"
    return json.loads(value)


def assert_llm_span(
    span: Span,
    *,
    model: str,
    operation: str = "chat",
    port: int | None = None,
    kind: str = "LLM",
    stream: bool | None = False,
) -> None:
    """What every LLM / embedding span of the contract carries."""
    a = attrs(span)
    assert span["name"] == f"{operation} {model}"
    assert span["kind"] == "CLIENT"
    # The scope names llmprobe's instrumentation: its version is llmprobe's, not the SDK's.
    assert (span["scope"], span["scope_version"]) == (SCOPE, LLMPROBE_VERSION)
    assert a["gen_ai.span.kind"] == kind
    assert a["gen_ai.operation.name"] == operation
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == model
    assert a["server.address"] == "127.0.0.1"
    if port is not None:
        assert a["server.port"] == port
    if stream is not None:
        assert a["gen_ai.request.stream"] is stream
    assert span["end_time"] >= span["start_time"] > 0


def assert_ok(span: Span) -> None:
    assert span["status"]["code"] == "UNSET", span["status"]
    assert "error.type" not in attrs(span)
    assert not [e for e in span["events"] if e["name"] == "exception"]


def assert_failed(span: Span, error_type: str, message_part: str) -> None:
    assert span["status"]["code"] == "ERROR"
    assert message_part in span["status"]["message"], span["status"]
    assert attrs(span)["error.type"] == error_type
    [event] = [e for e in span["events"] if e["name"] == "exception"]
    assert event["attributes"]["exception.type"] == error_type
    assert message_part in event["attributes"]["exception.message"]
    assert "Traceback" in event["attributes"]["exception.stacktrace"]


def text_parts(message: dict) -> str:
    return "".join(p["content"] for p in message["parts"] if p["type"] == "text")


def everything(spans: list[Span]) -> str:
    """All that arrived, as one string (to search for what must never be there)."""
    return json.dumps(spans, default=repr)
