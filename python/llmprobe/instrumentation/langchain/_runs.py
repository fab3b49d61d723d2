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

The table of runs and what runs for every run (start, finish, the moves into a run's copy of the
context) are the core's (``_core.RunTable``, rust/src/python/runs.rs), called by the handler with
no Python frame of this module's; the rarer paths are here.
"""

from __future__ import annotations

from contextvars import Token
from typing import Any

from opentelemetry import context as _context

from llmprobe import _core, _log, _tracer
from llmprobe.instrumentation import _genai

# A run that has not ended this long after its start is ended as abandoned.
STALE_AFTER_S = 3600
_STALE_AFTER_NS = STALE_AFTER_S * 1_000_000_000

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

Run = _core.Run
# The runs in flight (set by configure()), and its methods the handler calls:
#   start(run_id, parent_run_id, kind, name, span_name, attributes, span_kind=0, model_step=False)
#     -> Run: the run's span started (under its parent run's, else the span current here) and
#     made current; `model_step`: the run is a model call, which an SDK's hook may trace itself
#     (_core.ModelStep);
#   finish(run_id) -> Run | None: the run forgotten and its caller's context given back (None:
#     not a run in flight);
#   get(run_id) -> Run | None;
#   enter_copy(context, config): `context` is the copy of the current context LangChain runs the
#     code of the run `config`'s callbacks name as their parent in: the run's span is made current
#     there, its caller's context given back here (see _config_context);
#   leave_here(run): the run's caller's context given back now, if the run's context is current
#     here and its token was made here (a model stream at its first token).
TABLE: Any = None
start: Any = None
finish: Any = None
get: Any = None
enter_copy: Any = None
leave_here: Any = None


def configure(tracer: Any) -> None:
    """Make the table of runs, whose spans `tracer` scopes."""
    global TABLE, start, finish, get, enter_copy, leave_here
    TABLE = _core.RunTable(
        {
            "get_current": _get_current,
            "attach": _set_current,
            "reset": _reset_current,
            "span_key": _SPAN_KEY,
            "run_key": _RUN_KEY,
            "model_step_key": _MODEL_STEP_KEY,
            "context_class": _Context,
            "span_class": _tracer.Span,
            "scope": tracer._scope,
            "version": tracer._version,
            "tracer": tracer,
            "leave": _leave,
            "sweep": _sweep,
        }
    )
    start, finish, get = TABLE.start, TABLE.finish, TABLE.get
    enter_copy, leave_here = TABLE.enter_copy, TABLE.leave_here


def pending() -> int:
    """The runs in flight (for tests of memory)."""
    return len(TABLE.runs) if TABLE is not None else 0


def current() -> Any:
    """The current OpenTelemetry context."""
    return _get_current()


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


def enter_started(managers: list | tuple) -> None:
    """Make the runs of these just-started run managers current here, where their start
    callbacks ran elsewhere (in tasks of their own). Runs started together share one model step,
    as where their starts ran in one context (see RunTable.start)."""
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


def leave_run(run_id: Any) -> None:
    """Give the run's caller its context back here (the run's end follows)."""
    run = get(run_id)
    if run is not None and run.token is not None:
        token, run.token = run.token, None
        _leave(run, token)


def _leave(run: Run, token: Token) -> None:
    """Give the run's caller its context back, where the fast path (the run ends in the context
    it started in: its token given back) could not.

    Where it cannot be, the run's context is made to read as its caller's, in place: an
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
    """End the runs started longer than the bound ago (the table is in start order)."""
    runs = TABLE.runs
    stale = []
    for run in runs.values():
        if now - run.started < _STALE_AFTER_NS:
            break
        stale.append(run)
    for run in stale:
        runs.pop(run.key, None)
        try:
            run.span.set_attribute("llmprobe.run.abandoned", True)
            run.span.end()
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain stale run", exc)


def clear() -> None:
    """Forget every run in flight (uninstrument)."""
    if TABLE is not None:
        TABLE.runs.clear()
