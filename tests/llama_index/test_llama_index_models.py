"""Model calls: one model request is one LLM span, its tokens counted once.

LlamaIndex's OpenAI and DashScope classes reach the model through the openai and dashscope SDKs,
which llmprobe instruments: the SDK's span is the LLM span (or the EMBEDDING span) and
LlamaIndex's step its CHAIN parent, with LlamaIndex's data. LlamaIndex's mock models reach no SDK:
their step is the span, with the GenAI metrics."""

from __future__ import annotations

from llama_index_support import SCOPE, needs
from span_query import Tree, attrs, content, kind, plain_points, token_sums

OPENAI_SCOPE = "llmprobe.instrumentation.openai"
DASHSCOPE_SCOPE = "llmprobe.instrumentation.dashscope"


def _llm(got: list[dict]) -> list[dict]:
    return [s for s in got if s["attributes"].get("gen_ai.span.kind") == "LLM"]


@needs("llama-index-llms-openai")
def test_openai_class_is_one_llm_span_under_its_step(llama_app, receiver):
    app = llama_app(
        """
import asyncio
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai import OpenAI
import os
llm = OpenAI(model="gpt-3.5-turbo", temperature=0.25, max_retries=0, api_base=os.environ["OPENAI_BASE_URL"])
print(llm.chat([ChatMessage(role="system", content="be brief"), ChatMessage(role="user", content="one")]).message.content)
print("".join(r.delta for r in llm.stream_chat([ChatMessage(role="user", content="two")])))
print(asyncio.run(llm.achat([ChatMessage(role="user", content="three")])).message.content)
print(llm.complete("four").text)
""",
        spans=lambda got: len(_llm(got)) >= 4 and sum(s["scope"] == SCOPE for s in got) >= 4,
    )
    assert app.lines() == ["Echo: one", "Echo: two", "Echo: three", "Echo: four"]
    assert len(app.requests) == 4
    tree = Tree(app.spans)
    llm = tree.llm()
    assert [s["scope"] for s in llm] == [OPENAI_SCOPE] * 4, tree.render()
    steps = []
    for span, stream, method in zip(
        llm, (False, True, False, False), ("chat", "stream_chat", "achat", "complete")
    ):
        assert span["name"] == "chat gpt-3.5-turbo"
        assert attrs(span)["gen_ai.request.stream"] is stream
        assert attrs(span)["gen_ai.request.temperature"] == 0.25
        step = tree.parent(span)
        steps.append(step)
        # LlamaIndex's model step is the CHAIN around the call.
        assert step["name"] == f"chain OpenAI.{method}" and step["scope"] == SCOPE, tree.render()
        s = attrs(step)
        assert s["gen_ai.span.kind"] == "CHAIN" and s["gen_ai.operation.name"] == "chain"
        assert not any(k.startswith("gen_ai.usage.") for k in s), "tokens belong to the LLM span only"
        assert s["output.value"].startswith("Echo: ")
        assert step["start_time"] <= span["start_time"] and span["end_time"] <= step["end_time"]
    assert content(steps[0], "input.value")[0] == {
        "role": "system",
        "parts": [{"type": "text", "content": "be brief"}],
    }
    # Counted once: the metrics' input tokens are the openai spans' own.
    receiver.wait_for(
        lambda _: (
            sum(int(p["count"]) for p in plain_points(receiver, "gen_ai.client.operation.duration")) >= 4
        ),
        timeout=10,
    )
    spans_input = sum(attrs(s).get("gen_ai.usage.input_tokens", 0) for s in llm)
    assert spans_input > 0 and token_sums(receiver)["input"] == spans_input
    assert sum(int(p["count"]) for p in plain_points(receiver, "gen_ai.client.operation.duration")) == 4


def test_mock_llm_is_the_llm_span_with_its_metrics(llama_app, receiver):
    app = llama_app(
        """
from llama_index.core.llms import ChatMessage, MockLLM
llm = MockLLM(max_tokens=3)
print(llm.chat([ChatMessage(role="user", content="hello there")]).message.content)
print("".join(r.delta for r in llm.stream_complete("streamed prompt")))
""",
        spans=2,
    )
    tree = Tree(app.spans)
    chat, stream = tree.llm()
    assert chat["name"] == "chat MockLLM.chat" and chat["kind"] == "CLIENT" and chat["scope"] == SCOPE
    assert content(chat, "gen_ai.input.messages") == [
        {"role": "user", "parts": [{"type": "text", "content": "hello there"}]}
    ]
    assert content(chat, "gen_ai.output.messages")[0]["role"] == "assistant"
    assert attrs(chat)["output.value"] == app.lines()[0]
    assert stream["name"] == "text_completion MockLLM.stream_complete"
    s = attrs(stream)
    assert s["gen_ai.request.stream"] is True and s["gen_ai.response.time_to_first_token"] > 0
    assert content(stream, "gen_ai.input.messages")[0]["parts"][0]["content"] == "streamed prompt"
    receiver.wait_for(
        lambda _: (
            sum(int(p["count"]) for p in plain_points(receiver, "gen_ai.client.operation.duration")) >= 2
        ),
        timeout=10,
    )
    operations = sorted(
        p["attributes"]["gen_ai.operation.name"]
        for p in plain_points(receiver, "gen_ai.client.operation.duration")
    )
    assert operations == ["chat", "text_completion"]
    chunks = plain_points(receiver, "gen_ai.client.operation.time_to_first_chunk")
    assert [p["attributes"]["gen_ai.operation.name"] for p in chunks] == ["text_completion"]


@needs("llama-index-llms-dashscope")
@needs("llama-index-embeddings-dashscope")
def test_dashscope_classes_are_one_span_each_under_their_steps(llama_dashscope_app):
    app = llama_dashscope_app(
        """
from llama_index.core.llms import ChatMessage
from llama_index.llms.dashscope import DashScope
from llama_index.embeddings.dashscope import DashScopeEmbedding
import os
llm = DashScope(model_name="qwen-plus", api_key=os.environ["DASHSCOPE_API_KEY"])
print(llm.chat([ChatMessage(role="user", content="hi qwen")]).message.content)
embedder = DashScopeEmbedding(model_name="text-embedding-v2", api_key=os.environ["DASHSCOPE_API_KEY"])
print(len(embedder.get_text_embedding_batch(["a", "b"])))
""",
        spans=lambda got: (
            len(_llm(got)) >= 1 and any(s["attributes"].get("gen_ai.span.kind") == "EMBEDDING" for s in got)
        ),
    )
    tree = Tree(app.spans)
    [llm] = tree.llm()
    assert llm["scope"] == DASHSCOPE_SCOPE and llm["name"] == "chat qwen-plus", tree.render()
    step = tree.parent(llm)
    assert step["name"] == "chain DashScope.chat" and kind(step) == "CHAIN" and step["scope"] == SCOPE
    assert attrs(llm)["gen_ai.usage.input_tokens"] > 0
    assert not any(k.startswith("gen_ai.usage.") for k in attrs(step))
    [embedding] = [s for s in tree.spans if kind(s) == "EMBEDDING"]
    assert embedding["scope"] == DASHSCOPE_SCOPE
    outer = tree.parent(embedding)
    assert outer["scope"] == SCOPE and kind(outer) == "CHAIN"
    assert outer["name"] == "chain DashScopeEmbedding.get_text_embedding_batch"
    assert app.lines()[1] == "2"
