"""Every exporter choice: OTLP over http/protobuf, http/json and gRPC (gzip, headers), the console
tree, OTLP-JSON lines in a file, none, and the default with nothing configured."""

from __future__ import annotations

import re

import pytest
from otlp_decode import spans_from_jsonl
from span_query import assert_child_of, one

APP = """
from opentelemetry import trace

tracer = trace.get_tracer("e2e.exporters")
for n in range(2):
    with tracer.start_as_current_span(f"parent span {n}") as parent:
        parent.set_attribute("n", n)
        with tracer.start_as_current_span(f"child span {n}", attributes={"text": "héllo"}):
            pass
print("app output")
"""


@pytest.fixture
def app(write_script):
    write_script("app.py", APP)
    return ["python", "app.py"]


def _check_trees(spans: list[dict]) -> None:
    assert len(spans) == 4, [s["name"] for s in spans]
    for n in range(2):
        parent, child = one(spans, f"parent span {n}"), one(spans, f"child span {n}")
        assert_child_of(child, parent)
        assert parent["attributes"] == {"n": n} and child["attributes"] == {"text": "héllo"}
    assert one(spans, "parent span 0")["trace_id"] != one(spans, "parent span 1")["trace_id"]


def test_http_protobuf_is_the_default_protocol(run, receiver, app):
    result = run(app, receiver=receiver).check()
    assert result.stdout == "app output\n"
    _check_trees(receiver.wait_for(4))
    for request in receiver.trace_requests():
        assert request["path"] == "/v1/traces"
        assert request["content_type"] == "application/x-protobuf"
        assert request["content_encoding"] == ""


def test_traces_endpoint_is_used_as_given(run, receiver, app):
    run(app, env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.traces_url}).check()
    _check_trees(receiver.wait_for(4))


def test_http_json(run, receiver, app):
    run(app, receiver=receiver, env={"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}).check()
    _check_trees(receiver.wait_for(4))
    assert {r["content_type"] for r in receiver.trace_requests()} == {"application/json"}


def test_gzip_compression(run, receiver, app):
    run(app, receiver=receiver, env={"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}).check()
    _check_trees(receiver.wait_for(4))
    assert {r["content_encoding"] for r in receiver.trace_requests()} == {"gzip"}


def test_headers_arrive(run, receiver, app):
    run(
        app,
        receiver=receiver,
        env={
            "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20secret-token,x-tenant=acme",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-signal=traces",
        },
    ).check()
    _check_trees(receiver.wait_for(4))
    for request in receiver.trace_requests():
        assert request["headers"]["authorization"] == "Bearer secret-token"
        assert request["headers"]["x-tenant"] == "acme"
        assert request["headers"]["x-signal"] == "traces"


def test_grpc(run, grpc_receiver, app):
    result = run(
        app,
        receiver=grpc_receiver,
        env={
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20grpc-token",
        },
    ).check()
    assert result.stdout == "app output\n"
    _check_trees(grpc_receiver.wait_for(4))
    for request in grpc_receiver.trace_requests():
        assert request["headers"]["authorization"] == "Bearer grpc-token"


def test_grpc_with_gzip(run, grpc_receiver, app):
    run(
        app,
        receiver=grpc_receiver,
        env={"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip"},
    ).check()
    _check_trees(grpc_receiver.wait_for(4))


def _tree_lines(stderr: str, name: str) -> tuple[int, int]:
    """(line number, column) of the console line showing span `name`."""
    lines = stderr.splitlines()
    found = [
        (i, line.index(name))
        for i, line in enumerate(lines)
        if re.search(rf"(^|\W){re.escape(name)}(\W|$)", line)
    ]
    assert len(found) == 1, f"span {name!r} shown {len(found)} times on stderr:\n{stderr}"
    return found[0]


def _check_console_tree(stderr: str) -> None:
    for n in range(2):
        parent_line, parent_col = _tree_lines(stderr, f"parent span {n}")
        child_line, child_col = _tree_lines(stderr, f"child span {n}")
        assert child_line > parent_line and child_col > parent_col, (
            f"child not shown under its parent:\n{stderr}"
        )


def test_console_exporter(run, receiver, app):
    result = run(app, receiver=receiver, env={"OTEL_TRACES_EXPORTER": "console"}).check()
    assert result.stdout == "app output\n"  # the tree goes to stderr, never into the app's output
    _check_console_tree(result.stderr)
    assert receiver.settle() == [] and receiver.request_count == 0


def test_file_exporter(run, receiver, app, tmp_path):
    target = tmp_path / "out" / "traces.jsonl"
    target.parent.mkdir()
    result = run(
        app, receiver=receiver, env={"OTEL_TRACES_EXPORTER": "file", "LLMPROBE_TRACES_FILE": str(target)}
    )
    result.check()
    assert result.stdout == "app output\n"
    _check_trees(spans_from_jsonl(target.read_text()))
    assert receiver.settle() == [] and receiver.request_count == 0


def test_file_exporter_default_file(run, app, tmp_path):
    run(app, env={"OTEL_TRACES_EXPORTER": "file"}).check()
    _check_trees(spans_from_jsonl((tmp_path / "llmprobe-traces.jsonl").read_text()))


def test_console_and_file_together(run, app, tmp_path):
    target = tmp_path / "both.jsonl"
    result = run(
        app, env={"OTEL_TRACES_EXPORTER": "console,file", "LLMPROBE_TRACES_FILE": str(target)}
    ).check()
    _check_console_tree(result.stderr)
    _check_trees(spans_from_jsonl(target.read_text()))


def test_none_exporter(run, receiver, app):
    result = run(app, receiver=receiver, env={"OTEL_TRACES_EXPORTER": "none"}).check()
    assert result.stdout == "app output\n"
    assert result.stderr == ""
    assert receiver.settle() == [] and receiver.request_count == 0


def test_default_with_nothing_configured_prints_trees_and_one_hint(run, app):
    result = run(app).check()  # no endpoint, no exporter chosen
    assert result.stdout == "app output\n"
    _check_console_tree(result.stderr)
    hints = [line for line in result.stderr.splitlines() if "OTEL_EXPORTER_OTLP_ENDPOINT" in line]
    assert len(hints) == 1, result.stderr
    assert hints[0].startswith("llmprobe:")
