"""Failures as the receiver gets them: a model, a tool, a retriever or a provider that fails
makes its span ERROR (with error.type and the exception event), and the spans of the LlamaIndex
work around it too; the exception reaches the caller as it was raised, and the caller's own
span is current again."""

from __future__ import annotations

import importlib.util

import pytest
from llama_index_support import INDEX, needs
from openai_checks import SCOPE as OPENAI_SCOPE
from openai_checks import assert_failed  # status ERROR, error.type, the exception event
from span_query import Tree, attrs, kind


def test_a_failing_llm_is_an_error_llm_span_and_raised_as_it_was(llama_app):
    app = llama_app(
        """
from typing import Any
from llama_index.core.llms import ChatMessage, CompletionResponse, CustomLLM, LLMMetadata
from llama_index.core.llms.callbacks import llm_completion_callback
from opentelemetry import trace
tracer = trace.get_tracer("app")
class ProviderDown(RuntimeError):
    pass
RAISED = []
class FailingLLM(CustomLLM):
    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="failing-model")
    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        RAISED.append(ProviderDown("llm failed: " + prompt))
        raise RAISED[-1]
    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        raise ValueError("llm failed")
with tracer.start_as_current_span("request") as request:
    for call in (lambda: FailingLLM().complete("one"), lambda: FailingLLM().chat([ChatMessage(role="user", content="two")])):
        try:
            call()
        except Exception as exc:
            print(type(exc).__name__, exc is RAISED[-1], trace.get_current_span() is request)
""",
        spans=lambda got: any(s["name"] == "request" for s in got),
    )
    # The very exception raised, and the caller's span current again.
    assert app.lines() == ["ProviderDown True True"] * 2
    tree = Tree(app.spans)
    request = tree.one("request")
    complete, chat = tree.llm()
    for span in (complete, chat):
        tree.assert_under(span, request)
        assert span["kind"] == "CLIENT" and span["scope"] == "llmprobe.instrumentation.llama_index"
        assert_failed(span, "__main__.ProviderDown", "llm failed: ")
        assert tree.children(span) == [], "one span per model call"
        assert attrs(span)["gen_ai.request.model"] == "failing-model"
    assert complete["name"] == "text_completion failing-model"
    assert attrs(complete)["gen_ai.operation.name"] == "text_completion"
    assert "llm failed: one" in complete["status"]["message"]
    assert chat["name"] == "chat failing-model" and attrs(chat)["gen_ai.operation.name"] == "chat"
    assert "two" in chat["status"]["message"]


@needs("llama-index-core", (0, 11), "a span of LlamaIndex's own for a tool call")
def test_a_failing_tool_is_an_error_tool_span_whatever_llama_index_hands_back(llama_app):
    app = llama_app(
        """
from llama_index.core.tools import FunctionTool
from opentelemetry import trace
def broken(x: str) -> str:
    \"\"\"Always fails.\"\"\"
    raise ValueError("tool failed: " + x)
tool = FunctionTool.from_defaults(broken)
with trace.get_tracer("app").start_as_current_span("request") as request:
    try:
        output = tool.call(x="y")
    except ValueError as exc:
        print("raised", exc)
    else:  # a release that hands the error back instead
        print("returned", output.content, getattr(output, "is_error", None))
    print(trace.get_current_span() is request)
""",
        spans=lambda got: any(s["name"] == "request" for s in got),
    )
    got, own = app.lines()
    assert own == "True"
    assert got == "raised tool failed: y" or got.startswith("returned ") and got.endswith(" True"), got
    tree = Tree(app.spans)
    failed = tree.one("execute_tool broken")
    tree.assert_under(failed, tree.one("request"))
    assert kind(failed) == "TOOL" and attrs(failed)["gen_ai.tool.name"] == "broken"
    assert failed["status"]["code"] == "ERROR", failed["status"]
    assert "tool failed: y" in failed["status"]["message"]
    assert (
        "gen_ai.tool.call.result" not in attrs(failed)
        or "tool failed: y" in attrs(failed)["gen_ai.tool.call.result"]
    )


@needs("llama-index-core", (0, 12), "FunctionAgent")
@needs("llama-index-llms-openai")
def test_a_tool_failing_inside_an_agent_is_an_error_tool_span_and_the_agent_goes_on(llama_app):
    app = llama_app(
        """
import asyncio, os
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai import OpenAI
def get_weather(city: str, unit: str = "celsius") -> str:
    \"\"\"The weather in a city.\"\"\"
    return f"Sunny in {city}, 21 {unit}"
def get_time(timezone: str) -> str:
    \"\"\"The time in a timezone.\"\"\"
    raise ValueError("clock broken")
llm = OpenAI(model="gpt-3.5-turbo", max_retries=0, api_base=os.environ["OPENAI_BASE_URL"])
agent = FunctionAgent(name="weather_agent", tools=[FunctionTool.from_defaults(get_weather), FunctionTool.from_defaults(get_time)], llm=llm)
async def main():
    return await agent.run("What is the weather in Paris, and the time?")
result = asyncio.run(main())
print([c.tool_output.is_error for c in result.tool_calls])
""",
        spans=lambda got: any(s["name"] == "invoke_agent weather_agent" for s in got),
    )
    # LlamaIndex hands the failure to the model as the tool's result.
    assert app.lines()[-1] == "[False, True]"
    tree = Tree(app.spans)
    agent = tree.one("invoke_agent weather_agent")
    assert agent["status"]["code"] == "UNSET", "the agent itself went on"
    assert tree.one("execute_tool get_weather")["status"]["code"] == "UNSET"
    failed = tree.one("execute_tool get_time")
    assert failed["status"]["code"] == "ERROR" and "clock broken" in failed["status"]["message"], failed[
        "status"
    ]
    assert agent["name"] in tree.path(failed)


