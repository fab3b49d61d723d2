"""Small lookups over the receiver's span dicts, with messages that show what was there."""

from __future__ import annotations

import re
from typing import Any

Span = dict[str, Any]

_DROP_LINE = re.compile(r"^llmprobe: (\d+) spans? (?:were|was) dropped: (.*)$", re.MULTILINE)


def named(spans: list[Span], name: str) -> list[Span]:
    return [s for s in spans if s["name"] == name]


def one(spans: list[Span], name: str) -> Span:
    found = named(spans, name)
    assert len(found) == 1, f"expected one span {name!r}, found {len(found)} among {sorted(s['name'] for s in spans)}"
    return found[0]


def children(spans: list[Span], parent: Span) -> list[Span]:
    return [s for s in spans if s["parent_span_id"] == parent["span_id"] and s["trace_id"] == parent["trace_id"]]


def assert_child_of(child: Span, parent: Span) -> None:
    assert child["trace_id"] == parent["trace_id"], f"{child['name']} is not in {parent['name']}'s trace"
    assert child["parent_span_id"] == parent["span_id"], f"{child['name']}'s parent is not {parent['name']}"
    assert parent["start_time"] <= child["start_time"] <= child["end_time"] <= parent["end_time"], (
        f"{child['name']} does not lie within {parent['name']} in time"
    )


def drop_lines(stderr: str) -> list[tuple[int, str]]:
    """The exit lines saying how many spans were dropped, as (count, reasons)."""
    return [(int(m.group(1)), m.group(2)) for m in _DROP_LINE.finditer(stderr)]


def metric_points(receiver: Any, name: str) -> list[dict]:
    """The data points of histogram `name` in the last metrics export that had it (cumulative:
    the last is the total), each with its attributes as {key: OTLP value} and the unit."""
    found: list[dict] = []
    for request in receiver.metrics:
        for resource in request.get("resourceMetrics", []):
            for scope in resource.get("scopeMetrics", []):
                for metric in scope.get("metrics", []):
                    if metric["name"] == name:
                        found = [
                            dict(
                                p,
                                attributes={a["key"]: a["value"] for a in p.get("attributes", [])},
                                unit=metric.get("unit"),
                            )
                            for p in metric["histogram"]["dataPoints"]
                        ]
    return found
