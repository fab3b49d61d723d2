"""The OpenTelemetry API over llmprobe's Rust spans.

llmprobe's TracerProvider is installed as the API's global one, so every user of
``opentelemetry.trace`` (the user's own code, any opentelemetry-instrumentation-* package)
creates Rust-backed spans, and the API's context (contextvars) carries them: spans nest across
llmprobe's and others' instrumentations, and W3C propagation reads their SpanContext.

Span is one object, not a wrapper around one: it subclasses the Rust class (its set_attribute(s),
add_event, end, is_recording and update_name are the Rust methods, called directly) and the
API's abstract Span. The hot path (start_span + end) avoids every allocation it can: no
SpanContext until someone asks for it, per-span Python state only where a span deviates from
the class defaults, no generator for start_as_current_span.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry import context as _context
from opentelemetry import trace as _api
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE, INVALID_SPAN

from llmprobe import _core
from llmprobe._errors import exception_attributes, message, qualified_name

if TYPE_CHECKING:
    from typing_extensions import Self

_CoreSpan = _core.Span
_ApiSpan = _api.Span
_Context = _context.Context
_get_current_span = _api.get_current_span
_set_span_in_context = _api.set_span_in_context
_attach = _context.attach
_detach = _context.detach


def _direct_context_var():
    """The ContextVar behind the API's context, when the runtime context is the standard
    contextvars one: reading and setting it directly skips two Python frames per call, which is
    a fifth of start_as_current_span's cost. None (any other runtime context) keeps the API's
    functions."""
    try:
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

        runtime = _context._RUNTIME_CONTEXT
        if type(runtime) is ContextVarsRuntimeContext:
            return runtime._current_context
    except Exception:  # noqa: BLE001 - any surprise means: use the API's functions
        return None
    return None


_CONTEXT_VAR = _direct_context_var()
if _CONTEXT_VAR is not None:
    _get_current = _CONTEXT_VAR.get
    _attach = _CONTEXT_VAR.set
    _reset = _CONTEXT_VAR.reset

    def _detach(token) -> None:
        try:
            _reset(token)
        except Exception:  # noqa: BLE001 - as the API's detach: a foreign token is logged, not raised
            _context.detach(token)
else:
    _get_current = _context.get_current

_INTERNAL = SpanKind.INTERNAL
# Keyed by identity: Enum members are singletons, and Enum.__hash__ is a Python-level call.
_KIND_VALUES = {id(kind): kind.value for kind in SpanKind}
_KINDS = {kind.value: kind for kind in SpanKind}
_STATUS_VALUES = {id(code): code.value for code in StatusCode}
_STATUS_ERROR = StatusCode.ERROR.value
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)


def _span_key() -> str | None:
    """The API's context key for the current span, when reading and writing it directly gives
    what get_current_span / set_span_in_context give (their Python layers are a third of the
    bridge's cost); None makes the bridge go through those functions."""
    try:
        from opentelemetry.trace.propagation import _SPAN_KEY

        probe = _api.NonRecordingSpan(_api.INVALID_SPAN_CONTEXT)
        context = _set_span_in_context(probe, _Context())
        values = {}
        values[_SPAN_KEY] = probe
        if context.get(_SPAN_KEY) is probe and _get_current_span(_Context(values)) is probe:
            return _SPAN_KEY
    except Exception:  # noqa: BLE001 - any surprise means: use the API's functions
        return None
    return None


_SPAN_KEY = _span_key()


def _kind_value(kind: Any) -> int:
    value = _KIND_VALUES.get(id(kind))
    if value is None:
        value = int(getattr(kind, "value", kind))  # a plain int kind is accepted too
    return value


def _status_value(code: Any) -> int:
    value = _STATUS_VALUES.get(id(code))
    if value is None:
        value = int(getattr(code, "value", code))
    return value


class Span(_CoreSpan, _api.Span):
    """A Rust span that is also an ``opentelemetry.trace.Span``."""

    # Class-level defaults; an instance gets its own value only when it differs. (The kind is
    # the core span's own `_kind`: no instance dict for it.)
    _trace_state = DEFAULT_TRACE_STATE
    _span_context = None
    _record_exception = True
    _set_status_on_exception = True

    # Not in the API, but read by opentelemetry-instrumentation-* (Flask, Django, WSGI, Falcon,
    # Tornado, Pyramid check ``span.kind == SpanKind.SERVER``), as the SDK's spans have them.
    @property
    def kind(self) -> SpanKind:
        return _KINDS.get(self._kind, _INTERNAL)

    @property
    def context(self) -> SpanContext:
        return self.get_span_context()

    def get_span_context(self) -> SpanContext:
        context = self._span_context
        if context is None:
            context = SpanContext(
                self.trace_id,
                self.span_id,
                False,
                _SAMPLED if self.sampled else _NOT_SAMPLED,
                self._trace_state,
            )
            self._span_context = context
        return context

    def set_status(self, status: Any, description: str | None = None) -> None:
        if isinstance(status, Status):
            _CoreSpan.set_status(self, _status_value(status.status_code), status.description)
        else:
            _CoreSpan.set_status(self, _status_value(status), description)

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:  # type: ignore[override]
        if context is not None and context.is_valid:
            _CoreSpan.add_link(self, context.trace_id, context.span_id, attributes)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Any = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        if not self.is_recording():
            return  # an unsampled or ended span: skip formatting the traceback
        event = exception_attributes(exception, escaped)
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    def record_failure(self, exc: BaseException, record_exception: bool, set_status: bool) -> None:
        """What leaving a span's scope with an exception does: the ``exception`` event, status
        ERROR with the exception's message, and ``error.type``."""
        if not self.is_recording():
            return
        if record_exception:
            self.record_exception(exc, escaped=True)
        if set_status:
            type_name = qualified_name(type(exc))
            self.set_attribute("error.type", type_name)
            _CoreSpan.set_status(self, _STATUS_ERROR, message(exc) or type_name)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # Only Exception is a failure: GeneratorExit, KeyboardInterrupt, SystemExit and
        # asyncio's CancelledError are not errors of the operation (as opentelemetry.trace.use_span).
        if isinstance(exc, Exception):
            self.record_failure(exc, self._record_exception, self._set_status_on_exception)
        self.end()

    def __repr__(self) -> str:
        return f"<llmprobe Span {self.name!r} trace_id={self.trace_id:032x} span_id={self.span_id:016x}>"


def _core_links(links: Any) -> list | None:
    result = []
    for link in links:
        context = link.context
        if context.is_valid:
            result.append((context.trace_id, context.span_id, link.attributes))
    return result or None


class Tracer(_api.Tracer):
    """Starts llmprobe spans for one instrumentation scope."""

    # The class of the spans it starts (a model call's hook starts them itself: _core.ModelHook).
    _span_class = Span

    def __init__(
        self,
        scope: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> None:
        self._scope = scope or ""
        self._version = version
        self._schema_url = schema_url
        self._attributes = attributes

    def start_span(
        self,
        name: str,
        context: _context.Context | None = None,
        kind: SpanKind = _INTERNAL,
        attributes: Any = None,
        links: Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        if _SPAN_KEY is None:
            parent = _get_current_span(context)
        elif context is None:
            parent = _get_current().get(_SPAN_KEY)
        else:
            parent = context.get(_SPAN_KEY)
        trace_state = None
        if parent is None or parent is INVALID_SPAN:
            core_parent = None
        elif isinstance(parent, _CoreSpan):
            core_parent = parent
            trace_state = getattr(parent, "_trace_state", None)
        elif isinstance(parent, _ApiSpan):
            # A span from elsewhere: remote (from a traceparent header), a NonRecordingSpan, or
            # another implementation's. Only its ids, sampled flag and trace state matter.
            parent_context = parent.get_span_context()
            if parent_context.is_valid:
                core_parent = (
                    parent_context.trace_id,
                    parent_context.span_id,
                    parent_context.trace_flags.sampled,
                    parent_context.is_remote,
                )
                trace_state = parent_context.trace_state
            else:
                core_parent = None
        else:
            core_parent = None  # not a span at all: get_current_span would say INVALID_SPAN
        kind_value = 0 if kind is _INTERNAL else (_KIND_VALUES.get(id(kind)) or _kind_value(kind))
        span = self._span_class(
            name,
            kind_value,
            core_parent,
            attributes,
            start_time,
            _core_links(links) if links else None,
            self._scope,
            self._version,
            trace_state.to_header() if trace_state and core_parent.__class__ is tuple else None,
        )
        if trace_state:
            span._trace_state = trace_state
        if not record_exception:
            span._record_exception = False
        if not set_status_on_exception:
            span._set_status_on_exception = False
        return span

    def start_child(
        self, name: str, parent: Span, attributes: Any = None, kind: int = 0, start_time: int | None = None
    ) -> Span:
        """What ``start_span(name, set_span_in_context(parent), ...)`` makes when `parent` is one of
        llmprobe's own spans, without building a context to pass it (`kind` is the SpanKind's
        value): an engine's node spans, started several times per node."""
        span = self._span_class(
            name, kind, parent, attributes, start_time, None, self._scope, self._version, None
        )
        trace_state = parent._trace_state
        if trace_state is not DEFAULT_TRACE_STATE:
            span._trace_state = trace_state
        return span

    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: _context.Context | None = None,
        kind: SpanKind = _INTERNAL,
        attributes: Any = None,
        links: Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> _CurrentSpan:
        return _CurrentSpan(
            self,
            (name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception),
            end_on_exit,
        )


class _CurrentSpan:
    """start_as_current_span's result: a context manager, and a decorator like the SDK's.

    The span starts at __enter__ (not when start_as_current_span is called), becomes the current
    span in the API's context, and on exit the context is restored, a failure recorded and the
    span ended. As a decorator each call of the function gets its own span.
    """

    __slots__ = ("_args", "_end_on_exit", "_span", "_token", "_tracer")

    def __init__(self, tracer: Tracer, args: tuple, end_on_exit: bool) -> None:
        self._tracer = tracer
        self._args = args
        self._end_on_exit = end_on_exit

    def __enter__(self) -> Span:
        span = self._span = self._tracer.start_span(*self._args)
        if _SPAN_KEY is None:
            self._token = _attach(_set_span_in_context(span))
        else:
            # What set_span_in_context does, without its two layers of Python calls.
            values = _get_current().copy()
            values[_SPAN_KEY] = span
            self._token = _attach(_Context(values))
        return span

    def __exit__(self, exc_type, exc, tb) -> None:
        span = self._span
        _detach(self._token)
        if isinstance(exc, Exception):
            args = self._args
            span.record_failure(exc, args[6], args[7])
        if self._end_on_exit:
            span.end()

    def __call__(self, func):
        import functools
        import inspect

        tracer, args, end_on_exit = self._tracer, self._args, self._end_on_exit

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_traced(*a, **kw):
                with _CurrentSpan(tracer, args, end_on_exit):
                    return await func(*a, **kw)

            return async_traced

        @functools.wraps(func)
        def traced(*a, **kw):
            with _CurrentSpan(tracer, args, end_on_exit):
                return func(*a, **kw)

        return traced


def span_scope(span: Span, values: dict, on_error: Any) -> Any:
    """A context manager making current, on the thread that enters it, the current context with
    `span` as its current span and `values` (context key -> value) set: the ContextVar set and
    reset from Rust when the API's runtime context is the standard one. `on_error` is called
    with the exception if the previous context cannot be given back."""
    if _SPAN_KEY is None:
        context = _set_span_in_context(span)
        for key, value in values.items():
            context = _context.set_value(key, value, context)
    else:
        new = _get_current().copy()
        new.update(values)
        new[_SPAN_KEY] = span
        context = _Context(new)
    if _CONTEXT_VAR is not None:
        return _core.ContextScope(_CONTEXT_VAR, context, on_error)
    return _AttachedContext(context)


class _AttachedContext:
    """span_scope() through the API's attach / detach (a runtime context of another kind)."""

    __slots__ = ("context", "token")

    def __init__(self, context: _context.Context) -> None:
        self.context = context
        self.token = None

    def __enter__(self) -> None:
        self.token = _context.attach(self.context)

    def __exit__(self, *exc_info: object) -> None:
        _context.detach(self.token)  # logs a token of another context, as the API does


class TracerProvider(_api.TracerProvider):
    """llmprobe's provider: every tracer it gives feeds the Rust pipeline."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> Tracer:
        return Tracer(instrumenting_module_name, instrumenting_library_version, schema_url, attributes)

    # The SDK provider's methods that applications and tests call on the global provider.
    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return _core.force_flush(timeout_millis / 1000.0)

    def shutdown(self) -> None:
        _core.shutdown()
