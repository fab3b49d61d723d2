"""The Dify workload and configs for dify_instructions.py: one run of a ten-node workflow on Dify's
engine, graphon (0.8's ``graphon.engine.Engine``, or 0.5 to 0.7's
``graphon.graph_engine.GraphEngine``, whichever is installed), traced by llmprobe, by a graphon
layer on the OpenTelemetry SDK that makes the spans Dify's own ``ObservabilityLayer`` makes, or by
nothing.

The workflow is a chain of ten nodes, three of them LLM nodes on a fake model that answers at
once (tests/dify/graphon_workflows.py's FakeLLM without its 10 ms sleep per chunk and its log
line), the rest nodes that need no sandbox and no network::

    start -> draft (llm) -> format (template-transform) -> check (if-else, true branch)
          -> review (llm) -> pick (variable-aggregator) -> prompt (template-transform)
          -> summary (llm) -> final (template-transform) -> end

Every call builds the graph, its runtime state and a new engine (an engine runs once, and
llmprobe adds its layer when an engine is built), runs it to the end and checks its answer. The
nodes are built by tests/dify/graphon_workflows.py's DemoNodeFactory, extended here with the
template-transform (rendered by a plain replace: no Jinja2, no sandbox), if-else and
variable-aggregator nodes. The engine has **one worker**: the chain runs one node at a time, and
graphon's idle workers poll their queue every 10 ms (0.5: 100 ms), work that follows wall time,
not nodes.

| config | setup; on / off |
|---|---|
| none | no layer; its "off" run makes no calls, so its row is graphon's own cost per run |
| floor | ``NothingLayer``, a layer whose hooks do nothing (graphon's base class's), added by the workload to every engine it builds while on: graphon's own cost of calling one more layer, the least any layer-based tracer (llmprobe's and Dify's included) adds |
| otel-sdk | ``OTelLayer`` (below), added by the workload to every engine it builds while on; off = engines built without it |
| llmprobe | llmprobe_setup.setup(): ``llmprobe.init()`` exporting OTLP/HTTP to the sink, graphon imported first so that init() instruments it at once: llmprobe wraps the engine class's ``__init__`` and adds its layer to every engine built; ``llmprobe.instrumentation.dify.instrument()`` / ``uninstrument()`` |

``OTelLayer`` is what Dify's ``ObservabilityLayer`` (api/core/app/workflow/layers/observability.py
with the parsers of api/extensions/otel/parser/) does, written against graphon here because
Dify's own imports Dify's configs and extensions and cannot run outside Dify's api: in
``on_node_run_start`` a span named after the node's title, parented on the current context, made
current on the worker (attached); in ``on_node_run_end`` the parser's attributes (node id,
execution id, type, title, ``gen_ai.framework``, ``gen_ai.span.kind``, the result's inputs and
outputs as JSON, the status; for an LLM node the model, provider, token usage, prompts,
completion, finish reason and the ``gen_ai.input.messages`` / ``gen_ai.output.messages`` JSON),
then the span ended and the context detached. Like llmprobe's layer it also makes a workflow span
in ``on_graph_start`` / ``on_graph_end`` (its node spans are parented on it: graphon's workers
do not carry the caller's context, Dify's do), so that the trace has the same shape. Dify puts
the model call's attributes on the LLM node's own span, where llmprobe makes an LLM span under
the node: per run the peer exports 11 spans, llmprobe 14.

The peer's tracer provider is langchain_workload's: an SDK TracerProvider + BatchSpanProcessor
+ the SDK's OTLPSpanExporter (http/protobuf) to an otlp_sink.py of its own. Content is captured
by both.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
TESTS = HERE.parent / "tests" / "dify"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import graphon_workflows as gw
import langchain_workload as lc
import llmprobe_setup
from common import importable_llmprobe, seeded_env
from graphon.graph.graph import Graph
from graphon.model_runtime.entities.llm_entities import LLMResultChunk, LLMResultChunkDelta
from graphon.model_runtime.entities.message_entities import AssistantPromptMessage
from graphon.nodes.if_else.if_else_node import IfElseNode
from graphon.nodes.template_transform.template_transform_node import TemplateTransformNode
from graphon.nodes.variable_aggregator.variable_aggregator_node import VariableAggregatorNode
from graphon.template_rendering import Jinja2TemplateRenderer

CONFIGS = ["none", "floor", "otel-sdk", "llmprobe"]
MODES = ["workflow"]
LABELS = {
    "none": "none (graphon's own cost)",
    "floor": "floor (a layer that does nothing)",
    "otel-sdk": "otel-sdk (Dify's ObservabilityLayer on the OpenTelemetry SDK)",
}
# The children start without these: exporters, content switches the user happens to have set.
CLEARED = ("OTEL_",)
# Longer than any child runs: no batch or metric timer fires while the calls are counted; the
# spans are exported by the flush after them (counted), for both configs.
TIMERS = {"OTEL_BSP_SCHEDULE_DELAY": "3600000", "OTEL_METRIC_EXPORT_INTERVAL": "3600000"}

NODES = 10
QUERY = "In two sentences, what is the difference between a span and a trace?"
ANSWERS = {
    "draft": "A span is one timed operation; a trace is the tree of spans of a request.",
    "review": "Correct: a trace groups the spans that share one trace id.",
    "summary": "Spans are operations, traces are trees of spans.",
}
FINAL = "Answer: " + ANSWERS["summary"]


def child_env() -> dict[str, str]:
    """The environment of every measuring child: no OTEL_* but the timers above, fixed hash seed."""
    return dict(seeded_env(CLEARED), **TIMERS)


# ---- the workflow ------------------------------------------------------------------------------


class QuietLLM(gw.FakeLLM):
    """FakeLLM that streams its answer word by word at once: no sleep, no log line, no record of
    the calls."""

    def invoke_llm(self, *, prompt_messages, model_parameters, tools, stop, stream):
        prompts = list(prompt_messages)
        pieces = [w + " " for w in self._answer.split(" ")]
        pieces[-1] = pieces[-1].rstrip()
        usage = self._usage(self.get_llm_num_tokens(prompts), len(pieces))
        last = len(pieces) - 1
        return (
            LLMResultChunk(
                model=self._model_name,
                prompt_messages=prompts,
                delta=LLMResultChunkDelta(
                    index=i,
                    message=AssistantPromptMessage(content=piece),
                    usage=usage if i == last else None,
                    finish_reason="stop" if i == last else None,
                ),
            )
            for i, piece in enumerate(pieces)
        )


class Renderer(Jinja2TemplateRenderer):
    """The template-transform nodes' renderer: ``{{ name }}`` replaced by the variable's text (no
    Jinja2, no sandbox)."""

    def render_template(self, template, variables):
        for name, value in variables.items():
            template = template.replace("{{ " + name + " }}", str(value))
        return template


class BenchNodeFactory(gw.DemoNodeFactory):
    """The tests' node factory (its LLM nodes on QuietLLM, see below) with the
    template-transform, if-else and variable-aggregator nodes."""

    _CLASSES = {  # noqa: RUF012 - the tests' class map, extended
        **gw.DemoNodeFactory._CLASSES,
        "template-transform": TemplateTransformNode,
        "if-else": IfElseNode,
        "variable-aggregator": VariableAggregatorNode,
    }
    renderer = Renderer()

    def create_node(self, node_config):
        node_id = str(node_config["id"])
        data = dict(node_config["data"])
        kind = data["type"]
        if gw.ENGINE_08:
            common = {"node_id": node_id, "init_params": self.init_params, "runtime_state": self.state}
        else:
            common = {
                "node_id": node_id,
                "graph_init_params": self.init_params,
                "graph_runtime_state": self.state,
            }
        cls = self._CLASSES[kind]
        if kind == "template-transform":
            return cls(data=cls.validate_node_data(data), jinja2_template_renderer=self.renderer, **common)
        if kind in ("if-else", "variable-aggregator"):
            return cls(data=cls.validate_node_data(data), **common)
        return super().create_node(node_config)


# The tests' factory makes its LLM nodes' models of this class, answering the node's _fake_answer.
gw.LLM_CLASS = QuietLLM


def _template(title: str, template: str, **variables: list[str]) -> dict:
    return {
        "type": "template-transform",
        "title": title,
        "variables": [{"variable": name, "value_selector": selector} for name, selector in variables.items()],
        "template": template,
    }


def _edges(*chain: str, handles: dict | None = None) -> list[dict]:
    handles = handles or {}
    return [
        {"id": f"e{i}", "source": a, "target": b, "sourceHandle": handles.get(a, "source")}
        for i, (a, b) in enumerate(zip(chain, chain[1:]))
    ]


GRAPH = {
    "nodes": [
        {"id": "start", "data": {**gw.START["data"], "title": "Start"}},
        {
            "id": "draft",
            "data": gw.llm_data("Draft answer", "{{#start.query#}}", _fake_answer=ANSWERS["draft"]),
        },
        {"id": "format", "data": _template("Format draft", "Draft: {{ draft }}", draft=["draft", "text"])},
        {
            "id": "check",
            "data": {
                "type": "if-else",
                "title": "Has a draft?",
                "cases": [
                    {
                        "case_id": "true",
                        "logical_operator": "and",
                        "conditions": [
                            {"variable_selector": ["draft", "text"], "comparison_operator": "not empty"}
                        ],
                    }
                ],
            },
        },
        {
            "id": "review",
            "data": gw.llm_data(
                "Review draft", "Review this. {{#format.output#}}", _fake_answer=ANSWERS["review"]
            ),
        },
        {
            "id": "pick",
            "data": {
                "type": "variable-aggregator",
                "title": "Pick answer",
                "output_type": "string",
                "variables": [["review", "text"], ["draft", "text"]],
            },
        },
        {
            "id": "prompt",
            "data": _template("Build prompt", "Summarise: {{ answer }}", answer=["pick", "output"]),
        },
        {
            "id": "summary",
            "data": gw.llm_data(
                "Summarise", "{{#prompt.output#}}", model="gpt-4o", _fake_answer=ANSWERS["summary"]
            ),
        },
        {
            "id": "final",
            "data": _template("Final text", "Answer: {{ summary }}", summary=["summary", "text"]),
        },
        {
            "id": "end",
            "data": {
                "type": "end",
                "title": "End",
                "outputs": [{"variable": "answer", "value_selector": ["final", "output"]}],
            },
        },
    ],
    "edges": _edges(
        "start",
        "draft",
        "format",
        "check",
        "review",
        "pick",
        "prompt",
        "summary",
        "final",
        "end",
        handles={"check": "true"},
    ),
}
assert len(GRAPH["nodes"]) == NODES


def build_engine(layers: list) -> object:
    """A new engine for one run of GRAPH, with one worker and `layers` added."""
    pool = gw.VariablePool()
    pool.add(("start", "query"), QUERY)
    for name, value in (
        ("workflow_id", "wf-bench"),
        ("app_id", "app-bench"),
        ("workflow_run_id", "run-bench"),
        ("user_id", "user-1"),
    ):
        pool.add(("sys", name), value)
    init_params = gw.GraphInitParams(
        workflow_id="wf-bench",
        graph_config=GRAPH,
        run_context={"_dify": {"app_id": "app-bench", "tenant_id": "t1"}},
        call_depth=0,
    )
    if gw.ENGINE_08:
        state = gw.GraphRuntimeState(variable_pool=pool, start_at=time.time(), workflow_id="wf-bench")
    else:
        state = gw.GraphRuntimeState(variable_pool=pool, start_at=time.time())
    graph = Graph.init(
        graph_config=GRAPH, node_factory=BenchNodeFactory(init_params, state), root_node_id="start"
    )
    if gw.ENGINE_08:
        engine = gw.Engine(graph=graph, runtime_state=state, workers=1)
        add = engine.add_layer
    else:
        from graphon.graph_engine.config import GraphEngineConfig

        engine = gw.GraphEngine(
            workflow_id="wf-bench",
            graph=graph,
            graph_runtime_state=state,
            command_channel=gw.InMemoryChannel(),
            config=GraphEngineConfig(min_workers=1, max_workers=1),
        )
        add = engine.layer
    for layer in layers:
        add(layer)
    return engine


def make_workflow(layers=list):
    """One call = one run of GRAPH on a new engine, with the layers `layers()` returns added (the
    peer's; llmprobe adds its own as the engine is built). Returns the engine."""

    def call():
        engine = build_engine(layers())
        for _ in engine.run():
            pass
        outputs = engine.graph_runtime_state.outputs if not gw.ENGINE_08 else engine.runtime_state.outputs
        assert outputs == {"answer": FINAL}, outputs
        return engine

    return call


def layer_names(engine) -> list[str]:
    """The class names of the engine's layers."""
    return [type(layer).__name__ for layer in engine._layers]


# ---- the peer: Dify's ObservabilityLayer on the OpenTelemetry SDK ---------------------------------


def _plain(value):
    """What Dify's safe_json_dumps does before json.dumps: segments to their values, pydantic
    models dumped, containers walked, anything else its str()."""
    from graphon.variables import Segment
    from pydantic import BaseModel

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Segment):
        return _plain(value.value)
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(mode="json"))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def _dumps(value) -> str:
    return json.dumps(_plain(value), ensure_ascii=False)


