"""The callback handler LangChain calls for every run: runs become spans (see _runs).

- chains and runnables: CHAIN ``chain {run name}``; a LangGraph graph (a run whose children are
  graph steps) and ``AgentExecutor``: AGENT ``invoke_agent {name}``; a graph's nodes carry
  ``langgraph.node`` and ``langgraph.step``;
- chat models and LLMs: the model call. When an SDK llmprobe instruments made the request under
  the run (ChatOpenAI through openai, ChatTongyi through dashscope), that SDK's span is the LLM
  span and the run becomes its parent, a CHAIN with LangChain's data; otherwise the run is the
  LLM span, filled from LangChain's result, with the GenAI metrics. See _core.ModelStep.
- tools: TOOL ``execute_tool {name}``; retrievers: RETRIEVER ``retrieval {name}``.

Every method is guarded: a failure of llmprobe's is logged once and never reaches LangChain,
which would print it as a warning of the application's.
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

from llmprobe import _core, _log
from llmprobe._errors import qualified_name
from llmprobe.instrumentation import _genai
from llmprobe.instrumentation.langchain import _read, _runs

_CLIENT = _core.KIND_CLIENT
_INTERNAL = _core.KIND_INTERNAL
_GRAPH_STEP = "graph:step:"
# Exceptions LangGraph raises to interrupt a graph or hand control to its parent: not failures.
_CONTROL_FLOW = frozenset(("GraphBubbleUp", "GraphInterrupt", "NodeInterrupt", "ParentCommand"))


def _name(serialized: Any, kwargs: dict, default: str) -> str:
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    if isinstance(serialized, dict):
        name = serialized.get("name")
        if isinstance(name, str) and name:
            return name
        ids = serialized.get("id")
        if isinstance(ids, list) and ids and isinstance(ids[-1], str):
            return ids[-1]
    return default


def _common(attributes: dict, tags: Any, metadata: Any) -> None:
    """What every span of a LangChain run carries: the framework, the session, conversation and
    user ids in the run's metadata (LangGraph's thread_id is both the session and the
    conversation), and the run's tags."""
    attributes["gen_ai.framework"] = "langchain"
    if not metadata and not tags:
        return
    if metadata:
        thread = metadata.get("thread_id")
        for key, attribute in (
            ("session_id", "gen_ai.session.id"),
            ("conversation_id", "gen_ai.conversation.id"),
        ):
            value = metadata.get(key, thread)
            if value is not None:
                attributes[attribute] = str(value)
        user = metadata.get("user_id")
        if user is not None:
            attributes["gen_ai.user.id"] = str(user)
    if tags:
        attributes["langchain.tags"] = list(tags)


def _put_value(attributes: dict, direction: str, value: Any) -> None:
    """A run's input or output as ``input.value`` / ``output.value`` (content: only when
    captured)."""
    if not _genai.capture:
        return
    if isinstance(value, str):
        attributes[direction + ".value"] = _genai.content_text(value)
        attributes[direction + ".mime_type"] = "text/plain"
    else:
        attributes[direction + ".value"] = _core.langchain_json(value)
        attributes[direction + ".mime_type"] = "application/json"


def _failed(run: _runs.Run, error: BaseException) -> bool:
    """Record `error` on the run's span when it is a failure (an Exception that is not one of
    LangGraph's control-flow signals). A cancelled task or a closed generator is no failure."""
    if not isinstance(error, Exception):
        return False
    if any(cls.__name__ in _CONTROL_FLOW for cls in type(error).__mro__):
        run.span.set_attribute("langgraph.interrupt", True)
        return False
    run.span.record_failure(error, True, True)
    return True


class _Model:
    """What a model run's end needs from its start (`input`: LangChain's messages, or a text
    completion's prompts)."""

    __slots__ = ("input", "metadata", "model", "operation", "params", "provider")

    def __init__(
        self,
        operation: str,
        model: str | None,
        provider: str | None,
        params: dict,
        metadata: dict,
        input: list,
    ) -> None:
        self.operation = operation
        self.model = model
        self.provider = provider
        self.params = params
        self.metadata = metadata
        self.input = input


