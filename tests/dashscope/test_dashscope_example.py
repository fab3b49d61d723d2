"""examples/dashscope_app.py, the Flask service of the issue, run under `instrument` against the
fake server: the Flask server span is the parent of the LLM span, and the answer is the model's."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from app_runner import free_port
from dashscope_secret import SECRET
from fake_dashscope import ANSWER
from span_query import assert_child_of

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dashscope_app.py"


def test_flask_example_under_instrument(serve, receiver, fake_dashscope):
    fake_dashscope.clear()
    port = free_port()
    serve(
        ["python", str(EXAMPLE)],
        port,
        receiver=receiver,
        env={
            "PORT": str(port),
            "DASHSCOPE_HTTP_BASE_URL": fake_dashscope.base_url,
            "DASHSCOPE_API_KEY": SECRET,
        },
    )
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/chat",
        data=json.dumps({"q": "Who are you?"}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read()) == {"answer": ANSWER}
    spans = receiver.wait_for(
        lambda got: (
            any(s["name"] == "chat qwen-plus" for s in got) and any(s["kind"] == "SERVER" for s in got)
        )
    )
    llm = next(s for s in spans if s["name"] == "chat qwen-plus")
    server = next(s for s in spans if s["kind"] == "SERVER")
    assert_child_of(llm, server)
    assert llm["attributes"]["output.value"] == ANSWER
    assert SECRET not in json.dumps(spans, default=str)
