"""Cutting values: in characters, never inside a UTF-8 code point; JSON stays valid with each string
cut; and a 10 MB prompt costs about what its first few KB cost."""

from __future__ import annotations

import dataclasses
import json

import pytest
from span_query import one


def test_attribute_value_length_limit(run, receiver, write_script):
    write_script(
        "limits.py",
        """
        from opentelemetry import trace

        with trace.get_tracer("t").start_as_current_span("limited") as span:
            span.set_attributes({
                "ascii": "abcdefgh", "accents": "héllo wörld", "emoji": "abcd😀efg", "cjk": "中文字符测试",
                "exact": "ééééé", "short": "ab", "list": ["abcdefg", "üüüüüüü", "x"],
                "int": 123456789, "float": 1.25, "bool": True,
            })
    """,
    )
    run(
        ["python", "limits.py"], receiver=receiver, env={"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "5"}
    ).check()
    span = one(receiver.wait_for(1), "limited")
    assert span["attributes"] == {
        "ascii": "abcde",
        "accents": "héllo",
        "emoji": "abcd😀",
        "cjk": "中文字符测",
        "exact": "ééééé",
        "short": "ab",
        "list": ["abcde", "üüüüü", "x"],
        "int": 123456789,
        "float": 1.25,
        "bool": True,
    }


def test_content_is_cut_per_string_and_stays_json(run, receiver, write_script):
    write_script(
        "content.py",
        """
        from opentelemetry import trace

        with trace.get_tracer("t").start_as_current_span("content") as span:
            span.set_content("gen_ai.input.messages", [
                {"role": "user", "parts": [{"type": "text", "content": "ü" * 100}]},
                {"role": "ai", "parts": [{"type": "text", "content": 'say "hi"\\\\ now'}]},
            ])
            span.set_content("input.value", "中" * 50)
            span.set_content("output.value", "short")
            span.set_attribute("plain", "x" * 100)  # not content: the content limit does not apply
    """,
    )
    run(
        ["python", "content.py"],
        receiver=receiver,
        env={"OTEL_INSTRUMENTATION_GENAI_MESSAGE_CONTENT_MAX_LENGTH": "8"},
    ).check()
    attributes = one(receiver.wait_for(1), "content")["attributes"]
    assert json.loads(attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "ü" * 8}]},
        {"role": "ai", "parts": [{"type": "text", "content": 'say "hi"'}]},
    ]
    assert attributes["input.value"] == "中" * 8
    assert attributes["output.value"] == "short"
    assert attributes["plain"] == "x" * 100


@pytest.fixture
def core():
    from llmprobe import _core

    return _core


def test_truncate_counts_characters(core):
    assert core.truncate("héllo", 2) == "hé"
    assert core.truncate("😀😀😀", 1) == "😀"
    assert core.truncate("中文", 5) == "中文"
    assert core.truncate("", 3) == ""


@dataclasses.dataclass
class Message:
    role: str
    content: str


class Plain:
    def __init__(self) -> None:
        self.name = "abcdefghij"
        self.size = 3


def test_to_json_cuts_every_string_and_stays_valid(core):
    # Keys no longer than the limit here: test_to_json_keeps_keys_whole is about keys.
    value = {
        "s": "abcdef",
        "l": ["ü" * 10, "😀" * 5, "ok"],
        "t": ("中文字符", 1),
        "n": 1,
        "f": 1.5,
        "b": True,
        "non": None,
        "esc": 'a"b\\c\nd',
        "nst": {"dep": [{"x": "y" * 50}]},
    }
    assert json.loads(core.to_json(value, max_length=3)) == {
        "s": "abc",
        "l": ["üüü", "😀😀😀", "ok"],
        "t": ["中文字", 1],
        "n": 1,
        "f": 1.5,
        "b": True,
        "non": None,
        "esc": 'a"b',
        "nst": {"dep": [{"x": "yyy"}]},
    }
    # A cut right after an escaped character keeps the escape whole.
    assert json.loads(core.to_json(['a\\"b', "\u00e9\n\t"], max_length=2)) == ["a\\", "\u00e9\n"]


def test_to_json_keeps_keys_whole(core):
    """Keys are the message's structure (role, parts, content, finish_reason), not its content:
    cutting them would turn valid messages into unreadable ones."""
    messages = [
        {"role": "assistant", "finish_reason": "stop", "parts": [{"type": "text", "content": "x" * 20}]}
    ]
    assert json.loads(core.to_json(messages, max_length=4)) == [
        {"role": "assi", "finish_reason": "stop", "parts": [{"type": "text", "content": "xxxx"}]}
    ]
    assert json.loads(core.to_json(Message("user", "abcdef"), max_length=4)) == {
        "role": "user",
        "content": "abcd",
    }


def test_to_json_of_objects(core):
    from pydantic import BaseModel

    class Model(BaseModel):
        role: str
        content: str

    # Field names no longer than the limit here: test_to_json_keeps_keys_whole is about keys.
    assert json.loads(core.to_json([Message("user", "abcdefghij")], max_length=7)) == [
        {"role": "user", "content": "abcdefg"}
    ]
    assert json.loads(core.to_json(Model(role="user", content="abcdefghij"), max_length=7)) == {
        "role": "user",
        "content": "abcdefg",
    }
    assert json.loads(core.to_json(Plain(), max_length=7)) == {"name": "abcdefg", "size": 3}
    opaque = type("Opaque", (), {"__slots__": (), "__str__": lambda self: "opaque thing"})()
    assert json.loads(core.to_json({"o": opaque}, max_length=6)) == {"o": "opaque"}  # str(), cut
    loop: list = ["x"]
    loop.append(loop)
    decoded = json.loads(core.to_json(loop, max_length=10))
    assert decoded[0] == "x" and "<recursion>" in json.dumps(decoded)


TIMING = """
import json
import time

from opentelemetry import trace

tracer = trace.get_tracer("timing")


def best(make, reps):
    times = []
    for i in range(reps):
        value = make(i)  # a fresh object each time: no cached UTF-8 form to lean on
        span = tracer.start_span("s")
        started = time.perf_counter()
        span.set_content("input.value", value)
        times.append(time.perf_counter() - started)
        span.end()
    return min(times)


def text(char, size):
    return lambda i: char * size + str(i)


def messages(char, size):
    return lambda i: [{"role": "user", "parts": [{"type": "text", "content": char * size + str(i)}]}]


BIG, SMALL = 10 * 1024 * 1024, 10 * 1024
out = {}
for label, maker in (("ascii text", text), ("non-ascii text", lambda c, n: text("中", n)),
                     ("ascii messages", messages), ("non-ascii messages", lambda c, n: messages("中", n))):
    big = best(maker("a", BIG), 5)
    small = best(maker("a", SMALL), 50)
    out[label] = [big, small]
print(json.dumps(out))
"""


def test_a_10_mb_prompt_costs_about_what_10_kb_cost(run, write_script):
    """Loose on purpose (20x, best of several, 10 KB counted as at least 1 us): reading 10 MB
    instead of its first 4096 characters would cost about 1000x."""
    write_script("timing.py", TIMING)
    result = run(["python", "timing.py"], env={"OTEL_TRACES_EXPORTER": "none"}).check()
    timings = json.loads(result.last_line())
    slow = {
        label: f"{big * 1e6:.0f} us vs {small * 1e6:.1f} us"
        for label, (big, small) in timings.items()
        if big > 20 * max(small, 1e-6)
    }
    assert not slow, f"set_content of 10 MB vs 10 KB: {slow}"
