"""llmprobe's graphon layer: one per engine, turning the engine's events into spans.

The engine reports a run on three kinds of threads: the graph's start and end on the thread that
reads ``engine.run()``, every node and stream event on the engine's dispatcher thread, and a node's
own hooks on the worker thread that runs it (where a container node may end on another worker
than it started on). Each node's span is parented explicitly on its workflow's span (or its
iteration's or loop's), never through a context carried between threads:

- the worker starts it, as the node begins, and makes it current on the worker for as long as the
  node runs there (graphon 0.8's ``node_run_context``, entered and left on one worker; 0.5's
  ``on_node_run_start`` / ``on_node_run_end``, which 0.5 calls on one worker), so that what the
  node calls (an SDK llmprobe traces, an HTTP client) nests under it. A model node's context also
  holds a ``_core.ModelStep``: when its model call is traced by an SDK's hook, that span is the
  LLM span and the node its TASK parent; otherwise the node's LLM span is made from its result.
- the dispatcher fills and ends it from the node's events, with the events' own end times;
  a node no worker announced (an iteration step's, in graphon 0.5) is started there from its
  event, with the event's start time.
"""

from __future__ import annotations

import contextlib
import weakref
from datetime import datetime, timedelta, timezone
from typing import Any

from opentelemetry import context as _context
from opentelemetry import trace

from llmprobe import _core, _log
from llmprobe._tracer import span_scope
from llmprobe.instrumentation import _genai
from llmprobe.instrumentation._messages import text_part
from llmprobe.instrumentation.dify import _apps

_CLIENT = trace.SpanKind.CLIENT.value
# Nodes that call a model themselves, and whose result reports the call (model, usage, prompts).
_MODEL_NODES = frozenset(("llm", "question-classifier", "parameter-extractor"))
# A container's start and end markers: graphon 0.8 runs them but reports no events of theirs, so
# their workers start no span (0.5 reports them: their spans come from the events).
_MARKERS = frozenset(("iteration-start", "loop-start", "loop-end"))
# Nodes whose work is a span of its own under the node, current while the node runs (so that the
# embeddings, reranking and HTTP requests it makes nest under it): (span kind, operation).
_WORK_SPANS = {"knowledge-retrieval": ("RETRIEVER", "retrieval"), "tool": ("TOOL", "execute_tool")}
# The run a node's worker runs for, in the node's context: graphon 0.5 builds an iteration's or a
# loop's engine on the container's worker, whose layer (inner_layer) finds its run there.
_RUN_KEY = _context.create_key("llmprobe-dify-run")


