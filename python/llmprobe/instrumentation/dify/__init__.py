"""Dify: every app run a root span (_apps: ``workflow {app}`` or ``invoke_agent {app}``, with its
agent's tool calls as TOOL spans, _agent_tools), every workflow run a CHAIN span
``workflow {name}``, every node a TASK span ``{title}({type})``, an LLM node's model call an LLM
span under its node, a knowledge-retrieval node's a RETRIEVER, a tool node's a TOOL, an agent node
an AGENT, a chat app's knowledge retrieval a RETRIEVER (_retrieval), every model call through
Dify's model runtime an LLM, EMBEDDING or RERANKER span (_models).

Dify's workflow engine has no global hook: layers are added per engine. llmprobe adds its layer
(_layer) to every engine as it is built, by wrapping the engine class's ``__init__``, in each of
the spellings Dify has had (each applied when its module is first imported, so that importing
llmprobe imports none of them):

- ``graphon.engine.Engine`` with ``add_layer()`` (graphon 0.8);
- ``graphon.graph_engine.GraphEngine`` with ``layer()`` (graphon 0.5 to 0.7: Dify 1.13, 1.14);
- ``core.workflow.graph_engine.GraphEngine`` with ``layer()``, inside Dify's ``api/`` (Dify 1.9
  to 1.12). Dify before 1.9 has no layers: it is named once in the log, and left alone.

Dify's own node spans (its ``ObservabilityLayer``, on with ``ENABLE_OTEL`` or
``ENABLE_OTEL_FOR_INSTRUMENT``) are switched off on an engine that has llmprobe's layer, so that
no node is traced twice; Dify's other spans go through llmprobe's tracer provider, which is the
global one, and nest with llmprobe's in one tree.
"""

from __future__ import annotations

from llmprobe import _import_hook, _log
from llmprobe.instrumentation import _genai, _wrap
from llmprobe.instrumentation.dify import _agent_tools, _apps, _layer, _models, _retrieval, _steps

SCOPE = "llmprobe.instrumentation.dify"
OWNER = "dify"

_active = False


def _graphon_engine() -> tuple:
    """(the engine class, the name of its method that adds a layer, the layer base class)."""
    try:
        from graphon.engine import Engine
        from graphon.engine.layer.base import Layer

        return Engine, "add_layer", Layer
    except ImportError:
        from graphon.graph_engine import GraphEngine
        from graphon.graph_engine.layers.base import GraphEngineLayer

        return GraphEngine, "layer", GraphEngineLayer


def _dify_engine() -> tuple:
    from core.workflow.graph_engine import GraphEngine
    from core.workflow.graph_engine.layers.base import GraphEngineLayer

    return GraphEngine, "layer", GraphEngineLayer


# (the module whose import makes the engine available, where its classes are, whose it is)
_ENGINES = (
    ("graphon", _graphon_engine, "graphon"),
    ("core.workflow.graph_engine", _dify_engine, "Dify's api (core.workflow.graph_engine)"),
)
# Where the model classes are: graphon's (Dify 1.13 and later), Dify's api/ (1.9 to 1.12).
_MODEL_PACKAGES = ("graphon.model_runtime.model_providers.base", "core.model_runtime.model_providers.__base")


def instrument() -> None:
    """Add llmprobe's layer to every engine built from now on, for each engine spelling as its
    module is imported (now, for those already imported)."""
    global _active
    _active = True
    _genai.refresh()
    tracer = _genai.tracer(SCOPE)
    for module, engine, label in _ENGINES:
        _import_hook.when_imported(module, _patcher(engine, label, tracer))
    _import_hook.when_imported(
        _steps.MODULE, _method_patcher(_steps.TARGET, _steps.submit_wrapper, quiet=True)
    )
    for package in _MODEL_PACKAGES:
        for module, class_name, before, after in _models.CALLS:
            _import_hook.when_imported(
                f"{package}.{module}", _model_patcher(class_name, before, after, tracer)
            )
    for mode, (package, generator, runner) in _apps.MODES.items():
        _import_hook.when_imported(
            f"{package}.app_generator", _method_patcher(generator, _apps.generator_wrapper(mode))
        )
        begin, end, fail = _apps.runner_hooks(mode, tracer)
        hooks = _wrap.hooks("dify app run", begin, end, fail)
        _import_hook.when_imported(f"{package}.app_runner", _method_patcher(runner, hooks))
    _import_hook.when_imported(_apps.QUEUE_MODULE, _patch_queue)
    for key, calls in (("dify agent tool", _agent_tools), ("dify app retrieval", _retrieval)):
        hooks = _wrap.hooks(key, *_call_hooks(calls, tracer))
        _import_hook.when_imported(calls.MODULE, _method_patcher(calls.TARGET, hooks))


