"""Model runs: one model request is one LLM span, its tokens counted once.

ChatOpenAI reaches the model through the openai SDK, which llmprobe instruments: the openai span
is the LLM span and LangChain's model run its CHAIN parent. A model llmprobe does not reach
otherwise (LangChain's fakes) is the LLM span itself, filled from LangChain's result: messages,
usage, finish reasons, and the GenAI metrics."""

from __future__ import annotations

import pytest
from langchain_support import SCOPE, Tree, attrs, content, kind, needs
from span_query import plain_points as _points
from span_query import token_sums as _token_sums

OPENAI_SCOPE = "llmprobe.instrumentation.openai"


CHAT_OPENAI = """
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.output_parsers import StrOutputParser
from langchain_openai import ChatOpenAI
model = ChatOpenAI(model="gpt-lc", max_retries=0, temperature=0.25)
chain = ChatPromptTemplate.from_messages([("system", "be brief"), ("human", "{q}")]) | model | StrOutputParser()
"""


@needs("langchain-openai")
def test_chat_openai_is_one_llm_span_under_its_chain_run(langchain_app, receiver):
    app = langchain_app(
        CHAT_OPENAI
        + """
print(chain.invoke({"q": "one"}, config={"tags": ["mine"], "metadata": {"session_id": "s-1"}}))
print("".join(chain.stream({"q": "two"})))
""",
        spans=lambda got: (
            len([s for s in got if s["attributes"].get("gen_ai.span.kind") == "LLM"]) >= 2
            and len([s for s in got if s["name"] == "chain RunnableSequence"]) >= 2
        ),
    )
    assert app.lines() == ["Echo: one", "Echo: two"]
    tree = Tree(app.spans)
    llm = tree.llm()
    assert [s["scope"] for s in llm] == [OPENAI_SCOPE, OPENAI_SCOPE], tree.render()
    assert len(app.requests) == 2  # one request each
    for span, stream in zip(llm, (False, True)):
        a = attrs(span)
        assert span["name"] == "chat gpt-lc"
        assert a["gen_ai.request.stream"] is stream
        assert a["gen_ai.request.temperature"] == 0.25
        step = tree.parent(span)
        # LangChain's model run is the step around the call, with LangChain's own data.
        assert step["name"] == "chain ChatOpenAI" and step["scope"] == SCOPE
        assert step["kind"] == "INTERNAL"
        s = attrs(step)
        assert s["gen_ai.span.kind"] == "CHAIN" and s["gen_ai.operation.name"] == "chain"
        assert not any(k.startswith("gen_ai.usage.") for k in s), "tokens belong to the LLM span only"
        assert "gen_ai.request.model" not in s
        assert content(step, "input.value")[-1]["parts"][0]["content"] in ("one", "two")
        assert s["output.value"] in ("Echo: one", "Echo: two")
        assert tree.parent(step)["name"] == "chain RunnableSequence"
    first = attrs(tree.parent(llm[0]))
    assert "mine" in first["langchain.tags"]
    assert first["gen_ai.session.id"] == "s-1"
    # Counted once: the metric's input tokens are the openai spans' own.
    receiver.wait_for(lambda _: _points(receiver, "gen_ai.client.token.usage"), timeout=10)
    spans_input = sum(attrs(s).get("gen_ai.usage.input_tokens", 0) for s in llm)
    assert spans_input > 0
    assert _token_sums(receiver)["input"] == spans_input
    durations = _points(receiver, "gen_ai.client.operation.duration")
    assert sum(int(p["count"]) for p in durations) == 2


