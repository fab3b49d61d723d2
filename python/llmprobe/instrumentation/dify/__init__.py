"""Dify's workflow engine, ``graphon`` (Dify 1.13 and later): every workflow run a CHAIN span
``workflow {name}``, every node a TASK span ``{title}({type})``, an LLM node's model call an LLM
span under its node.

graphon has no global hook: layers are added per engine. llmprobe adds its layer (_layer) to
every engine as it is built, by wrapping the engine class's ``__init__``: ``graphon.engine.Engine``
with ``add_layer()`` (graphon 0.8), ``graphon.graph_engine.GraphEngine`` with ``layer()`` (0.5 to
0.7, which Dify 1.13 and 1.14 pin).

Not yet: Dify's own runs (the app runners, ModelInstance, the plugin daemon, Celery), the engine
inside Dify 1.9 to 1.12 (``core.workflow.graph_engine``), retrieval and tool nodes as RETRIEVER and
TOOL spans, the context of a node's worker thread (an SDK call made in a node is not under it).
"""

from __future__ import annotations

from llmprobe import _log
from llmprobe.instrumentation import _genai, _wrap
from llmprobe.instrumentation.dify import _layer

SCOPE = "llmprobe.instrumentation.dify"
OWNER = "dify"


def _engine_class() -> tuple:
    """(the engine class, the name of its method that adds a layer, the layer base class)."""
    try:
        from graphon.engine import Engine
        from graphon.engine.layer.base import Layer

        return Engine, "add_layer", Layer
    except ImportError:
        from graphon.graph_engine import GraphEngine
        from graphon.graph_engine.layers.base import GraphEngineLayer

        return GraphEngine, "layer", GraphEngineLayer


def instrument() -> None:
    """Add llmprobe's layer to every graphon engine built from now on (graphon is imported)."""
    try:
        engine_class, add, base = _engine_class()
    except ImportError as exc:
        _log.warn(f"this graphon has no engine llmprobe knows ({exc}): Dify's workflows are not traced")
        return
    _genai.refresh()
    layer_class = _layer.layer_class(base, _genai.tracer(SCOPE))

    def init(wrapped, instance, args, kwargs):
        wrapped(*args, **kwargs)
        if _wrap.guarded("dify child engine", _is_child, instance):
            layer = _wrap.guarded("dify inner layer", _layer.inner_layer, layer_class)
        else:
            layer = _wrap.guarded("dify layer", layer_class)
        if layer is not None:
            _wrap.guarded("dify layer", getattr(instance, add), layer)

    _wrap.wrap(engine_class, "__init__", init, owner=OWNER)


def _is_child(engine) -> bool:
    """An engine graphon 0.5 to 0.7 builds for one step of an iteration or loop: the root engine
    already reports its nodes' events (tagged with the container), so its layer only makes its
    nodes' spans current on its workers (_layer.inner_layer)."""
    graph = getattr(engine, "graph", None)
    root = getattr(graph, "root_node", None)
    node_type = getattr(root, "node_type", None)
    return getattr(node_type, "value", node_type) in ("iteration-start", "loop-start")


def uninstrument() -> None:
    _wrap.unwrap_all(OWNER)
