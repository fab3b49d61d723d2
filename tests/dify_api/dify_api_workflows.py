"""A workflow run inside Dify's own api/ (Dify 1.9 to 1.12, whose engine is
core.workflow.graph_engine), as Dify's workflow app runner starts it: Dify's node factory,
WorkflowEntry (which adds Dify's own layers: execution limits, and its ObservabilityLayer when
ENABLE_OTEL or ENABLE_OTEL_FOR_INSTRUMENT is on), then run.

The workflow: start -> HTTP request (Dify's http-request node, through Dify's ssrf_proxy httpx
client, to a local service that prints the W3C traceparent it received) -> end. Then, in the same
process, a chat model call through Dify's model runtime (LargeLanguageModel.invoke -> Dify's
plugin daemon client) to a local stand-in for the plugin daemon (PLUGIN_DAEMON_URL), which answers
a streamed chat as the daemon does and prints the traceparent it received.

Run with Dify's api/ folder as the working directory and on sys.path, under `instrument`.
"""

from __future__ import annotations

import json
import os
import sys
import time

from plugin_daemon import PluginDaemon, serve


class Service(PluginDaemon):
    """The weather service and the plugin daemon (plugin_daemon.py), on one local port."""

    def do_GET(self) -> None:
        if not self.path.startswith("/weather"):
            return super().do_GET()
        print(f"traceparent {self.path}: {self.headers.get('traceparent')}", flush=True)
        self._json({"weather": "sunny"})


def workflow(url: str) -> None:
    from core.app.entities.app_invoke_entities import InvokeFrom
    from core.app.workflow.node_factory import DifyNodeFactory
    from core.workflow.entities.graph_init_params import GraphInitParams
    from core.workflow.graph.graph import Graph
    from core.workflow.runtime.graph_runtime_state import GraphRuntimeState
    from core.workflow.runtime.variable_pool import VariablePool
    from core.workflow.system_variable import SystemVariable
    from core.workflow.workflow_entry import WorkflowEntry
    from models.enums import UserFrom

    graph_config = {
        "nodes": [
            {"id": "start", "data": {"type": "start", "title": "Start", "variables": []}},
            {
                "id": "weather",
                "data": {
                    "type": "http-request",
                    "title": "Weather",
                    "method": "get",
                    "url": url + "/weather",
                    "authorization": {"type": "no-auth"},
                    "headers": "",
                    "params": "",
                    "body": {"type": "none", "data": []},
                    "timeout": {"connect": 5, "read": 5, "write": 5},
                },
            },
            {
                "id": "end",
                "data": {
                    "type": "end",
                    "title": "End",
                    "outputs": [{"variable": "weather", "value_selector": ["weather", "body"]}],
                },
            },
        ],
        "edges": [
            {"id": "e1", "source": "start", "target": "weather"},
            {"id": "e2", "source": "weather", "target": "end"},
        ],
    }
    system = SystemVariable(
        user_id="user-7", app_id="app-7", workflow_id="wf-7", workflow_execution_id="run-7"
    )
    state = GraphRuntimeState(
        variable_pool=VariablePool(system_variables=system, user_inputs={}), start_at=time.time()
    )
    params = GraphInitParams(
        tenant_id="tenant-7",
        app_id="app-7",
        workflow_id="wf-7",
        graph_config=graph_config,
        user_id="user-7",
        user_from=UserFrom.ACCOUNT,
        invoke_from=InvokeFrom.SERVICE_API,
        call_depth=0,
    )
    graph = Graph.init(
        graph_config=graph_config, node_factory=DifyNodeFactory(params, state), root_node_id="start"
    )
    entry = WorkflowEntry(
        tenant_id="tenant-7",
        app_id="app-7",
        workflow_id="wf-7",
        graph_config=graph_config,
        graph=graph,
        user_id="user-7",
        user_from=UserFrom.ACCOUNT,
        invoke_from=InvokeFrom.SERVICE_API,
        call_depth=0,
        variable_pool=state.variable_pool,
        graph_runtime_state=state,
    )
    layers = [type(layer).__name__ for layer in entry.graph_engine._layers]
    print(f"layers: {layers}", flush=True)
    for event in entry.run():
        if type(event).__name__ == "GraphRunFailedEvent":
            print(f"failed: {event.error}", flush=True)
    print(f"outputs: {json.dumps(state.outputs)}", flush=True)


def chat() -> None:
    from core.model_runtime.entities.message_entities import UserPromptMessage
    from core.model_runtime.entities.model_entities import ModelType
    from core.model_runtime.entities.provider_entities import ProviderEntity
    from core.model_runtime.model_providers.__base.large_language_model import LargeLanguageModel
    from core.plugin.entities.plugin_daemon import PluginModelProviderEntity

    provider = PluginModelProviderEntity(
        id="p-1",
        created_at="2025-01-01T00:00:00",
        updated_at="2025-01-01T00:00:00",
        provider="openai",
        tenant_id="tenant-7",
        plugin_unique_identifier="langgenius/openai:1.0.0",
        plugin_id="langgenius/openai",
        declaration=ProviderEntity(
            provider="openai",
            label={"en_US": "OpenAI"},
            supported_model_types=[ModelType.LLM],
            configurate_methods=["predefined-model"],
        ),
    )
    model = LargeLanguageModel(
        tenant_id="tenant-7",
        model_type=ModelType.LLM,
        plugin_id="langgenius/openai",
        provider_name="openai",
        plugin_model_provider=provider,
    )
    chunks = model.invoke(
        model="gpt-4o-mini",
        credentials={"openai_api_key": "sk-secret"},
        prompt_messages=[UserPromptMessage(content="What is the capital of France?")],
        model_parameters={"temperature": 0.3},
        stream=True,
        user="user-7",
    )
    print("answer: " + "".join(str(chunk.delta.message.content) for chunk in chunks), flush=True)


if __name__ == "__main__":
    base = serve(Service)
    os.environ["PLUGIN_DAEMON_URL"] = base  # read by Dify's settings, on their first import below
    if "workflow" in sys.argv[1:]:
        workflow(base)
    if "chat" in sys.argv[1:]:
        chat()
