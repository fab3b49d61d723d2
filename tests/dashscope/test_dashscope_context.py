"""Where the spans sit: under the caller's span; a closed stream ends its span; threads never
adopt each other's spans; and the GenAI metrics arrive at the receiver."""

from __future__ import annotations

from fake_dashscope import ANSWER
from span_query import metric_points


def test_nested_under_caller_span_and_close_ends_stream(dashscope_app):
    app = dashscope_app(
        """
        import dashscope
        from opentelemetry import trace
        tracer = trace.get_tracer("app")
        with tracer.start_as_current_span("outer"):
            s = dashscope.Generation.call(model="qwen-plus", prompt="hi", stream=True, incremental_output=True)
            print(next(iter(s)).output.text)
            s.close()
            with tracer.start_as_current_span("after close"):
                pass
        """,
        spans=lambda got: {"outer", "after close", "text_completion qwen-plus"} <= {s["name"] for s in got},
    )
    assert app.lines() == ["Hello"]
    by_name = {s["name"]: s for s in app.spans}
    llm, outer, after = by_name["text_completion qwen-plus"], by_name["outer"], by_name["after close"]
    assert llm["parent_span_id"] == outer["span_id"]
    assert after["parent_span_id"] == outer["span_id"]
    assert llm["end_time"] <= after["start_time"]
    assert llm["attributes"]["output.value"] == "Hello"


def test_threads_do_not_adopt_each_others_spans(dashscope_app):
    app = dashscope_app(
        """
        import dashscope
        from concurrent.futures import ThreadPoolExecutor
        from opentelemetry import trace
        tracer = trace.get_tracer("app")
        def work(i):
            with tracer.start_as_current_span(f"job {i}"):
                return dashscope.Generation.call(model=f"qwen-{i}", prompt="hi").output.text
        with ThreadPoolExecutor(4) as pool:
            print(set(pool.map(work, range(8))))
        """,
        spans=8,
    )
    assert app.lines() == [str({ANSWER})]
    by_name = {s["name"]: s for s in app.spans}
    for i in range(8):
        assert by_name[f"text_completion qwen-{i}"]["parent_span_id"] == by_name[f"job {i}"]["span_id"]


def _histograms(receiver, name: str) -> list[dict]:
    """The points' attributes of histogram `name`, as plain strings."""
    return [
        {k: v.get("stringValue") for k, v in p["attributes"].items()} for p in metric_points(receiver, name)
    ]


def test_metrics_arrive(dashscope_app, receiver):
    dashscope_app(
        """
        import dashscope
        dashscope.Generation.call(model="qwen-plus", prompt="hi")
        dashscope.Generation.call(model="qwen-bad", prompt="hi")
        for _ in dashscope.Generation.call(model="qwen-plus", prompt="hi", stream=True):
            pass
        """,
        spans=3,
    )
    receiver.wait_for(lambda _: _histograms(receiver, "gen_ai.client.operation.time_to_first_chunk"))
    durations = _histograms(receiver, "gen_ai.client.operation.duration")
    assert all(p["gen_ai.provider.name"] == "dashscope" for p in durations)
    assert {p.get("error.type") for p in durations} == {None, "InvalidParameter"}
    tokens = _histograms(receiver, "gen_ai.client.token.usage")
    assert {p["gen_ai.token.type"] for p in tokens} == {"input", "output"}
