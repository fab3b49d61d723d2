"""The streams a LlamaIndex query or synthesis returns (``StreamingResponse.response_gen``, a
generator of text; ``AsyncStreamingResponse.response_gen``, an async one), followed to their end.

A streaming query returns before its answer exists: the model is called while the caller reads
the stream. So the runs that returned the stream (the synthesizer's, the query engine's) end when
it ends, and each item is produced with the innermost of them current, which is how the model
call made from inside the stream nests under the synthesis (LlamaIndex itself has no parent for
it: its own span ids are gone by then). The consumer's context is never touched between items.

The stream handed back is still a generator (an async generator), read the same way; closing it,
leaving it early or dropping it ends the runs too.
"""

from __future__ import annotations

from typing import Any, Callable

from llmprobe.instrumentation import _runs as _contexts
from llmprobe.instrumentation import _wrap

# The attribute of a streaming response that holds the list of runs following it.
_FOLLOWERS = "_llmprobe_followers"


def follow(
    response: Any, run: Any, context: Any, end: Callable[[Any, list, BaseException | None], None]
) -> bool:
    """Make `run` end with `response`'s stream: `end(run, texts, error)` is called once the stream
    is exhausted, closed, dropped or failed, with the texts it gave. The stream's items are
    produced in `context` (the innermost run's). False when `response` has no stream to follow."""
    followers = response.__dict__.get(_FOLLOWERS)
    if followers is not None:  # an outer run returning the same response
        followers.append(run)
        return True
    stream = getattr(response, "response_gen", None)
    if stream is None:
        return False
    followers = [run]
    if hasattr(stream, "__anext__"):
        wrapped = _follow_async(stream, context, followers, end)
    elif hasattr(stream, "__next__"):
        wrapped = _follow(stream, context, followers, end)
    else:
        return False
    response.response_gen = wrapped
    response.__dict__[_FOLLOWERS] = followers
    return True


def _ended(followers: list, texts: list, error: BaseException | None, end: Callable) -> None:
    failure = error if isinstance(error, Exception) else None  # a close is no failure
    for run in followers:
        _wrap.guarded("llama_index stream end", end, run, texts, failure)


def _follow(stream: Any, context: Any, followers: list, end: Callable):
    texts: list = []
    error = None
    try:
        while True:
            token = _contexts._set_current(context)
            try:
                item = next(stream)
            except StopIteration:
                return
            finally:
                _contexts._reset(token)
            if isinstance(item, str):
                texts.append(item)
            yield item
    except BaseException as exc:
        error = exc
        if isinstance(exc, GeneratorExit):
            stream.close()
        raise
    finally:
        _ended(followers, texts, error, end)


async def _follow_async(stream: Any, context: Any, followers: list, end: Callable):
    texts: list = []
    error = None
    try:
        while True:
            token = _contexts._set_current(context)
            try:
                item = await stream.__anext__()
            except StopAsyncIteration:
                return
            finally:
                _contexts._reset(token)
            if isinstance(item, str):
                texts.append(item)
            yield item
    except BaseException as exc:
        error = exc
        if isinstance(exc, GeneratorExit):
            await stream.aclose()
        raise
    finally:
        _ended(followers, texts, error, end)
