"""How streams end when the caller or the server leaves them: an async stream abandoned and
garbage-collected, and a server dropping the connection mid-stream (sync and async)."""

from __future__ import annotations

DURATION = "gen_ai.client.operation.duration"


def _data_points(receiver, metric: str, model: str) -> list[dict]:
    """The histogram data points of `metric` for `model`, from the last export that had them."""
    found: list[dict] = []
    for request in receiver.metrics:
        for resource in request.get("resourceMetrics", []):
            for scope in resource.get("scopeMetrics", []):
                for m in scope.get("metrics", []):
                    if m["name"] != metric:
                        continue
                    points = [
                        p
                        for p in m["histogram"]["dataPoints"]
                        if {"key": "gen_ai.request.model", "value": {"stringValue": model}}
                        in p.get("attributes", [])
                    ]
                    if points:
                        found = points
    return found


def test_abandoned_async_stream_ends_once_when_collected(dashscope_app, receiver):
    app = dashscope_app(
        """
        import asyncio, gc
        import dashscope
        from opentelemetry import trace
        tracer = trace.get_tracer("app")
        async def main():
            with tracer.start_as_current_span("outer"):
                s = await dashscope.AioGeneration.call(model="qwen-abandoned", prompt="hi", stream=True,
                                                       incremental_output=True)
                async for c in s:
                    break
                # Neither closed nor exhausted: dropped. The event loop closes the generators
                # left suspended; the proxy goes when nothing holds it any more.
                del s
                for _ in range(5):
                    gc.collect()
                    await asyncio.sleep(0)
                with tracer.start_as_current_span("after"):
                    pass
            print(c.output.text)
            await dashscope.close_shared_aio_session()
        asyncio.run(main())
        print("exited")
        """,
        spans=lambda got: {"text_completion qwen-abandoned", "after", "outer"} <= {s["name"] for s in got},
    )
    assert app.lines() == ["Hello", "exited"]
    llm = [s for s in app.spans if s["name"] == "text_completion qwen-abandoned"]
    assert len(llm) == 1  # one span, ended once
    llm = llm[0]
    by_name = {s["name"]: s for s in app.spans}
    outer, after = by_name["outer"], by_name["after"]
    assert llm["parent_span_id"] == outer["span_id"]
    assert after["parent_span_id"] == outer["span_id"]  # not the stream's span
    assert llm["end_time"] <= after["start_time"]  # ended by the collection, not at exit
    assert llm["status"]["code"] == "UNSET"
    assert llm["attributes"]["output.value"] == "Hello"
    # Ending twice would record the operation twice.
    receiver.wait_for(lambda _: _data_points(receiver, DURATION, "qwen-abandoned"))
    (point,) = _data_points(receiver, DURATION, "qwen-abandoned")
    assert int(point["count"]) == 1


DROPPED = """
import asyncio
import dashscope

def report(where, exc, got):
    kind = type(exc).__module__ + "." + type(exc).__qualname__
    print(where, kind, exc, type(exc.__context__).__name__, got)

got = []
try:
    for c in dashscope.Generation.call(model="qwen-drop", prompt="hi", stream=True):
        got.append(c.output.text)
except Exception as exc:
    report("sync", exc, got)

async def main():
    got = []
    try:
        s = await dashscope.AioGeneration.call(model="qwen-drop", prompt="hi", stream=True)
        async for c in s:
            got.append(c.output.text)
    except Exception as exc:
        report("async", exc, got)
    await dashscope.close_shared_aio_session()
asyncio.run(main())
"""


def test_connection_dropped_mid_stream(dashscope_app):
    plain = dashscope_app(DROPPED, instrument=False)
    traced = dashscope_app(DROPPED, spans=2)
    # The SDK's exception reaches the caller as it is without llmprobe: class, message, cause.
    assert traced.lines() == plain.lines()
    sync_line, async_line = traced.lines()
    assert sync_line.startswith("sync requests.exceptions.ChunkedEncodingError ")
    assert async_line.startswith("async aiohttp.client_exceptions.ClientPayloadError ")
    assert sync_line.endswith("['Hello']") and async_line.endswith("['Hello']")
    sync_span, async_span = traced.llm()
    for span, error_type in (
        (sync_span, "requests.exceptions.ChunkedEncodingError"),
        (async_span, "aiohttp.client_exceptions.ClientPayloadError"),
    ):
        assert span["name"] == "text_completion qwen-drop"
        assert span["status"]["code"] == "ERROR"
        assert span["status"]["message"]
        a = span["attributes"]
        assert a["error.type"] == error_type
        assert a["gen_ai.request.stream"] is True
        assert a["output.value"] == "Hello"  # what arrived before the drop
        (event,) = [e for e in span["events"] if e["name"] == "exception"]
        assert event["attributes"]["exception.type"] == error_type
        assert event["attributes"]["exception.stacktrace"]