_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _ns(moment: Any) -> int | None:
    """An event's time (graphon's naive UTC datetimes) in ns since the epoch: one subtraction,
    exact to the microsecond (a sixth of what making it aware and asking its timestamp costs)."""
    if not isinstance(moment, datetime):
        return None
    return ((moment - (_EPOCH if moment.tzinfo is None else _EPOCH_UTC)) // _MICROSECOND) * 1000


def _json(value: Any) -> str:
    return _core.to_json(value) if not isinstance(value, str) else _genai.content_text(value)


class _Run:
    """One engine's run: its workflow span and the spans of its nodes in flight. The worker
    threads and the dispatcher share the dicts: each entry is set with one dict operation (atomic
    under the GIL), never read-modify-written."""

    __slots__ = ("by_node_id", "failure", "nodes", "span", "started", "steps", "tokens", "work")

    def __init__(self, span: Any) -> None:
        self.span = span
        self.nodes: dict = {}  # execution id -> span
        self.by_node_id: dict = {}  # node id -> span (0.5's in_iteration_id / in_loop_id)
        self.failure: str | None = None
        self.started: dict = {}  # execution id -> (title, tool provider) from the node's start
        self.steps: dict = {}  # execution id -> the model node's _core.ModelStep
        self.tokens: dict = {}  # execution id -> the node's span_scope(), entered (graphon 0.5)
        self.work: dict = {}  # execution id -> the retrieval's or tool call's span (_WORK_SPANS)


# What node_run_context gives when there is no run to trace (a layer the engine never started).
_NO_CONTEXT = contextlib.nullcontext()


def layer_class(base: type, tracer: Any) -> type:
    """The layer class for the engine's layer base class `base` (0.5's abstract GraphEngineLayer
    or 0.8's Layer), making spans with `tracer`."""

    class LlmprobeLayer(base):  # type: ignore[misc, valid-type]
        def __init__(self, engine: Any, run: _Run | None = None, parent: Any = None) -> None:
            super().__init__()
            # A weak reference: the engine holds its layers, and a strong one would leave every
            # finished engine (its graph, its state) to the cyclic garbage collector.
            try:
                self._engine = weakref.ref(engine)
            except TypeError:
                self._engine = lambda: engine
            self._run: _Run | None = run
            # An inner engine's layer (graphon 0.5's iteration or loop step): only its nodes'
            # contexts, under `parent` (the container's span); the root's layer reports the rest.
            self._inner = run is not None
            self._parent = parent
            if not self._inner:
                # Every event of the engine comes to on_event, several per node (stream chunks
                # included): the router calls a handler only for the few that llmprobe reads.
                self.on_event = self._events = _core.EventRouter(
                    _EVENTS, _EVENT_CLASSES, globals(), tracer, _event_failed
                )

        # ---- the graph (the thread reading engine.run()) --------------------------------------

        def on_graph_start(self) -> None:
            try:
                _quiet_dify_node_spans(self._engine())
            except Exception as exc:  # noqa: BLE001
                _log.log_once("dify otel layer", exc)
            if self._inner:
                return
            try:
                attributes = {
                    "gen_ai.span.kind": "CHAIN",
                    "gen_ai.operation.name": "invoke_workflow",
                    "gen_ai.framework": "dify",
                }
                system = _system(self)
                _system_attributes(system, attributes)
                # An advanced-chat or workflow app's run (Dify's api/): this span is the app's.
                app = _apps.workflow_app()
                if app is None:
                    name = _workflow_name(system)
                else:
                    name = app.name
                    attributes.update(app.attributes)
                span = tracer.start_span("workflow " + name, attributes=attributes)
                # PROFILER_GENAI_SPLITAPP_ENABLE: the app's spans (all started under this one) are
                # its own service; a no-op when the setting is off.
                span.set_service_name(name)
                self._run = self._events.run = _Run(span)
            except Exception as exc:  # noqa: BLE001
                _log.log_once("dify graph start", exc)

        def on_graph_end(self, error: Exception | None) -> None:
            if self._inner:
                return
            run, self._run = self._run, None
            if run is None:
                return
            self._events.run = None
            try:
                # Work and nodes whose end never came (an abort), the work first.
                for span in [*run.work.values(), *run.nodes.values()]:
                    span.set_attribute("llmprobe.run.abandoned", True)
                    span.end()
                if error is not None and run.failure is None:
                    run.span.record_exception(error)
                    run.span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
                run.span.end()
            except Exception as exc:  # noqa: BLE001
                _log.log_once("dify graph end", exc)

        # ---- nodes (the dispatcher thread) -------------------------------------------------------

        def on_event(self, event: Any) -> None:
            # An inner engine's layer (the root layer's own is its EventRouter, set in __init__).
            return None

        # ---- nodes (their worker threads) ----------------------------------------------------

        if hasattr(base, "node_run_context"):  # graphon 0.8: the context for one worker task

            def node_run_context(self, node: Any, *, parent_execution_id: str | None = None) -> Any:
                run = self._run
                if run is None:
                    return _NO_CONTEXT
                try:
                    parent = run.nodes.get(parent_execution_id) if parent_execution_id else None
                    return _node_scope(tracer, run, node, parent)
                except Exception as exc:  # noqa: BLE001
                    _log.log_once("dify node context", exc)
                    return _NO_CONTEXT

            def on_node_run_start(self, node: Any) -> None:
                return None

            def on_node_run_end(self, node: Any, error: Any, result_event: Any = None) -> None:
                return None

        else:  # graphon 0.5 to 0.7, Dify 1.9 to 1.12: both hooks on the node's one worker

            def on_node_run_start(self, node: Any) -> None:
                run = self._run
                if run is None:
                    return
                try:
                    scope = _node_scope(tracer, run, node, self._parent)
                    scope.__enter__()
                    run.tokens[node.execution_id] = scope
                except Exception as exc:  # noqa: BLE001
                    _log.log_once("dify node start", exc)

            def on_node_run_end(self, node: Any, error: Any, result_event: Any = None) -> None:
                run = self._run
                if run is None:
                    return
                scope = run.tokens.pop(getattr(node, "execution_id", None), None)
                if scope is not None:
                    scope.__exit__(None, None, None)

    LlmprobeLayer.__name__ = LlmprobeLayer.__qualname__ = "LlmprobeLayer"
    return LlmprobeLayer


def _graph_failed(tracer: Any, run: _Run, event: Any, _: Any) -> None:
    run.failure = str(getattr(event, "error", "") or "workflow failed")
    run.span.set_status(trace.Status(trace.StatusCode.ERROR, run.failure))
    run.span.set_attribute("error.type", "WorkflowFailed")


def _graph_succeeded(tracer: Any, run: _Run, event: Any, _: Any) -> None:
    _outputs(run.span, getattr(event, "outputs", None))


def _graph_stopped(tracer: Any, run: _Run, event: Any, _: Any) -> None:
    name = type(event).__name__
    run.span.set_attribute("dify.workflow.status", "aborted" if "Aborted" in name else "paused")
    run.failure = run.failure or name


# The engine's events llmprobe reads, by class name (graphon's and Dify's classes alike): the
# handler's name in this module (looked up when the event comes, so that the fault-injection tests
# can replace it) and its last argument. Called as handler(tracer, run, event, argument).
_EVENTS = {
    "NodeRunStartedEvent": ("_node_started", None),
    "NodeRunSucceededEvent": ("_node_ended", None),
    "NodeRunFailedEvent": ("_node_ended", "failed"),
    "NodeRunExceptionEvent": ("_node_ended", "exception"),
    "GraphRunFailedEvent": ("_graph_failed", None),
    "GraphRunSucceededEvent": ("_graph_succeeded", None),
    "GraphRunPartialSucceededEvent": ("_graph_succeeded", None),
    "GraphRunAbortedEvent": ("_graph_stopped", None),
    "GraphRunPausedEvent": ("_graph_stopped", None),
}


# Event class -> its _EVENTS entry or None, filled by the routers as classes come.
_EVENT_CLASSES: dict = {}


def _event_failed(exc: BaseException) -> None:
    _log.log_once("dify event", exc)


def _detach_failed(exc: BaseException) -> None:
    _log.log_once("dify node context detach", exc)


def _type_of(node_type: Any) -> str:
    return str(getattr(node_type, "value", node_type) or "node")


def _node_span(
    tracer: Any, run: _Run, key: str, node_id: str, node_type: str, title: str, parent: Any, start: Any = None
) -> Any:
    """A node's span (an agent node's is an agent run with its strategy's tools and model), under
    `parent`, known to the run by its execution id `key` and its node id."""
    attributes = {
        "gen_ai.span.kind": "TASK",
        "gen_ai.operation.name": "task",
        "gen_ai.framework": "dify",
        "dify.node.id": node_id,
        "dify.node.type": node_type,
    }
    if node_type == "agent":
        attributes["gen_ai.span.kind"] = "AGENT"
        attributes["gen_ai.operation.name"] = "invoke_agent"
        attributes["gen_ai.agent.name"] = title
        name = "invoke_agent " + title
    else:
        name = f"{title}({node_type})"
    span = run.nodes.setdefault(key, tracer.start_child(name, parent, attributes, 0, start))
    run.by_node_id[node_id] = span
    return span


def inner_layer(layer_class: type, engine: Any) -> Any:
    """The layer for `engine`, built inside a node's run (graphon 0.5's iteration or loop step),
    when that node's context is current here, else None."""
    run = _context.get_value(_RUN_KEY)
    if run is None:
        return None
    return layer_class(engine, run, trace.get_current_span())


def _quiet_dify_node_spans(engine: Any) -> None:
    """Switch off Dify's own node spans (its ObservabilityLayer, on with ENABLE_OTEL or
    ENABLE_OTEL_FOR_INSTRUMENT) on an engine llmprobe traces: the nodes are traced once."""
    for layer in getattr(engine, "_layers", ()):
        if type(layer).__name__ == "ObservabilityLayer" and getattr(layer, "_is_disabled", None) is False:
            layer._is_disabled = True
            _log.info("Dify's own node spans (ENABLE_OTEL) are switched off: llmprobe traces the nodes")


def _node_scope(tracer: Any, run: _Run, node: Any, parent: Any) -> Any:
    """On the node's worker: its span (started here unless a resume finds it) under `parent` (else
    the workflow's), made current by the context manager returned, with a ModelStep for a model
    node."""
    key = node.execution_id
    node_type = node.node_type
    node_type = str(getattr(node_type, "value", node_type) or "node")
    if node_type in _MARKERS:  # the span, if any, comes from the events; the container's context
        return span_scope(parent or run.span, {_RUN_KEY: run}, _detach_failed)
    span = run.nodes.get(key)
    if span is None:
        span = _node_span(tracer, run, key, node.id, node_type, node.title or node.id, parent or run.span)
    work = _WORK_SPANS.get(node_type)
    if work is not None:
        span = run.work.get(key) or run.work.setdefault(key, _work_span(tracer, span, node, work))
    elif node_type in _MODEL_NODES:
        step = run.steps.get(key)
        if step is None:
            step = run.steps.setdefault(key, _core.ModelStep())
        return span_scope(span, {_RUN_KEY: run, _genai.MODEL_STEP_KEY: step}, _detach_failed)
    return span_scope(span, {_RUN_KEY: run}, _detach_failed)


def _work_span(tracer: Any, node_span: Any, node: Any, work: tuple) -> Any:
    """A retrieval's or a tool call's span under its node, named for now after the node (the end
    names the tool)."""
    return tracer.start_child(f"{work[1]} {node.title or node.id}", node_span, _work_attributes(work))


def _work_attributes(work: tuple) -> dict:
    """A retrieval's or a tool call's common attributes, from its _WORK_SPANS entry."""
    kind, operation = work
    return {"gen_ai.span.kind": kind, "gen_ai.operation.name": operation, "gen_ai.framework": "dify"}


def _state(layer: Any) -> Any:
    for attribute in ("runtime_state", "graph_runtime_state"):
        try:
            return getattr(layer, attribute)
        except Exception:  # noqa: BLE001, S112 - graphon raises before the layer is bound
            continue
    return None


def _system(layer: Any) -> dict:
    """Dify's system variables (sys.app_id, sys.workflow_id, sys.user_id, ...) of the run."""
    state = _state(layer)
    pool = getattr(state, "variable_pool", None)
    if pool is None:
        return {}
    # Read in place where the pool keeps them by node (graphon, Dify 1.9+): get_by_prefix()
    # deep-copies every value.
    variables = getattr(pool, "variable_dictionary", None)
    if isinstance(variables, dict):
        found = variables.get("sys")
        if isinstance(found, dict):
            return {key: getattr(variable, "value", variable) for key, variable in found.items()}
    try:
        found = pool.get_by_prefix("sys")
    except Exception:  # noqa: BLE001
        return {}
    return found if isinstance(found, dict) else {}


def _workflow_name(system: dict) -> str:
    for key in ("app_name", "workflow_id", "app_id"):
        value = _apps.text_of(system.get(key))
        if value:
            return value
    return "graphon"


def _system_attributes(system: dict, attributes: dict) -> None:
    for key, attribute in (
        ("conversation_id", "gen_ai.conversation.id"),
        ("user_id", "gen_ai.user.id"),
        ("workflow_run_id", "dify.workflow.run_id"),
        ("app_id", "dify.app.id"),
    ):
        value = _apps.text_of(system.get(key))
        if value:
            attributes[attribute] = value
    if "gen_ai.conversation.id" in attributes:
        attributes["gen_ai.session.id"] = attributes["gen_ai.conversation.id"]


def _outputs(span: Any, outputs: Any) -> None:
    if _genai.capture:
        span.set_io(None, outputs)


def _container(run: _Run, event: Any) -> Any:
    """The span of the iteration or loop node the event's node runs in, if any."""
    for attribute in ("container_id", "in_iteration_id", "in_loop_id"):
        key = getattr(event, attribute, None)
        if key:
            return run.nodes.get(key) or run.by_node_id.get(key)
    return None


def _node_started(tracer: Any, run: _Run, event: Any, _: Any) -> None:
    node_type = event.node_type
    node_type = getattr(node_type, "value", node_type)
    if event.id in run.nodes:  # its worker started it (all nodes but graphon 0.5's iteration steps)
        if node_type not in _WORK_SPANS:
            return  # only a retrieval's and a tool's ends name their spans after the start event
        title = getattr(event, "node_title", None) or event.node_id
    else:
        node_type = _type_of(node_type)
        title = getattr(event, "node_title", None) or event.node_id
        parent = _container(run, event) or run.span
        start = _ns(getattr(event, "start_at", None))
        _node_span(tracer, run, event.id, event.node_id, node_type, title, parent, start)
    provider = getattr(event, "provider_id", None)
    run.started[event.id] = (title, provider if isinstance(provider, str) and provider else None)


def _node_ended(tracer: Any, run: _Run, event: Any, failure: str | None) -> None:
    key = event.id
    span = run.nodes.pop(key, None)
    if span is None:
        return
    result = getattr(event, "node_run_result", None)
    end = _ns(getattr(event, "finished_at", None))
    if result is not None and _genai.capture:
        span.set_io(getattr(result, "inputs", None), getattr(result, "outputs", None))
    node_type = event.node_type
    node_type = getattr(node_type, "value", node_type)
    if node_type in _MODEL_NODES:
        step = run.steps.pop(key, None)
        # With calls counted, an SDK's or the model runtime's hook made the call's LLM span.
        if result is not None and (step is None or not step.calls):
            _llm_span(tracer, span, event, result, end, failure)
    elif node_type in _WORK_SPANS:
        title, provider = run.started.pop(key, (event.node_id, None))
        work = run.work.pop(key, None)
        if result is None:
            if work is not None:
                _end_child(work, result, end, failure)
        elif node_type == "knowledge-retrieval":
            _retrieval_span(tracer, span, work, event, result, end, failure, title)
        else:
            _tool_span(tracer, span, work, event, result, end, failure, provider or title)
    if failure is not None:
        message = str(getattr(event, "error", None) or getattr(result, "error", None) or failure)
        span.set_status(trace.Status(trace.StatusCode.ERROR, message))
        error_type = getattr(result, "error_type", None)
        span.set_attribute("error.type", str(error_type) if error_type else "NodeRunFailed")
        if failure == "exception":
            span.set_attribute("dify.node.error_strategy", True)
    span.end(end_time=end)


def _child_span(tracer: Any, node_span: Any, event: Any, name: str, attributes: dict, kind: int = 0) -> Any:
    return tracer.start_child(name, node_span, attributes, kind, _ns(getattr(event, "start_at", None)))


def _end_work(
    tracer: Any,
    node_span: Any,
    work: Any,
    event: Any,
    name: str,
    attributes: dict,
    result: Any,
    end: int | None,
    failure: str | None,
) -> None:
    """End the node's work span (started on its worker; else started here, from the event)."""
    if work is None:
        work = _child_span(tracer, node_span, event, name, attributes)
    else:
        work.update_name(name)
        work.set_attributes(attributes)
    _end_child(work, result, end, failure)


def _end_child(span: Any, result: Any, end: int | None, failure: str | None) -> None:
    if failure is not None:
        span.set_status(trace.Status(trace.StatusCode.ERROR, str(getattr(result, "error", "") or failure)))
    span.end(end_time=end)


def _retrieval_span(
    tracer: Any,
    node_span: Any,
    work: Any,
    event: Any,
    result: Any,
    end: int | None,
    failure: str | None,
    title: str,
) -> None:
    """A knowledge-retrieval node's retrieval, under its node: the query and the documents found
    (Dify's ``result`` items: content, title, metadata with score and ids)."""
    inputs = getattr(result, "inputs", None) or {}
    outputs = getattr(result, "outputs", None) or {}
    attributes = _work_attributes(_WORK_SPANS["knowledge-retrieval"])
    found = outputs.get("result")
    if _genai.capture:
        query = inputs.get("query")
        if isinstance(query, str):
            attributes["gen_ai.retrieval.query.text"] = attributes["input.value"] = _genai.content_text(query)
            attributes["input.mime_type"] = "text/plain"
        if isinstance(found, list):
            documents = []
            for item in found:
                if not isinstance(item, dict):
                    continue
                metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
                document = {
                    "id": metadata.get("document_id") or metadata.get("segment_id") or item.get("title"),
                    "content": item.get("content"),
                    "score": metadata.get("score"),
                    "metadata": metadata,
                }
                documents.append({"document": document})
            attributes["retrieval.documents"] = _core.to_json(documents)
    elif isinstance(found, list):
        attributes["llmprobe.retrieval.document_count"] = len(found)
    _end_work(tracer, node_span, work, event, f"retrieval {title}", attributes, result, end, failure)


def _tool_span(
    tracer: Any,
    node_span: Any,
    work: Any,
    event: Any,
    result: Any,
    end: int | None,
    failure: str | None,
    provider: str,
) -> None:
    """A tool node's call, under its node: the arguments and the result (the tool known by its
    provider's name, or by the node's title)."""
    inputs = getattr(result, "inputs", None) or {}
    outputs = getattr(result, "outputs", None) or {}
    name = provider.rsplit("/", 1)[-1]
    attributes = _work_attributes(_WORK_SPANS["tool"])
    attributes["gen_ai.tool.name"] = name
    if _genai.capture:
        attributes["gen_ai.tool.call.arguments"] = attributes["input.value"] = _core.to_json(inputs)
        attributes["input.mime_type"] = "application/json"
        text = outputs.get("text")
        if isinstance(text, str) and text:
            attributes["gen_ai.tool.call.result"] = attributes["output.value"] = _genai.content_text(text)
            attributes["output.mime_type"] = "text/plain"
    _end_work(tracer, node_span, work, event, f"execute_tool {name}", attributes, result, end, failure)


def _llm_span(
    tracer: Any, node_span: Any, event: Any, result: Any, end: int | None, failure: str | None
) -> None:
    """The LLM node's model call, under its node: from the node's result (graphon measured it)."""
    inputs = getattr(result, "inputs", None) or {}
    process = getattr(result, "process_data", None) or {}
    outputs = getattr(result, "outputs", None) or {}
    model = process.get("model_name") or inputs.get("model_name")
    provider = process.get("model_provider") or inputs.get("model_provider")
    provider = provider.rsplit("/", 1)[-1] if isinstance(provider, str) else None
    usage = getattr(result, "llm_usage", None)
    attributes: dict = {
        "gen_ai.span.kind": "LLM",
        "gen_ai.operation.name": "chat",
        "gen_ai.framework": "dify",
    }
    metric_attributes = {"gen_ai.operation.name": "chat"}
    if isinstance(model, str):
        attributes["gen_ai.request.model"] = metric_attributes["gen_ai.request.model"] = model
    if provider:
        attributes["gen_ai.provider.name"] = metric_attributes["gen_ai.provider.name"] = provider
    input_tokens = output_tokens = None
    first_chunk = None
    if usage is not None:
        input_tokens = getattr(usage, "prompt_tokens", None)
        output_tokens = getattr(usage, "completion_tokens", None)
        if type(input_tokens) is int:
            attributes["gen_ai.usage.input_tokens"] = input_tokens
        if type(output_tokens) is int:
            attributes["gen_ai.usage.output_tokens"] = output_tokens
        total = getattr(usage, "total_tokens", None)
        if type(total) is int:
            attributes["gen_ai.usage.total_tokens"] = total
        ttft = getattr(usage, "time_to_first_token", None)
        if isinstance(ttft, (int, float)) and ttft > 0:
            attributes["gen_ai.response.time_to_first_token"] = int(ttft * 1e9)
            first_chunk = float(ttft)
    reason = outputs.get("finish_reason") or process.get("finish_reason")
    if isinstance(reason, str) and reason:
        attributes["gen_ai.response.finish_reasons"] = [_core.finish_reason(reason)]
    if _genai.capture:
        prompts = process.get("prompts")
        if prompts:
            _genai.put_input_json(attributes, _json(prompts), 0, True)
        text = outputs.get("text")
        if isinstance(text, str) and text:
            answer = [{"role": "assistant", "parts": [text_part(text)]}]
            _genai.put_output_json(attributes, _core.to_json(answer), text, [])
    span = _child_span(
        tracer, node_span, event, f"chat {model}" if isinstance(model, str) else "chat", attributes, _CLIENT
    )
    started = _ns(getattr(event, "start_at", None))
    if end and started:
        _core.record_genai_metrics(
            metric_attributes, (end - started) / 1e9, input_tokens, output_tokens, first_chunk
        )
    _end_child(span, result, end, failure)
