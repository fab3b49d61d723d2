"""Small lookups over the receiver's span dicts, with messages that show what was there."""

from __future__ import annotations

import json
import re
from typing import Any

Span = dict[str, Any]

_DROP_LINE = re.compile(r"^llmprobe: (\d+) spans? (?:were|was) dropped: (.*)$", re.MULTILINE)


def named(spans: list[Span], name: str) -> list[Span]:
    return [s for s in spans if s["name"] == name]


def one(spans: list[Span], name: str) -> Span:
    found = named(spans, name)
    assert len(found) == 1, (
        f"expected one span {name!r}, found {len(found)} among {sorted(s['name'] for s in spans)}"
    )
    return found[0]


def children(spans: list[Span], parent: Span) -> list[Span]:
    return [
        s for s in spans if s["parent_span_id"] == parent["span_id"] and s["trace_id"] == parent["trace_id"]
    ]


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


def plain_points(receiver, name: str) -> list[dict]:
    """metric_points() with the attributes as plain strings."""
    return [
        dict(p, attributes={k: v["stringValue"] for k, v in p["attributes"].items()})
        for p in metric_points(receiver, name)
    ]


def token_sums(receiver) -> dict[str, float]:
    """gen_ai.client.token.usage summed per token type, over every point."""
    sums: dict[str, float] = {}
    for point in plain_points(receiver, "gen_ai.client.token.usage"):
        kind_ = point["attributes"]["gen_ai.token.type"]
        sums[kind_] = sums.get(kind_, 0) + float(point["sum"])
    return sums


# ---- trees of spans ----------------------------------------------------------------------------


def attrs(span: Span) -> dict[str, Any]:
    return span["attributes"]


def kind(span: Span) -> str | None:
    return span["attributes"].get("gen_ai.span.kind")


def content(span: Span, key: str) -> Any:
    value = attrs(span).get(key)
    assert isinstance(value, str), f"{key} missing on {span['name']}: {value!r}"
    return json.loads(value)


class Tree:
    """The spans of a run as a tree: parents by id, children in start order."""

    def __init__(self, spans: list[Span]) -> None:
        self.spans = sorted(spans, key=lambda s: (s["start_time"], s["end_time"]))
        self.by_id = {s["span_id"]: s for s in self.spans}

    def named(self, name: str) -> list[Span]:
        return [s for s in self.spans if s["name"] == name]

    def one(self, name: str) -> Span:
        found = self.named(name)
        assert len(found) == 1, f"expected one {name!r}, found {len(found)} in\n{self.render()}"
        return found[0]

    def llm(self) -> list[Span]:
        return [s for s in self.spans if kind(s) == "LLM"]

    def parent(self, span: Span) -> Span | None:
        return self.by_id.get(span["parent_span_id"])

    def children(self, span: Span) -> list[Span]:
        return [
            s
            for s in self.spans
            if s["parent_span_id"] == span["span_id"] and s["trace_id"] == span["trace_id"]
        ]

    def roots(self) -> list[Span]:
        return [s for s in self.spans if s["parent_span_id"] not in self.by_id]

    def path(self, span: Span) -> list[str]:
        """The names from the root down to `span`."""
        names = [span["name"]]
        parent = self.parent(span)
        while parent is not None:
            names.append(parent["name"])
            parent = self.parent(parent)
        return names[::-1]

    def shape(self, span: Span) -> tuple:
        """(name, (children's shapes...)), children in start order."""
        return (span["name"], tuple(self.shape(c) for c in self.children(span)))

    def render(self, spans: list[Span] | None = None, depth: int = 0) -> str:
        lines = []
        for span in spans if spans is not None else self.roots():
            lines.append(f"{'  ' * depth}{span['name']} [{kind(span) or span['kind']}]")
            lines.append(self.render(self.children(span), depth + 1))
        return "\n".join(line for line in lines if line)

    def assert_under(self, child: Span, parent: Span) -> None:
        assert child["trace_id"] == parent["trace_id"] and child["parent_span_id"] == parent["span_id"], (
            f"{child['name']} is not under {parent['name']}:\n{self.render()}"
        )
