"""GenAI span helpers shared by the provider instrumentations (openai, dashscope, ...).

One model call is one ``Call``. The wrapper around an SDK method is a ``hooks()`` (the core's
``ModelHook``): the instrumentation's ``before`` reads the request into ``request()`` (span name,
kind CLIENT, the contract's ``gen_ai.*`` attributes), the hook starts the span and makes it the
current span while the library works, so spans the call causes (an HTTP client span) nest under
it, and restores the caller's context after. ``fail()`` records an exception as the contract
says; ``end()`` ends the span and records the metrics. Content goes through ``content_json()`` /
``put_input()`` / ``put_output()`` (serialised and cut in Rust; only sizes when capture is off).

A Call is not bound to the thread or task that started it: a stream's span is ended by whoever
exhausts, closes or collects the stream.
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import Any, Callable

from opentelemetry import context as _context
from opentelemetry import trace as _api

from llmprobe import _core, _log, _tracer
from llmprobe._errors import qualified_name
from llmprobe._tracer import _SPAN_KEY, Tracer
from llmprobe.instrumentation import _messages
from llmprobe.instrumentation._wrap import guarded

_CLIENT = _api.SpanKind.CLIENT
_Context = _context.Context
_set_span_in_context = _api.set_span_in_context
# The instrumentation whose model call is running, in the context (see hooks()).
_OWNER_KEY = _context.create_key("llmprobe-genai-owner")
# A framework's model step running in the context (a _core.ModelStep): the hooks count the model
# calls they trace under it, so that one model call is one LLM span (see model_step()).
MODEL_STEP_KEY = _context.create_key("llmprobe-genai-model-step")

_DEFAULT_SETTINGS = {"capture_content": True}
# Read from the agent's settings by refresh(), which an instrumentation calls when it is applied:
# the settings come from the environment once, at start-up, so a call never looks them up again.
# `capture`: whether message content is recorded (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT);
# read by the hooks as ``_genai.capture`` (a module attribute: no call per model call).
capture = True
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
    global capture, _max_length
    current = settings()
    capture = bool(current.get("capture_content", True))
    limit = current.get("content_max_length")
    _max_length = int(limit) if limit is not None else 4096


def tracer(scope: str) -> Tracer:
    """The tracer of an instrumentation scope. Its spans are llmprobe's Rust spans whatever
    tracer provider the application installed globally. The scope names llmprobe's
    instrumentation, so its version is llmprobe's, never the instrumented library's."""
    from llmprobe import __version__

    return Tracer(scope, __version__)


# One model call in flight (its span, context token, start time, metric attributes and
# `extra`, what the instrumentation keeps for the end): a core class, made by ModelHook.begin.
Call = _core.Call


def request(
    operation: str,
    model: str | None,
    attributes: dict,
    span_kind: str,
    metric_attributes: dict,
    extra: Any = None,
) -> tuple:
    """What a ``before`` hook returns: the span of one operation, to be started by the hook
    (see hooks()). `attributes` gets the contract's common ones added; `metric_attributes` and
    `extra` are kept for the end."""
    attributes["gen_ai.operation.name"] = operation
    attributes["gen_ai.span.kind"] = span_kind
    return (f"{operation} {model}" if model else operation, attributes, metric_attributes, extra)


def _contextualize(span: Any, owner: Any) -> Any:
    # The context a call runs in when the API's context is not the standard contextvars one.
    return _context.set_value(_OWNER_KEY, owner, _set_span_in_context(span))


def _context_env() -> dict:
    """The OpenTelemetry context as a hook uses it: the ContextVar's own methods (no Python
    frame) when the runtime context is the standard one, the API's functions otherwise."""
    var = _tracer._CONTEXT_VAR
    standard = var is not None and _SPAN_KEY is not None
    return {
        "get_current": var.get if standard else _context.get_current,
        "attach": var.set if standard else _context.attach,
        "reset": var.reset if standard else _context.detach,
        "detach": _context.detach,
        "span_key": _SPAN_KEY,
        "owner_key": _OWNER_KEY,
        "model_step_key": MODEL_STEP_KEY,
        "context_class": _Context,
        "contextualize": _contextualize,
        "log_once": _log.log_once,
    }


# ---- wrapping --------------------------------------------------------------------------------


