"""How an exception is described on a span: the ``exception`` event's attributes."""

from __future__ import annotations

import json

from llmprobe._errors import exception_attributes, message, qualified_name


class Outer:
    class NestedError(Exception):
        pass


class BrokenStr(Exception):
    def __str__(self):
        raise RuntimeError("no text")


def raised(exc):
    """`exc` with the traceback of having been raised."""
    try:
        raise exc
    except (Outer.NestedError, BrokenStr) as caught:
        return caught


def test_builtins_have_no_module():
    assert qualified_name(ValueError) == "ValueError"
    assert qualified_name(KeyboardInterrupt) == "KeyboardInterrupt"


def test_others_are_module_and_qualname():
    assert qualified_name(json.JSONDecodeError) == "json.decoder.JSONDecodeError"
    assert qualified_name(Outer.NestedError) == f"{__name__}.Outer.NestedError"


def test_exception_attributes():
    exc = raised(Outer.NestedError("it broke"))
    attrs = exception_attributes(exc, escaped=True)
    assert attrs["exception.type"] == f"{__name__}.Outer.NestedError"
    assert attrs["exception.message"] == "it broke"
    assert attrs["exception.escaped"] is True
    stack = attrs["exception.stacktrace"]
    assert stack.startswith("Traceback (most recent call last):")
    assert "in raised" in stack
    assert stack.rstrip().endswith("NestedError: it broke")


def test_a_broken_str_does_not_fail_recording():
    exc = raised(BrokenStr())
    assert message(exc) == ""
    assert exception_attributes(exc)["exception.type"] == f"{__name__}.BrokenStr"