class Handler(BaseCallbackHandler):
    """llmprobe's LangChain handler, added to every callback manager LangChain configures."""

    # Called in the run's own context, also by async callback managers (see _runs).
    run_inline = True
    raise_error = False

    # ---- chains, runnables, graphs, agents ----------------------------------------------------

    def on_chain_start(
        self, serialized, inputs, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs
    ):
        try:
            name = _name(serialized, kwargs, "chain")
            attributes = {"gen_ai.span.kind": "CHAIN", "gen_ai.operation.name": "chain"}
            _common(attributes, tags, metadata)
            if tags:
                for tag in tags:
                    if tag.startswith(_GRAPH_STEP):
                        # A LangGraph node: its parent is the graph, an agent.
                        parent = _runs.get(parent_run_id)
                        if parent is not None and parent.kind == "CHAIN":
                            parent.kind = "AGENT"
                        if metadata:
                            node = metadata.get("langgraph_node")
                            if node is not None:
                                attributes["langgraph.node"] = str(node)
                            step = metadata.get("langgraph_step")
                            if type(step) is int:
                                attributes["langgraph.step"] = step
                        break
            kind = "AGENT" if name == "AgentExecutor" else "CHAIN"
            if not (type(inputs) is dict and inputs.get("input") == "" and kwargs.get("defers_inputs")):
                _put_value(attributes, "input", inputs)
            _runs.start(run_id, parent_run_id, kind, name, "chain " + name, attributes)
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain on_chain_start", exc)

    def on_chain_end(self, outputs, *, run_id, parent_run_id=None, **kwargs):
        try:
            run = _runs.finish(run_id)
            if run is None:
                return
            attributes: dict = {}
            inputs = kwargs.get("inputs")
            if inputs is not None:  # a stream's input, known only now
                _put_value(attributes, "input", inputs)
            _put_value(attributes, "output", outputs)
            _end_chain(run, attributes)
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain on_chain_end", exc)

    def on_chain_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        try:
            run = _runs.finish(run_id)
            if run is None:
                return
            _failed(run, error)
            _end_chain(run, {})
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain on_chain_error", exc)

    # ---- models -------------------------------------------------------------------------------

    def on_chat_model_start(
        self, serialized, messages, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs
    ):
        try:
            _start_model(
                serialized,
                "chat",
                messages[0] if messages else [],
                run_id,
                parent_run_id,
                tags,
                metadata,
                kwargs,
            )
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain on_chat_model_start", exc)

    def on_llm_start(
        self, serialized, prompts, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs
    ):
        try:
            _start_model(
                serialized, "text_completion", prompts, run_id, parent_run_id, tags, metadata, kwargs
            )
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain on_llm_start", exc)

    def on_llm_new_token(self, token, *, chunk=None, run_id, parent_run_id=None, **kwargs):
        try:
            run = _runs.get(run_id)
            if run is not None and run.first_token is None:
                if not run.streamed:
                    run.streamed = True
                    # The request is made; whoever reads the stream runs between its chunks.
                    _runs.leave_here(run)
                if (
                    token
                    or chunk is not None
                    and getattr(getattr(chunk, "message", None), "tool_call_chunks", None)
                ):
                    run.first_token = perf_counter_ns()
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain on_llm_new_token", exc)

    def on_llm_end(self, response, *, run_id, parent_run_id=None, **kwargs):
        try:
            run = _runs.finish(run_id)
            if run is not None:
                _end_model(run, response, None)
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain on_llm_end", exc)

    def on_llm_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        try:
            run = _runs.finish(run_id)
            if run is not None:
                _end_model(run, kwargs.get("response"), error)
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain on_llm_error", exc)

    # ---- tools --------------------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized,
        input_str,
        *,
        run_id,
        parent_run_id=None,
        tags=None,
        metadata=None,
        inputs=None,
        **kwargs,
    ):
        try:
            name = _name(serialized, kwargs, "tool")
            attributes = {
                "gen_ai.span.kind": "TOOL",
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.type": "function",
            }
            _common(attributes, tags, metadata)
            description = serialized.get("description") if isinstance(serialized, dict) else None
            if isinstance(description, str) and description:
                attributes["gen_ai.tool.description"] = description
            call_id = kwargs.get("tool_call_id")
            if call_id is None:
                call_id = _pending_call_id(parent_run_id, name)
            if isinstance(call_id, str):
                attributes["gen_ai.tool.call.id"] = call_id
            if _genai.capture:
                arguments = inputs if inputs is not None else input_str
                _put_value(attributes, "input", arguments)
                attributes["gen_ai.tool.call.arguments"] = attributes["input.value"]
            _runs.start(run_id, parent_run_id, "TOOL", name, "execute_tool " + name, attributes)
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain on_tool_start", exc)

    def on_tool_end(self, output, *, run_id, parent_run_id=None, **kwargs):
        try:
            run = _runs.finish(run_id)
            if run is None:
                return
            attributes: dict = {}
            call_id = getattr(output, "tool_call_id", None)
            if isinstance(call_id, str):  # a ToolMessage: the call it answers
                attributes["gen_ai.tool.call.id"] = call_id
                result = _read.content_text(getattr(output, "content", None))
            else:
                result = output
            _put_value(attributes, "output", result)
            if "output.value" in attributes:
                attributes["gen_ai.tool.call.result"] = attributes["output.value"]
            run.span.set_attributes(attributes)
            run.span.end()
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain on_tool_end", exc)

    def on_tool_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        self._end_failed(run_id, error, "langchain on_tool_error")

    def on_agent_action(self, action, *, run_id, parent_run_id=None, **kwargs):
        # AgentExecutor announces the tool call it is about to make (its run the tool's parent),
        # then runs the tool without the call's id.
        try:
            run = _runs.get(run_id)
            call_id = getattr(action, "tool_call_id", None)
            if run is not None and isinstance(call_id, str):
                run.data = (getattr(action, "tool", None), call_id)
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain on_agent_action", exc)

    # ---- retrievers ---------------------------------------------------------------------------

    def on_retriever_start(
        self, serialized, query, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs
    ):
        try:
            name = _name(serialized, kwargs, "retriever")
            attributes = {"gen_ai.span.kind": "RETRIEVER", "gen_ai.operation.name": "retrieval"}
            _common(attributes, tags, metadata)
            if metadata:
                store = metadata.get("ls_vector_store_provider")
                if isinstance(store, str):
                    attributes["gen_ai.data_source.id"] = store
            if _genai.capture and isinstance(query, str):
                attributes["gen_ai.retrieval.query.text"] = _genai.content_text(query)
                attributes["input.value"] = attributes["gen_ai.retrieval.query.text"]
                attributes["input.mime_type"] = "text/plain"
            _runs.start(run_id, parent_run_id, "RETRIEVER", name, "retrieval " + name, attributes)
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain on_retriever_start", exc)

    def on_retriever_end(self, documents, *, run_id, parent_run_id=None, **kwargs):
        try:
            run = _runs.finish(run_id)
            if run is None:
                return
            if _genai.capture:
                run.span.set_attribute("retrieval.documents", _core.langchain_documents(documents))
            else:
                run.span.set_attribute("llmprobe.retrieval.document_count", len(documents or ()))
            run.span.end()
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain on_retriever_end", exc)

    def on_retriever_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        self._end_failed(run_id, error, "langchain on_retriever_error")

    def _end_failed(self, run_id: Any, error: BaseException, key: str) -> None:
        try:
            run = _runs.finish(run_id)
            if run is None:
                return
            _failed(run, error)
            run.span.end()
        except Exception as exc:  # noqa: BLE001
            _log.log_once(key, exc)


