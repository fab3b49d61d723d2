"""Promise: whatever a chain is given (a 50 MB string, bytes that are not UTF-8, lone surrogates, a
structure nested ten thousand deep or holding itself, a generator, an object whose __repr__ and
__str__ raise, a dict another thread changes while it is read), the call proceeds exactly as it
would without llmprobe and the span carries a bounded, valid value."""

from __future__ import annotations

import json

from span_query import attrs

HOSTILE = """
import threading
import time

from langchain_core.runnables import RunnableLambda


class Evil:
    def __repr__(self):
        raise RuntimeError("no repr")

    def __str__(self):
        raise RuntimeError("no str")


class Slow:
    # No __dict__: written as its str(), which lets other threads run while the dict holding
    # it is being read.
    __slots__ = ()

    def __str__(self):
        time.sleep(0.001)
        return "slow"


def nested(depth):
    value = "bottom"
    for _ in range(depth):
        value = [value]
    return value


shared = {f"k{i}": Slow() for i in range(20)}


def churn():
    # Grows the dict while the chain's input is read (each Slow value lets it run).
    for i in range(20):
        shared[f"new{i}"] = i
        time.sleep(0.0005)


def generator():
    yield from (1, 2, 3)


looped = {"name": "loop"}
looped["self"] = looped
cases = {
    "huge": "x" * 50_000_000,
    "binary": bytes(range(256)) * 100,
    "not utf-8": b"\\xff\\xfe\\xfd",
    "surrogates": "lone \\ud800 surrogate",
    "nested": nested(10_000),
    "self-reference": looped,
    "generator": generator(),
    "raising repr": Evil(),
    "changing dict": shared,
}


def describe(value):
    if isinstance(value, (str, bytes)):
        return f"{type(value).__name__} of {len(value)}"
    if type(value).__name__ == "generator":
        return f"generator giving {sum(value)}"  # still unconsumed: all three items
    return type(value).__name__


for name, value in cases.items():
    chain = RunnableLambda(describe, name=name.replace(" ", "_"))
    if name == "changing dict":
        threading.Thread(target=churn, daemon=True).start()
    print(name, "->", chain.invoke(value))
"""

EXPECTED = [
    "huge -> str of 50000000",
    "binary -> bytes of 25600",
    "not utf-8 -> bytes of 3",
    "surrogates -> str of 16",
    "nested -> list",
    "self-reference -> dict",
    "generator -> generator giving 6",
    "raising repr -> Evil",
    "changing dict -> dict",
]


def test_hostile_inputs_proceed_and_spans_stay_bounded_and_valid(langchain_app):
    bare = langchain_app(HOSTILE, instrument=False, timeout=300)
    assert bare.lines() == EXPECTED
    app = langchain_app(HOSTILE, spans=len(EXPECTED), timeout=300)
    assert app.result.stdout == bare.result.stdout
    assert "llmprobe: warning" not in app.result.stderr, app.result.stderr
    spans = {s["name"]: s for s in app.llm()}
    limit = 4096
    for name in (
        "huge",
        "binary",
        "not_utf-8",
        "surrogates",
        "nested",
        "self-reference",
        "generator",
        "raising_repr",
        "changing_dict",
    ):
        span = spans[f"chain {name}"]
        value = attrs(span)["input.value"]
        # Valid text (the receiver decoded it as UTF-8) and bounded: the limit per string, and
        # what JSON adds around it.
        assert len(value) <= 2 * limit + 200, (name, len(value))
        if attrs(span).get("input.mime_type") == "application/json":
            json.loads(value)
    assert len(attrs(spans["chain huge"])["input.value"]) <= limit
    assert "<too deep>" in attrs(spans["chain nested"])["input.value"]
    assert "<recursion>" in attrs(spans["chain self-reference"])["input.value"]
    assert "bytes" in attrs(spans["chain binary"])["input.value"]
