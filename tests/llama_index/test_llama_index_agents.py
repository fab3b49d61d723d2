"""Agents, tools and workflows: an agent run is an AGENT span, each of its steps a CHAIN under
it, each model call one LLM span and each tool call a TOOL span with the call's id, arguments and
result; a workflow run is a CHAIN with a span per step, under the caller's span, and its steps
keep their true parents although the workflow runs them in tasks of its own."""

from __future__ import annotations

from llama_index_support import INDEX, needs
from span_query import Tree, attrs, content, kind

TOOLS = """
import os
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai import OpenAI
def get_weather(city: str, unit: str = "celsius") -> str:
    \"\"\"The weather in a city.\"\"\"
    return f"Sunny in {city}, 21 {unit}"
def get_time(timezone: str) -> str:
    \"\"\"The time in a timezone.\"\"\"
    if timezone == "Nowhere/Never":
        raise ValueError("no such timezone")
    return f"12:00 in {timezone}"
tools = [FunctionTool.from_defaults(get_weather), FunctionTool.from_defaults(get_time)]
llm = OpenAI(model="gpt-3.5-turbo", max_retries=0, api_base=os.environ["OPENAI_BASE_URL"])
"""


@needs("llama-index-core", (0, 12), "FunctionAgent")
@needs("llama-index-llms-openai")
def test_function_agent_calls_tools_under_its_agent_span(llama_app):
    app = llama_app(
        TOOLS
        + """
import asyncio
from llama_index.core.agent.workflow import FunctionAgent
from opentelemetry import trace
agent = FunctionAgent(name="weather_agent", description="Knows the weather.", tools=tools, llm=llm)
async def main():
    with trace.get_tracer("app").start_as_current_span("request"):
        return await agent.run("What is the weather in Paris, and the time?")
print(asyncio.run(main()))
""",
        spans=lambda got: (
            any(s["name"] == "request" for s in got)
            and sum(s["attributes"].get("gen_ai.span.kind") == "TOOL" for s in got) >= 2
        ),
    )
    tree = Tree(app.spans)
    request = tree.one("request")
    agent = tree.one("invoke_agent weather_agent")
    tree.assert_under(agent, request)
    a = attrs(agent)
    assert a["gen_ai.span.kind"] == "AGENT" and a["gen_ai.operation.name"] == "invoke_agent"
    assert a["gen_ai.agent.name"] == "weather_agent" and a["gen_ai.agent.description"] == "Knows the weather."
    assert a["input.value"] == "What is the weather in Paris, and the time?"
    assert a["output.value"] == app.lines()[0]
    # Every span of the run is in the agent's trace, under it.
    inside = [s for s in tree.spans if s["trace_id"] == agent["trace_id"] and s not in (request, agent)]
    assert inside and all(agent["name"] in tree.path(s) for s in inside), tree.render()
    # Two model calls (tool calls, then the answer), each one LLM span: the openai SDK's.
    llm = tree.llm()
    assert len(llm) == 2 and {s["scope"] for s in llm} == {"llmprobe.instrumentation.openai"}, tree.render()
    weather = tree.one("execute_tool get_weather")
    clock = tree.one("execute_tool get_time")
    w = attrs(weather)
    assert w["gen_ai.tool.name"] == "get_weather" and w["gen_ai.tool.description"].endswith(
        "The weather in a city."
    )
    assert w["gen_ai.tool.call.id"] == "call_weather_1"
    assert content(weather, "gen_ai.tool.call.arguments") == {"city": "Paris", "unit": "celsius"}
    assert w["gen_ai.tool.call.result"] == "Sunny in Paris, 21 celsius"
    assert attrs(clock)["gen_ai.tool.call.id"] == "call_time_2"
    # The tools run in the agent's call_tool steps, under the agent.
    for tool in (weather, clock):
        step = tree.parent(tool)
        assert step["name"] == "chain call_tool" and kind(step) == "CHAIN"
        assert attrs(step)["llama_index.workflow.step"] == "call_tool"
        tree.assert_under(step, agent)


