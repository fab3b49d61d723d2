"""A framework's runs in flight: their spans, their parents, and the context their code runs in
(LangChain's runs, LlamaIndex's spans).

A run is known by the framework's id for it (LangChain's ``run_id``, LlamaIndex's span id); its
parent is the framework's parent id, not whatever span happens to be current on the thread that
reports the run, so runs in thread pools and in asyncio tasks nest as the framework nested them.
A run without a parent the framework knows (the root of a chain, or a run whose parent was
started before llmprobe) nests under the span current where it started: the caller's (a web
request's).

A run's span is also made the current span where the run starts: the framework runs the run's
own code (a chain step, a graph node, a tool, a model's request) right after announcing its
start, and in that context or in a copy of it made after (an asyncio task), so whatever that
code causes (an SDK call, an HTTP call, a user's span) nests under the run. At the run's end the
caller's context comes back.

A run that never reports its end (its task killed without a trace, a stream kept forever) is
ended after ``STALE_AFTER_S`` so that a long-running server's memory stays flat.

The table of runs and what runs for every run (start, finish, the moves into a run's copy of the
context) are the core's (``_core.RunTable``, rust/src/python/runs.rs), called by the framework's
handler with no Python frame of this module's; the rarer paths are here.
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
_RUN_KEY = _context.create_key("llmprobe-framework-run")
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


def new_table(tracer: Any, label: str, forget: Any = None) -> Any:
    """A table of runs whose spans `tracer` scopes (`label` names its failures in the log;
    `forget(run)`, when given, drops what the framework keeps for a run the sweep ended). Its
    methods the handlers call:

    - start(run_id, parent_run_id, kind, name, span_name, attributes, span_kind=0,
      model_step=False) -> Run: the run's span started (under its parent run's, else the span
      current here) and made current; `model_step`: the run is a model call, which an SDK's hook
      may trace itself (_core.ModelStep);
    - finish(run_id) -> Run | None: the run forgotten and its caller's context given back (None:
      not a run in flight);
    - get(run_id) -> Run | None;
    - enter_copy(context, config): LangChain's (see langchain/_config_context);
    - leave_here(run): the run's caller's context given back now, if the run's context is current
      here and its token was made here (a model stream at its first token);
    - span(span_name, attributes, span_kind, current), model_step(current): an operation's span
      and model step outside the table (an embeddings call's).
    """
    table = None

    def sweep(now: int) -> None:
        _sweep(table, label, now, forget)

    table = _core.RunTable(
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
            "sweep": sweep,
        }
    )
    return table


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


def _sweep(table: Any, label: str, now: int, forget: Any = None) -> None:
    """End the runs started longer than the bound ago (the table is in start order)."""
    runs = table.runs
    stale = []
    for run in runs.values():
        if now - run.started < _STALE_AFTER_NS:
            break
        stale.append(run)
    for run in stale:
        runs.pop(run.key, None)
        try:
            token, run.token = run.token, None
            if token is not None:
                # Still current where it started (a stream never read): ended, it reads as its
                # caller's context there from now on.
                _leave(run, token)
            run.span.set_attribute("llmprobe.run.abandoned", True)
            run.span.end()
            if forget is not None:
                forget(run)
        except Exception as exc:  # noqa: BLE001
            _log.log_once(label + " stale run", exc)
