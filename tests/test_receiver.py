"""The test receiver itself, checked against independent senders (the OpenTelemetry SDK's own
OTLP/HTTP exporter, a raw gRPC stub, plain HTTP), so that what the other tests conclude from it
about llmprobe is not an artefact of the receiver."""

from __future__ import annotations

import gzip
import json
import socket
import time
import urllib.error
import urllib.request

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from span_query import assert_child_of, one


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _request(trace_id: bytes = b"\x01" * 16, name: str = "s") -> trace_service_pb2.ExportTraceServiceRequest:
    span = Span(
        trace_id=trace_id,
        span_id=b"\x02" * 8,
        name=name,
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=1,
        end_time_unix_nano=2,
    )
    span.attributes.append(
        KeyValue(
            key="arr",
            value=AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue(int_value=2)])),
        )
    )
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    )


def test_decodes_what_the_sdk_exporter_sends(receiver):
    provider = TracerProvider(resource=Resource.create({"service.name": "sdk-sender", "n": 3}))
    exporter = OTLPSpanExporter(endpoint=receiver.traces_url, headers={"x-token": "abc"})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("receiver.selftest", "9.9")
    with tracer.start_as_current_span("outer", kind=SpanKind.SERVER) as outer:
        outer.set_attributes({"s": "é", "b": True, "i": 7, "f": 0.25, "li": [1, 2], "ls": ["a", "b"]})
        outer.add_event("ev", {"k": "v"})
        with tracer.start_as_current_span("inner") as inner:
            inner.set_status(Status(StatusCode.ERROR, "bad"))
    provider.shutdown()

    spans = receiver.wait_for(2)
    outer_d, inner_d = one(spans, "outer"), one(spans, "inner")
    assert outer_d["trace_id"] == f"{outer.get_span_context().trace_id:032x}"
    assert outer_d["span_id"] == f"{outer.get_span_context().span_id:016x}"
    assert outer_d["parent_span_id"] is None
    assert_child_of(inner_d, outer_d)
    assert outer_d["kind"] == "SERVER" and inner_d["kind"] == "INTERNAL"
    assert outer_d["attributes"] == {"s": "é", "b": True, "i": 7, "f": 0.25, "li": [1, 2], "ls": ["a", "b"]}
    assert outer_d["events"][0]["name"] == "ev" and outer_d["events"][0]["attributes"] == {"k": "v"}
    assert inner_d["status"] == {"code": "ERROR", "message": "bad"}
    assert outer_d["resource"]["service.name"] == "sdk-sender" and outer_d["resource"]["n"] == 3
    assert (outer_d["scope"], outer_d["scope_version"]) == ("receiver.selftest", "9.9")
    assert all(r["headers"]["x-token"] == "abc" for r in receiver.requests)


def test_gzip_and_json_bodies(receiver):
    body = _request(name="gz").SerializeToString()
    assert (
        _post(
            receiver.traces_url,
            gzip.compress(body),
            {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
        )
        == 200
    )
    otlp_json = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "j"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "sc"},
                        "spans": [
                            {
                                "traceId": "0af7651916cd43dd8448eb211c80319c",
                                "spanId": "b7ad6b7169203331",
                                "parentSpanId": "00f067aa0ba902b7",
                                "name": "js",
                                "kind": 2,
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                                "attributes": [{"key": "n", "value": {"intValue": "5"}}],
                                "status": {"code": 2, "message": "m"},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    assert (
        _post(receiver.traces_url, json.dumps(otlp_json).encode(), {"Content-Type": "application/json"})
        == 200
    )
    spans = receiver.wait_for(2)
    assert one(spans, "gz")["attributes"] == {"arr": [1, 2]}
    js = one(spans, "js")
    assert (js["trace_id"], js["span_id"], js["parent_span_id"]) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        "00f067aa0ba902b7",
    )
    assert js["kind"] == "SERVER" and js["attributes"] == {"n": 5} and js["status"]["code"] == "ERROR"
    assert js["resource"] == {"service.name": "j"} and js["scope"] == "sc"
    assert [r["content_encoding"] for r in receiver.requests] == ["gzip", ""]


def test_metrics_requests(receiver):
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, ResourceMetrics, ScopeMetrics

    request = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                scope_metrics=[
                    ScopeMetrics(metrics=[Metric(name="gen_ai.client.operation.duration", unit="s")])
                ]
            )
        ]
    )
    assert (
        _post(
            f"{receiver.endpoint}/v1/metrics",
            request.SerializeToString(),
            {"Content-Type": "application/x-protobuf"},
        )
        == 200
    )
    [metrics] = receiver.metrics
    assert (
        metrics["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["name"]
        == "gen_ai.client.operation.duration"
    )
    assert receiver.spans == [] and receiver.requests[0]["signal"] == "metrics"


def test_rejects_what_is_not_otlp(receiver):
    assert (
        _post(receiver.traces_url, b"\xff\xff not protobuf", {"Content-Type": "application/x-protobuf"})
        == 400
    )
    assert len(receiver.errors) == 1
    receiver.clear()  # the error was expected here; the fixture checks that none is left


def test_fail_next_then_accepts(receiver):
    receiver.fail_next(2, status=503, retry_after=1)
    body = _request().SerializeToString()
    headers = {"Content-Type": "application/x-protobuf"}
    assert [_post(receiver.traces_url, body, headers) for _ in range(3)] == [503, 503, 200]
    assert len(receiver.wait_for(1)) == 1
    assert [r["status"] for r in receiver.requests] == [503, 503, 200]


def test_hang_never_answers_and_stop_closes_the_port(receiver):
    receiver.hang()
    request = urllib.request.Request(
        receiver.traces_url,
        data=_request().SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        method="POST",
    )
    started = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        urllib.request.urlopen(request, timeout=0.5)
    assert time.monotonic() - started >= 0.45
    assert receiver.request_count == 1 and receiver.spans == []
    port = receiver.port
    receiver.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    receiver.unhang()
    receiver.start()
    assert receiver.port == port
    assert (
        _post(receiver.traces_url, _request().SerializeToString(), {"Content-Type": "application/x-protobuf"})
        == 200
    )


def test_grpc_receiver(grpc_receiver):
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_receiver.port}")
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    grpc_receiver.fail_next(1, 503)
    with pytest.raises(grpc.RpcError) as failed:
        stub.Export(_request(), metadata=[("authorization", "Bearer t")], timeout=5)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    stub.Export(_request(name="g"), metadata=[("authorization", "Bearer t")], timeout=5)
    spans = grpc_receiver.wait_for(1)
    assert one(spans, "g")["trace_id"] == "01" * 16
    assert all(r["headers"]["authorization"] == "Bearer t" for r in grpc_receiver.requests)
    channel.close()
