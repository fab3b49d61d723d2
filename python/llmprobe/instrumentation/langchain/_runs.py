"""LangChain runs in flight: their spans, their parents, and the context their code runs in.

A run is known by LangChain's ``run_id``; its parent is LangChain's ``parent_run_id``, not
whatever span happens to be current on the thread that reports the run, so runs in thread pools
(``batch``, parallel branches) and in asyncio tasks nest as LangChain nested them. A run without
a parent LangChain knows (the root of a chain, or a run whose parent was started before llmprobe)
nests under the span current where it started: the caller's (a web request's).

A run's span is also made the current span where the run starts: LangChain runs the run's own
code (a chain step, a graph node, a tool, a model's request) right after its start callback and
in that context, or in a copy of it made after (a step's private context, an asyncio task), so
whatever that code causes (an SDK call, an HTTP call, a user's span) nests under the run. The
handler runs inline (``run_inline``) for this, also under async callback managers, which would
otherwise run a synchronous handler in an executor thread, in a context of its own, which is
why the async case loses its nesting in other agents. At the run's end the caller's context comes
back.

A run that never reports its end (its task killed without a trace, a stream kept forever) is
ended after ``STALE_AFTER_S`` so that a long-running server's memory stays flat.
"""

from __future__ import annotations

from contextvars import Token
from time import perf_counter_ns
from typing import Any

from opentelemetry import context as _context

from llmprobe import _core, _log, _tracer
from llmprobe.instrumentation import _genai

# A run that has not ended this long after its start is ended as abandoned.
STALE_AFTER_S = 3600
_STALE_AFTER_NS = STALE_AFTER_S * 1_000_000_000
# How often the table is looked through for such runs (on a run's start).
_SWEEP_EVERY_NS = 60 * 1_000_000_000

_CoreSpan = _core.Span
_Span = _tracer.Span
_Context = _context.Context
_SPAN_KEY = _tracer._SPAN_KEY
if _SPAN_KEY is None:  # the API's own key, when the bridge does not read it directly
    from opentelemetry.trace.propagation import _SPAN_KEY
_MODEL_STEP_KEY = _genai.MODEL_STEP_KEY
# The run whose span is current, in the context (for the runs started under it).
_RUN_KEY = _context.create_key("llmprobe-langchain-run")
_EMPTY = _Context()
# The API's Context refuses item assignment; the run's own context is changed in place at its end
# (see _leave).
_dict_set = dict.__setitem__

if _tracer._CONTEXT_VAR is not None and _tracer._SPAN_KEY is not None:
    _get_current = _tracer._CONTEXT_VAR.get
    _set_current = _tracer._CONTEXT_VAR.set
    _reset_current = _tracer._CONTEXT_VAR.reset
    _DIRECT = True
else:  # a runtime context other than contextvars: the API's functions
    _get_current = _context.get_current
    _set_current = _context.attach
    _reset_current = _context.detach
    _DIRECT = False


class Run:
    """One LangChain run in flight."""

    __slots__ = ("context", "data", "key", "kind", "name", "parent", "previous", "span", "started", "token")

    # A model run's (ModelRun's) own; None for the others.
    step = None

    def __init__(self, key: int, kind: str, name: str, parent: Run | None) -> None:
        self.key = key
        self.kind = kind  # the contract's span kind so far (CHAIN, LLM, TOOL, ...)
        self.name = name  # the run's name (LangChain's)
        self.parent = parent
        self.data: Any = None  # what the run's end needs from its start
        self.started = perf_counter_ns()
        # Set by start(): span, context (made current for the run), previous (the context
        # current where it started), token (to give that back).


class ModelRun(Run):
    """A chat model's or an LLM's run: also its model step and how it streamed."""

    __slots__ = ("first_token", "step", "streamed")

    def __init__(self, key: int, kind: str, name: str, parent: Run | None) -> None:
        Run.__init__(self, key, kind, name, parent)
        self.step: Any = None  # its _core.ModelStep
        self.first_token: int | None = None
        self.streamed = False


# run_id.int -> Run, in start order.
_runs: dict[int, Run] = {}
_last_sweep = perf_counter_ns()
_tracer_: Any = None  # the instrumentation's Tracer (set by configure())


