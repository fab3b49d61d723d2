"""A Dify workflow, offline: start -> LLM -> end on Dify's engine (graphon), with a made-up model
plugged in where graphon asks for one (its ``LLMProtocol``, which Dify fills with a model of a
provider plugin). Nothing of llmprobe in it: run it under ``instrument`` and the run gives one
trace, ``workflow support-bot`` with a span per node and the model call's LLM span (model,
provider, messages, tokens, time to first token) under the LLM node::

    python3.12 -m pip install llmprobe graphon        # graphon needs Python 3.12
    instrument python examples/dify_workflow.py "What is the capital of France?"

The answer prints on stdout; with nothing else configured the trace prints on stderr, and
OTEL_EXPORTER_OTLP_ENDPOINT sends it to a collector instead. Runs on graphon 0.8
(``graphon.engine.Engine``) and on 0.5 to 0.7 (``graphon.graph_engine.GraphEngine``, the engine
Dify 1.13 and 1.14 pin).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Mapping

from graphon.enums import BuiltinNodeTypes
from graphon.graph.graph import Graph
from graphon.model_runtime.entities.common_entities import I18nObject
from graphon.model_runtime.entities.llm_entities import LLMResultChunk, LLMResultChunkDelta, LLMUsage
from graphon.model_runtime.entities.message_entities import AssistantPromptMessage
from graphon.model_runtime.entities.model_entities import (
    AIModelEntity,
    FetchFrom,
    ModelPropertyKey,
    ModelType,
)
from graphon.nodes.end.end_node import EndNode
from graphon.nodes.llm import LLMNode, LLMNodeData
from graphon.nodes.llm.runtime_protocols import LLMProtocol
from graphon.nodes.start import StartNode

try:  # graphon 0.8
    from graphon.engine import Engine
    from graphon.runtime import InitParams, RuntimeState, VariablePool

    NEW_ENGINE = True
except ImportError:  # graphon 0.5 to 0.7
    from graphon.entities.graph_init_params import GraphInitParams as InitParams
    from graphon.graph_engine import GraphEngine
    from graphon.graph_engine.command_channels import InMemoryChannel
    from graphon.runtime.graph_runtime_state import GraphRuntimeState as RuntimeState
    from graphon.runtime.variable_pool import VariablePool

    NEW_ENGINE = False

# The workflow as Dify's DSL describes it (what the editor saves), built by the engine.
WORKFLOW = {
    "nodes": [
        {
            "id": "start",
            "data": {
                "type": "start",
                "title": "Start",
                "variables": [
                    {"variable": "question", "label": "Question", "type": "text-input", "required": True}
                ],
            },
        },
        {
            "id": "llm",
            "data": {
                "type": "llm",
                "title": "Answer",
                "model": {
                    "provider": "langgenius/openai/openai",
                    "name": "gpt-4o-mini",
                    "mode": "chat",
                    "completion_params": {"temperature": 0.2},
                },
                "prompt_template": [
                    {"role": "system", "text": "You answer geography questions in one sentence."},
                    {"role": "user", "text": "{{#start.question#}}"},
                ],
                "context": {"enabled": False},
            },
        },
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
        {"id": "start-llm", "source": "start", "target": "llm"},
        {"id": "llm-end", "source": "llm", "target": "end"},
    ],
}


class MadeUpModel(LLMProtocol):
    """A chat model that streams a fixed answer, with its token counts: what a provider plugin
    gives the LLM node in Dify."""

    ANSWER = "Paris is the capital of France."

    def __init__(self, provider: str, model_name: str, parameters: Mapping) -> None:
        self._provider, self._model_name, self._parameters = provider, model_name, dict(parameters)

    provider = property(lambda self: self._provider)
    model_name = property(lambda self: self._model_name)
    stop = property(lambda self: None)

    @property
    def parameters(self) -> Mapping:
        return self._parameters

    @parameters.setter
    def parameters(self, value: Mapping) -> None:
        self._parameters = dict(value)

    def get_model_schema(self) -> AIModelEntity:
        return AIModelEntity(
            model=self._model_name,
            label=I18nObject(en_US=self._model_name),
            model_type=ModelType.LLM,
            fetch_from=FetchFrom.PREDEFINED_MODEL,
            model_properties={ModelPropertyKey.MODE: "chat", ModelPropertyKey.CONTEXT_SIZE: 8192},
        )

    def get_llm_num_tokens(self, prompt_messages) -> int:
        return sum(len(str(message.content or "").split()) for message in prompt_messages)

    def invoke_llm(
        self, *, prompt_messages, model_parameters, tools, stop, stream
    ) -> Iterator[LLMResultChunk]:
        words = self.ANSWER.split(" ")
        usage = LLMUsage.empty_usage()
        usage.prompt_tokens = self.get_llm_num_tokens(prompt_messages)
        usage.completion_tokens = len(words)
        usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
        for i, word in enumerate(words):
            time.sleep(0.02)  # the model thinking
            last = i == len(words) - 1
            yield LLMResultChunk(
                model=self._model_name,
                prompt_messages=list(prompt_messages),
                delta=LLMResultChunkDelta(
                    index=i,
                    message=AssistantPromptMessage(content=word if last else word + " "),
                    usage=usage if last else None,
                    finish_reason="stop" if last else None,
                ),
            )

    def invoke_llm_with_structured_output(self, **kwargs):
        raise NotImplementedError("this workflow asks for text")

    def is_structured_output_parse_error(self, error: Exception) -> bool:
        return False


class _PromptSerializer:
    def serialize(self, *, model_mode, prompt_messages):
        return [{"role": m.role.value, "text": str(m.content)} for m in prompt_messages]


class _NoFiles:
    def save_binary_string(self, *args, **kwargs):
        raise NotImplementedError("this workflow makes no files")

    save_remote_url = save_binary_string


class NodeFactory:
    """Builds the workflow's nodes, as Dify's node factory does, with the made-up model."""

    def __init__(self, init_params, state) -> None:
        self.init_params, self.state = init_params, state

    def with_runtime_state(self, state):  # graphon 0.8 asks for these two
        return NodeFactory(self.init_params, state)

    def with_graph_config(self, graph_config):
        return NodeFactory(self.init_params.model_copy(update={"graph_config": graph_config}), self.state)

    def validate_node(self, node_config):  # graphon 0.8 checks every node before building any
        node_class = {"start": StartNode, "llm": LLMNode, "end": EndNode}[node_config["data"]["type"]]
        node_class.validate_node_data(dict(node_config["data"]))
        return node_class.execution_type

    def create_node(self, node_config):
        data = dict(node_config["data"])
        if NEW_ENGINE:
            common = {
                "node_id": node_config["id"],
                "init_params": self.init_params,
                "runtime_state": self.state,
            }
        else:
            common = {
                "node_id": node_config["id"],
                "graph_init_params": self.init_params,
                "graph_runtime_state": self.state,
            }
        if data["type"] == BuiltinNodeTypes.START:
            return StartNode(data=StartNode.validate_node_data(data), **common)
        if data["type"] == BuiltinNodeTypes.END:
            return EndNode(data=EndNode.validate_node_data(data), **common)
        node_data = LLMNodeData.model_validate(data)
        model = MadeUpModel(node_data.model.provider, node_data.model.name, node_data.model.completion_params)
        return LLMNode(
            data=node_data,
            model_instance=model,
            llm_file_saver=_NoFiles(),
            prompt_message_serializer=_PromptSerializer(),
            **common,
        )


def run(question: str) -> str:
    pool = VariablePool()
    pool.add(("start", "question"), question)
    pool.add(("sys", "app_id"), "support-bot")
    pool.add(("sys", "workflow_id"), "support-bot")
    pool.add(("sys", "user_id"), "user-42")
    init_params = InitParams(workflow_id="support-bot", graph_config=WORKFLOW, run_context={}, call_depth=0)
    if NEW_ENGINE:
        state = RuntimeState(variable_pool=pool, start_at=time.time(), workflow_id="support-bot")
    else:
        state = RuntimeState(variable_pool=pool, start_at=time.time())
    graph = Graph.init(
        graph_config=WORKFLOW, node_factory=NodeFactory(init_params, state), root_node_id="start"
    )
    if NEW_ENGINE:
        engine = Engine(graph=graph, runtime_state=state)
    else:
        engine = GraphEngine(
            workflow_id="support-bot",
            graph=graph,
            graph_runtime_state=state,
            command_channel=InMemoryChannel(),
        )
    for _event in engine.run():
        pass
    return state.outputs["answer"]


if __name__ == "__main__":
    print(run(" ".join(sys.argv[1:]) or "What is the capital of France?"))