def hooks(
    key: str,
    before: Callable,
    after: Callable,
    error: Callable,
    owner: str | None,
    tracer: Tracer,
    answer: str | None = None,
    python_results: tuple = (),
    coroutine: bool = False,
    streams: tuple = (),
):
    """A wrapt wrapper for a model call (``_core.ModelHook``; for a coroutine function, the
    coroutine below, which awaits the call between the hook's steps): the call runs exactly
    once, outside anything that could change its outcome; a failing hook is logged once under
    `key` and skipped; and:

    - ``before(instance, args, kwargs)`` returns request() (the span to start) or None (not
      traced); the hook starts the span with `tracer`'s scope and makes it current;
    - the caller's context is restored right after the call, by the hook itself, so that no
      failing hook can leave llmprobe's span current in the application;
    - `answer` ("dashscope", "openai_chat") has the core read the answer and end the span;
      a result of one of the `python_results` types (a stream), or any result without an
      `answer`, goes to ``after(call, result)``, which may return a replacement for it (a stream
      proxy); None (or a failing ``after``) hands back the result itself;
    - `streams`, ``((stream classes, proxy class), ...)``: a stream of those classes (also in
      `python_results`) is not given to `after`: the core makes its proxy (``_stream.wrap``'s,
      whose state reads the chunks as they pass, by `answer`, and ends with ``end_stream``);
    - an exception goes to ``error(call, exc)`` and is raised on as it came;
    - a call made while a call of the same `owner` is running (the SDK calling itself, such as
      a helper that calls create) runs untraced, so that one model call gives one span.
    """
    hook = _core.ModelHook(
        key,
        before,
        after,
        error,
        owner,
        tracer,
        _CLIENT,
        _context_env(),
        answer,
        tuple(python_results),
        tuple(streams),
        end_stream,
    )
    if not coroutine:
        return hook

    async def wrapper(wrapped, instance, args, kwargs):
        # The span starts when the coroutine is awaited; the answer is read once awaited.
        try:
            started = None if hook.nested() else before(instance, args, kwargs)
            call = None if started is None else hook.begin(started)
        except Exception as exc:  # noqa: BLE001
            _log.log_once(key, exc)
            call = None
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            hook.leave(call)
            guarded(key, error, call, exc)
            raise
        hook.leave(call)
        return hook.complete(call, result)

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
    """End the operation's span and record its metrics (`chunks`: a stream's ChunkCollector,
    whose gaps between chunks go to time_per_output_chunk), in one crossing into the core; it
    never costs the caller an exception."""
    _core.end_call(
        call,
        input_tokens if type(input_tokens) is int else None,
        output_tokens if type(output_tokens) is int else None,
        time_to_first_chunk,
        ended_ns,
        chunks,
    )


def end_stream(state: Any, error: BaseException | None, assemble: Callable | None = None) -> None:
    """Fill and end the span of a streamed call (the ``on_end`` of a stream proxy's state).
    ``assemble(call, attributes, state)`` is the library's part: it reads what the stream gave
    (``state.items``, or its ``state.collector``) into `attributes` and returns (the position of
    the first chunk with content or None, input tokens, output tokens). Without one, the
    collector read the chunks as they passed and the core writes the answer (_core.end_stream).
    The rest is the same for every library: the error, the time to the first token and to the
    first chunk, the gaps between chunks, the metrics, the end."""
    now = perf_counter_ns()
    call: Call = state.call
    assembled = None
    try:
        if error is not None:
            fail(call, error)
        if assemble is not None:
            attributes: dict = {}
            assembled = (None, None, None)  # what the core is told if assemble() fails
            assembled = assemble(call, attributes, state)
            call.span.set_attributes(attributes)
    finally:
        _core.end_stream(call, state.collector, call.extra.capture, now, assembled)


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


def vector_length(vector: Any) -> int | None:
    """The length of an embedding vector: a list of floats, or their little-endian float32 bytes
    in base64 (openai's encoding_format="base64"), counted from the text's length, undecoded."""
    if isinstance(vector, _messages.SEQUENCES):
        return len(vector)
    if isinstance(vector, str):
        padding = len(vector) - len(vector.rstrip("="))
        return (len(vector) // 4 * 3 - padding) // 4
    return None


def put_output(attributes: dict, messages: list, capture: bool) -> None:
    """Output messages (normalised, see _messages) into `attributes`: ``gen_ai.output.messages``,
    and ``output.value`` = the answer text (the messages' JSON when the answer has no text, only
    tool calls); only their size when content is not captured. Their finish reasons go to
    ``gen_ai.response.finish_reasons`` either way."""
    reasons = [m["finish_reason"] for m in messages if m.get("finish_reason")]
    if not capture:
        put_output_json(attributes, None, "", reasons, False, _messages.characters(messages))
    elif messages:
        put_output_json(
            attributes,
            _core.to_json(messages),
            _messages.message_text(messages),
            reasons,
            _messages.has_parts(messages),
        )


def put_output_json(
    attributes: dict, text: str | None, answer: str, reasons: list, has_parts: bool = True, size: int = 0
) -> None:
    """put_output() for output messages already written as JSON (`text`; None when content is not
    captured: then `size` characters are recorded), `answer` being their text."""
    if reasons:
        attributes["gen_ai.response.finish_reasons"] = reasons
    if text is None:
        attributes["llmprobe.output.size"] = size
        return
    attributes["gen_ai.output.messages"] = text
    if answer:
        # len() counts code points, the characters Rust cuts by: a short answer needs no crossing.
        attributes["output.value"] = answer if len(answer) <= _max_length else _core.truncate(answer)
        attributes["output.mime_type"] = "text/plain"
    elif has_parts:
        attributes["output.value"] = text
        attributes["output.mime_type"] = "application/json"