def otel_layer_class(tracer) -> type:
    """The peer's layer class, making spans with the SDK tracer `tracer`."""
    from opentelemetry import context as context_api
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    class OTelLayer(gw.Layer):
        def __init__(self) -> None:
            super().__init__()
            self._nodes: dict = {}  # execution id -> (span, token)
            self._workflow = None

        def on_graph_start(self) -> None:
            self._nodes.clear()
            system = gw._state(self).variable_pool.get_by_prefix("sys")
            attributes = {
                "gen_ai.span.kind": "CHAIN",
                "gen_ai.operation.name": "invoke_workflow",
                "gen_ai.framework": "dify",
                "gen_ai.user.id": system["user_id"],
                "dify.app.id": system["app_id"],
                "dify.workflow.run_id": system["workflow_run_id"],
            }
            self._workflow = tracer.start_span("workflow " + system["workflow_id"], attributes=attributes)

        def on_event(self, event) -> None:
            pass

        def on_graph_end(self, error) -> None:
            span, self._workflow = self._workflow, None
            outputs = gw._state(self).outputs
            if outputs:
                span.set_attribute("output.value", _dumps(outputs))
            if error is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, str(error)))
            span.end()
            self._nodes.clear()

        def on_node_run_start(self, node) -> None:
            if not node.execution_id:
                return
            # Dify's parent is the worker's current context (Dify's workers carry the caller's);
            # graphon's carry none, so the workflow's span is put in it.
            parent = trace.set_span_in_context(self._workflow, context_api.get_current())
            span = tracer.start_span(node.title, kind=SpanKind.INTERNAL, context=parent)
            token = context_api.attach(trace.set_span_in_context(span))
            self._nodes[node.execution_id] = (span, token)

        def on_node_run_end(self, node, error, result_event=None) -> None:
            entry = self._nodes.get(node.execution_id)
            if entry is None:
                return
            span, token = entry
            try:
                _parse(node, span, error, result_event)
                span.end()
            finally:
                context_api.detach(token)
                self._nodes.pop(node.execution_id, None)

    def _parse(node, span, error, result_event) -> None:
        """DefaultNodeOTelParser, and LLMNodeOTelParser for an LLM node."""
        node_type = str(getattr(node.node_type, "value", node.node_type))  # 0.8: a str
        span.set_attribute("node.id", node.id)
        span.set_attribute("node.execution_id", node.execution_id)
        span.set_attribute("node.type", node_type)
        span.set_attribute("node.title", node.title)
        span.set_attribute("gen_ai.framework", "dify")
        span.set_attribute("gen_ai.span.kind", "LLM" if node_type == "llm" else "TASK")
        result = getattr(result_event, "node_run_result", None)
        if result is not None:
            if result.inputs:
                span.set_attribute("input.value", _dumps(result.inputs))
            if result.outputs:
                span.set_attribute("output.value", _dumps(result.outputs))
        if error:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)))
        else:
            span.set_status(Status(StatusCode.OK))
        if node_type == "llm" and result is not None:
            _parse_llm(span, result)

    def _parse_llm(span, result) -> None:
        process = result.process_data or {}
        outputs = result.outputs or {}
        usage = process.get("usage") or outputs.get("usage") or {}
        if not isinstance(usage, dict):
            usage = _plain(usage)
        if process.get("model_name"):
            span.set_attribute("gen_ai.request.model", process["model_name"])
        if process.get("model_provider"):
            span.set_attribute("gen_ai.provider.name", process["model_provider"])
        if usage:
            span.set_attribute("gen_ai.usage.input_tokens", usage.get("prompt_tokens", 0))
            span.set_attribute("gen_ai.usage.output_tokens", usage.get("completion_tokens", 0))
            span.set_attribute("gen_ai.usage.total_tokens", usage.get("total_tokens", 0))
        prompts = process.get("prompts", [])
        if prompts:
            span.set_attribute("gen_ai.prompt", _dumps(prompts))
        text = str(outputs.get("text", ""))
        if text:
            span.set_attribute("gen_ai.completion", text)
        finish = outputs.get("finish_reason") or ""
        if finish:
            span.set_attribute("gen_ai.response.finish_reason", finish)
        messages = [
            {"role": p["role"], "parts": [{"type": "text", "content": p["text"]}]}
            for p in prompts
            if isinstance(p, dict)
            and p.get("role") in ("system", "user", "assistant", "tool")
            and p.get("text")
        ]
        span.set_attribute("gen_ai.input.messages", _dumps(messages))
        answer = (
            [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": text}],
                    "finish_reason": finish or "stop",
                }
            ]
            if text
            else []
        )
        span.set_attribute("gen_ai.output.messages", _dumps(answer))

    return OTelLayer


