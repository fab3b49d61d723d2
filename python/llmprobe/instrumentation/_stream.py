"""Transparent proxies over streamed answers, which end the operation's span exactly once.

A library returns a stream object (the openai SDK's ``Stream``, a DashScope generator); the
instrumentation returns ``wrap(SyncStreamProxy, stream, state)`` (or ``AsyncStreamProxy``) in
its place, or the model hook makes that proxy itself for a stream whose chunks the core reads.
The proxy is a ``wrapt.ObjectProxy``: ``isinstance``, every attribute read and write, ``repr``
and equality are the stream's own. What it adds:

- per item, one call into the core (no JSON, no attribute writes): a ``for`` loop over a
  synchronous stream runs the core's ``ChunkIter``, every other read calls
  ``state.add(item, perf_counter_ns())``. The ``_core.ChunkCollector`` keeps the item and
  its time, or, for chat chunks, only what the answer needs, read as the chunk passes (so no
  chunk outlives its use for the garbage collector to walk); the answer is assembled once, at
  the end;
- the end, exactly once, at the first of: the stream exhausted; an error raised by it;
  ``close()`` / ``aclose()``; the end of a ``with`` / ``async with`` block; the proxy garbage
  collected (a stream left by ``break`` and dropped, or abandoned: a weak reference's
  callback). A stream still alive at interpreter exit is ended then, before llmprobe's exit
  flush (from an atexit hook registered after llmprobe's own, so it runs first).

The end calls ``state.on_end(state, error)`` guarded: a failing ``on_end`` is logged once and
the user's iteration goes on untouched. ``error`` is the exception the stream raised, or None.
The state (``_core.StreamState``) keeps the once-only flag, the weak reference and the end, so
that a stream costs no Python frame of llmprobe's but ``__iter__``.

    state = StreamState("openai chat stream", on_end, call)   # call: whatever on_end needs
    return wrap(SyncStreamProxy, stream, state)
    # state.items, state.collector: what the stream gave (and when), for on_end
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import Any

import wrapt

from llmprobe import _core, _log

_ObjectProxy = wrapt.ObjectProxy
# What a proxy records and how its stream ends, once (_core.StreamState: see the module's
# documentation): StreamState(key, on_end, call, collector=None, core_end=False).
StreamState = _core.StreamState


def wrap(proxy_class: type, stream: Any, state: StreamState) -> Any:
    """`stream` in a proxy of `proxy_class` that records into `state`, which ends the stream's
    operation when the proxy is collected (or at exit) if nothing ended it before. A model hook
    that reads a stream's chunks in the core makes the same proxy itself."""
    proxy = proxy_class(stream)
    proxy._self_state = state
    state.watch(proxy)
    return proxy


def finish(state: StreamState, error: BaseException | None, how: str) -> None:
    """End the stream's operation, if it was not ended already."""
    state.finish(error, how)


def _no_context_manager(wrapped: Any, method: str) -> TypeError:
    # What Python itself raises for `with` on an object without the protocol (3.11+ wording).
    kind = "asynchronous context manager" if method.startswith("__a") else "context manager"
    return TypeError(f"'{type(wrapped).__name__}' object does not support the {kind} protocol")


class _Proxy(_ObjectProxy):
    def __repr__(self) -> str:
        return repr(self.__wrapped__)  # wrapt's own repr would name the proxy


