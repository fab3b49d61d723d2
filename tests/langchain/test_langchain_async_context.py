"""Async LangGraph, where LangChain runs the callbacks in other contexts than the node's code:
whatever a node's own code causes (a ChatOpenAI call, a direct openai SDK call, a user's span)
nests under that node's span, in the caller's trace, under ainvoke, astream and astream_events;
and the caller's context is its own again after each."""

from __future__ import annotations

import pytest
from langchain_support import Tree, attrs, kind, needs

GRAPH = """
import asyncio, operator
from typing import Annotated, TypedDict
import openai
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from opentelemetry import trace
tracer = trace.get_tracer("app")
model = ChatOpenAI(model="gpt-node", max_retries=0)
client = openai.AsyncOpenAI(max_retries=0)
class State(TypedDict):
    question: str
    answers: Annotated[list, operator.add]
async def ask(state):
    first = await model.ainvoke(state["question"])
    second = await client.chat.completions.create(model="gpt-direct", messages=[{"role": "user", "content": "direct"}])
    with tracer.start_as_current_span("user span in ask"):
        pass
    return {"answers": [first.content, second.choices[0].message.content]}
async def check(state):
    with tracer.start_as_current_span("user span in check"):
        return {"answers": ["checked"]}
builder = StateGraph(State)
builder.add_node("ask", ask)
builder.add_node("check", check)
builder.add_edge(START, "ask")
builder.add_conditional_edges("ask", lambda s: "check" if len(s["answers"]) < 3 else END)
builder.add_edge("check", END)
graph = builder.compile()
"""

RUNS = {
    "ainvoke": "await graph.ainvoke(inputs, config)",
    "astream": "[_ async for _ in graph.astream(inputs, config)]",
    "astream_events": "[_ async for _ in graph.astream_events(inputs, config, version='v2')]",
}


@needs("langgraph")
@needs("langchain-openai")
@pytest.mark.parametrize("how", list(RUNS))
def test_what_a_node_causes_nests_under_the_node(langchain_app, how):
    app = langchain_app(
        GRAPH
        + f"""
async def main():
    inputs = {{"question": "in the node", "answers": []}}
    config = {{"configurable": {{"thread_id": "t-async"}}}}
    with tracer.start_as_current_span("request") as request:
        {RUNS[how]}
        assert trace.get_current_span() is request, trace.get_current_span()
        with tracer.start_as_current_span("after the graph"):
            pass
    print("done")
asyncio.run(main())
""",
        spans=lambda got: (
            {"after the graph", "user span in check"} <= {s["name"] for s in got}
            and len([s for s in got if s["attributes"].get("gen_ai.span.kind") == "LLM"]) >= 2
        ),
    )
    assert app.lines() == ["done"]
    tree = Tree(app.spans)
    request = tree.one("request")
    assert len({s["trace_id"] for s in tree.spans}) == 1, tree.render()
    agent = tree.one("invoke_agent LangGraph")
    tree.assert_under(agent, request)
    ask = tree.one("chain ask")
    tree.assert_under(ask, agent)
    tree.assert_under(tree.one("chain check"), agent)
    tree.assert_under(tree.one("user span in check"), tree.one("chain check"))
    # The three things the node's code did.
    step = tree.one("chain ChatOpenAI")
    tree.assert_under(step, ask)
    via_langchain = tree.one("chat gpt-node")
    tree.assert_under(via_langchain, step)
    tree.assert_under(tree.one("chat gpt-direct"), ask)
    tree.assert_under(tree.one("user span in ask"), ask)
    assert len(tree.llm()) == 2
    tree.assert_under(tree.one("after the graph"), request)
    assert attrs(ask)["gen_ai.session.id"] == "t-async"


