"""examples/langchain_app.py, run as its docstring says (offline, under `instrument`): each request
gives one trace under the FastAPI request span, every model call one LLM span, and a streamed
answer's chunks written out under the request, not under the chain."""

from __future__ import annotations

import pytest
from app_runner import free_port
from genai_fixtures import missing_modules
from langchain_support import HERE, SOURCE_TREE_ENV, Tree, attrs, kind

EXAMPLE = HERE.parents[1] / "examples" / "langchain_app.py"


MISSING = missing_modules(
    ("fastapi", "uvicorn", "opentelemetry.instrumentation.fastapi", "langchain_openai", "langgraph")
)


@pytest.mark.skipif(
    bool(MISSING),
    reason=f"the example needs {', '.join(MISSING)} (pip install fastapi uvicorn "
    "opentelemetry-instrumentation-fastapi langchain-openai langgraph)",
)
def test_example_app_offline(run, receiver):
    result = run(
        ["python", str(EXAMPLE), "--demo", "--port", str(free_port())],
        receiver=receiver,
        env={"OPENAI_BASE_URL": None, "OPENAI_API_KEY": None, **SOURCE_TREE_ENV},
        timeout=120,
    ).check()
    assert '/ask?q=What+is+a+span -> {"answer":"Echo: What is a span"}' in result.stdout
    assert "/stream?q=Tell+me+a+story -> Echo: Tell me a story" in result.stdout
    assert '"answer":"The tool said: ' in result.stdout
    receiver.wait_for(
        lambda got: len([s for s in got if s["attributes"].get("gen_ai.span.kind") == "LLM"]) >= 4
    )
    tree = Tree(receiver.settle())
    routes = {r["name"]: r for r in tree.roots()}
    assert set(routes) == {"GET /ask", "GET /stream", "GET /agent"}, tree.render()
    llm = tree.llm()
    assert len(llm) == 4  # one per request, two for the agent
    for span in llm:
        assert tree.parent(span)["name"] == "chain ChatOpenAI"
        assert span["scope"] == "llmprobe.instrumentation.openai"
        assert span["resource"]["service.name"] == "langchain_app"
    for name in ("GET /ask", "GET /stream"):
        chains = [c for c in tree.children(routes[name]) if c["name"] == "chain RunnableSequence"]
        assert len(chains) == 1, tree.render([routes[name]])
    # The chunks of the streamed answer are written out by the server, under its request.
    sends = [s for s in tree.spans if s["name"] == "GET /stream http send"]
    assert len(sends) > 2
    for send in sends:
        tree.assert_under(send, routes["GET /stream"])
    [agent] = [s for s in tree.spans if kind(s) == "AGENT"]
    tree.assert_under(agent, routes["GET /agent"])
    tools = sorted(s["name"] for s in tree.spans if kind(s) == "TOOL")
    assert tools == ["execute_tool get_time", "execute_tool get_weather"]
    assert attrs(agent)["gen_ai.session.id"] == "demo-session"
