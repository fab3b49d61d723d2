"""OTLP trace requests (protobuf or OTLP-JSON) to plain dicts that tests can assert on.

Decoding goes through opentelemetry-proto's generated classes, so a request that is not valid
OTLP fails here instead of being half-read. Each span becomes one dict:

    trace_id, span_id, parent_span_id (hex, parent None for a root), trace_state, flags,
    name, kind ("INTERNAL", "SERVER", ...), start_time, end_time (ns),
    attributes (str/bool/int/float, lists for arrays, dicts for kvlists, bytes),
    events [{name, time, attributes}], links [{trace_id, span_id, trace_state, attributes}],
    status {code: "UNSET"|"OK"|"ERROR", message}, dropped_{attributes,events,links}_count,
    resource (the resource's attributes), scope, scope_version
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

# OTLP-JSON writes these byte fields as hex, where protobuf's JSON mapping expects base64.
_HEX_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def any_value(value: Any) -> Any:
    """An OTLP AnyValue as the Python value it stands for."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def attributes(key_values: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for kv in key_values:
        # A key sent twice is a fault of the sender; keep both visible instead of hiding one.
        if kv.key in result:
            raise ValueError(f"attribute {kv.key!r} appears twice")
        result[kv.key] = any_value(kv.value)
    return result


def _hex(raw: bytes) -> str | None:
    return raw.hex() if raw else None


def span_dict(span: Any, resource: dict[str, Any], scope: Any) -> dict[str, Any]:
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": _hex(span.parent_span_id),
        "trace_state": span.trace_state,
        "flags": span.flags,
        "name": span.name,
        "kind": Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
        "start_time": span.start_time_unix_nano,
        "end_time": span.end_time_unix_nano,
        "attributes": attributes(span.attributes),
        "dropped_attributes_count": span.dropped_attributes_count,
        "events": [
            {"name": e.name, "time": e.time_unix_nano, "attributes": attributes(e.attributes)}
            for e in span.events
        ],
        "dropped_events_count": span.dropped_events_count,
        "links": [
            {
                "trace_id": link.trace_id.hex(),
                "span_id": link.span_id.hex(),
                "trace_state": link.trace_state,
                "attributes": attributes(link.attributes),
            }
            for link in span.links
        ],
        "dropped_links_count": span.dropped_links_count,
        "status": {
            "code": Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
            "message": span.status.message,
        },
        "resource": resource,
        "scope": scope.name,
        "scope_version": scope.version,
    }


def spans_of(request: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(span_dict(span, resource, scope_spans.scope))
    return spans


def _hex_ids_to_base64(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in _HEX_ID_FIELDS and isinstance(value, str):
                out[key] = base64.b64encode(bytes.fromhex(value)).decode()
            else:
                out[key] = _hex_ids_to_base64(value)
        return out
    if isinstance(node, list):
        return [_hex_ids_to_base64(v) for v in node]
    return node


def trace_request_from_json(text: str | bytes) -> ExportTraceServiceRequest:
    """An OTLP-JSON trace request (hex ids, enums as numbers). Unknown fields are an error: they
    would mean llmprobe writes a field name the OTLP JSON mapping does not have."""
    request = ExportTraceServiceRequest()
    json_format.ParseDict(_hex_ids_to_base64(json.loads(text)), request)
    return request


def trace_request_from_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return request


def metrics_request(body: bytes, is_json: bool) -> dict[str, Any]:
    """A metrics request as protobuf's own dict form (metrics are only counted and named here)."""
    request = ExportMetricsServiceRequest()
    if is_json:
        json_format.ParseDict(_hex_ids_to_base64(json.loads(body)), request)
    else:
        request.ParseFromString(body)
    return json_format.MessageToDict(request)


def spans_from_jsonl(text: str) -> list[dict[str, Any]]:
    """Spans of a file of OTLP-JSON trace requests, one request per line."""
    spans = []
    for line in text.splitlines():
        if line.strip():
            spans.extend(spans_of(trace_request_from_json(line)))
    return spans