def _patcher(engine, label: str, tracer):
    def patch(_module: object) -> None:
        if _active:
            _patch_engine(engine, label, tracer)

    patch.__qualname__ = f"instrument[dify:{label}]"
    return patch


def _model_patcher(class_name: str, before, after, tracer):
    def patch(module: object) -> None:
        if _active:
            _models.wrap_invoke(module, class_name, before, after, tracer, OWNER)

    patch.__qualname__ = f"instrument[dify:{class_name}]"
    return patch


def _call_hooks(calls, tracer) -> tuple:
    """The hooks (for _wrap.hooks) of one call Dify makes in an app's run, from the module `calls`
    (_agent_tools, _retrieval): its _begin(tracer, args, kwargs), _end(state, result) and
    _fail(state, error), looked up at each call (so that fault injection can replace them)."""
    return (
        lambda _instance, args, kwargs: calls._begin(tracer, args, kwargs),
        lambda state, result: calls._end(state, result),
        lambda state, error: calls._fail(state, error),
    )


def _method_patcher(target: str, wrapper, quiet: bool = False):
    """Wrap `target` ("Class.method", or a class: its generate() or run()) of the module; where it
    is missing, say so once in the log (`quiet`: a method only some versions have)."""
    if "." not in target:
        target += ".generate" if target.endswith("Generator") else ".run"

    def patch(module: object) -> None:
        if not _active:
            return
        try:
            _wrap.wrap(module, target, wrapper, owner=OWNER)
        except (AttributeError, ImportError) as exc:
            if not quiet:
                _apps.log_unsupported(target, exc)

    patch.__qualname__ = f"instrument[dify:{target}]"
    return patch


def _patch_queue(module: object) -> None:
    """The queue manager carries an app's run from its generator to its runner (_apps)."""
    if not _active:
        return
    try:
        from core.app.entities.queue_entities import QueueMessageEndEvent, QueueRetrieverResourcesEvent

        handlers = {
            QueueMessageEndEvent: lambda queue, event: _apps.answer(queue, event),
            QueueRetrieverResourcesEvent: lambda _queue, event: _retrieval.documents(event),
        }
        _wrap.wrap(module, "AppQueueManager.__init__", _apps.queue_wrapper, owner=OWNER)
        _wrap.replace(module, "AppQueueManager.publish", _apps.publish_replacement(handlers), owner=OWNER)
    except (AttributeError, ImportError) as exc:
        _apps.log_unsupported("AppQueueManager", exc)


def _patch_engine(engine, label: str, tracer) -> None:
    try:
        engine_class, add, base = engine()
    except ImportError as exc:
        _log.warn(
            f"the workflow engine of {label} has no layers llmprobe knows ({exc}): its workflows are not traced"
        )
        return
    layer_class = _layer.layer_class(base, tracer)

    def init(wrapped, instance, args, kwargs):
        wrapped(*args, **kwargs)
        if _wrap.guarded("dify child engine", _is_child, instance):
            layer = _wrap.guarded("dify inner layer", _layer.inner_layer, layer_class, instance)
        else:
            layer = _wrap.guarded("dify layer", layer_class, instance)
        if layer is not None:
            _wrap.guarded("dify layer", getattr(instance, add), layer)

    _wrap.wrap(engine_class, "__init__", init, owner=OWNER)


def _is_child(engine) -> bool:
    """An engine graphon 0.5 to 0.7 (and Dify 1.9 to 1.12) builds for one step of an iteration or
    loop: the root engine already reports its nodes' events (tagged with the container), so its
    layer only makes its nodes' spans current on its workers (_layer.inner_layer)."""
    graph = getattr(engine, "graph", None) or getattr(engine, "_graph", None)  # Dify 1.9-1.12: private
    root = getattr(graph, "root_node", None)
    node_type = getattr(root, "node_type", None)
    return getattr(node_type, "value", node_type) in ("iteration-start", "loop-start")


def uninstrument() -> None:
    global _active
    _active = False
    _wrap.unwrap_all(OWNER)
