"""Chains and runnables as the receiver gets them: one CHAIN span per run, nested as LangChain
nested the runs (under the caller's span), in invoke, stream, batch (threads), async and
parallel branches; the caller's context is its own again after each call; errors are recorded
and still reach the caller as they were."""

from __future__ import annotations

from langchain_support import SCOPE, Tree, attrs, content, kind
from llmprobe import __version__ as LLMPROBE_VERSION

CHAIN = """
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.language_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from opentelemetry import trace
tracer = trace.get_tracer("app")
prompt = ChatPromptTemplate.from_messages([("system", "be brief"), ("human", "{q}")])
model = FakeListChatModel(responses=["the answer"])
chain = prompt | model | StrOutputParser()
"""

SEQUENCE = (
    "chain RunnableSequence",
    (
        ("chain ChatPromptTemplate", ()),
        ("chat FakeListChatModel", ()),
        ("chain StrOutputParser", ()),
    ),
)


def test_invoke_gives_one_span_per_run_under_the_callers_span(langchain_app):
    app = langchain_app(
        CHAIN
        + """
from langchain_core.callbacks import BaseCallbackHandler
class Mine(BaseCallbackHandler):
    ends = 0
    def on_chain_end(self, outputs, **kwargs):
        Mine.ends += 1
with tracer.start_as_current_span("request") as request:
    print(chain.invoke({"q": "what is it?"}, config={"callbacks": [Mine()]}))
    assert trace.get_current_span() is request
print("user handler saw", Mine.ends, "chain ends")
""",
        spans=4,
    )
    # The user's own callbacks still run, and the chain answers as without llmprobe.
    assert app.lines() == ["the answer", "user handler saw 3 chain ends"]
    tree = Tree(app.spans)
    request = tree.one("request")
    assert tree.shape(request) == ("request", (SEQUENCE,))
    sequence = tree.one("chain RunnableSequence")
    a = attrs(sequence)
    assert sequence["kind"] == "INTERNAL"
    assert (sequence["scope"], sequence["scope_version"]) == (SCOPE, LLMPROBE_VERSION)
    assert a["gen_ai.span.kind"] == "CHAIN"
    assert a["gen_ai.operation.name"] == "chain"
    assert a["gen_ai.framework"] == "langchain"
    assert content(sequence, "input.value") == {"q": "what is it?"}
    assert a["input.mime_type"] == "application/json"
    assert a["output.value"] == "the answer" and a["output.mime_type"] == "text/plain"
    prompt = tree.one("chain ChatPromptTemplate")
    assert content(prompt, "output.value") == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "what is it?"}]},
    ]
    assert attrs(prompt)["langchain.tags"] == ["seq:step:1"]


def test_a_model_llmprobe_does_not_reach_otherwise_is_the_llm_span(langchain_app):
    app = langchain_app(CHAIN + "chain.invoke({'q': 'hello'})\n", spans=4)
    tree = Tree(app.spans)
    [llm] = tree.llm()
    a = attrs(llm)
    assert llm["name"] == "chat FakeListChatModel" and llm["kind"] == "CLIENT"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "fakelistchatmodel"  # LangChain's ls_provider
    assert a["gen_ai.request.stream"] is False
    assert content(llm, "gen_ai.input.messages") == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "hello"}]},
    ]
    assert a["input.value"] == a["gen_ai.input.messages"]
    assert content(llm, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": "the answer"}]}
    ]
    assert a["output.value"] == "the answer"
    tree.assert_under(llm, tree.one("chain RunnableSequence"))


def test_stream_records_the_time_to_first_token_and_the_whole_answer(langchain_app):
    app = langchain_app(
        CHAIN
        + """
with tracer.start_as_current_span("request") as request:
    pieces = list(chain.stream({"q": "stream it"}))
    assert trace.get_current_span() is request
    # Left after the first chunk: the stream's runs end when it is closed.
    for piece in chain.stream({"q": "left early"}):
        break
    assert trace.get_current_span() is request
print("".join(pieces))
""",
        spans=8,
    )
    assert app.lines() == ["the answer"]
    tree = Tree(app.spans)
    request = tree.one("request")
    sequences = tree.named("chain RunnableSequence")
    assert len(sequences) == 2
    for sequence in sequences:
        tree.assert_under(sequence, request)
    full, left = sequences
    assert attrs(full)["output.value"] == "the answer"
    assert content(full, "input.value") == {"q": "stream it"}  # known only at the stream's end
    llm = next(s for s in tree.llm() if tree.parent(s) is full)
    a = attrs(llm)
    assert a["gen_ai.request.stream"] is True
    assert 0 < a["gen_ai.response.time_to_first_token"] <= llm["end_time"] - llm["start_time"]
    assert a["output.value"] == "the answer"
    assert all(s["end_time"] <= request["end_time"] for s in tree.children(left))


