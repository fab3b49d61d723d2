"""Where the LLM spans go in the trace: under the span that was current when the call was made
(the application's own, a Flask request's), never under another task's or thread's, and the
application's context is the same after the call as before it."""

from __future__ import annotations

import json
import secrets
import urllib.request
from pathlib import Path

from app_runner import free_port
from openai_checks import attrs, content, text_parts
from openai_support import SECRET, SOURCE_TREE_ENV


def _parents(spans: list[dict]) -> dict[str, dict]:
    return {s["span_id"]: s for s in spans}


def _request_text(span: dict) -> str:
    return text_parts(content(span, "gen_ai.input.messages")[-1])


def test_two_hundred_concurrent_async_calls(openai_app):
    app = openai_app(
        """
        import asyncio, openai
        from opentelemetry import trace
        tracer = trace.get_tracer("app")
        async def one(client, i):
            with tracer.start_as_current_span(f"parent {i}") as parent:
                messages = [{"role": "user", "content": f"request {i}"}]
                if i % 4 == 0:
                    stream = await client.chat.completions.create(model="chunks-5", stream=True, messages=messages)
                    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
                else:
                    r = await client.chat.completions.create(model="gpt-conc", messages=messages)
                    text = r.choices[0].message.content
                assert text == f"Echo: request {i}", text
                # The call gave the task its context back: the current span is the parent again.
                assert trace.get_current_span() is parent
                with tracer.start_as_current_span(f"after {i}"):
                    pass
        async def main():
            client = openai.AsyncOpenAI(max_retries=0, timeout=60)
            await asyncio.gather(*(one(client, i) for i in range(200)))
            print("done")
        asyncio.run(main())
    """,
        spans=200,
    )
    assert app.lines()[-1] == "done"
    llm = app.llm()
    assert len(llm) == 200
    by_id = _parents(app.spans)
    for span in llm:
        i = int(_request_text(span).split()[-1])
        parent = by_id[span["parent_span_id"]]
        assert parent["name"] == f"parent {i}"
        assert span["trace_id"] == parent["trace_id"]
        assert attrs(span)["output.value"] == f"Echo: request {i}"
        assert attrs(span)["gen_ai.request.stream"] is (i % 4 == 0)
    afters = [s for s in app.spans if s["name"].startswith("after ")]
    assert len(afters) == 200
    for span in afters:
        assert by_id[span["parent_span_id"]]["name"] == "parent " + span["name"].split()[-1]


def test_threads_keep_their_own_parents(openai_app):
    app = openai_app(
        """
        import openai
        from concurrent.futures import ThreadPoolExecutor
        from opentelemetry import trace
        tracer = trace.get_tracer("app")
        client = openai.OpenAI(max_retries=0)
        def one(i):
            with tracer.start_as_current_span(f"parent {i}"):
                stream = client.chat.completions.create(model="chunks-3", stream=i % 2 == 0,
                                                        messages=[{"role": "user", "content": f"request {i}"}])
                if i % 2 == 0:
                    for _ in stream:
                        pass
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(32)))
    """,
        spans=32,
    )
    by_id = _parents(app.spans)
    for span in app.llm():
        i = _request_text(span).split()[-1]
        assert by_id[span["parent_span_id"]]["name"] == f"parent {i}"


FLASK_APP = """
import sys
sys.path.insert(0, {here!r})
import openai
from flask import Flask, request

app = Flask(__name__)
client = openai.OpenAI(max_retries=0)


@app.route("/ask")
def ask():
    r = client.chat.completions.create(model="gpt-flask", messages=[{{"role": "user", "content": request.args["q"]}}])
    return r.choices[0].message.content
"""


def test_call_inside_a_flask_request(serve, receiver, write_script, fake_openai):
    here = Path(__file__).resolve().parent  # this folder, where fake_openai lives
    write_script("app.py", FLASK_APP.format(here=str(here)))
    port = free_port()
    serve(
        ["flask", "--app", "app", "run", "--host", "127.0.0.1", "--port", str(port)],
        port,
        receiver=receiver,
        env={"OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": SECRET, **SOURCE_TREE_ENV},
    )
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/ask?q=flask+question",
        headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.read().decode() == "Echo: flask question"
    spans = receiver.wait_for(
        lambda got: (
            any(s["name"] == "chat gpt-flask" for s in got) and any(s["kind"] == "SERVER" for s in got)
        ),
        timeout=20,
    )
    [llm] = [s for s in spans if s["name"] == "chat gpt-flask"]
    [server] = [s for s in spans if s["kind"] == "SERVER"]
    assert server["trace_id"] == trace_id and server["parent_span_id"] == caller_span
    assert llm["trace_id"] == trace_id
    assert llm["parent_span_id"] == server["span_id"]
    assert server["start_time"] <= llm["start_time"] <= llm["end_time"] <= server["end_time"]
    assert (
        json.loads(attrs(llm)["gen_ai.output.messages"])[0]["parts"][0]["content"] == "Echo: flask question"
    )
