"""Make llmprobe's Dify instrumentation fail on purpose, for the fault-injection tests. Each mode
replaces a set of llmprobe's functions with one that raises, before graphon is imported (the model
runtime's hooks take their functions when graphon's model classes are imported):

- ``hooks``: every function of the instrumentation's modules (what the layer's methods and the
  model hooks call) except the plumbing (making the layer class, wrapping the model classes) and
  what starts the workflow's span, so that the node and model code fails under a running trace;
- ``start``: what starts the workflow's span, so that no run is traced at all;
- ``core``: the Rust boundary: model steps, JSON, metrics, finish reasons, usage;
- ``tracer``: starting any span;
- ``after``: only what runs at a node's or a model call's end, so that spans start and then fail
  half-way.
"""

from __future__ import annotations

from fault_injection import boom, calls, replace_functions  # noqa: F401 - calls: read by the tests

PLUMBING = {"instrument", "uninstrument", "layer_class", "wrap_invoke"}
START = ["_workflow_name", "_system_attributes", "_system", "_state"]
AFTER = {
    "llmprobe.instrumentation.dify._layer": ["_node_ended", "_llm_span", "_end_work", "_outputs"],
    "llmprobe.instrumentation.dify._models": [
        "_after_llm",
        "_after_embedding",
        "_after_rerank",
        "_assemble_llm_stream",
    ],
}


def inject(mode: str) -> None:
    from llmprobe import _tracer
    from llmprobe.instrumentation.dify import _models

    if mode == "hooks":
        for name in ("llmprobe.instrumentation.dify._layer", "llmprobe.instrumentation.dify._models"):
            replace_functions(name, None, PLUMBING | set(START))
    elif mode == "start":
        replace_functions("llmprobe.instrumentation.dify._layer", START)
    elif mode == "after":
        for name, functions in AFTER.items():
            replace_functions(name, functions)
    elif mode == "core":
        from llmprobe import _core

        for name in (
            "ModelStep",
            "to_json",
            "record_genai_metrics",
            "finish_reason",
            "usage",
            "tool_definitions",
        ):
            setattr(_core, name, boom)
    elif mode == "tracer":
        _tracer.Tracer.start_span = _tracer.Tracer.start_child = boom
    # The model classes' hooks are made from this table when graphon's classes are imported.
    _models.CALLS = tuple(
        (
            module,
            class_name,
            getattr(_models, before.__name__, before),
            getattr(_models, after.__name__, after),
        )
        for module, class_name, before, after in _models.CALLS
    )
