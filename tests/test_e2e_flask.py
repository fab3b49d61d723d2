"""A Flask app served by `instrument gunicorn -w 2` and by `instrument flask run`: the server span
of opentelemetry-instrumentation-flask (activated by llmprobe) continues the caller's trace from
its `traceparent` header and is the parent of the span the handler makes."""

from __future__ import annotations

import json
import secrets
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from app_runner import free_port
from span_query import assert_child_of, named

APP = """
import json
import os
import time

from flask import Flask, request
from opentelemetry import trace

app = Flask(__name__)
tracer = trace.get_tracer("e2e.flask")


@app.route("/work")
def work():
    time.sleep(float(request.args.get("sleep", "0")))
    with tracer.start_as_current_span("handler work") as span:
        span.set_attribute("request.id", request.args["id"])
    return json.dumps({"pid": os.getpid()})
"""


def _call(port: int, request_id: str, sleep: float = 0.0) -> dict:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/work?id={request_id}&sleep={sleep}",
        headers={"traceparent": f"00-{trace_id}-{span_id}-01"},
    )
    with urllib.request.urlopen(request, timeout=20) as resp:
        assert resp.status == 200
        body = json.loads(resp.read())
    return {"id": request_id, "trace_id": trace_id, "span_id": span_id, "pid": body["pid"]}


def _check_request_trees(spans: list[dict], calls: list[dict], service: str) -> None:
    for call in calls:
        [handler] = [
            s for s in named(spans, "handler work") if s["attributes"].get("request.id") == call["id"]
        ]
        servers = [s for s in spans if s["span_id"] == handler["parent_span_id"]]
        assert len(servers) == 1, f"the handler span's parent did not arrive: {handler}"
        server = servers[0]
        assert server["kind"] == "SERVER"
        assert server["scope"] == "opentelemetry.instrumentation.flask"
        assert "/work" in server["name"]
        # The caller's trace goes on: same trace id, the caller's span as parent.
        assert server["trace_id"] == call["trace_id"]
        assert server["parent_span_id"] == call["span_id"]
        assert_child_of(handler, server)
        for span in (server, handler):
            assert span["resource"]["service.name"] == service
            assert span["resource"]["process.pid"] == call["pid"]


def _wait_for_handlers(receiver, calls: list[dict]) -> list[dict]:
    ids = {c["id"] for c in calls}

    def arrived(spans: list[dict]) -> bool:
        seen = {s["attributes"].get("request.id") for s in named(spans, "handler work")}
        return ids <= seen and sum(s["kind"] == "SERVER" for s in spans) >= len(ids)

    return receiver.wait_for(arrived, timeout=15)


def test_gunicorn_two_workers(serve, receiver, write_script):
    write_script("app.py", APP)
    port = free_port()
    server = serve(["gunicorn", "-w", "2", "--bind", f"127.0.0.1:{port}", "app:app"], port, receiver=receiver)
    # Concurrent slow requests, so that both (single-threaded) workers serve some.
    with ThreadPoolExecutor(4) as pool:
        calls = list(pool.map(lambda i: _call(port, f"g{i}", sleep=0.5), range(4)))
    calls.append(_call(port, "last"))
    spans = _wait_for_handlers(receiver, calls)
    _check_request_trees(spans, calls, "gunicorn")
    worker_pids = {c["pid"] for c in calls}
    assert len(worker_pids) == 2, f"expected both workers to serve, got pids {worker_pids}"
    assert server.proc.pid not in worker_pids
    # Each forked worker exports with its own pid in the resource, never its parent's queue.
    assert {s["resource"]["process.pid"] for s in spans} == worker_pids


@pytest.mark.parametrize("service_name", [None, "flask-demo"])
def test_flask_run(serve, receiver, write_script, service_name):
    write_script("app.py", APP)
    port = free_port()
    serve(
        ["flask", "--app", "app", "run", "--host", "127.0.0.1", "--port", str(port)],
        port,
        receiver=receiver,
        env={"OTEL_SERVICE_NAME": service_name},
    )
    calls = [_call(port, "f1"), _call(port, "f2")]
    spans = _wait_for_handlers(receiver, calls)
    _check_request_trees(spans, calls, service_name or "flask")


@pytest.mark.parametrize(
    "variable", ["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "LLMPROBE_DISABLED_INSTRUMENTATIONS"]
)
def test_flask_instrumentation_switched_off_by_name(serve, receiver, write_script, variable):
    write_script("app.py", APP)
    port = free_port()
    serve(
        ["flask", "--app", "app", "run", "--host", "127.0.0.1", "--port", str(port)],
        port,
        receiver=receiver,
        env={variable: "requests,flask"},
    )
    call = _call(port, "off")
    spans = receiver.wait_for(1)
    handler = named(spans, "handler work")[0]
    assert receiver.settle() == [handler], "only the handler's own span: no Flask server span"
    # Without the Flask instrumentation nothing reads the traceparent header: a new trace.
    assert handler["parent_span_id"] is None and handler["trace_id"] != call["trace_id"]