# ---- configs -----------------------------------------------------------------------------------


class NothingLayer(gw.Layer):
    """The floor: graphon calls its hooks, which do nothing (0.5's base class leaves three
    abstract; 0.8's are all no-ops already)."""

    def on_graph_start(self) -> None:
        return None

    def on_event(self, event) -> None:
        return None

    def on_graph_end(self, error) -> None:
        return None


def _layered(handles: dict, layer_class: type) -> dict:
    """`handles` with a layer of `layer_class` added by the workload to every engine it builds
    while on (enable / disable switch it)."""
    on = [True]
    handles["layers"] = lambda: [layer_class()] if on[0] else []
    handles["enable"] = lambda: on.__setitem__(0, True)
    handles["disable"] = lambda: on.__setitem__(0, False)
    handles["layer"] = layer_class.__name__
    return handles


def _otel_sdk() -> dict:
    """The peer's layer on every engine the workload builds while on."""
    from opentelemetry import trace

    _provider, handles = lc._sdk_provider()
    return _layered(handles, otel_layer_class(trace.get_tracer("dify.observability_layer")))


def _llmprobe() -> dict:
    """llmprobe_setup.setup() with graphon imported first (this module imports it), so that
    llmprobe.init() instruments it at once."""
    importable_llmprobe()
    handles = llmprobe_setup.setup(lc._PluginCtx(), "dify", module="graphon")
    if "LlmprobeLayer" not in layer_names(build_engine([])):
        raise SystemExit("llmprobe.init() did not instrument graphon (no layer on a new engine)")
    handles["layer"] = "LlmprobeLayer"
    return handles


