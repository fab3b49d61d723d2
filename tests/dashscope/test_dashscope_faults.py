"""Fault injection: llmprobe's own hooks raise, and the application gets identical results."""

from __future__ import annotations

APP = """
import dashscope
{inject}
r = dashscope.Generation.call(model="qwen-plus", prompt="hi")
print(r.status_code, r.output.text, r.request_id)
r = dashscope.Generation.call(model="qwen-bad", prompt="hi")
print(r.status_code, r.code)
print([c.output.text for c in dashscope.Generation.call(model="qwen-plus", prompt="hi", stream=True)])
"""

INJECT = """
from llmprobe import _core
from llmprobe.instrumentation import dashscope as probe
def boom(*a, **k):
    raise RuntimeError("hook failure")
_core.usage = boom
_core.dashscope_response = boom
probe._assemble_stream = boom
probe._server = boom
"""

# Only the after-hooks fail: the spans still start and end.
INJECT_AFTER = """
from llmprobe import _core
from llmprobe.instrumentation import dashscope as probe
def boom(*a, **k):
    raise RuntimeError("hook failure")
_core.usage = boom
_core.dashscope_response = boom
probe._assemble_stream = boom
"""


def test_failing_hooks_leave_results_identical(dashscope_app, fake_dashscope):
    plain = dashscope_app(APP.format(inject=""), instrument=False)
    faulty = dashscope_app(APP.format(inject=INJECT), spans=0)
    assert faulty.lines() == plain.lines()
    assert len(faulty.requests) == len(plain.requests) == 3  # each call ran exactly once
    # _server fails in the before hook: the calls ran untraced, with no span.
    assert faulty.llm() == []


def test_failing_after_hooks_leave_results_identical(dashscope_app):
    plain = dashscope_app(APP.format(inject=""), instrument=False)
    faulty = dashscope_app(APP.format(inject=INJECT_AFTER), spans=3)
    assert faulty.lines() == plain.lines()
    assert len(faulty.requests) == 3
    assert len(faulty.llm()) == 3


UNTOUCHED = """
import asyncio
import dashscope
print(dashscope.Generation.call(model="qwen-plus", prompt="hi"))
print(dashscope.Generation.call("qwen-plus", messages=[{"role": "user", "content": "hi"}], result_format="message"))
print(dashscope.Generation.call(model="qwen-bad", prompt="hi"))
for c in dashscope.Generation.call(model="qwen-plus", prompt="hi", stream=True, incremental_output=True):
    print(c)
print(dashscope.TextEmbedding.call(model="text-embedding-v3", input="a"))
print(dashscope.TextReRank.call(model="gte-rerank", query="q", documents=["a", "bb"]))
print(dashscope.Application.call(app_id="app-1", prompt="hi"))
async def main():
    print(await dashscope.AioGeneration.call(model="qwen-plus", prompt="hi"))
asyncio.run(main())
"""


def test_responses_and_requests_are_untouched(dashscope_app):
    # What the app sees (every response and chunk, printed whole) and what the server receives
    # are the same with and without llmprobe.
    plain = dashscope_app(UNTOUCHED, instrument=False)
    traced = dashscope_app(UNTOUCHED, spans=8)
    assert traced.lines() == plain.lines()
    assert [r["body"] for r in traced.requests] == [r["body"] for r in plain.requests]
    assert [r["path"] for r in traced.requests] == [r["path"] for r in plain.requests]
    assert len(traced.llm()) == 8