@needs("llama-index-llms-openai")
def test_a_provider_error_is_one_error_llm_span_under_an_error_step(llama_app):
    app = llama_app(
        """
import os
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai import OpenAI
from opentelemetry import trace
llm = OpenAI(model="gpt-3.5-turbo", max_retries=0, api_base=os.environ["OPENAI_BASE_URL"])
with trace.get_tracer("app").start_as_current_span("request") as request:
    try:
        # The class checks its own model's name against OpenAI's list: the request names the other.
        llm.chat([ChatMessage(role="user", content="hi")], model="error-400")
    except Exception as exc:
        print(type(exc).__name__, exc.status_code)
    print(trace.get_current_span() is request)
""",
        spans=lambda got: any(s["name"] == "request" for s in got),
    )
    assert app.lines() == ["BadRequestError 400", "True"]
    assert len(app.requests) == 1
    tree = Tree(app.spans)
    [llm] = tree.llm()
    assert llm["scope"] == OPENAI_SCOPE, tree.render()
    assert_failed(llm, "openai.BadRequestError", "Invalid value for 'temperature'")
    step = tree.parent(llm)
    assert step["name"] == "chain OpenAI.chat" and kind(step) == "CHAIN", tree.render()
    assert (
        step["status"]["code"] == "ERROR" and "Invalid value for 'temperature'" in step["status"]["message"]
    )
    assert attrs(step)["error.type"] == "openai.BadRequestError"
    assert not any(k.startswith("gen_ai.usage.") for k in attrs(step))
    tree.assert_under(step, tree.one("request"))


def _reports_failed_streams() -> bool:
    try:
        return importlib.util.find_spec("llama_index.core.instrumentation.events.exception") is not None
    except ModuleNotFoundError:
        return False


@needs("llama-index-llms-openai")
@pytest.mark.skipif(
    not _reports_failed_streams(),
    reason="the installed llama-index-core does not report a failing stream (no ExceptionEvent)",
)
def test_a_provider_error_in_a_stream_ends_its_step_as_an_error_and_gives_the_context_back(llama_app):
    # The stream is kept, as an application does that reads it in a loop: the failure, not the
    # generator's collection, must end the step (LlamaIndex reports it with an ExceptionEvent).
    app = llama_app(
        """
import os
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai import OpenAI
from opentelemetry import trace
tracer = trace.get_tracer("app")
llm = OpenAI(model="gpt-3.5-turbo", max_retries=0, api_base=os.environ["OPENAI_BASE_URL"])
with tracer.start_as_current_span("request") as request:
    stream = llm.stream_chat([ChatMessage(role="user", content="hi")], model="error-400")
    try:
        for chunk in stream:
            pass
    except Exception as exc:
        print(type(exc).__name__)
    print(trace.get_current_span() is request)
    with tracer.start_as_current_span("after the error"):
        pass
    del stream
""",
        spans=lambda got: any(s["name"] == "request" for s in got),
    )
    tree = Tree(app.spans)
    request = tree.one("request")
    after = tree.one("after the error")
    [llm] = tree.llm()
    assert_failed(llm, "openai.BadRequestError", "Invalid value for 'temperature'")
    step = tree.parent(llm)
    assert step["name"] == "chain OpenAI.stream_chat", tree.render()
    problems = []
    if app.lines() != ["BadRequestError", "True"]:
        problems.append(f"the caller's span is not current after the failed stream: {app.lines()}")
    if after["parent_span_id"] != request["span_id"]:
        problems.append(f"the caller's next span is under {tree.path(after)[:-1]}, not under request")
    if step["status"]["code"] != "ERROR":
        problems.append(f"the step of the failed stream is {step['status']['code']}, not ERROR")
    if step["end_time"] > after["start_time"]:
        problems.append("the step ended when its generator was collected, not with the failure")
    assert not problems, "\n".join(problems) + "\n" + tree.render()


def test_a_failing_retriever_fails_the_query_and_reaches_the_caller(llama_app):
    app = llama_app(
        INDEX
        + """
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import BaseRetriever
class IndexOffline(LookupError):
    pass
class Broken(BaseRetriever):
    def _retrieve(self, query_bundle):
        raise IndexOffline("index offline")
engine = RetrieverQueryEngine.from_args(Broken())
with tracer.start_as_current_span("request") as request:
    try:
        engine.query("anything?")
    except IndexOffline as exc:
        print("caught", exc, trace.get_current_span() is request)
""",
        spans=lambda got: any(s["name"] == "request" for s in got),
    )
    assert app.lines() == ["caught index offline True"]
    tree = Tree(app.spans)
    request = tree.one("request")
    query = tree.one("chain RetrieverQueryEngine.query")
    retrieval = tree.one("retrieval Broken")
    tree.assert_under(query, request)
    tree.assert_under(retrieval, query)
    assert kind(retrieval) == "RETRIEVER"
    for span in (retrieval, query):
        assert_failed(span, "__main__.IndexOffline", "index offline")
    assert tree.llm() == [], "no model was asked"
    assert [s["name"] for s in tree.children(query)] == ["retrieval Broken"]
