"""The GenAI client metrics of the calls, as they arrive at the OTLP receiver's /v1/metrics:
operation duration, token usage and, for streams, time to first chunk and time per output chunk,
with plain-string attributes."""

from __future__ import annotations

import pytest
from span_query import metric_points

SCRIPT = """
import asyncio, inspect, openai
client = openai.OpenAI(max_retries=0)
def usage_kwargs(method):
    if "stream_options" in inspect.signature(method).parameters:
        return {"stream_options": {"include_usage": True}}
    return {"extra_body": {"stream_options": {"include_usage": True}}}
client.chat.completions.create(model="gpt-metrics", messages=[{"role": "user", "content": "count these words"}])
for _ in client.chat.completions.create(model="chunks-6", stream=True, messages=[{"role": "user", "content": "s"}],
                                        **usage_kwargs(client.chat.completions.create)):
    pass
try:
    client.chat.completions.create(model="error-500", messages=[{"role": "user", "content": "x"}])
except openai.InternalServerError:
    pass
client.embeddings.create(model="embed-metrics", input="two words")
"""


def _strings(point: dict) -> dict[str, str]:
    values = {}
    for key, value in point["attributes"].items():
        assert list(value) == ["stringValue"], f"metric attribute {key} is not a plain string: {value}"
        values[key] = value["stringValue"]
    return values


@pytest.fixture
def metrics_run(openai_app, receiver):
    app = openai_app(SCRIPT, spans=4)
    receiver.wait_for(lambda _: metric_points(receiver, "gen_ai.client.operation.duration"), timeout=10)
    return app, receiver


def test_operation_duration(metrics_run):
    app, receiver = metrics_run
    points = {
        _strings(p)["gen_ai.request.model"]: p
        for p in metric_points(receiver, "gen_ai.client.operation.duration")
    }
    assert set(points) == {"gpt-metrics", "chunks-6", "error-500", "embed-metrics"}
    chat = points["gpt-metrics"]
    assert chat["unit"] == "s"
    assert int(chat["count"]) == 1
    span = next(s for s in app.llm() if s["attributes"]["gen_ai.request.model"] == "gpt-metrics")
    assert 0 < chat["sum"] <= (span["end_time"] - span["start_time"]) / 1e9
    assert _strings(chat) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-metrics",
        "gen_ai.response.model": "gpt-metrics-2024-07-18",
        "server.address": "127.0.0.1",
        "server.port": str(span["attributes"]["server.port"]),
    }
    failed = _strings(points["error-500"])
    assert failed["error.type"] == "openai.InternalServerError"
    assert "gen_ai.response.model" not in failed
    assert _strings(points["embed-metrics"])["gen_ai.operation.name"] == "embeddings"


def test_token_usage(metrics_run):
    _, receiver = metrics_run
    points = metric_points(receiver, "gen_ai.client.token.usage")
    by_key = {(_strings(p)["gen_ai.request.model"], _strings(p)["gen_ai.token.type"]): p for p in points}
    assert by_key[("gpt-metrics", "input")]["sum"] == 3
    assert by_key[("gpt-metrics", "output")]["sum"] == 4
    assert by_key[("chunks-6", "output")]["sum"] == 2  # from the stream's usage chunk
    assert by_key[("embed-metrics", "input")]["sum"] == 2
    assert not [k for k in by_key if k[0] == "error-500"]
    assert points[0]["unit"] == "{token}"


def test_stream_chunk_timings(metrics_run):
    _, receiver = metrics_run
    [first] = metric_points(receiver, "gen_ai.client.operation.time_to_first_chunk")
    assert _strings(first)["gen_ai.request.model"] == "chunks-6"
    assert int(first["count"]) == 1 and first["sum"] > 0
    [per_chunk] = metric_points(receiver, "gen_ai.client.operation.time_per_output_chunk")
    # role chunk + 6 content chunks + finish chunk + usage chunk: 8 gaps after the first.
    assert int(per_chunk["count"]) == 8
    assert per_chunk["unit"] == "s"