@needs("llama-index-core", (0, 11), "llama_index.core.workflow")
def test_workflow_run_is_a_chain_with_a_span_per_step(llama_app):
    app = llama_app(
        """
import asyncio
from llama_index.core.workflow import Event, StartEvent, StopEvent, Workflow, step
from llama_index.core.llms import MockLLM
from opentelemetry import trace
class Drafted(Event):
    draft: str
class Review(Workflow):
    @step
    async def draft(self, ev: StartEvent) -> Drafted:
        answer = await MockLLM(max_tokens=3).acomplete(ev.topic)
        return Drafted(draft=answer.text)
    @step
    async def polish(self, ev: Drafted) -> StopEvent:
        with trace.get_tracer("app").start_as_current_span("inside polish"):
            return StopEvent(result=ev.draft.upper())
async def main():
    with trace.get_tracer("app").start_as_current_span("request"):
        return await asyncio.gather(Review(timeout=10).run(topic="one"), Review(timeout=10).run(topic="two"))
for result in asyncio.run(main()):
    print(result)
""",
        spans=lambda got: (
            any(s["name"] == "request" for s in got) and sum(s["name"] == "workflow Review" for s in got) == 2
        ),
    )
    tree = Tree(app.spans)
    request = tree.one("request")
    runs = tree.named("workflow Review")
    for run in runs:
        tree.assert_under(run, request)
        a = attrs(run)
        assert a["gen_ai.span.kind"] == "CHAIN" and a["gen_ai.operation.name"] == "invoke_workflow"
        steps = tree.children(run)
        assert [s["name"] for s in steps] == ["chain draft", "chain polish"], tree.render()
        draft, polish = steps
        [llm] = tree.children(draft)
        assert kind(llm) == "LLM" and llm["name"] == "text_completion MockLLM.acomplete"
        [mine] = tree.children(polish)
        assert mine["name"] == "inside polish"
    # Each run's model call is its own: the two concurrent runs never adopt each other's steps.
    topics = sorted(
        content(tree.children(tree.children(run)[0])[0], "gen_ai.input.messages")[0]["parts"][0]["content"]
        for run in runs
    )
    assert topics == ["one", "two"]
    assert sorted(attrs(run)["output.value"] for run in runs) == sorted(app.lines())


@needs("llama-index-core", (0, 12), "AgentWorkflow")
@needs("llama-index-llms-openai")
def test_agent_workflow_is_one_agent_span_with_its_agents_steps(llama_app):
    app = llama_app(
        TOOLS
        + """
import asyncio
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
agent = FunctionAgent(name="weather_agent", description="Knows the weather.", tools=tools, llm=llm)
workflow = AgentWorkflow(agents=[agent], root_agent="weather_agent")
async def main():
    return await workflow.run(user_msg="Weather and time in Paris?")
print(asyncio.run(main()))
""",
        spans=lambda got: (
            sum(s["attributes"].get("gen_ai.span.kind") == "TOOL" for s in got) >= 2
            and any(s["name"] == "invoke_agent AgentWorkflow" for s in got)
        ),
    )
    tree = Tree(app.spans)
    [agent] = [s for s in tree.spans if kind(s) == "AGENT"]
    assert agent["name"] == "invoke_agent AgentWorkflow" and tree.roots() == [agent], tree.render()
    assert attrs(agent)["input.value"] == "Weather and time in Paris?"
    assert attrs(agent)["output.value"] == app.lines()[0]
    assert len(tree.llm()) == 2
    for span in [*tree.llm(), tree.one("execute_tool get_weather"), tree.one("execute_tool get_time")]:
        assert "invoke_agent AgentWorkflow" in tree.path(span)


@needs("llama-index-core", (0, 11), "a span of LlamaIndex's own for a tool call")
def test_query_engine_tool_is_a_tool_span_around_its_query(llama_app):
    app = llama_app(
        INDEX
        + """
from llama_index.core.tools import QueryEngineTool
tool = QueryEngineTool.from_defaults(index.as_query_engine(), name="capitals", description="Knows capitals.")
print(tool.call("What is the capital of France?").content)
""",
        spans=lambda got: any(s["name"] == "execute_tool capitals" for s in got),
    )
    tree = Tree(app.spans)
    tool = tree.one("execute_tool capitals")
    a = attrs(tool)
    assert a["gen_ai.tool.name"] == "capitals" and a["gen_ai.tool.description"] == "Knows capitals."
    assert "What is the capital of France?" in a["gen_ai.tool.call.arguments"]
    assert a["gen_ai.tool.call.result"].strip() == app.lines()[0].strip()
    [query] = tree.children(tool)
    assert query["name"] == "chain RetrieverQueryEngine.query"
    assert any(kind(s) == "LLM" for s in tree.spans if "execute_tool capitals" in tree.path(s))
