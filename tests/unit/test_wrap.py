"""The shared wrapping helpers: a failing hook never changes what the user's call does."""

from __future__ import annotations

import asyncio
import types

import pytest
from llmprobe.instrumentation import _wrap


def make_module():
    """A fresh module with a function and a class to wrap, counting real calls."""
    module = types.ModuleType("lp_wrap_target")
    module.calls = 0

    def add(a, b):
        module.calls += 1
        return a + b

    def fail(message):
        module.calls += 1
        raise ValueError(message)

    async def add_async(a, b):
        module.calls += 1
        return a + b

    class Base:
        def inherited(self):
            return "base"

    class Client(Base):
        def method(self, x):
            module.calls += 1
            return x * 2

        @staticmethod
        def static(x):
            return x + 1

        @classmethod
        def klass(cls, x):
            return (cls.__name__, x)

    module.add, module.fail, module.add_async = add, fail, add_async
    module.Base, module.Client = Base, Client
    return module


def broken(*args):
    raise RuntimeError("hook bug")


@pytest.fixture
def mod():
    module = make_module()
    yield module
    _wrap.unwrap_all("test")


def test_failing_before_hook(mod, capsys):
    _wrap.wrap(mod, "add", _wrap.hooks("test add", broken, after=lambda s, r: None), owner="test")
    assert mod.add(2, 3) == 5
    assert mod.add(1, 1) == 2
    assert mod.calls == 2
    err = capsys.readouterr().err
    assert err.count("llmprobe: warning: test add failed (RuntimeError: hook bug)") == 1


def test_failing_after_hook(mod):
    _wrap.wrap(mod, "add", _wrap.hooks("test add", lambda i, a, k: "state", after=broken), owner="test")
    assert mod.add(2, 3) == 5
    assert mod.calls == 1


def test_failing_error_hook_reraises_the_original_exception(mod):
    seen = []

    def error(state, exc):
        seen.append((state, exc))
        raise RuntimeError("hook bug")

    _wrap.wrap(mod, "fail", _wrap.hooks("test fail", lambda i, a, k: "state", error=error), owner="test")
    with pytest.raises(ValueError, match="boom") as caught:
        mod.fail("boom")
    assert mod.calls == 1
    assert seen == [("state", caught.value)]  # the very exception object the function raised
    assert caught.value.__cause__ is None


def test_hooks_see_arguments_state_and_result(mod):
    seen = []
    hooks = _wrap.hooks(
        "test method",
        lambda instance, args, kwargs: (type(instance).__name__, args, kwargs),
        after=lambda state, result: seen.append((state, result)),
    )
    _wrap.wrap(mod, "Client.method", hooks, owner="test")
    assert mod.Client().method(x=4) == 8
    assert seen == [(("Client", (), {"x": 4}), 8)]


def test_async_hooks(mod):
    _wrap.wrap(mod, "add_async", _wrap.async_hooks("test async", broken, after=broken), owner="test")
    assert asyncio.run(mod.add_async(1, 2)) == 3
    assert mod.calls == 1

    seen = []
    _wrap.unwrap(mod, "add_async")
    _wrap.wrap(
        mod,
        "add_async",
        _wrap.async_hooks("test async", lambda i, a, k: None, after=lambda s, r: seen.append(r)),
        owner="test",
    )
    assert asyncio.run(mod.add_async(2, 2)) == 4
    assert seen == [4]  # the awaited result, not the coroutine


def test_unwrap_restores_the_originals(mod):
    originals = {name: vars(mod.Client)[name] for name in ("method", "static", "klass")}
    original_add = mod.add
    for name in ("Client.method", "Client.static", "Client.klass", "Client.inherited"):
        assert _wrap.wrap(mod, name, lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs), "test")
    assert _wrap.wrap(mod, "add", lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs), "test")
    # Wrapped, they still behave as before.
    assert mod.Client.static(1) == 2
    assert mod.Client.klass(1) == ("Client", 1)
    assert mod.Client().inherited() == "base"
    assert mod.add is not original_add

    _wrap.unwrap_all("test")
    assert mod.add is original_add
    for name, original in originals.items():
        assert vars(mod.Client)[name] is original
    assert "inherited" not in vars(mod.Client)  # it was the base class's: the wrapper is gone
    assert mod.Client().inherited() == "base"


def test_wrapping_twice_does_not_stack(mod):
    seen = []
    hooks = _wrap.hooks("test add", lambda i, a, k: seen.append("before"))
    assert _wrap.wrap(mod, "add", hooks, owner="test")
    assert not _wrap.wrap(mod, "add", hooks, owner="test")
    mod.add(1, 2)
    assert seen == ["before"]


def test_unwrap_of_something_not_wrapped(mod):
    assert not _wrap.unwrap(mod, "add")
