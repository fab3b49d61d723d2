"""Agents and graphs: a LangGraph graph, langchain's create_agent, LangGraph's prebuilt agent and
the classic AgentExecutor are AGENT spans (``invoke_agent {name}``), each graph node and each
step of the loop a span of its own under it, with LangGraph's node name and step, the thread id as
the session and conversation id, and the model calls and tool calls where the agent made them."""

from __future__ import annotations

import pytest
from langchain_support import VERSIONS, Tree, attrs, content, kind, needs

GRAPH = """
import operator
from typing import Annotated, TypedDict
from langgraph.graph import END, START, StateGraph
class State(TypedDict):
    count: int
    seen: Annotated[list, operator.add]
def grow(state):
    return {"count": state["count"] + 1, "seen": ["grow"]}
def double(state):
    return {"count": state["count"] * 2, "seen": ["double"]}
builder = StateGraph(State)
builder.add_node("grow", grow)
builder.add_node("double", double)
builder.add_edge(START, "grow")
builder.add_conditional_edges("grow", lambda s: "double" if s["count"] < 5 else END)
builder.add_edge("double", "grow")
graph = builder.compile()
"""


@needs("langgraph")
@pytest.mark.parametrize("how", ["invoke", "ainvoke"])
def test_state_graph_is_an_agent_with_a_span_per_node_step(langchain_app, how):
    call = (
        'print(graph.invoke({"count": 1, "seen": []}, {"configurable": {"thread_id": "thread-7"}, "metadata": {"user_id": "u-1"}}))'
        if how == "invoke"
        else 'import asyncio\nprint(asyncio.run(graph.ainvoke({"count": 1, "seen": []}, '
        '{"configurable": {"thread_id": "thread-7"}, "metadata": {"user_id": "u-1"}})))'
    )
    app = langchain_app(
        GRAPH + call + "\n", spans=lambda got: any(s["name"].startswith("invoke_agent") for s in got)
    )
    assert app.lines() == ["{'count': 5, 'seen': ['grow', 'double', 'grow']}"]
    tree = Tree(app.spans)
    agent = tree.one("invoke_agent LangGraph")
    a = attrs(agent)
    assert kind(agent) == "AGENT" and a["gen_ai.operation.name"] == "invoke_agent"
    assert a["gen_ai.agent.name"] == "LangGraph"
    assert tree.roots() == [agent]
    # (LangGraph 0.2 also runs its input as a node of its own, "__start__", at step 0.)
    nodes = [c for c in tree.children(agent) if attrs(c).get("langgraph.node", "__start__") != "__start__"]
    assert [(attrs(n)["langgraph.node"], attrs(n)["langgraph.step"]) for n in nodes] == [
        ("grow", 1),
        ("double", 2),
        ("grow", 3),
    ]
    assert [n["name"] for n in nodes] == ["chain grow", "chain double", "chain grow"]
    for span in tree.spans:
        assert attrs(span)["gen_ai.session.id"] == "thread-7", span["name"]
        assert attrs(span)["gen_ai.conversation.id"] == "thread-7"
        assert attrs(span)["gen_ai.user.id"] == "u-1"
    assert content(agent, "output.value")["count"] == 5


TOOL_MODEL = """
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
class ToolModel(GenericFakeChatModel):
    # LangChain's fake chat model, able to be given tools (it answers from its list anyway), in
    # OpenAI's shape, as ChatOpenAI binds them.
    def bind_tools(self, tools, **kwargs):
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools])
@tool
def add(a: int, b: int) -> int:
    \"\"\"Add two numbers.\"\"\"
    return a + b
def script():
    return iter([
        AIMessage(content="", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "call_1", "type": "tool_call"}]),
        AIMessage(content="the sum is 3"),
    ])
"""


