"""The OpenTelemetry API bridge: llmprobe's TracerProvider, Tracer and Span over the Rust core."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def tracer(core):
    from llmprobe import _tracer

    return _tracer.TracerProvider().get_tracer("lp.unit")


def remote_context(flags="01", tracestate="vendor=v1"):
    header = TRACEPARENT[:-2] + flags
    return TraceContextTextMapPropagator().extract({"traceparent": header, "tracestate": tracestate})


def test_a_span_is_both_the_rust_span_and_an_api_span(core, tracer):
    span = tracer.start_span("x")
    assert isinstance(span, core.Span)
    assert isinstance(span, trace.Span)
    assert span.is_recording()
    span.end()
    assert span.ended and not span.is_recording()


def test_nesting_through_the_api_context(tracer):
    assert trace.get_current_span() is trace.INVALID_SPAN
    with tracer.start_as_current_span("parent") as parent:
        assert trace.get_current_span() is parent
        with tracer.start_as_current_span("child") as child:
            assert trace.get_current_span() is child
            manual = tracer.start_span("manual")
        assert trace.get_current_span() is parent
    assert trace.get_current_span() is trace.INVALID_SPAN
    assert parent.parent_span_id is None
    assert child.trace_id == parent.trace_id == manual.trace_id
    assert child.parent_span_id == parent.span_id
    assert manual.parent_span_id == child.span_id
    assert parent.ended and child.ended and not manual.ended
    manual.end()


def test_the_context_is_restored_when_the_block_raises(tracer):
    with pytest.raises(KeyError), tracer.start_as_current_span("failing") as span:
        raise KeyError("k")
    assert trace.get_current_span() is trace.INVALID_SPAN
    assert span.ended


def test_explicit_context_and_use_span(tracer):
    outer = tracer.start_span("outer")
    with trace.use_span(outer):
        inner = tracer.start_span("inner")
    detached = tracer.start_span("detached", context=trace.set_span_in_context(outer))
    fresh = tracer.start_span("fresh", context=trace.set_span_in_context(trace.INVALID_SPAN))
    assert inner.parent_span_id == outer.span_id
    assert detached.parent_span_id == outer.span_id
    assert fresh.parent_span_id is None and fresh.trace_id != outer.trace_id
    for span in (outer, inner, detached, fresh):
        span.end()


def test_the_sdk_attributes_instrumentations_read(tracer):
    server = tracer.start_span("s", kind=SpanKind.SERVER)
    internal = tracer.start_span("i")
    assert server.kind is SpanKind.SERVER and internal.kind is SpanKind.INTERNAL
    assert server.context == server.get_span_context()
    assert server.name == "s"
    server.end()
    internal.end()


def test_span_context(tracer):
    span = tracer.start_span("x")
    context = span.get_span_context()
    assert context is span.get_span_context()  # built once
    assert (context.trace_id, context.span_id) == (span.trace_id, span.span_id)
    assert context.is_valid and not context.is_remote
    assert context.trace_flags.sampled
    span.end()


def test_remote_parent_from_a_traceparent_header(tracer):
    with tracer.start_as_current_span("server", context=remote_context(), kind=SpanKind.SERVER) as span:
        carrier = {}
        TraceContextTextMapPropagator().inject(carrier)
    assert span.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert span.parent_span_id == 0xB7AD6B7169203331
    assert span.get_span_context().trace_state.to_header() == "vendor=v1"
    assert carrier == {
        "traceparent": f"00-0af7651916cd43dd8448eb211c80319c-{span.span_id:016x}-01",
        "tracestate": "vendor=v1",
    }


def test_trace_state_is_inherited_by_local_children(tracer):
    with (
        tracer.start_as_current_span("server", context=remote_context()),
        tracer.start_as_current_span("child") as child,
    ):
        pass
    assert child.get_span_context().trace_state.to_header() == "vendor=v1"


def test_an_unsampled_remote_parent_gives_an_unsampled_child(tracer):
    span = tracer.start_span("server", context=remote_context(flags="00"))
    assert not span.sampled and not span.is_recording()
    assert not span.get_span_context().trace_flags.sampled
    assert span.get_span_context().is_valid  # it still propagates
    span.record_exception(ValueError("not recorded"))  # a no-op, and no error
    span.end()


def test_a_non_recording_local_parent(tracer):
    parent = trace.NonRecordingSpan(
        trace.SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=trace.TraceFlags(1))
    )
    with trace.use_span(parent):
        span = tracer.start_span("child")
    assert (span.trace_id, span.parent_span_id) == (0x1234, 0x5678)
    span.end()


def test_decorator_gives_each_call_its_own_span(tracer):
    seen = []

    @tracer.start_as_current_span("work")
    def work(x):
        seen.append(trace.get_current_span())
        return x * 2

    assert work.__name__ == "work"
    assert work(1) == 2 and work(2) == 4
    assert len({span.span_id for span in seen}) == 2
    assert all(span.ended for span in seen)
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_decorator_on_a_coroutine_function_ends_after_the_await(tracer):
    seen = []

    @tracer.start_as_current_span("async-work")
    async def work():
        await asyncio.sleep(0)
        span = trace.get_current_span()
        seen.append((span, span.ended))
        return "done"

    assert asyncio.run(work()) == "done"
    ((span, ended_inside),) = seen
    assert span.name == "async-work" and not ended_inside and span.ended


def test_end_on_exit_false(tracer):
    with tracer.start_as_current_span("kept", end_on_exit=False) as span:
        pass
    assert not span.ended
    span.end()


def test_threads_do_not_adopt_each_others_spans(tracer):
    seen = []
    with tracer.start_as_current_span("main-thread"):
        worker = threading.Thread(target=lambda: seen.append(tracer.start_span("in-thread")))
        worker.start()
        worker.join()
    assert seen[0].parent_span_id is None
    seen[0].end()


def test_failure_is_recorded_through_the_span_methods(tracer, monkeypatch):
    """What leaving a block with an exception asks of the span (the Rust side is checked on the wire)."""
    from llmprobe import _tracer

    calls = []
    monkeypatch.setattr(_tracer.Span, "add_event", lambda self, *a: calls.append(("event", *a)))
    monkeypatch.setattr(_tracer.Span, "set_attribute", lambda self, *a: calls.append(("attr", *a)))
    with pytest.raises(ValueError), tracer.start_as_current_span("failing"):
        raise ValueError("bad value")
    (event, name, attrs, ts), attr = calls
    assert (event, name, ts) == ("event", "exception", None)
    assert attrs["exception.type"] == "ValueError" and attrs["exception.escaped"] is True
    assert attr == ("attr", "error.type", "ValueError")

    calls.clear()
    quiet = tracer.start_as_current_span("quiet", record_exception=False, set_status_on_exception=False)
    with pytest.raises(ValueError), quiet:
        raise ValueError("bad value")
    with pytest.raises(SystemExit), tracer.start_span("exiting"):
        raise SystemExit(0)  # not a failure of the operation
    assert calls == []


WIRE_SCRIPT = """\
import json, sys
import llmprobe
llmprobe.init()
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
import lp_errors