def _pending_call_id(parent_run_id: Any, tool: str) -> str | None:
    """The id of the tool call an agent announced for `tool` (see on_agent_action)."""
    parent = _runs.get(parent_run_id)
    pending = parent.data if parent is not None else None
    if type(pending) is tuple and pending[0] == tool:
        parent.data = None
        return pending[1]
    return None


def _end_chain(run: _runs.Run, attributes: dict) -> None:
    span = run.span
    if run.kind == "AGENT":
        attributes["gen_ai.span.kind"] = "AGENT"
        attributes["gen_ai.operation.name"] = "invoke_agent"
        attributes["gen_ai.agent.name"] = run.name
        span.update_name("invoke_agent " + run.name)
    if attributes:
        span.set_attributes(attributes)
    span.end()


def _start_model(
    serialized: Any,
    operation: str,
    input: list,
    run_id: Any,
    parent_run_id: Any,
    tags: Any,
    metadata: Any,
    kwargs: dict,
) -> None:
    name = _name(serialized, kwargs, "model")
    params = kwargs.get("invocation_params") or {}
    metadata = metadata or {}
    model = params.get("model") or params.get("model_name") or metadata.get("ls_model_name")
    model = model if isinstance(model, str) and model else None
    provider = _read.provider(metadata.get("ls_provider"))
    attributes: dict = {}
    _common(attributes, tags, metadata)
    run = _runs.start(
        run_id,
        parent_run_id,
        "LLM",
        name,
        f"{operation} {model or name}",
        attributes,
        _INTERNAL,
        model_step=True,
    )
    run.data = _Model(operation, model, provider, params, metadata, input)


