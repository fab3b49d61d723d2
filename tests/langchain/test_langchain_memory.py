"""Memory stays flat in a long-running process: every run's state is freed at its end, a stream
dropped half-way ends its runs when it is collected, and a run that never ends is ended as
abandoned after a bounded time."""

from __future__ import annotations

import json

from langchain_support import Tree, attrs


def test_ten_thousand_runs_and_a_thousand_abandoned_streams_leave_nothing(langchain_app):
    app = langchain_app(
        """
import asyncio, gc, json, tracemalloc
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.language_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from llmprobe.instrumentation.langchain import _runs
chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | FakeListChatModel(responses=["a b c d"]) | StrOutputParser()
def sync_batch(n):
    for i in range(n):
        chain.invoke({"q": str(i)})
async def abandoned(n):
    for i in range(n):
        stream = chain.astream({"q": str(i)})
        await stream.__anext__()
        await stream.aclose()  # what the loop does with an async generator dropped half-way
        sync = chain.stream({"q": str(i)})
        next(sync)
        del sync  # collected at once: its runs end
sync_batch(500)
asyncio.run(abandoned(50))
gc.collect()
tracemalloc.start()
before = tracemalloc.take_snapshot()
sync_batch(9500)
asyncio.run(abandoned(950))
gc.collect()
after = tracemalloc.take_snapshot()
grown = sum(s.size_diff for s in after.compare_to(before, "filename") if "llmprobe" in str(s.traceback))
print(json.dumps({"pending": _runs.pending(), "llmprobe_bytes_grown": grown}))
""",
        spans=0,
        env={"OTEL_TRACES_EXPORTER": "none"},
        timeout=600,
    )
    result = json.loads(app.lines()[-1])
    assert result["pending"] == 0
    assert result["llmprobe_bytes_grown"] < 64 * 1024, result


def test_a_run_that_never_ends_is_ended_as_abandoned(langchain_app):
    app = langchain_app(
        """
import time
from langchain_core.runnables import RunnableGenerator
from llmprobe.instrumentation import _runs as framework_runs
from llmprobe.instrumentation.langchain import _runs
# The bound, made short for the test (an hour in a real process), and the sweep's interval.
framework_runs._STALE_AFTER_NS = 200_000_000
_runs.TABLE.sweep_every_ns = 0
def words(inputs):
    for _ in inputs:
        yield from ("one", "two", "three")
kept = RunnableGenerator(words, name="kept").stream("x")
next(kept)  # kept, never read further, never collected
print(_runs.pending())
time.sleep(0.3)
RunnableGenerator(words, name="later").invoke("y")  # a run's start looks for stale runs
print(_runs.pending())
""",
        spans=lambda got: any(s["name"] == "chain kept" for s in got),
    )
    assert app.lines() == ["1", "0"]
    kept = Tree(app.spans).one("chain kept")
    assert attrs(kept)["llmprobe.run.abandoned"] is True
    assert json.dumps(kept)  # it arrived whole
