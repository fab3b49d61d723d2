"""LangChain's runs in flight, in the table of runs (see instrumentation/_runs): a run is known by
LangChain's ``run_id``, its parent by ``parent_run_id``.

The handler runs inline (``run_inline``), also under async callback managers, which would
otherwise run a synchronous handler in an executor thread, in a context of its own (which is why
the async case loses its nesting in other agents).
"""

from __future__ import annotations

from typing import Any

from llmprobe.instrumentation import _runs
from llmprobe.instrumentation._runs import Run

__all__ = ["Run"]

# The runs in flight (set by configure()), and its methods the handler calls (see
# _runs.new_table).
TABLE: Any = None
start: Any = None
finish: Any = None
get: Any = None
enter_copy: Any = None
leave_here: Any = None


def configure(tracer: Any) -> None:
    """Make the table of runs, whose spans `tracer` scopes."""
    global TABLE, start, finish, get, enter_copy, leave_here
    TABLE = _runs.new_table(tracer, "langchain")
    start, finish, get = TABLE.start, TABLE.finish, TABLE.get
    enter_copy, leave_here = TABLE.enter_copy, TABLE.leave_here


def pending() -> int:
    """The runs in flight (for tests of memory)."""
    return len(TABLE.runs) if TABLE is not None else 0


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
    current = _runs._get_current()
    if current is not last.context and last.token is not None:
        last.previous = current
        last.token = _runs._set_current(last.context)


def leave_run(run_id: Any) -> None:
    """Give the run's caller its context back here (the run's end follows)."""
    run = get(run_id)
    if run is not None and run.token is not None:
        token, run.token = run.token, None
        _runs._leave(run, token)


def clear() -> None:
    """Forget every run in flight (uninstrument)."""
    if TABLE is not None:
        TABLE.runs.clear()
