"""Make llmprobe's LangChain instrumentation fail on purpose, for the fault-injection tests:
langchain_core is imported first (which applies the instrumentation: the handler and the
wrappers are installed as usual), then each mode replaces a set of llmprobe's functions, which
the handler and the wrappers look up when they run, with one that raises:

- ``hooks``: every function of the instrumentation's modules (what the handler's methods and the
  wrappers call: starting and ending runs, reading LangChain's objects, making spans current)
  except the plumbing that installs the handler and the wrappers;
- ``after``: only what runs at a run's end, so that spans start and then fail half-way;
- ``core``: the Rust boundary: making spans, model steps, content serialisation, metrics.
"""

from __future__ import annotations

from fault_injection import boom, calls, replace_functions  # noqa: F401 - calls: read by the tests

MODULES = (
    "llmprobe.instrumentation.langchain._handler",
    "llmprobe.instrumentation.langchain._runs",
    "llmprobe.instrumentation.langchain._read",
    "llmprobe.instrumentation.langchain._models",
    "llmprobe.instrumentation.langchain._async",
)
# The plumbing: installing the handler and the wrappers, the wrappers themselves (they must
# exist for the test to mean anything), and what gives the caller its context back at a run's
# end (as a model call's hook does in the core, it is kept to a few lines of its own, before
# anything that could fail).
PLUMBING = {
    "get",
    "finish",
    "leave_run",
    "leave",
    "_leave",
    "_reset",
    "_inside",
    "instrument",
    "uninstrument",
    "configure",
    "clear",
    "_sync_wrapper",
    "_async_wrapper",
    "_patch_class",
    "_patch_hierarchy",
    "_subclasses",
    "bind",
    "_started",
    "_ending",
    "_token",
    "pending",
}
AFTER = {
    "llmprobe.instrumentation.langchain._handler": [
        "_end_chain",
        "_end_model",
        "_failed",
        "_pending_call_id",
    ],
    "llmprobe.instrumentation.langchain._read": ["answer"],
    "llmprobe.instrumentation.langchain._models": ["_finish"],
}


def _replace_functions(module_name: str, names: list[str] | None = None) -> None:
    replace_functions(module_name, names, PLUMBING)


def inject(mode: str) -> None:
    import langchain_core  # noqa: F401 - applies the instrumentation
    from llmprobe.instrumentation.langchain import _runs

    if mode == "hooks":
        for name in MODULES:
            _replace_functions(name)
        # The table's methods the handler calls (the core's; all but the plumbing's finish).
        _runs.start = _runs.enter_copy = _runs.leave_here = boom
    elif mode == "after":
        for name, functions in AFTER.items():
            _replace_functions(name, functions)
    elif mode == "core":
        from llmprobe import _core

        _runs.start = _runs.enter_copy = _runs.leave_here = boom
        _core.ModelStep = boom
        _core.to_json = boom
        _core.langchain_json = _core.langchain_output = _core.langchain_documents = boom
        _core.truncate = boom
        _core.record_genai_metrics = boom
        _core.Call = boom
    elif mode != "none":
        raise ValueError(mode)


def patched() -> bool:
    """True when llmprobe's handler is among LangChain's configure hooks (the faults apply to
    something)."""
    from langchain_core.tracers.context import _configure_hooks

    return any(
        type(hook[0].get()).__module__.startswith("llmprobe.")
        for hook in _configure_hooks
        if hook[0].get() is not None
    )
