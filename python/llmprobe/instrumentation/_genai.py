"""GenAI span helpers shared by the provider instrumentations (openai, dashscope, ...).

One model call is one ``Call``: ``start()`` opens its span (name, kind CLIENT, the contract's
``gen_ai.*`` attributes, all in one crossing into Rust) and makes it the current span while the
library works, so spans the call causes (an HTTP client span) nest under it; ``leave()`` restores
the caller's context; ``fail()`` records an exception as the contract says; ``end()`` records the
metrics and ends the span. Content goes through ``content_json()`` / ``put_input()`` /
``put_output()`` (serialised and cut in Rust; only sizes when capture is off).

``hooks()`` / ``async_hooks()`` are ``_wrap.hooks`` for a model call: the wrapper restores the
caller's context itself and lets ``after`` hand back a replacement result (a stream proxy).

A Call is not bound to the thread or task that started it: a stream's span is ended by whoever
exhausts, closes or collects the stream.
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import Any, Callable

from opentelemetry import context as _context
from opentelemetry import trace as _api

from llmprobe import _core, _log
from llmprobe._errors import qualified_name
from llmprobe._tracer import _SPAN_KEY, Tracer, _attach, _detach, _get_current
from llmprobe.instrumentation import _messages
from llmprobe.instrumentation._wrap import guarded

_CLIENT = _api.SpanKind.CLIENT
# _attach, _detach and _get_current (from _tracer) are the API's context functions without
# their Python layers.
_Context = _context.Context
_set_span_in_context = _api.set_span_in_context
# The instrumentation whose model call is running, in the context (see hooks()).
_OWNER_KEY = _context.create_key("llmprobe-genai-owner")

_DEFAULT_SETTINGS = {"capture_content": True}
# Read from the agent's settings by refresh() (an instrumentation calls it when it is applied,
# or the first call does): the settings come from the environment once, at start-up, so a call
# never has to look them up again. None: not read yet.
_capture: bool | None = None
_max_length = 4096


def settings() -> dict:
    """The agent's settings (capture_content, content_max_length, ...) from its start-up."""
    try:
        from llmprobe import _agent

        return _agent.settings or _DEFAULT_SETTINGS
    except Exception:  # noqa: BLE001 - an instrumentation applied without the agent: defaults
        return _DEFAULT_SETTINGS


def refresh() -> None:
    """Take the agent's current settings (an instrumentation calls this when it is applied)."""
    global _capture, _max_length
    current = settings()
    _capture = bool(current.get("capture_content", True))
    limit = current.get("content_max_length")
    _max_length = int(limit) if limit is not None else 4096


def capture_content() -> bool:
    """Whether message content is recorded (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)."""
    capture = _capture
    if capture is None:
        refresh()
        capture = bool(_capture)
    return capture


def tracer(scope: str, version: str | None = None) -> Tracer:
    """The tracer of an instrumentation scope. Its spans are llmprobe's Rust spans whatever
    tracer provider the application installed globally."""
    return Tracer(scope, version)


class Call:
    """One model call in flight."""

    __slots__ = ("extra", "metric_attributes", "span", "started", "token")

    def __init__(self, span: Any, metric_attributes: dict) -> None:
        self.span = span
        self.token: Any = None
        self.started = 0  # perf_counter_ns() when the request left
        self.metric_attributes = metric_attributes
        self.extra: Any = None  # what the instrumentation needs at the end (request data)


def start(
    tracer: Tracer,
    operation: str,
    model: str | None,
    attributes: dict,
    span_kind: str,
    metric_attributes: dict,
    extra: Any = None,
    owner: str | None = None,
) -> Call:
    """Start the span of one operation and make it current (`owner`, the instrumentation's
    name, is recorded in the context too, so that hooks() sees calls nested in it). `attributes`
    gets the contract's common ones added; `metric_attributes` and `extra` are kept for the end.
    The caller must do nothing that can fail after this returns: hooks() restores the context
    only for a Call it was given."""
    attributes["gen_ai.operation.name"] = operation
    attributes["gen_ai.span.kind"] = span_kind
    name = f"{operation} {model}" if model else operation
    span = tracer.start_span(name, None, _CLIENT, attributes)  # positional: no keyword matching
    call = Call(span, metric_attributes)
    call.extra = extra
    # The span and the owner become current.
    if _SPAN_KEY is None:
        call.token = _attach(_context.set_value(_OWNER_KEY, owner, _set_span_in_context(span)))
    else:
        # What set_span_in_context does, without its layers of Python calls (as the tracer does).
        values = _get_current().copy()
        values[_SPAN_KEY] = span
        values[_OWNER_KEY] = owner
        call.token = _attach(_Context(values))
    call.started = perf_counter_ns()
    return call