def test_batch_in_threads_keeps_each_run_under_its_own_parent(langchain_app):
    app = langchain_app(
        CHAIN.replace('responses=["the answer"]', 'responses=["a"]')
        + """
with tracer.start_as_current_span("request"):
    answers = chain.batch([{"q": f"question {i}"} for i in range(8)], config={"max_concurrency": 4})
print(len(answers))
""",
        spans=32,
    )
    assert app.lines() == ["8"]
    tree = Tree(app.spans)
    request = tree.one("request")
    sequences = tree.named("chain RunnableSequence")
    assert len(sequences) == 8
    for sequence in sequences:
        tree.assert_under(sequence, request)
        assert tree.shape(sequence)[1] == SEQUENCE[1]
        question = content(sequence, "input.value")["q"]
        [llm] = [c for c in tree.children(sequence) if kind(c) == "LLM"]
        assert content(llm, "gen_ai.input.messages")[-1]["parts"][0]["content"] == question


def test_concurrent_async_calls_nest_under_their_own_tasks_spans(langchain_app):
    app = langchain_app(
        CHAIN.replace('responses=["the answer"]', 'responses=["a"]')
        + """
import asyncio
async def one(i):
    with tracer.start_as_current_span(f"task {i}") as mine:
        await chain.ainvoke({"q": f"question {i}"})
        assert trace.get_current_span() is mine
        async for _ in chain.astream({"q": f"streamed {i}"}):
            pass
        assert trace.get_current_span() is mine
async def main():
    await asyncio.gather(*(one(i) for i in range(20)))
    print("done")
asyncio.run(main())
""",
        spans=160,
    )
    assert app.lines() == ["done"]
    tree = Tree(app.spans)
    for i in range(20):
        task = tree.one(f"task {i}")
        sequences = tree.children(task)
        assert [s["name"] for s in sequences] == ["chain RunnableSequence"] * 2, tree.render([task])
        for sequence in sequences:
            assert tree.shape(sequence)[1] == SEQUENCE[1]
            [llm] = [c for c in tree.children(sequence) if kind(c) == "LLM"]
            asked = content(llm, "gen_ai.input.messages")[-1]["parts"][0]["content"]
            assert asked in (f"question {i}", f"streamed {i}")


def test_parallel_branches_nest_under_the_parallel_run(langchain_app):
    app = langchain_app(
        """
from langchain_core.runnables import RunnableLambda, RunnableParallel
from opentelemetry import trace
tracer = trace.get_tracer("app")
def traced(name):
    def step(x):
        # A span the step's own code makes: under the step's span, whatever thread runs it.
        with tracer.start_as_current_span(f"inside {name}"):
            return f"{name}:{x}"
    return RunnableLambda(step, name=name)
both = RunnableParallel(left=traced("left"), right=traced("right"))
print(sorted(both.invoke("x").values()))
""",
        spans=3,
    )
    assert app.lines() == ["['left:x', 'right:x']"]
    tree = Tree(app.spans)
    parallel = next(s for s in tree.spans if s["name"].startswith("chain RunnableParallel"))
    for name in ("left", "right"):
        step = tree.one(f"chain {name}")
        tree.assert_under(step, parallel)
        tree.assert_under(tree.one(f"inside {name}"), step)


def test_a_failing_step_is_recorded_and_raised_as_it_was(langchain_app):
    app = langchain_app(
        """
from langchain_core.runnables import RunnableLambda
def explode(x):
    raise ValueError(f"no good: {x}")
chain = RunnableLambda(lambda x: x + 1, name="add") | RunnableLambda(explode, name="explode")
try:
    chain.invoke(1)
except ValueError as exc:
    print("caught", exc)
""",
        spans=3,
    )
    assert app.lines() == ["caught no good: 2"]
    tree = Tree(app.spans)
    for name in ("chain explode", "chain RunnableSequence"):
        span = tree.one(name)
        assert span["status"]["code"] == "ERROR", span
        assert span["status"]["message"] == "no good: 2"
        assert attrs(span)["error.type"] == "ValueError"
        assert [e["name"] for e in span["events"]] == ["exception"]
    assert tree.one("chain add")["status"]["code"] == "UNSET"