tracer = trace.get_tracer("lp.test.scope", "1.2.3")
with tracer.start_as_current_span(
    "root", kind=SpanKind.SERVER, attributes={"a.str": "x", "a.int": 1, "a.list": [1, 2], "a.none": None}
) as root:
    with tracer.start_as_current_span("client", kind=SpanKind.CLIENT) as client:
        client.set_status(Status(StatusCode.OK))
    try:
        with tracer.start_as_current_span("failing"):
            raise lp_errors.Outer.Failure("it broke")
    except Exception:
        pass
    try:
        with tracer.start_as_current_span("quiet", record_exception=False, set_status_on_exception=False):
            raise ValueError("ignored")
    except ValueError:
        pass
    manual = tracer.start_span("manual", links=[Link(client.get_span_context(), {"link.n": 1})])
    manual.update_name("renamed")
    manual.record_exception(KeyError("k"), attributes={"extra": "yes"})
    manual.set_status(StatusCode.ERROR, "by hand")
    manual.end()
    with trace.use_span(tracer.start_span("used"), end_on_exit=True):
        trace.get_current_span().set_attribute("inside", True)
    try:
        with tracer.start_span("span-with", kind=SpanKind.PRODUCER):
            raise lp_errors.Outer.Failure("from span")
    except Exception:
        pass

remote = TraceContextTextMapPropagator().extract(
    {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "vendor=v1"}
)
with tracer.start_as_current_span("remote-child", context=remote, kind=SpanKind.CONSUMER):
    carrier = {}
    TraceContextTextMapPropagator().inject(carrier)
