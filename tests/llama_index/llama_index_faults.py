"""Make llmprobe's LlamaIndex instrumentation fail on purpose, for the fault-injection tests:
llama_index.core is imported first (which applies the instrumentation: llmprobe's span and event
handlers are added to LlamaIndex's root dispatcher as usual), then each mode replaces a set of
llmprobe's functions, which the handlers look up when they run, with one that raises:

- ``hooks``: every function of the instrumentation's modules (what the handlers' methods call:
  starting and ending runs, reading LlamaIndex's objects, following streams, the model steps)
  except the plumbing (installing the handlers, finding and finishing runs, giving the caller
  its context back), and the table's start;
- ``after``: only what runs at a span's end, so that spans start and then fail half-way;
- ``core``: the Rust boundary: starting a run's span, model steps, content serialisation,
  metrics;
- ``late-core``: the same boundary once the runs have started (their spans made current):
  everything but the table's start.
"""

from __future__ import annotations

from fault_injection import boom, calls, replace_functions  # noqa: F401 - calls: read by the tests

MODULES = (
    "llmprobe.instrumentation.llama_index",
    "llmprobe.instrumentation.llama_index._handlers",
    "llmprobe.instrumentation.llama_index._spans",
    "llmprobe.instrumentation.llama_index._models",
    "llmprobe.instrumentation.llama_index._streams",
    "llmprobe.instrumentation.llama_index._read",
)
# The plumbing: installing and removing the handlers (and the tests' count of what is in flight);
# the lookups of a run by its id and its finish (the table's get and finish are bound methods,
# which replace_functions leaves alone; resolve() is the lookup of an inner span's run); and what
# gives the caller its context back (the table's finish and leave_here, the shared
# instrumentation/_runs module's _leave: none of it is replaced). The generator that follows a
# streamed answer is the stream the application reads once it is followed, and the guard around
# the ends it calls (_ended, the finalizer _dropped): they stay, the ends they call do not.
PLUMBING = {
    "instrument",
    "uninstrument",
    "configure",
    "clear",
    "pending",
    "resolve",
    "_follow",
    "_follow_async",
    "_ended",
    "_dropped",
}
AFTER = {
    "llmprobe.instrumentation.llama_index._spans": ["_end", "_end_streamed", "_failure"],
    "llmprobe.instrumentation.llama_index._models": [
        "answered",
        "end",
        "_end_step",
        "_end_llm",
        "_end_embedding",
        "_answer_text",
    ],
    "llmprobe.instrumentation.llama_index._read": ["usage", "finish_reason", "response_model", "response_id"],
}


def _replace_functions(module_name: str, names: list[str] | None = None) -> None:
    replace_functions(module_name, names, PLUMBING)


def inject(mode: str) -> None:
    import llama_index.core  # noqa: F401 - applies the instrumentation
    from llmprobe.instrumentation.llama_index import _spans

    if mode == "hooks":
        for name in MODULES:
            _replace_functions(name)
        # The table's methods the handlers call (the core's; all but the lookups and finish).
        _spans._start = boom
    elif mode == "after":
        for name, functions in AFTER.items():
            _replace_functions(name, functions)
    elif mode in ("core", "late-core"):
        from llmprobe import _core

        if mode == "core":
            _spans._start = boom
        _core.ModelStep = boom
        _core.to_json = boom
        _core.truncate = boom
        _core.record_genai_metrics = boom
        _core.Call = boom
        _core.media_part = boom
        _core.tool_definitions = boom
    elif mode != "none":
        raise ValueError(mode)


def patched() -> bool:
    """True when llmprobe's handlers are on LlamaIndex's root dispatcher (the faults apply to
    something)."""
    from llama_index.core.instrumentation import get_dispatcher

    root = get_dispatcher()
    handlers = [*root.span_handlers, *root.event_handlers]
    return sum(type(h).__module__.startswith("llmprobe.") for h in handlers) == 2