def _agent_loop(tree: Tree, agent: dict) -> None:
    """Two model calls and one tool call, in that order, each under the agent."""
    under = [s for s in tree.spans if agent["name"] in tree.path(s)[:-1]]
    llm = [s for s in under if kind(s) == "LLM"]
    tools = [s for s in under if kind(s) == "TOOL"]
    assert len(llm) == 2, tree.render()
    assert [t["name"] for t in tools] == ["execute_tool add"]
    assert llm[0]["end_time"] <= tools[0]["start_time"] <= tools[0]["end_time"] <= llm[1]["start_time"]
    assert attrs(tools[0])["gen_ai.tool.call.id"] == "call_1"
    assert attrs(tools[0])["gen_ai.tool.call.result"] == "3"
    output = content(llm[0], "gen_ai.output.messages")[0]
    assert output["parts"] == [
        {"type": "tool_call", "id": "call_1", "name": "add", "arguments": {"a": 1, "b": 2}}
    ]
    # The bound tools, in the conventions' flat shape.
    for span in llm:
        [definition] = content(span, "gen_ai.tool.definitions")
        assert (definition["type"], definition["name"]) == ("function", "add")
        assert definition["description"] == "Add two numbers."
        assert set(definition["parameters"]["properties"]) == {"a", "b"}


@needs("langchain", 1)
def test_create_agent_loop(langchain_app):
    app = langchain_app(
        TOOL_MODEL
        + """
from langchain.agents import create_agent
agent = create_agent(ToolModel(messages=script()), tools=[add], name="adder")
result = agent.invoke({"messages": [("user", "add 1 and 2")]})
print(result["messages"][-1].content)
""",
        spans=lambda got: any(s["name"].startswith("invoke_agent") for s in got),
    )
    assert app.lines() == ["the sum is 3"]
    tree = Tree(app.spans)
    agent = tree.one("invoke_agent adder")
    assert attrs(agent)["gen_ai.agent.name"] == "adder"
    _agent_loop(tree, agent)
    nodes = [attrs(c).get("langgraph.node") for c in tree.children(agent)]
    assert [n for n in nodes if n != "__start__"] == ["model", "tools", "model"], tree.render()


@needs("langgraph")
def test_prebuilt_react_agent_loop(langchain_app):
    app = langchain_app(
        TOOL_MODEL
        + """
import warnings
warnings.simplefilter("ignore")
from langgraph.prebuilt import create_react_agent
agent = create_react_agent(ToolModel(messages=script()), tools=[add])
result = agent.invoke({"messages": [("user", "add 1 and 2")]})
print(result["messages"][-1].content)
""",
        spans=lambda got: any(s["name"].startswith("invoke_agent") for s in got),
    )
    assert app.lines() == ["the sum is 3"]
    tree = Tree(app.spans)
    agent = tree.one("invoke_agent LangGraph")
    _agent_loop(tree, agent)
    nodes = [attrs(c).get("langgraph.node") for c in tree.children(agent)]
    assert [n for n in nodes if n != "__start__"] == ["agent", "tools", "agent"], tree.render()


def _classic() -> str:
    if VERSIONS.get("langchain-classic"):
        return "langchain_classic"
    return "langchain"


@pytest.mark.skipif(
    not VERSIONS.get("langchain-classic") and not (VERSIONS.get("langchain") or "1").startswith("0."),
    reason="AgentExecutor needs langchain-classic (langchain 1.x) or langchain 0.3",
)
def test_agent_executor_loop(langchain_app):
    app = langchain_app(
        TOOL_MODEL
        + f"""
from {_classic()}.agents import AgentExecutor, create_tool_calling_agent
from langchain_core.prompts import ChatPromptTemplate
prompt = ChatPromptTemplate.from_messages([("system", "you add"), ("human", "{{input}}"), ("placeholder", "{{agent_scratchpad}}")])
# AgentExecutor streams the model, and LangChain's fake streams no tool calls: it answers whole.
model = ToolModel(messages=script(), disable_streaming=True)
executor = AgentExecutor(agent=create_tool_calling_agent(model, [add], prompt), tools=[add])
print(executor.invoke({{"input": "add 1 and 2"}})["output"])
""",
        spans=lambda got: any(s["name"].startswith("invoke_agent") for s in got),
    )
    assert app.lines() == ["the sum is 3"]
    tree = Tree(app.spans)
    agent = tree.one("invoke_agent AgentExecutor")
    assert tree.roots() == [agent]
    _agent_loop(tree, agent)
    assert content(agent, "input.value") == {"input": "add 1 and 2"}
