"""A LangGraph graph's stream (and, in langchain-core before 0.3.3x, a chain's), stepped in a
context of its own.

A graph run (``Pregel.stream`` / ``astream``, which ``invoke`` and ``ainvoke`` read too) starts
inside its generator: its span is made current where its first step runs, and the graph's loop,
which starts the nodes' tasks, runs in the generator's steps. Without more, those steps run in
the context of whoever reads the stream, so between chunks that reader would see the graph's
span as its current span (a web server's "http send" spans under the graph). So the stream is
handed back in a proxy that runs each of its steps in one private copy of the reader's context,
taken at the first step, as LangChain itself runs a chain's stream; the reader's context is never
changed. Everything else of the stream (closing it, sending into it, its attributes) is the
generator's own.

A chain's stream needs this only where langchain-core has no ``set_config_context`` (before
about 0.3.40): since, its runs give the reader's context back as soon as their code's own copy
exists (see _config_context), at no cost per chunk.
"""

from __future__ import annotations

import contextvars
import inspect
from typing import Any

from llmprobe import _import_hook, _log
from llmprobe.instrumentation import _wrap

OWNER = "langchain"


class SyncSteps:
    """A generator whose steps run in `context`."""

    __slots__ = ("__weakref__", "_context", "_generator")

    def __init__(self, generator: Any, context: contextvars.Context) -> None:
        self._generator = generator
        self._context = context

    def __iter__(self) -> SyncSteps:
        return self

    def __next__(self) -> Any:
        return self._context.run(next, self._generator)

    def send(self, value: Any) -> Any:
        return self._context.run(self._generator.send, value)

    def throw(self, *args: Any) -> Any:
        return self._context.run(self._generator.throw, *args)

    def close(self) -> None:
        self._context.run(self._generator.close)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._generator, name)

    def __del__(self) -> None:
        # Dropped half-way: the generator ends (its runs with it) in its own context.
        try:
            self._context.run(self._generator.close)
        except Exception as exc:  # noqa: BLE001 - as a generator's own finalizer, never raise here
            _log.log_once("langgraph stream close", exc)


class _Step:
    """A step of an AsyncSteps' generator, awaitable: each send into it runs in the generator's
    context, in the awaiting task, as a Task runs its coroutine in its own. The step in flight
    is the generator's, not this object's: CPython's ``anext(iterator, default)`` asks
    ``__anext__`` again at every send, and every such ask must drive the same step."""

    __slots__ = ("_begin", "_owner")

    def __init__(self, owner: AsyncSteps, begin: Any) -> None:
        self._owner = owner
        self._begin = begin  # gives the generator's awaitable for this step

    def __await__(self) -> _Step:
        return self

    def __iter__(self) -> _Step:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def _current(self) -> Any:
        owner = self._owner
        step = owner._step
        if step is None:
            step = owner._step = self._begin()
        return step

    def send(self, value: Any) -> Any:
        owner = self._owner
        try:
            return owner._context.run(self._current().send, value)
        except BaseException:
            owner._step = None  # the step is over: it returned (StopIteration) or raised
            raise

    def throw(self, *args: Any) -> Any:
        owner = self._owner
        try:
            return owner._context.run(self._current().throw, *args)
        except BaseException:
            owner._step = None
            raise

    def close(self) -> None:
        owner = self._owner
        step, owner._step = owner._step, None
        if step is not None:
            owner._context.run(step.close)


class AsyncSteps:
    """An async generator whose steps run in `context`."""

    __slots__ = ("__weakref__", "_context", "_generator", "_step")

    def __init__(self, generator: Any, context: contextvars.Context) -> None:
        self._generator = generator
        self._context = context
        self._step: Any = None

    def __aiter__(self) -> AsyncSteps:
        return self

    def __anext__(self) -> _Step:
        return _Step(self, self._generator.__anext__)

    def asend(self, value: Any) -> _Step:
        return _Step(self, lambda: self._generator.asend(value))

    def athrow(self, *args: Any) -> _Step:
        return _Step(self, lambda: self._generator.athrow(*args))

    def aclose(self) -> _Step:
        return _Step(self, self._generator.aclose)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._generator, name)


def _stream(wrapped, instance, args, kwargs):
    result = wrapped(*args, **kwargs)
    try:
        if inspect.isgenerator(result):
            return SyncSteps(result, contextvars.copy_context())
        if inspect.isasyncgen(result):
            return AsyncSteps(result, contextvars.copy_context())
    except Exception as exc:  # noqa: BLE001
        _log.log_once("langgraph stream", exc)
    return result


def _patch(module: Any) -> None:
    pregel = getattr(module, "Pregel", None)
    if isinstance(pregel, type):
        for name in ("stream", "astream"):
            if name in vars(pregel):
                _wrap.wrap(pregel, name, _stream, owner=OWNER)


def _patch_chains(module: Any) -> None:
    from langchain_core.runnables import config

    if hasattr(config, "set_config_context"):
        return  # _config_context takes care of a chain's stream
    for name in ("_transform_stream_with_config", "_atransform_stream_with_config"):
        if name in vars(module.Runnable):
            _wrap.wrap(module.Runnable, name, _stream, owner=OWNER)


def instrument() -> None:
    # LangGraph 1.x defines Pregel in langgraph.pregel.main, 0.2 in langgraph.pregel itself.
    for name in ("langgraph.pregel.main", "langgraph.pregel"):
        _import_hook.when_imported(name, _patch)
    _import_hook.when_imported("langchain_core.runnables.base", _patch_chains)