def configure(tracer: Any) -> None:
    global _tracer_
    _tracer_ = tracer


def get(run_id: Any) -> Run | None:
    return _runs.get(run_id.int) if run_id is not None else None


def pending() -> int:
    """The runs in flight (for tests of memory)."""
    return len(_runs)


def start(
    run_id: Any,
    parent_run_id: Any,
    kind: str,
    name: str,
    span_name: str,
    attributes: dict,
    span_kind: int = 0,
    model_step: bool = False,
) -> Run:
    """Start a run's span (under its parent run's, else under the current span) and make it
    current. `model_step`: the run is a model call, which an SDK's hook may trace itself (see
    _core.ModelStep)."""
    parent = _runs.get(parent_run_id.int) if parent_run_id is not None else None
    current = base = _get_current()
    if parent is None:
        # A root run started where another root run's start left its context (a batch starts
        # all its runs, then runs them): that run is a sibling, not the parent.
        owner = base.get(_RUN_KEY)
        while owner is not None and owner.parent is None and base is owner.context:
            base = owner.previous
            owner = base.get(_RUN_KEY)
    run = (ModelRun if model_step else Run)(run_id.int, kind, name, parent)
    span = start_span(span_name, attributes, span_kind, base, parent.span if parent is not None else None)
    run.span = span
    run.previous = current
    # The caller's context with the run's span (and the run, and a model run's step) in it.
    context = run.context = _Context(base)
    _dict_set(context, _SPAN_KEY, span)
    _dict_set(context, _RUN_KEY, run)
    if model_step:
        run.step = step = model_step_in(current, parent)
        _dict_set(context, _MODEL_STEP_KEY, step)
    run.token = _set_current(context)
    _runs[run.key] = run
    if run.started - _last_sweep > _SWEEP_EVERY_NS:
        _sweep(run.started)
    return run


def current() -> Any:
    """The current OpenTelemetry context."""
    return _get_current()


def start_span(span_name: str, attributes: dict, span_kind: int, current: Any, parent_span: Any = None) -> Any:
    """A span of the instrumentation's scope under `parent_span`, or under the span current in
    `current` when it is None."""
    if parent_span is None:
        parent_span = current.get(_SPAN_KEY)
    if parent_span is None or isinstance(parent_span, _CoreSpan):
        span = _Span(span_name, span_kind, parent_span, attributes, None, None, _tracer_._scope, _tracer_._version)
        trace_state = getattr(parent_span, "_trace_state", None)
        if trace_state:
            span._trace_state = trace_state
        return span
    # A span from elsewhere (a remote parent, a non-recording one): the Tracer takes it.
    return _tracer_.start_span(span_name, _Context({_SPAN_KEY: parent_span}), span_kind, attributes)


def enter(current: Any, values: dict) -> tuple:
    """Make `current` plus `values` (a span under _SPAN_KEY, ...) the current context: (the
    context, the token to leave it)."""
    context = _Context(current)
    for key, value in values.items():
        _dict_set(context, key, value)
    return context, _set_current(context)


def leave(context: Any, token: Token) -> None:
    """Give back the context that was current before enter(), unless the context moved on."""
    if _get_current() is context:
        _reset(token)


def model_step_in(current: Any, parent: Run | None = None) -> Any:
    """The ModelStep of a model run started in `current`. Several model runs started together in
    one context (a generate() over several prompts, which then makes one request for all of them
    or one after the other) share one: the SDK's calls are made in the last one's context. A model
    run inside another's (a model wrapping a model) tells the outer one of the calls too."""
    enclosing = current.get(_MODEL_STEP_KEY)
    if enclosing is None:
        return _core.ModelStep()
    owner = current.get(_RUN_KEY)
    if owner is not None and owner.step is enclosing and owner.parent is parent and owner.key in _runs:
        return enclosing
    return _core.ModelStep(enclosing)