@needs("langgraph")
def test_sync_nodes_in_an_async_graph_and_parallel_nodes(langchain_app):
    """Two nodes run in the same step (in parallel tasks), one of them synchronous (LangGraph runs
    it in a thread): each one's own span nests under its node."""
    app = langchain_app(
        """
import asyncio, operator, time
from typing import Annotated, TypedDict
from langgraph.graph import END, START, StateGraph
from opentelemetry import trace
tracer = trace.get_tracer("app")
class State(TypedDict):
    out: Annotated[list, operator.add]
def left(state):
    with tracer.start_as_current_span("inside left"):
        time.sleep(0.01)
    return {"out": ["left"]}
async def right(state):
    with tracer.start_as_current_span("inside right"):
        await asyncio.sleep(0.01)
    return {"out": ["right"]}
builder = StateGraph(State)
builder.add_node("left", left)
builder.add_node("right", right)
builder.add_edge(START, "left")
builder.add_edge(START, "right")
builder.add_edge("left", END)
builder.add_edge("right", END)
graph = builder.compile()
async def main():
    results = await asyncio.gather(*(graph.ainvoke({"out": []}) for _ in range(5)))
    print(sorted(results[0]["out"]))
asyncio.run(main())
""",
        spans=lambda got: (
            len([s for s in got if s["name"].startswith("inside")]) >= 10
            and len([s for s in got if s["name"].startswith("invoke_agent")]) >= 5
        ),
    )
    assert app.lines() == ["['left', 'right']"]
    tree = Tree(app.spans)
    for name in ("left", "right"):
        for inside in tree.named(f"inside {name}"):
            node = tree.parent(inside)
            assert node["name"] == f"chain {name}", tree.render()
            assert kind(tree.parent(node)) == "AGENT"
    assert len(tree.roots()) == 5


@needs("langgraph")
@needs("langchain-openai")
def test_a_streams_reader_keeps_its_own_span_between_chunks(langchain_app):
    """The runs of a stream are current where the stream's own code runs, never in the code that
    reads it: a span the reader makes between chunks (a web server writing each chunk out) is the
    reader's, under the reader's span."""
    app = langchain_app(
        """
import asyncio, operator
from typing import Annotated, TypedDict
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from opentelemetry import trace
tracer = trace.get_tracer("app")
model = ChatOpenAI(model="chunks-4", max_retries=0)
chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | model | StrOutputParser()
class State(TypedDict):
    out: Annotated[list, operator.add]
def node(state):
    return {"out": [model.invoke("in the node").content]}
async def anode(state):
    return {"out": [(await model.ainvoke("in the node")).content]}
def graph(fn):
    builder = StateGraph(State)
    builder.add_node("node", fn)
    builder.add_edge(START, "node")
    builder.add_edge("node", END)
    return builder.compile()
sync_graph, async_graph = graph(node), graph(anode)
def read(name, stream):
    with tracer.start_as_current_span(f"reader {name}") as reader:
        for i, _ in enumerate(stream):
            assert trace.get_current_span() is reader, (name, trace.get_current_span())
            with tracer.start_as_current_span(f"write {name}"):
                pass
async def aread(name, stream):
    with tracer.start_as_current_span(f"reader {name}") as reader:
        async for _ in stream:
            assert trace.get_current_span() is reader, (name, trace.get_current_span())
            with tracer.start_as_current_span(f"write {name}"):
                pass
read("chain", chain.stream({"q": "a"}))
read("model", model.stream("b"))
read("graph", sync_graph.stream({"out": []}))
async def main():
    await aread("achain", chain.astream({"q": "c"}))
    await aread("amodel", model.astream("d"))
    await aread("agraph", async_graph.astream({"out": []}))
asyncio.run(main())
print("read")
""",
        spans=lambda got: (
            len([s for s in got if s["attributes"].get("gen_ai.span.kind") == "LLM"]) >= 6
            and any(s["name"] == "write agraph" for s in got)
        ),
    )
    assert app.lines() == ["read"]
    tree = Tree(app.spans)
    for name in ("chain", "model", "graph", "achain", "amodel", "agraph"):
        reader = tree.one(f"reader {name}")
        writes = tree.named(f"write {name}")
        assert writes, tree.render()
        for write in writes:
            tree.assert_under(write, reader)
    # The model calls still nest under their runs.
    for llm in tree.llm():
        assert tree.parent(llm)["name"] == "chain ChatOpenAI", tree.render()
