"""A fixed run of what a LlamaIndex application does, written down as JSON: what each call
returned, what it raised ("Type: message"), what a stream gave, and whether the application's
current span was still its own after the call.

Run without llmprobe, under llmprobe, and under llmprobe with its code made to fail
(llama_index_faults.py), the transcript must be the same. Used by test_llama_index_faults.py.
The steps a llama-index-core release lacks (workflows before 0.11, FunctionAgent before 0.12)
are left out, so the transcript runs on 0.10.20 too.
"""

from __future__ import annotations

import asyncio
import json
import os
import warnings
from typing import Any

from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import ChatMessage, CompletionResponse, CustomLLM, LLMMetadata, MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.core.tools import FunctionTool
from transcript import Transcript

warnings.simplefilter("ignore")


def dump(value: Any) -> Any:
    """What the application sees of a LlamaIndex object (never its random ids)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): dump(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, NodeWithScore) for v in value):
            # MockEmbedding scores every node the same: their order is their random ids'.
            return sorted((dump(v) for v in value), key=lambda d: d["doc"])
        return [dump(v) for v in value]
    if isinstance(value, NodeWithScore):
        return {"doc": value.node.ref_doc_id, "text": value.node.get_content(), "score": value.score}
    name = type(value).__name__
    if name == "Response":
        return {"response": value.response, "sources": dump(value.source_nodes)}
    if name in ("ChatResponse", "AgentChatResponse"):
        message = getattr(value, "message", None)
        if message is not None:
            return {"role": str(message.role.value), "content": message.content}
        return {"response": value.response, "sources": dump(value.source_nodes)}
    if name == "CompletionResponse":
        return {"text": value.text}
    if name == "ToolOutput":
        return {"content": value.content, "is_error": getattr(value, "is_error", None)}
    if name == "AgentOutput":
        return {
            "response": value.response.content,
            "tool_calls": [
                [c.tool_name, dump(c.tool_kwargs), c.tool_output.content] for c in value.tool_calls
            ],
        }
    return repr(value)


class LastFirst(BaseNodePostprocessor):
    """A reranker: the document last in the alphabet first."""

    top_n: int = 1

    def _postprocess_nodes(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None):
        return sorted(nodes, key=lambda n: n.node.ref_doc_id, reverse=True)[: self.top_n]


class FailingLLM(CustomLLM):
    """An LLM whose every call fails (a provider's error, as LlamaIndex passes it on)."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="failing-model")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raise ValueError("llm failed")

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        raise ValueError("llm failed")


def broken(x: str) -> str:
    """Always fails."""
    raise ValueError("tool failed")


def get_weather(city: str, unit: str = "celsius") -> str:
    """The weather in a city."""
    return f"Sunny in {city}, 21 {unit}"


def get_time(timezone: str) -> str:
    """The time in a timezone."""
    return f"12:00 in {timezone}"


def read_stream(response: Any) -> str:
    return "".join(response.response_gen)


def first_token(response: Any) -> Any:
    for token in response.response_gen:
        return token
    return None


def first_delta(stream: Any) -> Any:
    for item in stream:
        return item.delta
    return None


def openai_llm() -> Any:
    try:
        from llama_index.llms.openai import OpenAI
    except ImportError:
        return None
    return OpenAI(model="gpt-3.5-turbo", max_retries=0, api_base=os.environ["OPENAI_BASE_URL"])


def workflow() -> Any:
    try:
        from llama_index.core.workflow import Event, StartEvent, StopEvent, Workflow, step
    except ImportError:
        return None

    class Drafted(Event):
        draft: str

    class Review(Workflow):
        @step
        async def draft(self, ev: StartEvent) -> Drafted:
            answer = await MockLLM(max_tokens=3).acomplete(ev.topic)
            return Drafted(draft=answer.text)

        @step
        async def polish(self, ev: Drafted) -> StopEvent:
            return StopEvent(result=ev.draft.upper())

    return Review(timeout=30)


def agent(llm: Any) -> Any:
    if llm is None:
        return None
    try:
        from llama_index.core.agent.workflow import FunctionAgent
    except ImportError:
        return None
    tools = [FunctionTool.from_defaults(get_weather), FunctionTool.from_defaults(get_time)]
    return FunctionAgent(name="weather_agent", description="Knows the weather.", tools=tools, llm=llm)


def main() -> None:
    t = Transcript(dump)
    Settings.llm = MockLLM(max_tokens=8)
    Settings.embed_model = MockEmbedding(embed_dim=8)
    documents = [
        Document(text="Paris is the capital of France.", doc_id="france", metadata={"country": "France"}),
        Document(text="Berlin is the capital of Germany.", doc_id="germany", metadata={"country": "Germany"}),
    ]
    index = VectorStoreIndex.from_documents(documents)
    engine = index.as_query_engine(similarity_top_k=2)
    streaming = index.as_query_engine(streaming=True, similarity_top_k=1)

    t.call("query", engine.query, "What is the capital of France?")
    t.call("streamed query", lambda: read_stream(streaming.query("Streamed?")))
    t.call("streamed query left early", lambda: first_token(streaming.query("Left early?")))
    t.call("retrieve", index.as_retriever(similarity_top_k=2).retrieve, "capital")
    reranked = index.as_query_engine(similarity_top_k=2, node_postprocessors=[LastFirst()])
    t.call("reranked query", reranked.query, "Which capital?")
    t.call("chat engine", SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=4)).chat, "hello there")

    llm = MockLLM(max_tokens=5)
    messages = [ChatMessage(role="user", content="hello")]
    t.call("llm chat", llm.chat, messages)
    t.call("llm stream_chat", lambda: [r.delta for r in llm.stream_chat(messages)])
    t.call("llm stream_chat left early", lambda: first_delta(llm.stream_chat(messages)))
    t.call("llm complete", llm.complete, "complete this")
    t.call("llm error", FailingLLM().complete, "anything")
    t.call("llm chat error", FailingLLM().chat, messages)
    tool = FunctionTool.from_defaults(broken)
    t.call("tool error", tool.call, x="y")
    t.call("tool", FunctionTool.from_defaults(get_weather).call, city="Rome")

    model = openai_llm()
    if model is not None:
        t.call("openai chat", model.chat, [ChatMessage(role="user", content="one")])
        t.call(
            "openai stream_chat",
            lambda: [r.delta for r in model.stream_chat([ChatMessage(role="user", content="two")])],
        )
        # The class checks its model's name against OpenAI's list: the request names the other.
        t.call("openai error", model.chat, [ChatMessage(role="user", content="three")], model="error-400")

    flow = workflow()
    runner = agent(model)

    async def run_async() -> None:
        await t.acall("aquery", engine.aquery, "And of Germany?")
        await t.acall("llm achat", llm.achat, messages)
        if flow is not None:
            await t.acall("workflow", flow.run, topic="one")
        if runner is not None:
            await t.acall("agent", runner.run, "What is the weather in Paris, and the time?")

    asyncio.run(run_async())
    print(json.dumps(t.entries, sort_keys=True))


if __name__ == "__main__":
    main()
