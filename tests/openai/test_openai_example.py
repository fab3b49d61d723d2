"""examples/openai_app.py, run as its docstring says (offline, under `instrument`): each request
gives a trace with the FastAPI request span as the parent of its LLM spans."""

from __future__ import annotations

import importlib.util

import pytest
from app_runner import free_port
from openai_support import HERE, SOURCE_TREE_ENV

EXAMPLE = HERE.parents[1] / "examples" / "openai_app.py"
MISSING = [
    m
    for m in ("fastapi", "uvicorn", "opentelemetry.instrumentation.fastapi")
    if not importlib.util.find_spec(m)
]


@pytest.mark.skipif(
    bool(MISSING),
    reason=f"the example needs {', '.join(MISSING)} (pip install fastapi uvicorn "
    "opentelemetry-instrumentation-fastapi)",
)
def test_example_app_offline(run, receiver):
    result = run(
        ["python", str(EXAMPLE), "--demo", "--port", str(free_port())],
        receiver=receiver,
        env={"OPENAI_BASE_URL": None, "OPENAI_API_KEY": None, **SOURCE_TREE_ENV},
    ).check()
    assert '/ask?q=What+is+a+span -> {"answer":"Echo: What is a span"' in result.stdout
    assert "/stream?q=Tell+me+a+story -> Echo: Tell me a story" in result.stdout
    spans = receiver.wait_for(lambda got: len([s for s in got if "gen_ai.span.kind" in s["attributes"]]) >= 4)
    by_id = {s["span_id"]: s for s in spans}
    llm = [s for s in spans if "gen_ai.span.kind" in s["attributes"]]
    routes = sorted(by_id[s["parent_span_id"]]["name"] for s in llm)
    assert routes == ["GET /ask", "GET /stream", "GET /weather", "GET /weather"]
    for span in llm:
        server = by_id[span["parent_span_id"]]
        assert server["kind"] == "SERVER" and server["trace_id"] == span["trace_id"]
        assert span["resource"]["service.name"] == "openai_app"
    [streamed] = [s for s in llm if s["attributes"]["gen_ai.request.stream"]]
    assert streamed["attributes"]["output.value"] == "Echo: Tell me a story"
    assert streamed["attributes"]["gen_ai.usage.output_tokens"] == 5