print(json.dumps(carrier))
"""


def _value(any_value):
    ((kind, value),) = any_value.items()
    if kind == "intValue":
        return int(value)
    if kind == "arrayValue":
        return [_value(v) for v in value.get("values", [])]
    return value


def _attrs(items):
    return {item["key"]: _value(item["value"]) for item in items or []}


@pytest.fixture(scope="module")
def wire(tmp_path_factory, child_env):
    """Run WIRE_SCRIPT under llmprobe with the file exporter; its spans by name, and its output."""
    pytest.importorskip("llmprobe._core", reason="llmprobe._core (the Rust extension) is not built yet")
    folder = tmp_path_factory.mktemp("wire")
    (folder / "lp_errors.py").write_text("class Outer:\n    class Failure(Exception):\n        pass\n")
    (folder / "probe_wire.py").write_text(WIRE_SCRIPT)
    out = folder / "spans.jsonl"
    env = child_env(OTEL_TRACES_EXPORTER="file", LLMPROBE_TRACES_FILE=str(out))
    result = subprocess.run(
        [sys.executable, "probe_wire.py"],
        check=False,
        cwd=str(folder),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    spans, resources = {}, []
    for line in out.read_text().splitlines():
        for resource_spans in json.loads(line)["resourceSpans"]:
            resources.append(_attrs(resource_spans["resource"]["attributes"]))
            for scope_spans in resource_spans["scopeSpans"]:
                for span in scope_spans["spans"]:
                    span["scope"] = scope_spans["scope"]["name"]
                    spans.setdefault(span["name"], []).append(span)
    return spans, resources, json.loads(result.stdout)


def one(wire, name):
    (span,) = wire[0][name]
    return span


OTLP_KIND = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}


def test_wire_resource_and_scope(wire):
    spans, resources, _ = wire
    assert resources and all(r["service.name"] == "probe_wire" for r in resources)
    assert all(r["telemetry.distro.name"] == "llmprobe" for r in resources)
    assert {span["scope"] for named in spans.values() for span in named} == {"lp.test.scope"}


def test_wire_kinds_parents_and_attributes(wire):
    root, client = one(wire, "root"), one(wire, "client")
    assert root["kind"] == OTLP_KIND["SERVER"] and client["kind"] == OTLP_KIND["CLIENT"]
    assert one(wire, "span-with")["kind"] == OTLP_KIND["PRODUCER"]
    assert one(wire, "failing")["kind"] == OTLP_KIND["INTERNAL"]
    assert not root.get("parentSpanId")
    for name in ("client", "failing", "quiet", "renamed", "used", "span-with"):
        span = one(wire, name)
        assert span["traceId"] == root["traceId"] and span["parentSpanId"] == root["spanId"], name
    assert _attrs(root["attributes"]) == {"a.str": "x", "a.int": 1, "a.list": [1, 2]}
    assert _attrs(one(wire, "used")["attributes"]) == {"inside": True}
    assert client["status"]["code"] == 1  # OK


def test_wire_failure_in_a_block(wire):
    for name, text in (("failing", "it broke"), ("span-with", "from span")):
        span = one(wire, name)
        assert span["status"] == {"code": 2, "message": text}
        assert _attrs(span["attributes"])["error.type"] == "lp_errors.Outer.Failure"
        (event,) = span["events"]
        attrs = _attrs(event["attributes"])
        assert event["name"] == "exception"
        assert attrs["exception.type"] == "lp_errors.Outer.Failure"
        assert attrs["exception.message"] == text
        assert attrs["exception.escaped"] is True
        assert attrs["exception.stacktrace"].rstrip().endswith(f"lp_errors.Outer.Failure: {text}")
    quiet = one(wire, "quiet")
    assert quiet["status"]["code"] == 0 and not quiet["events"] and not quiet["attributes"]


def test_wire_manual_span(wire):
    span, client = one(wire, "renamed"), one(wire, "client")
    assert "manual" not in wire[0]
    assert span["status"] == {"code": 2, "message": "by hand"}
    (event,) = span["events"]
    attrs = _attrs(event["attributes"])
    assert attrs["exception.type"] == "KeyError" and attrs["extra"] == "yes"
    assert attrs["exception.escaped"] is False
    (link,) = span["links"]
    assert (link["traceId"], link["spanId"]) == (client["traceId"], client["spanId"])
    assert _attrs(link["attributes"]) == {"link.n": 1}


def test_wire_remote_parent(wire):
    span = one(wire, "remote-child")
    assert span["kind"] == OTLP_KIND["CONSUMER"]
    assert span["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    assert span["parentSpanId"] == "b7ad6b7169203331"
    carrier = wire[2]
    assert carrier["traceparent"] == f"00-0af7651916cd43dd8448eb211c80319c-{span['spanId']}-01"
    assert carrier["tracestate"] == "vendor=v1"


def test_wire_trace_state(wire):
    assert one(wire, "remote-child")["traceState"] == "vendor=v1"