@needs("langchain-openai")
def test_chat_openai_async_and_tools(langchain_app):
    app = langchain_app(
        """
import asyncio
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
@tool
def weather(city: str) -> str:
    \"\"\"The weather in a city.\"\"\"
    return f"sunny in {city}"
model = ChatOpenAI(model="gpt-tools", max_retries=0).bind_tools([weather])
async def main():
    answer = await model.ainvoke("weather in Paris?")
    print(len(answer.tool_calls))
asyncio.run(main())
""",
        spans=2,
    )
    assert app.lines() == ["2"]
    tree = Tree(app.spans)
    [llm] = tree.llm()
    assert llm["scope"] == OPENAI_SCOPE
    assert attrs(llm)["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert tree.parent(llm)["name"] == "chain ChatOpenAI"
    [definition] = content(llm, "gen_ai.tool.definitions")
    assert (definition["type"], definition["name"]) == ("function", "weather")
    assert definition["description"] == "The weather in a city."


@needs("langchain-community")
@needs("dashscope")
def test_chat_tongyi_is_one_llm_span_under_its_chain_run(langchain_dashscope_app):
    app = langchain_dashscope_app(
        """
import warnings
warnings.simplefilter("ignore")
from langchain_community.chat_models import ChatTongyi
model = ChatTongyi(model="qwen-plus")
print(model.invoke("hello").content)
print("".join(chunk.content for chunk in model.stream("streamed")))
""",
        spans=2,
    )
    assert len(app.lines()) == 2
    tree = Tree(app.spans)
    llm = tree.llm()
    assert [s["scope"] for s in llm] == ["llmprobe.instrumentation.dashscope"] * 2, tree.render()
    for span in llm:
        assert span["name"] == "chat qwen-plus"
        assert attrs(span)["gen_ai.usage.input_tokens"] > 0
        step = tree.parent(span)
        assert step["name"] == "chain ChatTongyi" and kind(step) == "CHAIN"
        assert not any(k.startswith("gen_ai.usage.") for k in attrs(step))


def test_fake_chat_model_usage_and_metrics(langchain_app, receiver):
    app = langchain_app(
        """
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
def answers():
    while True:
        yield AIMessage(content="counted answer", usage_metadata={
            "input_tokens": 7, "output_tokens": 3, "total_tokens": 10,
            "input_token_details": {"cache_read": 2}, "output_token_details": {"reasoning": 1}},
            response_metadata={"finish_reason": "stop", "model_name": "fake-1"})
model = GenericFakeChatModel(messages=answers())
print(model.invoke("count").content)
print(model.invoke("again").content)
""",
        spans=2,
    )
    assert app.lines() == ["counted answer"] * 2
    llm = Tree(app.spans).llm()
    assert len(llm) == 2
    a = attrs(llm[0])
    assert a["gen_ai.usage.input_tokens"] == 7
    assert a["gen_ai.usage.output_tokens"] == 3
    assert a["gen_ai.usage.total_tokens"] == 10
    assert a["gen_ai.usage.cache_read.input_tokens"] == 2
    assert a["gen_ai.usage.reasoning.output_tokens"] == 1
    assert a["gen_ai.response.model"] == "fake-1"
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert content(llm[0], "gen_ai.output.messages") == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "counted answer"}],
            "finish_reason": "stop",
        }
    ]
    receiver.wait_for(lambda _: _points(receiver, "gen_ai.client.token.usage"), timeout=10)
    assert _token_sums(receiver) == {"input": 14, "output": 6}
    [duration] = _points(receiver, "gen_ai.client.operation.duration")
    assert int(duration["count"]) == 2
    assert duration["attributes"]["gen_ai.operation.name"] == "chat"
    assert duration["attributes"]["gen_ai.response.model"] == "fake-1"


def test_media_blocks_are_the_conventions_parts(langchain_app):
    """Images and files in a LangChain message, in OpenAI's blocks and LangChain's standard ones
    (old and new spellings), are uri / blob / file parts like the provider instrumentations'."""
    app = langchain_app(
        """
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import HumanMessage
model = FakeListChatModel(responses=["seen"])
print(model.invoke([HumanMessage(content=[
    {"type": "text", "text": "what are these?"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo"}},
    {"type": "image", "url": "https://x.test/cat.png"},
    {"type": "image", "source_type": "base64", "data": "/9j/4AAQ", "mime_type": "image/jpeg"},
    {"type": "file", "file_id": "file-doc"},
])]).content)
""",
        spans=1,
    )
    assert app.lines() == ["seen"]
    [llm] = Tree(app.spans).llm()
    [message] = content(llm, "gen_ai.input.messages")
    assert message["parts"] == [
        {"type": "text", "content": "what are these?"},
        {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBORw0KGgo"},
        {"type": "uri", "modality": "image", "uri": "https://x.test/cat.png"},
        {"type": "blob", "modality": "image", "mime_type": "image/jpeg", "content": "/9j/4AAQ"},
        {"type": "file", "modality": "file", "file_id": "file-doc"},
    ]


def test_text_completion_llm_and_its_failure(langchain_app):
    app = langchain_app(
        """
from langchain_core.language_models import FakeListLLM
llm = FakeListLLM(responses=["completed text"])
print(llm.invoke("complete this"))
class Broken(FakeListLLM):
    def _call(self, prompt, stop=None, run_manager=None, **kwargs):
        raise RuntimeError("model down")
try:
    Broken(responses=["x"]).invoke("fail")
except RuntimeError as exc:
    print("caught", exc)
""",
        spans=2,
    )
    assert app.lines() == ["completed text", "caught model down"]
    ok, failed = Tree(app.spans).llm()
    assert ok["name"] == "text_completion FakeListLLM"
    assert attrs(ok)["gen_ai.operation.name"] == "text_completion"
    assert content(ok, "gen_ai.input.messages") == [
        {"role": "user", "parts": [{"type": "text", "content": "complete this"}]}
    ]
    assert attrs(ok)["output.value"] == "completed text"
    assert failed["status"]["code"] == "ERROR" and failed["status"]["message"] == "model down"
    assert attrs(failed)["error.type"] == "RuntimeError"


@pytest.mark.parametrize("capture", ["false"])
def test_no_content_when_capture_is_off(langchain_app, capture):
    app = langchain_app(
        """
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.language_models import FakeListChatModel
chain = ChatPromptTemplate.from_messages([("human", "secret {q}")]) | FakeListChatModel(responses=["secret answer"])
chain.invoke({"q": "plans"})
""",
        spans=3,
        env={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": capture},
    )
    for span in app.spans:
        for key, value in attrs(span).items():
            assert "secret" not in str(value), f"{span['name']} {key} = {value!r}"
    [llm] = Tree(app.spans).llm()
    assert attrs(llm)["llmprobe.input.size"] == len("secret plans")
    assert kind(llm) == "LLM"
