"""examples/llamaindex_app.py, run as its docstring says (offline, under `instrument`): each request
gives one trace under the FastAPI request span, LlamaIndex's query or agent under it, every model
and embeddings call one span (the openai SDK's) under LlamaIndex's step, and a streamed answer's
model call inside the query that returned the stream."""

from __future__ import annotations

import pytest
from app_runner import free_port
from genai_fixtures import missing_modules
from llama_index_support import HERE, SOURCE_TREE_ENV
from span_query import Tree, attrs, kind

EXAMPLE = HERE.parents[1] / "examples" / "llamaindex_app.py"


MISSING = missing_modules(
    (
        "fastapi",
        "uvicorn",
        "opentelemetry.instrumentation.fastapi",
        "llama_index.llms.openai",
        "llama_index.embeddings.openai",
    )
)
AGENT = not missing_modules(("llama_index.core.agent.workflow",))


@pytest.mark.skipif(
    bool(MISSING),
    reason=f"the example needs {', '.join(MISSING)} (pip install fastapi uvicorn "
    "opentelemetry-instrumentation-fastapi llama-index-llms-openai llama-index-embeddings-openai)",
)
def test_example_app_offline(run, receiver):
    result = run(
        ["python", str(EXAMPLE), "--demo", "--port", str(free_port())],
        receiver=receiver,
        env={"OPENAI_BASE_URL": None, "OPENAI_API_KEY": None, **SOURCE_TREE_ENV},
        timeout=180,
    ).check()
    routes_expected = {"GET /ask", "GET /stream"} | ({"GET /agent"} if AGENT else set())
    assert "/ask?q=What+is+a+span -> " in result.stdout, result.stderr
    assert "/stream?q=What+does+an+LLM+span+record -> Echo: " in result.stdout
    if AGENT:
        assert '"answer":"The tool said: ' in result.stdout
    receiver.wait_for(lambda got: {s["name"] for s in got} >= routes_expected)
    tree = Tree(receiver.settle())
    routes = {r["name"]: r for r in tree.roots() if r["name"].startswith("GET ")}
    assert set(routes) == routes_expected, tree.render()
    for span in tree.llm():
        assert span["scope"] == "llmprobe.instrumentation.openai"
        assert tree.parent(span)["name"].startswith("chain OpenAI."), tree.render()
        assert span["resource"]["service.name"] == "llamaindex_app"
    for name in ("GET /ask", "GET /stream"):
        [query] = [c for c in tree.children(routes[name]) if c["name"] == "chain RetrieverQueryEngine.query"]
        [retrieval] = [c for c in tree.children(query) if kind(c) == "RETRIEVER"]
        assert len(attrs(retrieval)["retrieval.documents"]) > 10
        [llm] = [s for s in tree.llm() if s["trace_id"] == query["trace_id"]]
        assert "chain CompactAndRefine.synthesize" in tree.path(llm)
        assert llm["end_time"] <= query["end_time"]
    if AGENT:
        [agent] = [s for s in tree.spans if kind(s) == "AGENT"]
        tree.assert_under(agent, routes["GET /agent"])
        tools = sorted(s["name"] for s in tree.spans if kind(s) == "TOOL")
        assert tools == ["execute_tool get_time", "execute_tool get_weather"]