def enter_started(managers: list | tuple) -> None:
    """Make the runs of these just-started run managers current here, where their start
    callbacks ran elsewhere (in tasks of their own). Runs started together share one model step,
    as where their starts ran in one context (see model_step_in)."""
    runs = [run for run in (get(m.run_id) for m in managers) if run is not None]
    if not runs:
        return
    last = runs[-1]
    for run in runs[:-1]:
        if run.step is not None:
            run.step = last.step
    current = _get_current()
    if current is not last.context and last.token is not None:
        last.previous = current
        last.token = _set_current(last.context)


def enter_copy(context: Any, config: Any) -> None:
    """`context` is a copy of the current context in which LangChain will run the code of the
    run `config`'s callbacks name as their parent: the run's span is made current there, and its
    caller's context is given back here (see _config_context)."""
    callbacks = config.get("callbacks") if type(config) is dict else None
    run_id = getattr(callbacks, "parent_run_id", None)
    run = _runs.get(run_id.int) if run_id is not None else None
    if run is None:
        return
    if _get_current() is run.context:
        leave_here(run)  # the copy has the run's context already
    else:
        context.run(_set_current, run.context)


def leave_here(run: Run) -> None:
    """Give the run's caller its context back now, if the run's context is current here and its
    token was made here (a model stream at its first token: its request is made, and its consumer
    runs between chunks; the caller of set_config_context once the run's code has its copy).
    Elsewhere (a copy of that context, where LangChain runs a model's stream in a task of its own)
    the caller's context is not here to give back, and the run's end gives it back where it is."""
    token = run.token
    if token is not None and _get_current() is run.context:
        try:
            _reset_current(token)
        except (ValueError, RuntimeError):
            return
        run.token = None


def leave_run(run_id: Any) -> None:
    """Give the run's caller its context back here (the run's end follows)."""
    run = get(run_id)
    if run is not None and run.token is not None:
        token, run.token = run.token, None
        _leave(run, token)


def finish(run_id: Any) -> Run | None:
    """Forget the run and give its caller's context back: the run, None when it is not one in
    flight (it ended already, or started before llmprobe)."""
    run = _runs.pop(run_id.int, None)
    if run is None:
        return None
    token = run.token
    if token is not None:
        run.token = None
        if _get_current() is run.context:
            try:
                _reset_current(token)
                return run
            except (ValueError, RuntimeError):
                pass
        _leave(run, token)
    return run


def _leave(run: Run, token: Token) -> None:
    """Give the run's caller its context back.

    Where the run ends in the context it started in (a synchronous run), its token is given
    back. Where it cannot be, the run's context is made to read as its caller's, in place: an
    async run's end callback runs in a copy of the caller's context (LangChain shields it in a
    task of its own), from which the caller's own context cannot be set, and a stream's end may
    come in its consumer's. Every context still holding the run's (the caller's, copies made
    since) then sees the caller's span again, and nothing is left current that has ended."""
    current = _get_current()
    if current is run.context or _inside(current, run):
        try:
            _reset_current(token)
            return
        except (ValueError, RuntimeError):
            pass  # a token of another context
    context, previous = run.context, run.previous
    for key in tuple(context):
        if key not in previous:
            _dict_set(context, key, None)
    for key, value in previous.items():
        _dict_set(context, key, value)


def _reset(token: Token) -> None:
    try:
        _reset_current(token)
    except (ValueError, RuntimeError):
        # Ended in another context that inherited the run's: put the caller's back there.
        old = token.old_value if _DIRECT else None
        _set_current(_EMPTY if old is None or old is Token.MISSING else old)


def _inside(current: Any, run: Run) -> bool:
    """Whether `current` is the context of a run under `run` (a child that never ended)."""
    inner = current.get(_RUN_KEY) if isinstance(current, dict) else None
    while inner is not None:
        if inner is run:
            return True
        inner = inner.parent
    return False


def _sweep(now: int) -> None:
    global _last_sweep
    _last_sweep = now
    stale = []
    for run in _runs.values():
        if now - run.started < _STALE_AFTER_NS:
            break
        stale.append(run)
    for run in stale:
        _runs.pop(run.key, None)
        try:
            run.span.set_attribute("llmprobe.run.abandoned", True)
            run.span.end()
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain stale run", exc)


def clear() -> None:
    """Forget every run in flight (uninstrument)."""
    _runs.clear()