def _end_model(run: _runs.Run, result: Any, error: BaseException | None) -> None:
    """The end of a model run: the parent of an SDK's LLM span (a CHAIN), or the LLM span."""
    data: _Model = run.data
    span = run.span
    capture = _genai.capture
    answer = _read.answer(result) if result is not None else _read.Answer()
    attributes: dict = {}
    input_json = None
    if capture and data.input:
        input_json = (
            _core.langchain_json(data.input) if data.operation == "chat" else _read.prompts_json(data.input)
        )
    if run.step.calls:
        # An SDK's span under this run is the model call; this run is the step around it.
        span.update_name("chain " + run.name)
        attributes["gen_ai.span.kind"] = "CHAIN"
        attributes["gen_ai.operation.name"] = "chain"
        if input_json is not None:
            attributes["input.value"] = input_json
            attributes["input.mime_type"] = "application/json"
        if capture and answer.text:
            attributes["output.value"] = _genai.content_text(answer.text)
            attributes["output.mime_type"] = "text/plain"
        if error is not None:
            _failed(run, error)
        span.set_attributes(attributes)
        span.end()
        return
    span._set_kind(_CLIENT)
    attributes["gen_ai.span.kind"] = "LLM"
    attributes["gen_ai.operation.name"] = data.operation
    metric_attributes = {"gen_ai.operation.name": data.operation}
    if data.provider is not None:
        attributes["gen_ai.provider.name"] = metric_attributes["gen_ai.provider.name"] = data.provider
    if data.model is not None:
        attributes["gen_ai.request.model"] = metric_attributes["gen_ai.request.model"] = data.model
    _read.request_parameters(attributes, data.params, data.metadata)
    attributes["gen_ai.request.stream"] = run.streamed
    tools = data.params.get("tools") or data.params.get("functions")
    if tools and capture:
        definitions = _core.tool_definitions(tools)
        if definitions is not None:
            attributes["gen_ai.tool.definitions"] = definitions
    if input_json is not None:
        _genai.put_input_json(attributes, input_json, 0, True)
    elif not capture:
        attributes["llmprobe.input.size"] = _read.characters(data.input)
    if answer.model is not None:
        attributes["gen_ai.response.model"] = metric_attributes["gen_ai.response.model"] = answer.model
    if answer.id is not None:
        attributes["gen_ai.response.id"] = answer.id
    answer.usage_attributes(attributes)
    if answer.messages:
        reasons = [r for r in answer.reasons if r is not None]
        output = _core.langchain_output(answer.messages, answer.reasons) if capture else None
        _genai.put_output_json(attributes, output, answer.text, reasons, True, len(answer.text))
    first_chunk = None
    if run.first_token is not None:
        attributes["gen_ai.response.time_to_first_token"] = run.first_token - run.started
        first_chunk = (run.first_token - run.started) / 1e9
    span.set_attributes(attributes)
    call = _core.Call(span, metric_attributes, None, run.started)
    if error is not None and _failed(run, error):
        metric_attributes["error.type"] = qualified_name(type(error))
    _core.end_call(call, answer.input_tokens, answer.output_tokens, first_chunk)
