"""Dify-style workflows on graphon, offline, for the Dify instrumentation's tests: on 0.8
(engine.Engine, .add_layer()) and on 0.5 to 0.7 (graph_engine.GraphEngine, .layer(), the version
Dify 1.14 pins), whichever is installed.

Builds a Dify-style graph config (written to the temporary folder), builds
nodes with our own NodeFactory (as Dify's DifyNodeFactory does), plugs a FAKE
model runtime into the LLM node through graphon's `LLMProtocol`
(graphon/nodes/llm/runtime_protocols.py), and runs the engine with a
recording layer that prints every hook together with the thread it ran on.

Scenarios (argv[1], default "all"):
  basic     start -> llm -> end
  full      start -> kr (custom knowledge-retrieval node, fake backend)
                   -> llm (context from kr) -> end
            start -> tool (fake ToolNodeRuntime)              -> end   (parallel branch)
            start -> iteration[ iteration-start -> llm2 ] -> end (parallel branch)
            start -> failing code node (fail-branch error strategy) -> end
  fail      start -> llm whose fake runtime raises -> end (graph fails)
  abort     basic graph; the layer sends AbortCommand on the first stream chunk
  pause     basic graph; the layer sends PauseCommand on the first stream chunk
  piter     start -> iteration(is_parallel=True)[iteration-start -> llm2] -> end
  loop      start -> loop(loop_count=2)[loop-start -> llm3] -> end
Add "provider" as argv[2] to fake one level lower: LargeLanguageModel + a fake
LLMModelRuntime (graphon/model_runtime/protocols/llm_runtime.py) + Callback.
Add "sdk" to reach the model through the real openai SDK instead (OPENAI_BASE_URL, a fake
OpenAI server), as a runtime made on an OpenAI-compatible API does.
Add "http" to have the tool call a local HTTP service through httpx (as Dify's tools and its
plugin daemon client do), which prints the W3C traceparent it received as "traceparent: ...".
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import threading
import time
from collections.abc import Generator, Mapping, Sequence
from decimal import Decimal
from importlib import metadata
from typing import Any, ClassVar

from pydantic import Field

# Where each scenario's graph config is written before the engine reads it back.
GRAPH_DIR = tempfile.gettempdir()

try:  # graphon 0.8
    from graphon.engine import Engine
    from graphon.engine.command.entities import AbortCommand, PauseCommand
    from graphon.engine.layer import Layer
    from graphon.engine_events import EngineEvent, NodeEvent, NodeRunStreamChunkEvent
    from graphon.runtime import InitParams as GraphInitParams
    from graphon.runtime import RuntimeState as GraphRuntimeState
    from graphon.runtime import VariablePool

    ENGINE_08 = True
except ImportError:  # graphon 0.5 to 0.7
    from graphon.entities.graph_init_params import GraphInitParams
    from graphon.graph_engine.command_channels import InMemoryChannel
    from graphon.graph_engine.entities.commands import AbortCommand, PauseCommand
    from graphon.graph_engine.graph_engine import GraphEngine
    from graphon.graph_engine.layers.base import GraphEngineLayer as Layer
    from graphon.graph_events import GraphEngineEvent as EngineEvent
    from graphon.graph_events import GraphNodeEventBase as NodeEvent
    from graphon.graph_events import NodeRunStreamChunkEvent
    from graphon.runtime.graph_runtime_state import GraphRuntimeState
    from graphon.runtime.variable_pool import VariablePool

    ENGINE_08 = False
from graphon.entities.base_node_data import BaseNodeData
from graphon.enums import BuiltinNodeTypes, WorkflowNodeExecutionStatus
from graphon.graph.graph import Graph
from graphon.model_runtime.entities.common_entities import I18nObject
from graphon.model_runtime.entities.llm_entities import (
    LLMResult,
    LLMResultChunk,
    LLMResultChunkDelta,
    LLMUsage,
)
from graphon.model_runtime.entities.message_entities import (
    AssistantPromptMessage,
    PromptMessage,
)
from graphon.model_runtime.entities.model_entities import (
    AIModelEntity,
    FetchFrom,
    ModelPropertyKey,
    ModelType,
)
from graphon.node_events.base import NodeRunResult
from graphon.nodes.base.node import Node
from graphon.nodes.code.code_node import CodeNode
from graphon.nodes.code.entities import CodeNodeData
from graphon.nodes.code.limits import CodeNodeLimits
from graphon.nodes.end.end_node import EndNode
from graphon.nodes.iteration.entities import IterationNodeData
from graphon.nodes.iteration.iteration_node import IterationNode
from graphon.nodes.iteration.iteration_start_node import IterationStartNode
from graphon.nodes.llm import LLMNode, LLMNodeData
from graphon.nodes.llm.runtime_protocols import LLMProtocol
from graphon.nodes.loop.entities import LoopNodeData
from graphon.nodes.loop.loop_end_node import LoopEndNode
from graphon.nodes.loop.loop_node import LoopNode
from graphon.nodes.loop.loop_start_node import LoopStartNode
from graphon.nodes.start import StartNode
from graphon.nodes.tool.entities import ToolNodeData
from graphon.nodes.tool.tool_node import ToolNode

VERSION = metadata.version("graphon")
T0 = time.perf_counter()


_LOG_LOCK = threading.Lock()


def log(msg: str) -> None:
    line = f"[{time.perf_counter() - T0:6.3f}s {threading.current_thread().name:<22}] {msg}\n"
    with _LOG_LOCK:
        sys.stdout.write(line)
        sys.stdout.flush()


# --------------------------------------------------------------------------
# Fake model runtime: implements graphon.nodes.llm.runtime_protocols.LLMProtocol
# (the graph-facing LLM adapter the LLM node calls). LLMNode always calls
# invoke_llm(..., stream=True) and consumes LLMResultChunk objects.
# --------------------------------------------------------------------------
class FakeLLM(LLMProtocol):
    def __init__(
        self,
        *,
        provider: str,
        model_name: str,
        parameters: Mapping[str, Any],
        answer: str = "Paris is the capital of France.",
        fail: bool = False,
    ) -> None:
        self._provider = provider
        self._model_name = model_name
        self._parameters = dict(parameters)
        self._answer = answer
        self._fail = fail
        self.calls: list[dict[str, Any]] = []

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def parameters(self) -> Mapping[str, Any]:
        return self._parameters

    @parameters.setter
    def parameters(self, value: Mapping[str, Any]) -> None:
        self._parameters = dict(value)

    @property
    def stop(self) -> Sequence[str] | None:
        return None

    def get_model_schema(self) -> AIModelEntity:
        return AIModelEntity(
            model=self._model_name,
            label=I18nObject(en_US=self._model_name),
            model_type=ModelType.LLM,
            fetch_from=FetchFrom.PREDEFINED_MODEL,
            model_properties={ModelPropertyKey.MODE: "chat", ModelPropertyKey.CONTEXT_SIZE: 8192},
        )

    def get_llm_num_tokens(self, prompt_messages: Sequence[PromptMessage]) -> int:
        return sum(len(str(m.content or "").split()) for m in prompt_messages)

    @staticmethod
    def _usage(prompt_tokens: int, completion_tokens: int) -> LLMUsage:
        u = LLMUsage.empty_usage()
        u.prompt_tokens = prompt_tokens
        u.completion_tokens = completion_tokens
        u.total_tokens = prompt_tokens + completion_tokens
        u.prompt_unit_price = Decimal("0.001")
        u.completion_unit_price = Decimal("0.002")
        u.prompt_price_unit = Decimal("0.001")
        u.completion_price_unit = Decimal("0.001")
        u.prompt_price = Decimal(prompt_tokens) * Decimal("0.000001")
        u.completion_price = Decimal(completion_tokens) * Decimal("0.000002")
        u.total_price = u.prompt_price + u.completion_price
        return u

    def invoke_llm(self, *, prompt_messages, model_parameters, tools, stop, stream):
        log(
            f"FakeLLM.invoke_llm model={self._model_name} stream={stream} params={dict(model_parameters)} "
            f"prompt={[(m.role.value, m.content) for m in prompt_messages]}"
        )
        self.calls.append({"prompt_messages": list(prompt_messages), "params": dict(model_parameters)})
        if self._fail:
            raise RuntimeError("fake provider error: 429 rate limited")
        prompt_tokens = self.get_llm_num_tokens(prompt_messages)
        pieces = [w + " " for w in self._answer.split(" ")]
        pieces[-1] = pieces[-1].rstrip()
        usage = self._usage(prompt_tokens, len(pieces))
        if not stream:
            return LLMResult(
                model=self._model_name,
                prompt_messages=list(prompt_messages),
                message=AssistantPromptMessage(content=self._answer),
                usage=usage,
            )

        def gen() -> Generator[LLMResultChunk, None, None]:
            for i, piece in enumerate(pieces):
                last = i == len(pieces) - 1
                time.sleep(0.01)
                yield LLMResultChunk(
                    model=self._model_name,
                    prompt_messages=list(prompt_messages),
                    delta=LLMResultChunkDelta(
                        index=i,
                        message=AssistantPromptMessage(content=piece),
                        usage=usage if last else None,
                        finish_reason="stop" if last else None,
                    ),
                )

        return gen()

    def invoke_llm_with_structured_output(self, **kwargs):
        raise NotImplementedError

    def is_structured_output_parse_error(self, error: Exception) -> bool:
        return False


# --------------------------------------------------------------------------
# Alternative, one level lower (what Dify really goes through):
# LLMNode -> LLMProtocol adapter (Dify: DifyPreparedLLM -> core ModelInstance)
#   -> graphon LargeLanguageModel.invoke(..., callbacks=[...])
#   -> LLMModelRuntime.invoke_llm(provider=..., model=..., credentials=...)
#      (Dify: plugin-daemon client). Selected with the "provider" argv flag.
# --------------------------------------------------------------------------
from graphon.model_runtime.callbacks.base_callback import Callback
from graphon.model_runtime.entities.provider_entities import ConfigurateMethod, ProviderEntity
from graphon.model_runtime.model_providers.base.large_language_model import LargeLanguageModel


class FakeProviderRuntime:  # implements graphon.model_runtime.protocols.llm_runtime.LLMModelRuntime
    def __init__(self, answer: str, fail: bool = False):
        self._inner = FakeLLM(provider="openai", model_name="?", parameters={}, answer=answer, fail=fail)

    def fetch_model_providers(self):
        return [PROVIDER_SCHEMA]

    def get_provider_icon(self, *, provider, icon_type, lang):
        return b"", "image/png"

    def validate_provider_credentials(self, *, provider, credentials):
        return None

    def validate_model_credentials(self, *, provider, model_type, model, credentials):
        return None

    def get_model_schema(self, *, provider, model_type, model, credentials):
        return FakeLLM(provider=provider, model_name=model, parameters={}).get_model_schema()

    def invoke_llm(
        self, *, provider, model, credentials, model_parameters, prompt_messages, tools, stop, stream, **extra
    ):
        log(f"FakeProviderRuntime.invoke_llm provider={provider} model={model} extra_kwargs={list(extra)}")
        self._inner._model_name = model
        return self._inner.invoke_llm(
            prompt_messages=prompt_messages,
            model_parameters=model_parameters,
            tools=tools,
            stop=stop,
            stream=stream,
        )

    def invoke_llm_with_structured_output(self, **kwargs):
        raise NotImplementedError

    def get_llm_num_tokens(self, *, provider, model_type, model, credentials, prompt_messages, tools):
        return self._inner.get_llm_num_tokens(prompt_messages)


PROVIDER_SCHEMA = ProviderEntity(
    provider="langgenius/openai/openai",
    label=I18nObject(en_US="OpenAI"),
    supported_model_types=[ModelType.LLM],
    configurate_methods=[ConfigurateMethod.PREDEFINED_MODEL],
)


class PrintingCallback(Callback):
    def on_before_invoke(self, llm_instance, model, credentials, prompt_messages, model_parameters, **kw):
        log(f"Callback.on_before_invoke model={model} n_messages={len(prompt_messages)} extra={sorted(kw)}")

    def on_new_chunk(self, llm_instance, chunk, model, credentials, prompt_messages, model_parameters, **kw):
        log(f"Callback.on_new_chunk {chunk.delta.message.content!r}")

    def on_after_invoke(
        self, llm_instance, result, model, credentials, prompt_messages, model_parameters, **kw
    ):
        log(
            f"Callback.on_after_invoke text={result.message.content!r} usage.total={result.usage.total_tokens}"
        )

    def on_invoke_error(self, llm_instance, ex, model, credentials, prompt_messages, model_parameters, **kw):
        log(f"Callback.on_invoke_error {ex!r}")


class ProviderBackedLLM(FakeLLM):
    """LLMProtocol adapter delegating to LargeLanguageModel (like Dify's DifyPreparedLLM)."""

    def __init__(
        self, *, provider, model_name, parameters, answer="Paris is the capital of France.", fail=False
    ):
        super().__init__(provider=provider, model_name=model_name, parameters=parameters)
        self._llm = LargeLanguageModel(PROVIDER_SCHEMA, FakeProviderRuntime(answer, fail))

    def invoke_llm(self, *, prompt_messages, model_parameters, tools, stop, stream):
        return self._llm.invoke(
            model=self._model_name,
            credentials={"api_key": "sk-fake"},
            prompt_messages=list(prompt_messages),
            model_parameters=dict(model_parameters),
            tools=list(tools or []),
            stop=list(stop or []),
            stream=stream,
            callbacks=[PrintingCallback()],
        )


class OpenAIBackedLLM(FakeLLM):
    """An LLMProtocol adapter reaching the model through the openai SDK, streamed with usage."""

    def invoke_llm(self, *, prompt_messages, model_parameters, tools, stop, stream):
        import openai

        if self._fail:
            raise RuntimeError("fake provider error: 429 rate limited")
        messages = [{"role": m.role.value, "content": str(m.content or "")} for m in prompt_messages]
        chunks = openai.OpenAI().chat.completions.create(
            model=self._model_name, messages=messages, stream=True, stream_options={"include_usage": True}
        )

        def gen() -> Generator[LLMResultChunk, None, None]:
            text, usage = [], None
            for chunk in chunks:
                if chunk.usage is not None:
                    usage = self._usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                for choice in chunk.choices:
                    text.append(choice.delta.content or "")
                    if choice.finish_reason is None:
                        yield LLMResultChunk(
                            model=self._model_name,
                            prompt_messages=list(prompt_messages),
                            delta=LLMResultChunkDelta(
                                index=0, message=AssistantPromptMessage(content=choice.delta.content or "")
                            ),
                        )
            yield LLMResultChunk(
                model=self._model_name,
                prompt_messages=list(prompt_messages),
                delta=LLMResultChunkDelta(
                    index=1, message=AssistantPromptMessage(content=""), usage=usage, finish_reason="stop"
                ),
            )

        return gen()


USE_PROVIDER_RUNTIME = "provider" in sys.argv[2:]
LLM_CLASS = (
    OpenAIBackedLLM if "sdk" in sys.argv[2:] else ProviderBackedLLM if USE_PROVIDER_RUNTIME else FakeLLM
)


class _Serializer:  # PromptMessageSerializerProtocol
    def serialize(self, *, model_mode, prompt_messages):
        return [{"role": m.role.value, "text": m.content} for m in prompt_messages]


class _FileSaver:  # LLMFileSaver (text only)
    def save_binary_string(self, *a, **k):
        raise RuntimeError("no files")

    def save_remote_url(self, *a, **k):
        raise RuntimeError("no files")


# --------------------------------------------------------------------------
# Fake tool runtime: graphon.nodes.runtime.ToolNodeRuntimeProtocol
# --------------------------------------------------------------------------
from graphon.nodes.tool_runtime_entities import (
    ToolRuntimeHandle,
    ToolRuntimeMessage,
    ToolRuntimeParameter,
)


def weather_service() -> str:
    """A local HTTP service that prints the traceparent header of each request it gets."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            print(f"traceparent: {self.headers.get('traceparent')}", flush=True)
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"sunny")

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/weather"


class FakeToolRuntime:
    def get_runtime(self, *, node_id, node_data, variable_pool, node_execution_id=None):
        return ToolRuntimeHandle(raw={"tool": node_data.tool_name})

    def get_runtime_parameters(self, *, tool_runtime):
        return [ToolRuntimeParameter(name="city", required=True)]

    def invoke(self, *, tool_runtime, tool_parameters, workflow_call_depth, provider_name):
        log(f"FakeToolRuntime.invoke {tool_runtime.raw} params={tool_parameters}")
        if "http" in sys.argv[2:]:
            import httpx

            httpx.get(weather_service())
        yield ToolRuntimeMessage(
            type=ToolRuntimeMessage.MessageType.TEXT,
            message=ToolRuntimeMessage.TextMessage(text=f"Sunny in {tool_parameters.get('city')}"),
        )

    def get_usage(self, *, tool_runtime):
        return LLMUsage.empty_usage()

    def build_file_reference(self, *, mapping):
        raise NotImplementedError

    def resolve_provider_icons(self, *, provider_name, default_icon=None):
        return default_icon, None


class _ToolFileManager:
    def create_file_by_raw(self, **k):
        raise NotImplementedError

    def get_file_generator_by_tool_file_id(self, tool_file_id):
        return None, None


# --------------------------------------------------------------------------
# Knowledge retrieval: graphon ships only the type string "knowledge-retrieval";
# the node itself lives in Dify (api/core/workflow/nodes/knowledge_retrieval).
# We define an app-side node the same way Dify does, with a fake backend.
# --------------------------------------------------------------------------
class KnowledgeRetrievalNodeData(BaseNodeData):
    type: str = BuiltinNodeTypes.KNOWLEDGE_RETRIEVAL
    query_variable_selector: list[str]
    dataset_ids: list[str] = Field(default_factory=list)


class FakeSearchRuntime:
    """The model runtime of an embedding and a rerank model (what Dify's plugin daemon answers)."""

    def invoke_text_embedding(self, *, provider, model, credentials, texts, input_type, **extra):
        from graphon.model_runtime.entities.text_embedding_entities import EmbeddingResult, EmbeddingUsage

        usage = EmbeddingUsage(
            tokens=7,
            total_tokens=7,
            unit_price=Decimal(0),
            price_unit=Decimal(0),
            total_price=Decimal(0),
            currency="USD",
            latency=0.01,
        )
        return EmbeddingResult(model=model, embeddings=[[0.1, 0.2, 0.3, 0.4] for _ in texts], usage=usage)

    def invoke_rerank(self, *, provider, model, credentials, query, docs, score_threshold, top_n, **extra):
        from graphon.model_runtime.entities.rerank_entities import RerankDocument, RerankResult

        ranked = [
            RerankDocument(index=i, text=d, score=round(0.93 - 0.22 * i, 2)) for i, d in enumerate(docs)
        ]
        return RerankResult(model=model, docs=ranked[:top_n])


def search_through_models(query: str, documents: list[str]) -> None:
    """The query embedded and the documents reranked through graphon's model classes, as Dify's
    dataset retrieval does through ModelInstance."""
    from graphon.model_runtime.model_providers.base.rerank_model import RerankModel
    from graphon.model_runtime.model_providers.base.text_embedding_model import TextEmbeddingModel

    TextEmbeddingModel(PROVIDER_SCHEMA, FakeSearchRuntime()).invoke(
        model="text-embedding-3-small", credentials={}, texts=[query]
    )
    RerankModel(PROVIDER_SCHEMA, FakeSearchRuntime()).invoke(
        model="rerank-2", credentials={}, query=query, docs=documents, top_n=2
    )


class FakeRetriever:
    def retrieve(self, query: str, dataset_ids: list[str]) -> list[dict[str, Any]]:
        log(f"FakeRetriever.retrieve query={query!r} datasets={dataset_ids}")
        if USE_PROVIDER_RUNTIME:
            search_through_models(
                query, ["Paris is the capital and largest city of France.", "France is in Western Europe."]
            )
        return [
            {
                "content": "Paris is the capital and largest city of France.",
                "title": "france.txt",
                "metadata": {"score": 0.93, "dataset_id": dataset_ids[0], "document_name": "france.txt"},
            },
            {
                "content": "France is in Western Europe.",
                "title": "europe.txt",
                "metadata": {"score": 0.71, "dataset_id": dataset_ids[0], "document_name": "europe.txt"},
            },
        ]


class KnowledgeRetrievalNode(Node[KnowledgeRetrievalNodeData]):
    node_type = BuiltinNodeTypes.KNOWLEDGE_RETRIEVAL
    retriever = FakeRetriever()

    @classmethod
    def version(cls) -> str:
        return "1"

    def _run(self) -> NodeRunResult:
        var = _state(self).variable_pool.get(self.node_data.query_variable_selector)
        query = var.text if var else ""
        docs = self.retriever.retrieve(query, self.node_data.dataset_ids)
        return NodeRunResult(
            status=WorkflowNodeExecutionStatus.SUCCEEDED, inputs={"query": query}, outputs={"result": docs}
        )


class AgentNodeData(BaseNodeData):
    type: str = BuiltinNodeTypes.AGENT
    agent_strategy_name: str = "function_calling"


class AgentNode(Node[AgentNodeData]):
    """Where Dify plugs its agent node (an agent strategy plugin choosing tools and asking the
    model): graphon names the type and runs whatever node the host's factory builds for it."""

    node_type = BuiltinNodeTypes.AGENT

    @classmethod
    def version(cls) -> str:
        return "1"

    def _run(self) -> NodeRunResult:
        return NodeRunResult(
            status=WorkflowNodeExecutionStatus.SUCCEEDED,
            inputs={"query": "Plan a day in Paris"},
            outputs={"text": "Morning at the Louvre, lunch by the Seine."},
        )


# --------------------------------------------------------------------------
# Node factory (graphon.graph.graph.NodeFactory protocol: create_node(config))
# --------------------------------------------------------------------------
class DemoNodeFactory:
    def __init__(self, init_params: GraphInitParams, state: GraphRuntimeState, *, fail_llm: bool = False):
        self.init_params = init_params
        self.state = state
        self.fail_llm = fail_llm
        self.llms: dict[str, FakeLLM] = {}

    # --- 0.8 NodeFactory protocol additions ---
    def with_runtime_state(self, runtime_state):
        f = copy.copy(self)
        f.state = runtime_state
        return f

    def with_graph_config(self, graph_config):
        f = copy.copy(self)
        f.init_params = self.init_params.model_copy(update={"graph_config": graph_config})
        return f

    _CLASSES: ClassVar[dict] = {
        "start": StartNode,
        "end": EndNode,
        "llm": LLMNode,
        "tool": ToolNode,
        "code": CodeNode,
        "iteration": IterationNode,
        "iteration-start": IterationStartNode,
        "knowledge-retrieval": KnowledgeRetrievalNode,
        "agent": AgentNode,
        "loop": LoopNode,
        "loop-start": LoopStartNode,
        "loop-end": LoopEndNode,
    }

    def validate_node(self, node_config):
        data = node_config["data"]
        payload = data.model_dump(mode="python") if isinstance(data, BaseNodeData) else dict(data)
        cls = self._CLASSES[payload["type"]]
        cls.validate_node_data(payload if not isinstance(data, BaseNodeData) else data)
        return cls.execution_type

    def create_node(self, node_config) -> Node:
        node_id = str(node_config["id"])
        data = node_config["data"]
        payload = data.model_dump(mode="python") if isinstance(data, BaseNodeData) else dict(data)
        t = payload["type"]
        if ENGINE_08:
            common = {"node_id": node_id, "init_params": self.init_params, "runtime_state": self.state}
        else:
            common = {
                "node_id": node_id,
                "graph_init_params": self.init_params,
                "graph_runtime_state": self.state,
            }
        if t == BuiltinNodeTypes.START:
            return StartNode(data=StartNode.validate_node_data(data), **common)
        if t == BuiltinNodeTypes.END:
            return EndNode(data=EndNode.validate_node_data(data), **common)
        if t == BuiltinNodeTypes.LLM:
            nd = LLMNodeData.model_validate(payload)
            llm = LLM_CLASS(
                provider=nd.model.provider,
                model_name=nd.model.name,
                parameters=nd.model.completion_params,
                fail=self.fail_llm,
                answer=payload.get("_fake_answer", "Paris is the capital of France."),
            )
            self.llms[node_id] = llm
            return LLMNode(
                data=nd,
                model_instance=llm,
                llm_file_saver=_FileSaver(),
                prompt_message_serializer=_Serializer(),
                **common,
            )
        if t == BuiltinNodeTypes.TOOL:
            return ToolNode(
                data=ToolNodeData.model_validate(payload),
                tool_file_manager=_ToolFileManager(),
                runtime=FakeToolRuntime(),
                **common,
            )
        if t == BuiltinNodeTypes.CODE:
            return CodeNode(
                data=CodeNodeData.model_validate(payload),
                code_executor=FailingCodeExecutor(),
                code_limits=CodeNodeLimits(
                    max_string_length=80000,
                    max_number=2**63,
                    min_number=-(2**63),
                    max_precision=20,
                    max_depth=5,
                    max_number_array_length=1000,
                    max_string_array_length=1000,
                    max_object_array_length=1000,
                ),
                **common,
            )
        if t == BuiltinNodeTypes.ITERATION:
            return IterationNode(data=IterationNodeData.model_validate(payload), **common)
        if t == BuiltinNodeTypes.ITERATION_START:
            return IterationStartNode(data=IterationStartNode.validate_node_data(data), **common)
        if t == BuiltinNodeTypes.LOOP:
            return LoopNode(data=LoopNodeData.model_validate(payload), **common)
        if t == BuiltinNodeTypes.LOOP_START:
            return LoopStartNode(data=LoopStartNode.validate_node_data(data), **common)
        if t == BuiltinNodeTypes.LOOP_END:
            return LoopEndNode(data=LoopEndNode.validate_node_data(data), **common)
        if t == BuiltinNodeTypes.KNOWLEDGE_RETRIEVAL:
            return KnowledgeRetrievalNode(data=KnowledgeRetrievalNodeData.model_validate(payload), **common)
        if t == BuiltinNodeTypes.AGENT:
            return AgentNode(data=AgentNodeData.model_validate(payload), **common)
        raise ValueError(f"unsupported node type {t}")


class FailingCodeExecutor:  # graphon.nodes.code CodeExecutorProtocol-ish
    def execute(self, *, language, code, inputs):
        raise RuntimeError("sandbox unavailable (fake): code node failed on purpose")

    def is_execution_error(self, error):
        return isinstance(error, RuntimeError)


# 0.8: no child engines. Iteration/loop children run as child *frames* inside
# the same Engine (engine/frame.py, engine/container_handler/builtin/*), on the
# same worker pool and with the same layers. The factory must implement
# with_runtime_state()/with_graph_config() so frames can rebuild scoped graphs.
#
# 0.5 to 0.7: Child engines for iteration/loop: GraphRuntimeState.create_child_engine()
# delegates to a ChildGraphEngineBuilderProtocol the host binds (Dify does this
# in its workflow entry). Layers are NOT inherited automatically.
class DemoChildEngineBuilder:
    def __init__(self, layers_factory):
        self.layers_factory = layers_factory

    def build_child_engine(
        self, *, workflow_id, graph_init_params, parent_graph_runtime_state, root_node_id, variable_pool=None
    ):
        # Dify: iteration passes a deep-copied pool; loop passes None = share the parent's pool.
        pool = variable_pool if variable_pool is not None else parent_graph_runtime_state.variable_pool
        child_state = GraphRuntimeState(variable_pool=pool, start_at=time.time())
        factory = DemoNodeFactory(graph_init_params, child_state)
        graph = Graph.init(
            graph_config=graph_init_params.graph_config, node_factory=factory, root_node_id=root_node_id
        )
        eng = GraphEngine(
            workflow_id=workflow_id,
            graph=graph,
            graph_runtime_state=child_state,
            command_channel=InMemoryChannel(),
        )
        for layer in self.layers_factory():
            eng.layer(layer)
        log(f"child engine built root={root_node_id} (layers={len(eng._layers)})")
        return eng


def _state(holder) -> Any:
    """A node's or a layer's runtime state (0.8's name, or 0.5's)."""
    return holder.runtime_state if ENGINE_08 else holder.graph_runtime_state


def _container(event) -> str:
    """Where a node event's node runs: 0.8's container_id, 0.5's iteration or loop."""
    if ENGINE_08:
        return f"container_id={event.container_id!r}"
    return f"in_iter={event.in_iteration_id} in_loop={event.in_loop_id}"


# --------------------------------------------------------------------------
# Recording layer
# --------------------------------------------------------------------------
class RecordingLayer(Layer):
    def __init__(self, tag: str = "root", command_on_first_chunk: str | None = None) -> None:
        super().__init__()
        self.tag = tag
        self.command_on_first_chunk = command_on_first_chunk
        self.chunks: dict[str, list[str]] = {}
        self.node_threads: dict[str, list[str]] = {}

    def on_graph_start(self) -> None:
        st = _state(self)
        # ReadOnlyGraphRuntimeState has no workflow id / graph; only the pool,
        # usage, outputs, counters. Dify puts app/workflow ids into sys.* vars.
        log(
            f"<{self.tag}> on_graph_start state={type(st).__name__} sys={dict(st.variable_pool.get_by_prefix('sys'))}"
        )

    def on_event(self, event: EngineEvent) -> None:
        name = type(event).__name__
        if isinstance(event, NodeRunStreamChunkEvent):
            self.chunks.setdefault(event.id, []).append(event.chunk)
            if self.command_on_first_chunk:
                cmd = (
                    AbortCommand(reason="user pressed stop")
                    if self.command_on_first_chunk == "abort"
                    else PauseCommand(reason="user requested pause")
                )
                log(f"<{self.tag}> sending {type(cmd).__name__} via layer.command_channel")
                self.command_channel.send_command(cmd)
                self.command_on_first_chunk = None
            log(
                f"<{self.tag}> on_event {name} node={event.node_id} {_container(event)} selector={list(event.selector)} chunk={event.chunk!r} final={event.is_final}"
            )
            return
        if isinstance(event, NodeEvent):
            r = event.node_run_result
            extra = {
                k: getattr(event, k)
                for k in ("node_title", "predecessor_node_id", "error", "index")
                if hasattr(event, k)
            }
            log(
                f"<{self.tag}> on_event {name} exec_id={event.id[:8]} node={event.node_id} type={event.node_type} "
                f"{_container(event)} {extra} status={r.status.value}"
            )
            if name in ("NodeRunSucceededEvent", "NodeRunFailedEvent", "NodeRunExceptionEvent"):
                log(f"    inputs={dict(r.inputs)}")
                log(f"    outputs={ {k: (v if k != 'usage' else '...') for k, v in r.outputs.items()} }")
                if r.process_data:
                    log(f"    process_data={dict(r.process_data)}")
                if r.llm_usage.total_tokens:
                    u = r.llm_usage
                    log(
                        f"    llm_usage prompt={u.prompt_tokens} completion={u.completion_tokens} total={u.total_tokens} "
                        f"price={u.total_price} {u.currency} latency={u.latency} ttft={u.time_to_first_token}"
                    )
                if r.metadata:
                    log(f"    metadata={ {str(k): v for k, v in r.metadata.items()} }")
                if r.error:
                    log(f"    error={r.error!r} error_type={r.error_type}")
            return
        log(f"<{self.tag}> on_event {name} {event.model_dump(exclude_none=True)}")

    def on_graph_end(self, error: Exception | None) -> None:
        log(f"<{self.tag}> on_graph_end error={error!r}")

    def on_node_run_start(self, node: Node) -> None:
        self.node_threads.setdefault(node.execution_id, []).append(threading.current_thread().name)
        log(
            f"<{self.tag}> on_node_run_start node={node.id} exec_id={node.execution_id[:8]} title={node.title!r} "
            f"type={node.node_type} cls={type(node).__name__}"
        )

    # 0.8 only: per-worker-task context manager; gets the *direct* container's
    # node execution id (None in the root frame). Entered around start hook,
    # node events and end hook on the same worker thread, and again on every
    # container resume.
    def node_run_context(self, node: Node, *, parent_execution_id: str | None = None):
        import contextlib

        log(
            f"<{self.tag}> node_run_context ENTER node={node.id} exec_id={node.execution_id[:8]} "
            f"parent_execution_id={(parent_execution_id or '')[:8] or None}"
        )

        @contextlib.contextmanager
        def cm():
            try:
                yield
            finally:
                log(f"<{self.tag}> node_run_context EXIT node={node.id}")

        return cm()

    def on_node_run_end(self, node: Node, error: Exception | None, result_event=None) -> None:
        self.node_threads.setdefault(node.execution_id, []).append(threading.current_thread().name)
        log(
            f"<{self.tag}> on_node_run_end node={node.id} exec_id={node.execution_id[:8]} error={error!r} "
            f"result={type(result_event).__name__ if result_event else None}"
        )


# --------------------------------------------------------------------------
# Graph configs (Dify workflow graph format: {"nodes": [...], "edges": [...]})
# --------------------------------------------------------------------------
def llm_data(title: str, prompt: str, model: str = "gpt-4o-mini", **extra) -> dict:
    return {
        "type": "llm",
        "title": title,
        "model": {
            "provider": "langgenius/openai/openai",
            "name": model,
            "mode": "chat",
            "completion_params": {"temperature": 0.2, "max_tokens": 64},
        },
        "prompt_template": [
            {"role": "system", "text": "You are a concise assistant."},
            {"role": "user", "text": prompt},
        ],
        "context": extra.pop("context", {"enabled": False}),
        **extra,
    }


START = {
    "id": "start",
    "data": {
        "type": "start",
        "title": "Start",
        "variables": [
            {"variable": "query", "label": "Query", "type": "paragraph", "required": True},
            {"variable": "cities", "label": "Cities", "type": "json_object", "required": False},
        ],
    },
}


def basic_graph() -> dict:
    return {
        "nodes": [
            START,
            {"id": "llm", "data": llm_data("Ask LLM", "{{#start.query#}}")},
            {
                "id": "end",
                "data": {
                    "type": "end",
                    "title": "End",
                    "outputs": [{"variable": "answer", "value_selector": ["llm", "text"]}],
                },
            },
        ],
        "edges": [
            {"id": "e1", "source": "start", "target": "llm"},
            {"id": "e2", "source": "llm", "target": "end"},
        ],
    }


def full_graph() -> dict:
    return {
        "nodes": [
            START,
            {
                "id": "kr",
                "data": {
                    "type": "knowledge-retrieval",
                    "title": "Knowledge",
                    "query_variable_selector": ["start", "query"],
                    "dataset_ids": ["ds-1"],
                },
            },
            {
                "id": "llm",
                "data": llm_data(
                    "Answer with context",
                    "Context: {{#context#}}\nQ: {{#start.query#}}",
                    context={"enabled": True, "variable_selector": ["kr", "result"]},
                ),
            },
            {
                "id": "tool",
                "data": {
                    "type": "tool",
                    "title": "Weather tool",
                    "provider_id": "langgenius/weather/weather",
                    "provider_type": "builtin",
                    "provider_name": "weather",
                    "tool_name": "current_weather",
                    "tool_label": "Current weather",
                    "tool_configurations": {},
                    "tool_parameters": {"city": {"type": "mixed", "value": "Paris"}},
                },
            },
            {
                "id": "iter",
                "data": {
                    "type": "iteration",
                    "title": "Per item",
                    "iterator_selector": ["start", "items"],
                    "output_selector": ["llm2", "text"],
                    "start_node_id": "iter_start",
                    "is_parallel": False,
                    "parallel_nums": 2,
                },
            },
            {"id": "iter_start", "data": {"type": "iteration-start", "title": "", "iteration_id": "iter"}},
            {
                "id": "llm2",
                "data": llm_data(
                    "Describe item",
                    "Describe {{#iter.item#}}",
                    model="gpt-4o",
                    iteration_id="iter",
                    _fake_answer="A nice city.",
                ),
            },
            {"id": "agent", "data": {"type": "agent", "title": "Trip planner"}},
            {
                "id": "code",
                "data": {
                    "type": "code",
                    "title": "Broken code",
                    "code_language": "python3",
                    "code": "def main():\n  return {}",
                    "variables": [],
                    "outputs": {"x": {"type": "string"}},
                    "error_strategy": "default-value",
                    "default_value": [{"key": "x", "type": "string", "value": "fallback"}],
                },
            },
            {
                "id": "end",
                "data": {
                    "type": "end",
                    "title": "End",
                    "outputs": [
                        {"variable": "answer", "value_selector": ["llm", "text"]},
                        {"variable": "weather", "value_selector": ["tool", "text"]},
                        {"variable": "descriptions", "value_selector": ["iter", "output"]},
                        {"variable": "code_x", "value_selector": ["code", "x"]},
                    ],
                },
            },
        ],
        "edges": [
            {"id": "e1", "source": "start", "target": "kr"},
            {"id": "e2", "source": "kr", "target": "llm"},
            {"id": "e3", "source": "llm", "target": "end"},
            {"id": "e4", "source": "start", "target": "tool"},
            {"id": "e5", "source": "tool", "target": "end"},
            {"id": "e6", "source": "start", "target": "iter"},
            {"id": "e7", "source": "iter", "target": "end"},
            {"id": "e8", "source": "iter_start", "target": "llm2"},
            {"id": "e9", "source": "start", "target": "code"},
            {"id": "e10", "source": "code", "target": "end"},
            {"id": "e11", "source": "start", "target": "agent"},
            {"id": "e12", "source": "agent", "target": "end"},
        ],
    }


def parallel_iteration_graph(g: dict) -> dict:
    keep = {"start", "iter", "iter_start", "llm2", "end"}
    g["nodes"] = [n for n in g["nodes"] if n["id"] in keep]
    g["edges"] = [e for e in g["edges"] if e["source"] in keep and e["target"] in keep]
    for n in g["nodes"]:
        if n["id"] == "iter":
            n["data"]["is_parallel"] = True
        if n["id"] == "end":
            n["data"]["outputs"] = [{"variable": "descriptions", "value_selector": ["iter", "output"]}]
    return g


def loop_graph() -> dict:
    return {
        "nodes": [
            START,
            {
                "id": "loop",
                "data": {
                    "type": "loop",
                    "title": "Retry loop",
                    "start_node_id": "loop_start",
                    "loop_count": 2,
                    "break_conditions": [],
                    "logical_operator": "and",
                    "loop_variables": [],
                },
            },
            {"id": "loop_start", "data": {"type": "loop-start", "title": "", "loop_id": "loop"}},
            {
                "id": "llm3",
                "data": llm_data(
                    "Refine", "Refine: {{#start.query#}}", loop_id="loop", _fake_answer="Refined answer."
                ),
            },
            {
                "id": "end",
                "data": {
                    "type": "end",
                    "title": "End",
                    "outputs": [{"variable": "last", "value_selector": ["llm3", "text"]}],
                },
            },
        ],
        "edges": [
            {"id": "e1", "source": "start", "target": "loop"},
            {"id": "e2", "source": "loop_start", "target": "llm3"},
            {"id": "e3", "source": "loop", "target": "end"},
        ],
    }


def run(scenario: str) -> None:
    global T0
    T0 = time.perf_counter()
    print(f"\n===== graphon {VERSION} scenario={scenario} =====", flush=True)
    graph_config = full_graph() if scenario in ("full", "piter") else basic_graph()
    if scenario == "loop":
        graph_config = loop_graph()
    if scenario == "piter":  # parallel iteration only
        graph_config = parallel_iteration_graph(graph_config)
    path = f"{GRAPH_DIR}/graph_{VERSION}_{scenario}.json"
    with open(path, "w") as f:
        json.dump(graph_config, f, indent=1)
    with open(path) as f:
        graph_config = json.load(f)

    pool = VariablePool()
    pool.add(("start", "query"), "What is the capital of France?")
    pool.add(("start", "items"), ["Paris", "Lyon"])
    pool.add(("sys", "workflow_id"), "wf-demo")
    pool.add(("sys", "app_id"), "app-demo")
    pool.add(("sys", "workflow_run_id"), "run-123")
    pool.add(("sys", "user_id"), "user-1")
    init_params = GraphInitParams(
        workflow_id="wf-demo",
        graph_config=graph_config,
        run_context={"_dify": {"app_id": "app-demo", "tenant_id": "t1"}},
        call_depth=0,
    )
    if ENGINE_08:
        state = GraphRuntimeState(variable_pool=pool, start_at=time.time(), workflow_id="wf-demo")
    else:
        state = GraphRuntimeState(variable_pool=pool, start_at=time.time())
    factory = DemoNodeFactory(init_params, state, fail_llm=(scenario == "fail"))
    graph = Graph.init(graph_config=graph_config, node_factory=factory, root_node_id="start")
    if ENGINE_08:
        engine = Engine(graph=graph, runtime_state=state, workers=5)
    else:
        engine = GraphEngine(
            workflow_id="wf-demo",
            graph=graph,
            graph_runtime_state=state,
            command_channel=InMemoryChannel(),
            child_engine_builder=DemoChildEngineBuilder(lambda: [RecordingLayer("child")]),
        )
    layer = RecordingLayer(
        "root", command_on_first_chunk=scenario if scenario in ("abort", "pause") else None
    )
    ret = engine.add_layer(layer) if ENGINE_08 else engine.layer(layer)
    log(f"adding the layer returned {type(ret).__name__}")

    n_events = 0
    try:
        for ev in engine.run():
            n_events += 1
    except Exception as e:  # noqa: BLE001 - a failing scenario's run raises: shown, not fatal
        log(f"engine.run() raised {e!r}")
    log(f"consumer saw {n_events} events; outputs={state.outputs}")
    log(f"total llm usage tokens={state.llm_usage.total_tokens}")
    log(f"streamed text per exec_id: { {k[:8]: ''.join(v) for k, v in layer.chunks.items()} }")
    log(f"threads of on_node_run_start/end per exec: { {k[:8]: v for k, v in layer.node_threads.items()} }")


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    for sc in ["basic", "full", "fail", "abort", "pause", "piter", "loop"] if which == "all" else [which]:
        run(sc)
