"""A fixed run of what a LangChain application does, written down as JSON: what each call
returned, what it raised, what a stream gave, which events astream_events gave, and whether the
application's current span was still its own after the call.

Run without llmprobe, under llmprobe, and under llmprobe with its code made to fail
(langchain_faults.py), the transcript must be the same. Used by test_langchain_faults.py.
"""

from __future__ import annotations

import asyncio
import json
import operator
import warnings
from typing import Annotated, Any, TypedDict

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import FakeListChatModel, FakeListLLM
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnableParallel
from langchain_core.tools import tool
from langchain_core.vectorstores import InMemoryVectorStore
from transcript import Transcript

warnings.simplefilter("ignore")


def dump(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): dump(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [dump(v) for v in value]
    content = getattr(value, "content", None)
    if content is not None:  # a message: its id is LangChain's random one
        return {
            "type": type(value).__name__,
            "content": dump(content),
            "tool_calls": dump(getattr(value, "tool_calls", None)),
        }
    page = getattr(value, "page_content", None)
    if page is not None:
        return {"id": getattr(value, "id", None), "content": page}
    return repr(value)


class Recorder(BaseCallbackHandler):
    """The user's own callbacks: they must see the same runs with or without llmprobe."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_chain_start(self, serialized, inputs, **kwargs):
        self.seen.append("chain_start")

    def on_chain_end(self, outputs, **kwargs):
        self.seen.append("chain_end")

    def on_llm_end(self, response, **kwargs):
        self.seen.append("llm_end")

    def on_tool_end(self, output, **kwargs):
        self.seen.append("tool_end")


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
def broken(x: str) -> str:
    """Always fails."""
    raise ValueError("tool failed")


def explode(x: Any) -> Any:
    raise KeyError(f"missing {x}")


class State(TypedDict):
    count: int
    seen: Annotated[list, operator.add]


def graph() -> Any:
    try:
        from langgraph.graph import END, START, StateGraph
    except ImportError:
        return None

    def grow(state):
        return {"count": state["count"] + 1, "seen": ["grow"]}

    async def double(state):
        return {"count": state["count"] * 2, "seen": ["double"]}

    builder = StateGraph(State)
    builder.add_node("grow", grow)
    builder.add_node("double", double)
    builder.add_edge(START, "grow")
    builder.add_conditional_edges("grow", lambda s: "double" if s["count"] < 5 else END)
    builder.add_edge("double", "grow")
    return builder.compile()


def chat_openai() -> Any:
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        return None
    return ChatOpenAI(model="gpt-transcript", max_retries=0)


def first_of(stream: Any) -> Any:
    for item in stream:
        return item
    return None


async def events(runnable: Any, inputs: Any) -> list:
    return [(e["event"], e["name"]) async for e in runnable.astream_events(inputs, version="v2")]


async def collect(stream: Any) -> list:
    return [item async for item in stream]


def main() -> None:
    t = Transcript(dump)
    prompt = ChatPromptTemplate.from_messages([("system", "be brief"), ("human", "{q}")])
    chain = prompt | FakeListChatModel(responses=["one", "two", "three"]) | StrOutputParser()
    recorder = Recorder()
    t.call("invoke", chain.invoke, {"q": "a"}, config={"callbacks": [recorder]})
    t.call("stream", lambda: list(chain.stream({"q": "b"})))
    t.call("stream left early", lambda: first_of(chain.stream({"q": "c"})))
    t.call("batch", chain.batch, [{"q": str(i)} for i in range(4)], config={"max_concurrency": 1})
    t.call(
        "parallel",
        RunnableParallel(x=RunnableLambda(lambda v: v + 1), y=RunnableLambda(lambda v: v * 2)).invoke,
        3,
    )
    t.call("chain error", (RunnableLambda(lambda v: v) | RunnableLambda(explode)).invoke, "k")
    t.call("llm", FakeListLLM(responses=["completed"]).invoke, "complete")
    t.call("tool", add.invoke, {"a": 1, "b": 2})
    t.call(
        "tool call",
        add.invoke,
        {"type": "tool_call", "id": "call_9", "name": "add", "args": {"a": 2, "b": 2}},
    )
    t.call("tool error", broken.invoke, {"x": "y"})
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=8))
    store.add_documents([Document(id=f"d{i}", page_content=f"document number {i}") for i in range(4)])
    t.call("retriever", store.as_retriever(search_kwargs={"k": 2}).invoke, "document number 2")
    t.call("embed", DeterministicFakeEmbedding(size=4).embed_documents, ["x", "y"])
    model = chat_openai()
    if model is not None:
        t.call("chat openai", model.invoke, "hello")
        t.call("chat openai stream", lambda: [c.content for c in model.stream("streamed")])
        t.call("chat openai error", chat_openai().bind(model="error-500").invoke, "x")
    compiled = graph()
    if compiled is not None:
        t.call("graph", compiled.invoke, {"count": 1, "seen": []})

    async def run_async() -> None:
        await t.acall("ainvoke", chain.ainvoke, {"q": "d"})
        await t.acall("astream", collect, chain.astream({"q": "e"}))
        await t.acall("abatch", chain.abatch, [{"q": "f"}, {"q": "g"}])
        await t.acall("astream_events", events, chain, {"q": "h"})
        if model is not None:
            await t.acall("chat openai async", model.ainvoke, "async hello")
        if compiled is not None:
            await t.acall("graph ainvoke", compiled.ainvoke, {"count": 2, "seen": []})
            await t.acall("graph astream", collect, compiled.astream({"count": 3, "seen": []}))
            await t.acall("graph astream_events", events, compiled, {"count": 4, "seen": []})

    asyncio.run(run_async())
    t.entries.append(["user callbacks", {"returned": recorder.seen}])
    print(json.dumps(t.entries, sort_keys=True))