def setup_config(config: str) -> dict:
    """The config installed and enabled: handles enable / disable (None for none), span_count,
    flush, shutdown, layers (what the workload adds to each engine), layer (the name of the
    config's layer class)."""
    if config == "none":
        handles = lc._none()
    elif config == "floor":
        handles = _layered(lc._none(), NothingLayer)
    elif config == "otel-sdk":
        handles = _otel_sdk()
    elif config == "llmprobe":
        handles = _llmprobe()
    else:
        raise SystemExit(f"unknown config {config!r}")
    handles.setdefault("shutdown", lambda: None)
    handles.setdefault("layers", list)
    handles.setdefault("layer", None)
    return handles


def layered_once(handles: dict, engine, state: str) -> str | None:
    """What is wrong with the layers of an engine built in `state` ("on" or "off"), or None: the
    config's layer must be on it once while on and not at all while off."""
    name = handles["layer"]
    if name is None:
        return None
    found = layer_names(engine).count(name)
    if found != (1 if state == "on" else 0):
        return f"{found} {name} on an engine built while {state}: {layer_names(engine)}"
    return None


# ---- versions ----------------------------------------------------------------------------------

PACKAGES = [
    "graphon",
    "pydantic",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-http",
    "protobuf",
    "requests",
    "wrapt",
    "llmprobe",
]


def versions() -> dict[str, str]:
    """langchain_workload.versions() (Python, valgrind, llmprobe's commit, build and where it is
    imported from) with this benchmark's packages instead of LangChain's."""
    theirs = lc.versions()
    out = {k: theirs[k] for k in ("python", "valgrind")}
    out.update({name: lc._version(name) for name in PACKAGES})
    out.update({k: v for k, v in theirs.items() if k not in out and k not in lc.PACKAGES})
    out["engine"] = (
        "graphon.engine.Engine (workers=1)" if gw.ENGINE_08 else "graphon.graph_engine.GraphEngine (1 worker)"
    )
    return out