def leave(call: Call) -> None:
    """Give the caller its context back (once; the library's call has returned or raised)."""
    token = call.token
    if token is not None:
        call.token = None
        _detach(token)


# ---- wrapping --------------------------------------------------------------------------------


def hooks(key: str, before: Callable, after: Callable, error: Callable, owner: str | None = None):
    """A wrapt wrapper for a model call: ``_wrap.hooks`` (the call runs exactly once, outside any
    try that could change its outcome; a failing hook is logged once under `key` and skipped),
    plus what a model call needs:

    - ``before(instance, args, kwargs)`` returns a started Call (see start) or None (not traced);
    - the caller's context is restored right after the call, by the wrapper itself, so that no
      failing hook can leave llmprobe's span current in the application;
    - ``after(call, result)`` may return a replacement for the result (a stream proxy); None
      (or a failing ``after``) hands back the result itself;
    - a call made while a call of the same `owner` is running (the SDK calling itself, such as
      a helper that calls create) runs untraced, so that one model call gives one span.
    """

    def wrapper(wrapped, instance, args, kwargs):
        if owner is not None and _get_current().get(_OWNER_KEY) is owner:
            return wrapped(*args, **kwargs)
        try:
            call = before(instance, args, kwargs)
        except Exception as exc:  # noqa: BLE001
            _log.log_once(key, exc)
            return wrapped(*args, **kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            token = call.token
            if token is not None:
                call.token = None
                _detach(token)
            guarded(key, error, call, exc)
            raise
        token = call.token
        if token is not None:
            call.token = None
            _detach(token)
        try:  # guarded(), without its call: this runs once per model call
            replacement = after(call, result)
        except Exception as exc:  # noqa: BLE001
            _log.log_once(key, exc)
            return result
        return result if replacement is None else replacement

    return wrapper


def async_hooks(key: str, before: Callable, after: Callable, error: Callable, owner: str | None = None):
    """hooks() for coroutine functions: the span starts when the coroutine is awaited, and
    `after` sees the awaited result."""

    async def wrapper(wrapped, instance, args, kwargs):
        if owner is not None and _get_current().get(_OWNER_KEY) is owner:
            return await wrapped(*args, **kwargs)
        try:
            call = before(instance, args, kwargs)
        except Exception as exc:  # noqa: BLE001
            _log.log_once(key, exc)
            return await wrapped(*args, **kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            token = call.token
            if token is not None:
                call.token = None
                _detach(token)
            guarded(key, error, call, exc)
            raise
        token = call.token
        if token is not None:
            call.token = None
            _detach(token)
        try:  # guarded(), without its call: this runs once per model call
            replacement = after(call, result)
        except Exception as exc:  # noqa: BLE001
            _log.log_once(key, exc)
            return result
        return result if replacement is None else replacement

    return wrapper


def fail(call: Call, error: BaseException) -> None:
    """Record a failed operation on its span: status ERROR with the message, ``error.type``
    and the ``exception`` event. Only an Exception is a failure: a cancelled task, an interrupt
    or a generator being closed end the span without an error."""
    if not isinstance(error, Exception):
        return
    call.metric_attributes["error.type"] = qualified_name(type(error))
    call.span.record_failure(error, True, True)


def end(
    call: Call,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    time_to_first_chunk: float | None = None,
    ended_ns: int | None = None,
    chunks: Any = None,
) -> None:
    """Record the operation's metrics and end its span (`chunks`: a stream's ChunkCollector,
    whose gaps between chunks go to time_per_output_chunk, computed in the core). The metrics
    go to the core's GenAI histograms in one crossing; they never cost the caller an
    exception."""
    duration = ((ended_ns or perf_counter_ns()) - call.started) / 1e9
    try:
        call.span.end()
    finally:
        try:
            _core.record_genai_metrics(
                call.metric_attributes,
                duration,
                input_tokens if type(input_tokens) is int else None,
                output_tokens if type(output_tokens) is int else None,
                time_to_first_chunk,
                chunks,
            )
        except Exception as exc:  # noqa: BLE001
            _log.log_once("GenAI metrics", exc)


def end_stream(state: Any, error: BaseException | None, assemble: Callable) -> None:
    """Fill and end the span of a streamed call (the ``on_end`` of a stream proxy's state).
    ``assemble(call, attributes, state)`` is the library's part: it reads what the stream gave
    (``state.items``, or its ``state.collector``) into `attributes` and returns (the position of
    the first chunk with content or None, input tokens, output tokens). The rest is the same for
    every library: the error, the time to the first token and to the first chunk, the gaps
    between chunks, the metrics, the end."""
    now = perf_counter_ns()
    call: Call = state.call
    collector = state.collector
    input_tokens = output_tokens = ttfc = None
    try:
        if error is not None:
            fail(call, error)
        attributes: dict = {}
        first, input_tokens, output_tokens = assemble(call, attributes, state)
        if first is not None:
            attributes["gen_ai.response.time_to_first_token"] = collector.time_at(first) - call.started
        t0 = collector.time_at(0)
        if t0 is not None:
            ttfc = (t0 - call.started) / 1e9
        call.span.set_attributes(attributes)
    finally:
        end(call, input_tokens, output_tokens, ttfc, now, collector)


def content_json(value: Any) -> str:
    """A content structure as JSON, every string in it cut to the content limit (in Rust)."""
    return _core.to_json(value)


def content_text(value: str) -> str:
    """A content string cut to the content limit (in characters, in Rust)."""
    return _core.truncate(value)


def put_input(
    attributes: dict, messages: list | None, capture: bool, size_key: str = "llmprobe.input.size"
) -> None:
    """Input messages (normalised, see _messages) into `attributes`: ``gen_ai.input.messages``
    and ``input.value`` (the same JSON, serialised once), or only their size when content is
    not captured."""
    if messages is None:
        return
    if capture:
        put_input_json(attributes, _core.to_json(messages), 0, True)
    else:
        put_input_json(attributes, None, _messages.characters(messages), False, size_key)


def put_input_json(
    attributes: dict, text: str | None, chars: int, capture: bool, size_key: str = "llmprobe.input.size"
) -> None:
    """put_input() for messages already written as JSON (by the core's chat_input)."""
    if capture:
        attributes["gen_ai.input.messages"] = text
        attributes["input.value"] = text
        attributes["input.mime_type"] = "application/json"
    else:
        attributes[size_key] = chars


def put_output(attributes: dict, messages: list, capture: bool) -> None:
    """Output messages (normalised, see _messages) into `attributes`: ``gen_ai.output.messages``,
    and ``output.value`` = the answer text (the messages' JSON when the answer has no text, only
    tool calls); only their size when content is not captured. Their finish reasons go to
    ``gen_ai.response.finish_reasons`` either way."""
    reasons = [m["finish_reason"] for m in messages if m.get("finish_reason")]
    if reasons:
        attributes["gen_ai.response.finish_reasons"] = reasons
    if not capture:
        attributes["llmprobe.output.size"] = _messages.characters(messages)
        return
    if not messages:
        return
    text = _core.to_json(messages)
    attributes["gen_ai.output.messages"] = text
    answer = _messages.message_text(messages)
    if _capture is None:
        refresh()  # the content limit below comes from the settings
    if answer:
        # len() counts code points, the characters Rust cuts by: a short answer needs no crossing.
        attributes["output.value"] = answer if len(answer) <= _max_length else _core.truncate(answer)
        attributes["output.mime_type"] = "text/plain"
    elif _messages.has_parts(messages):
        attributes["output.value"] = text
        attributes["output.mime_type"] = "application/json"