class SyncStreamProxy(_Proxy):
    """A synchronous stream (an iterator), recorded item by item (made by wrap())."""

    # The state in a slot, not in an instance dict made for it on every stream.
    __slots__ = ("_self_state",)

    def __iter__(self):
        # The core's iterator: each item is recorded without a Python frame, and the end (the
        # stream exhausted, or raising) is the state's. A `for` loop left early leaves the
        # stream as it is, to be resumed, closed or collected.
        state = self._self_state
        iterator = iter(self.__wrapped__)
        try:
            return _core.ChunkIter(iterator, state, self)
        except Exception as exc:  # noqa: BLE001 - the items then pass unrecorded
            _log.log_once(state.key, exc)
            return iterator

    def __next__(self):
        state = self._self_state
        try:
            item = next(self.__wrapped__)
        except StopIteration:
            state.finish(None, "exhausted")
            raise
        except BaseException as exc:
            state.finish(exc, "error")
            raise
        state.add(item, perf_counter_ns())
        return item

    def __enter__(self):
        wrapped = self.__wrapped__
        enter = getattr(type(wrapped), "__enter__", None)
        if enter is None:
            raise _no_context_manager(wrapped, "__enter__")
        result = enter(wrapped)
        # `with stream as s` must give the proxy, or the items read through `s` go unrecorded.
        return self if result is wrapped else result

    def __exit__(self, exc_type, exc, tb):
        try:
            return type(self.__wrapped__).__exit__(self.__wrapped__, exc_type, exc, tb)
        finally:
            self._self_state.finish(None, "closed")

    def close(self):
        try:
            return self.__wrapped__.close()
        finally:
            self._self_state.finish(None, "closed")


class AsyncStreamProxy(_Proxy):
    """An asynchronous stream (an async iterator), recorded item by item (made by wrap())."""

    __slots__ = ("_self_state",)

    async def __aiter__(self):
        state = self._self_state
        add = state.add
        try:
            async for item in self.__wrapped__:
                add(item, perf_counter_ns())
                yield item
        except GeneratorExit:
            raise
        except BaseException as exc:  # includes CancelledError: the span ends, without an error
            state.finish(exc, "error")
            raise
        state.finish(None, "exhausted")

    async def __anext__(self):
        state = self._self_state
        try:
            item = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            state.finish(None, "exhausted")
            raise
        except BaseException as exc:
            state.finish(exc, "error")
            raise
        state.add(item, perf_counter_ns())
        return item

    async def __aenter__(self):
        wrapped = self.__wrapped__
        enter = getattr(type(wrapped), "__aenter__", None)
        if enter is None:
            raise _no_context_manager(wrapped, "__aenter__")
        result = await enter(wrapped)
        return self if result is wrapped else result

    async def __aexit__(self, exc_type, exc, tb):
        try:
            return await type(self.__wrapped__).__aexit__(self.__wrapped__, exc_type, exc, tb)
        finally:
            self._self_state.finish(None, "closed")

    def close(self):
        # The SDK's AsyncStream.close is a coroutine function, a generator's is not: keep what
        # the stream's own close returns, and end the span once it has done its work.
        try:
            result = self.__wrapped__.close()
        except BaseException:
            self._self_state.finish(None, "closed")
            raise
        if hasattr(result, "__await__"):
            return _then_finish(result, self._self_state)
        self._self_state.finish(None, "closed")
        return result

    def aclose(self):
        try:
            result = self.__wrapped__.aclose()
        except BaseException:
            self._self_state.finish(None, "closed")
            raise
        return _then_finish(result, self._self_state)


async def _then_finish(awaitable: Any, state: StreamState) -> Any:
    try:
        return await awaitable
    finally:
        state.finish(None, "closed")


def stream_of(obj: Any) -> Any:
    """The stream proxy inside a helper stream (the SDK's ChatCompletionStream and
    ResponseStream keep the raw stream they read as ``_raw_stream``), or None."""
    raw = getattr(obj, "_raw_stream", None)
    if type(raw) in (SyncStreamProxy, AsyncStreamProxy):
        return raw
    return None


def close_inner(helper: Any) -> None:
    """End the span of the raw stream a helper stream reads (the helper closed its HTTP response
    without going through the raw stream's close())."""
    proxy = stream_of(helper)
    if proxy is not None:
        finish(proxy._self_state, None, "closed")


def close_stream(proxy: Any) -> None:
    """End the span of a stream proxy whose HTTP response was closed elsewhere."""
    if type(proxy) in (SyncStreamProxy, AsyncStreamProxy):
        finish(proxy._self_state, None, "closed")
