"""Memory stays flat in a long-running process: every run's state is freed at its end, a stream
left half-way ends its runs when it is collected, and a run that never ends is ended as
abandoned after a bounded time."""

from __future__ import annotations

import json

from llama_index_support import INDEX
from span_query import Tree, attrs


def test_many_queries_and_abandoned_streams_leave_nothing(llama_app):
    app = llama_app(
        INDEX
        + """
import asyncio, gc, json, tracemalloc
from llama_index.core.llms import ChatMessage
from llama_index.core.tools import FunctionTool
from llmprobe.instrumentation.llama_index import _spans
engine = index.as_query_engine(similarity_top_k=1)
streaming = index.as_query_engine(similarity_top_k=1, streaming=True)
llm = MockLLM(max_tokens=4)
def broken(x: str) -> str:
    \"\"\"Always fails.\"\"\"
    raise ValueError("tool failed")
tool = FunctionTool.from_defaults(broken)
messages = [ChatMessage(role="user", content="hi")]
def sync_work(n):
    for i in range(n):
        engine.query(str(i))
        "".join(streaming.query(str(i)).response_gen)
        try:
            tool.call(x=str(i))
        except ValueError:
            pass
def abandoned(n):
    for i in range(n):
        for token in streaming.query(str(i)).response_gen:
            break  # the stream left after one token, then collected
        for chunk in llm.stream_chat(messages):
            break
async def async_work(n):
    for i in range(n):
        await engine.aquery(str(i))
        await llm.achat(messages)
def work(n):
    sync_work(n)
    abandoned(n)
    asyncio.run(async_work(n))
work(20)
gc.collect()
tracemalloc.start()
before = tracemalloc.take_snapshot()
work(150)
gc.collect()
after = tracemalloc.take_snapshot()
grown = sum(s.size_diff for s in after.compare_to(before, "filename") if "llmprobe" in str(s.traceback))
print(json.dumps({"pending": _spans.pending(), "llmprobe_bytes_grown": grown}))
""",
        spans=0,
        env={"OTEL_TRACES_EXPORTER": "none"},
        timeout=300,
    )
    result = json.loads(app.lines()[-1])
    assert result["pending"] == 0
    assert result["llmprobe_bytes_grown"] < 64 * 1024, result


NEVER_ENDS = """
import time
from llama_index.core.llms import ChatMessage, MockLLM
from opentelemetry import trace
from llmprobe.instrumentation import _runs as framework_runs
from llmprobe.instrumentation.llama_index import _spans
# The bound, made short for the test (an hour in a real process), and the sweep's interval.
framework_runs._STALE_AFTER_NS = 200_000_000
_spans.TABLE.sweep_every_ns = 0
with trace.get_tracer("app").start_as_current_span("request"):
    # A stream asked for, kept, never read, never collected: its model step never ends.
    kept = MockLLM(max_tokens=3).stream_chat([ChatMessage(role="user", content="kept")])
print(len(_spans.TABLE.runs), _spans.pending() > 0)
time.sleep(0.3)
MockLLM(max_tokens=2).complete("later")  # a run's start looks for stale runs
print(len(_spans.TABLE.runs), _spans.pending())
"""


def test_a_run_that_never_ends_is_ended_as_abandoned(llama_app):
    app = llama_app(NEVER_ENDS, spans=lambda got: any(s["name"] == "chat MockLLM.stream_chat" for s in got))
    assert app.lines()[0] == "1 True"
    assert app.lines()[1].startswith("0 "), "the stale run is still in the table"
    tree = Tree(app.spans)
    kept = tree.one("chat MockLLM.stream_chat")
    assert attrs(kept)["llmprobe.run.abandoned"] is True
    tree.assert_under(kept, tree.one("request"))
    assert kept["end_time"] - kept["start_time"] >= 200_000_000
    assert json.dumps(kept)  # it arrived whole


def test_an_abandoned_run_leaves_nothing_behind(llama_app):
    # The stream's inner span (CustomLLM.stream_chat runs stream_complete, which returns a
    # generator) is kept as an alias of the run while the stream is read: forgotten with the run.
    app = llama_app(NEVER_ENDS, spans=lambda got: any(s["name"] == "chat MockLLM.stream_chat" for s in got))
    assert app.lines() == ["1 True", "0 0"], "the abandoned run's aliases are still held (_spans.pending())"
