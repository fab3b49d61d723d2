"""LlamaIndex's spans (what its dispatcher announces for every instrumented method) as llmprobe's
runs, in the shared table of runs (instrumentation/_runs).

Every call of a method LlamaIndex instruments is announced with an id and its parent's id, both
LlamaIndex's own (``RetrieverQueryEngine.query-<uuid>``), so runs nest as LlamaIndex nested them,
also across asyncio tasks and threads; a run without a LlamaIndex parent nests under the span
current where it starts (a web request's). What the instance is decides the span:

| instance | span |
|---|---|
| query engine, chat engine, synthesizer, anything else | CHAIN ``chain {Class.method}`` |
| ``Workflow`` | CHAIN ``workflow {Class}`` (``invoke_workflow``); its steps CHAIN ``chain {step}`` |
| agent (``FunctionAgent``, ``ReActAgent``, ``AgentWorkflow``, the older ``AgentRunner``) | AGENT ``invoke_agent {name}`` |
| retriever | RETRIEVER ``retrieval {Class}`` with the query and the ranked nodes |
| node postprocessor, reranker | RERANKER ``rerank {model}`` with the nodes in and out |
| tool | TOOL ``execute_tool {name}`` with the arguments and the result |
| LLM, embedding model | the model call, see _models |

LlamaIndex announces a component's public method and the private one it delegates to
(``query`` then ``_query``, ``retrieve`` then ``_retrieve``, ``chat`` running ``complete``): a
method announced inside a run of the same instance, a private method (``_retrieve``) and a text
splitter's work are not runs of their own but part of the run around them (an alias of it), so
the trace reads query → retrieve → synthesize → LLM. Their ids still lead to that run.
"""

from __future__ import annotations

from typing import Any

from llmprobe import _core, _log
from llmprobe.instrumentation import _genai, _runs
from llmprobe.instrumentation.llama_index import _models, _read, _streams

_INTERNAL = _core.KIND_INTERNAL
# LlamaIndex's base classes (by name, in its own modules), most specific first, and the kind of
# run their instances' methods make. SKIP: part of the run around it.
_BASES = (
    ("BaseWorkflowAgent", "AGENT"),
    ("AgentWorkflow", "AGENT"),
    ("BaseAgent", "AGENT"),
    ("Workflow", "WORKFLOW"),
    ("BaseLLM", "LLM"),
    ("MultiModalLLM", "LLM"),
    ("BaseEmbedding", "EMBEDDING"),
    ("BaseRetriever", "RETRIEVER"),
    ("BaseNodePostprocessor", "RERANKER"),
    ("BaseTool", "TOOL"),
    ("AsyncBaseTool", "TOOL"),
    ("NodeParser", "SKIP"),
    ("TextSplitter", "SKIP"),
)
# Kinds whose private method can be the one LlamaIndex announces (a postprocessor's
# ``_postprocess_nodes``): a run of its own when no run of the same instance is around it.
_PRIVATE_ENTRIES = frozenset(("RERANKER", "RETRIEVER", "TOOL"))
_OWN_MODULES = ("llama_index", "workflows")
# Exceptions LlamaIndex's workflows raise to end or pause a run: not failures.
_CONTROL_FLOW = frozenset(("WorkflowDone", "WaitingForEvent", "WorkflowCancelledByUser"))
# Too many aliases means spans that are announced and never end: forget them all.
_MAX_ALIASES = 100_000

_kinds: dict = {}
_aliases = _models.ALIASES
_MISSING = object()

TABLE: Any = None
_start: Any = None
_get: Any = None
_finish: Any = None


def configure(tracer: Any) -> None:
    global TABLE, _start, _get, _finish
    TABLE = _runs.new_table(tracer, "llama_index", _models.forget)
    _start, _get, _finish = TABLE.start, TABLE.get, TABLE.finish


def clear() -> None:
    _aliases.clear()
    if TABLE is not None:
        TABLE.runs.clear()


def pending() -> int:
    """The runs and aliases in flight (for tests of memory)."""
    return (len(TABLE.runs) if TABLE is not None else 0) + len(_aliases)


def kind_of(cls: type) -> str:
    names = {c.__name__ for c in cls.__mro__ if c.__module__.startswith(_OWN_MODULES)}
    kind = "CHAIN"
    for name, found in _BASES:
        if name in names:
            kind = found
            break
    _kinds[cls] = kind
    return kind


def resolve(span_id: Any) -> Any:
    """The id of the run a LlamaIndex span id stands for (itself, or the run it is part of)."""
    return _aliases.get(span_id, span_id)


class _Chain:
    """What a non-model run's end needs (the run's ``data``)."""

    __slots__ = ("extra", "instance")

    def __init__(self, instance: Any) -> None:
        self.instance = instance
        self.extra = None


# ---- enter -----------------------------------------------------------------------------------


def enter(id_: str, bound_args: Any, instance: Any, parent_id: Any) -> None:
    name = id_.partition("-")[0]
    method = name.rpartition(".")[2]
    parent_key = _aliases.get(parent_id, parent_id) if parent_id is not None else None
    if instance is None:
        kind = "FUNCTION"  # a workflow's step, a decorated function
    else:
        cls = type(instance)
        kind = _kinds.get(cls) or kind_of(cls)
        # Before 0.12 LlamaIndex names a span by the class that defines the method
        # (``BaseQueryEngine.query``); the instance's class says more (``RetrieverQueryEngine``).
        name = cls.__name__ + "." + method
    if kind == "SKIP" or (method[:1] == "_" and method[:2] != "__" and kind not in _PRIVATE_ENTRIES):
        _alias(id_, parent_key)
        return
    parent = _get(parent_key) if parent_key is not None else None
    if parent is not None and instance is not None and parent.data.instance is instance:
        _alias(id_, parent_key)
        return
    arguments = bound_args.arguments if bound_args is not None else {}
    capture = _genai.capture
    attributes: dict
    if kind == "LLM":
        span_name, attributes, data = _models.llm_attributes(instance, name)
        run = _start(id_, parent_key, kind, name, span_name, attributes, _INTERNAL, True)
        run.data = data
        return
    if kind == "EMBEDDING":
        span_name, attributes, data = _models.embedding_attributes(instance, method, arguments)
        run = _start(id_, parent_key, kind, name, span_name, attributes, _INTERNAL, True)
        run.data = data
        return
    attributes = {"gen_ai.framework": "llama_index"}
    first = next(iter(arguments.values()), None) if arguments else None
    if kind == "RETRIEVER":
        run_name = type(instance).__name__
        span_name = "retrieval " + run_name
        attributes["gen_ai.span.kind"] = "RETRIEVER"
        attributes["gen_ai.operation.name"] = "retrieval"
        query = _read.query_text(first)
        if capture and query is not None:
            attributes["gen_ai.retrieval.query.text"] = attributes["input.value"] = _genai.content_text(query)
            attributes["input.mime_type"] = "text/plain"
    elif kind == "RERANKER":
        run_name = _models.model_of(instance) or type(instance).__name__
        span_name = "rerank " + run_name
        attributes["gen_ai.span.kind"] = "RERANKER"
        attributes["gen_ai.operation.name"] = "rerank"
        attributes["reranker.model_name"] = run_name
        top = getattr(instance, "top_n", None)
        if type(top) is int:
            attributes["reranker.top_k"] = top
        if capture:
            query = _read.query_text(arguments.get("query_bundle")) or _read.query_text(
                arguments.get("query_str")
            )
            if query is not None:
                attributes["reranker.query"] = attributes["input.value"] = _genai.content_text(query)
                attributes["input.mime_type"] = "text/plain"
            attributes["reranker.input_documents"] = _core.to_json(_read.documents(arguments.get("nodes")))
    elif kind == "TOOL":
        run_name = _tool_name(instance)
        span_name = "execute_tool " + run_name
        attributes["gen_ai.span.kind"] = "TOOL"
        attributes["gen_ai.operation.name"] = "execute_tool"
        attributes["gen_ai.tool.name"] = run_name
        attributes["gen_ai.tool.type"] = "function"
        description = getattr(getattr(instance, "metadata", None), "description", None)
        if isinstance(description, str) and description:
            attributes["gen_ai.tool.description"] = description
        call_id = _tool_call_id(parent)
        if call_id is not None:
            attributes["gen_ai.tool.call.id"] = call_id
        if capture:
            attributes["gen_ai.tool.call.arguments"] = attributes["input.value"] = _genai.content_json(
                _tool_arguments(arguments)
            )
            attributes["input.mime_type"] = "application/json"
    elif kind == "AGENT":
        agent = getattr(instance, "name", None)
        run_name = agent if isinstance(agent, str) and agent else type(instance).__name__
        span_name = "invoke_agent " + run_name
        attributes["gen_ai.span.kind"] = "AGENT"
        attributes["gen_ai.operation.name"] = "invoke_agent"
        attributes["gen_ai.agent.name"] = run_name
        description = getattr(instance, "description", None)
        if isinstance(description, str) and description:
            attributes["gen_ai.agent.description"] = description
        if capture:
            _input(attributes, _agent_input(arguments, first))
    elif kind == "WORKFLOW":
        run_name = type(instance).__name__
        span_name = "workflow " + run_name
        attributes["gen_ai.span.kind"] = "CHAIN"
        attributes["gen_ai.operation.name"] = "invoke_workflow"
        if capture:
            _input(attributes, _agent_input(arguments, first))
    else:
        run_name = name
        attributes["gen_ai.span.kind"] = "CHAIN"
        attributes["gen_ai.operation.name"] = "chain"
        if kind == "FUNCTION" and parent is not None and parent.kind in ("WORKFLOW", "AGENT"):
            run_name = method  # a workflow's step
            attributes["llama_index.workflow.step"] = method
        span_name = "chain " + run_name
        if capture:
            _input(attributes, _read.query_text(first) or _read.text_of(first))
    run = _start(id_, parent_key, kind, run_name, span_name, attributes)
    run.data = _Chain(instance)
    if kind == "FUNCTION" and parent is not None and parent.kind == "AGENT":
        run.data.extra = _step_call_id(arguments)


def _alias(id_: str, key: Any) -> None:
    if len(_aliases) >= _MAX_ALIASES:
        _aliases.clear()
        _log.log_once(
            "llama_index aliases", RuntimeError(f"over {_MAX_ALIASES} spans never ended: forgotten")
        )
    _aliases[id_] = key


def _input(attributes: dict, text: Any) -> None:
    if isinstance(text, str) and text:
        attributes["input.value"] = _genai.content_text(text)
        attributes["input.mime_type"] = "text/plain"


def _agent_input(arguments: dict, first: Any) -> Any:
    """An agent's or workflow's input: the user message of its start event, or its first
    argument's text."""
    start = arguments.get("start_event")
    if start is not None:
        message = getattr(start, "user_msg", None)
        if message is None:
            try:
                message = start.get("user_msg")
            except Exception:  # noqa: BLE001
                message = None
        text = _read.query_text(message) or _read.text_of(message)
        if text is None and getattr(message, "content", None) is not None:
            text = message.content
        return text
    return _read.query_text(first) or _read.text_of(first)


def _tool_name(instance: Any) -> str:
    name = getattr(getattr(instance, "metadata", None), "name", None)
    return name if isinstance(name, str) and name else type(instance).__name__


def _tool_arguments(arguments: dict) -> Any:
    """A tool call's arguments: the keyword arguments of ``call(*args, **kwargs)``, else what
    it was called with."""
    kwargs = arguments.get("kwargs")
    args = arguments.get("args")
    if isinstance(kwargs, dict) and not args:
        return kwargs
    return {key: value for key, value in arguments.items() if key != "self"}


def _step_call_id(arguments: dict) -> Any:
    """The id of the tool call a workflow agent's step is running (its ToolCall event)."""
    for value in arguments.values():
        call_id = getattr(value, "tool_id", None)
        if isinstance(call_id, str):
            return call_id
    return None


def _tool_call_id(parent: Any) -> Any:
    if parent is None:
        return None
    data = parent.data
    return data.extra if type(data) is _Chain and isinstance(data.extra, str) else None


# ---- exit and drop ---------------------------------------------------------------------------


def exit(id_: str, result: Any) -> None:
    key = _aliases.pop(id_, _MISSING)
    if key is not _MISSING:
        if key is not None and _is_generator(result):
            # The generator of a model stream: its chunks' events still name this span.
            owner = _get(key)
            if owner is not None and owner.kind == "LLM":
                _aliases[id_] = key
                owner.data.aliases.append(id_)
        return
    run = _get(id_)
    if run is None:
        return
    kind = run.kind
    if kind == "LLM" or kind == "EMBEDDING":
        if kind == "LLM" and _is_generator(result):
            _models.streaming(run, TABLE, result)
            return
        _finish(id_)
        if kind == "EMBEDDING":
            run.data.answer = result
        _models.end(run, None)
        return
    if kind != "TOOL" and kind != "RETRIEVER" and _is_streaming_response(result):
        context = _runs._Context(run.context)
        if _streams.follow(result, run, context, _end_streamed):
            _finish(id_)
            return
    _finish(id_)
    _end(run, result, None)


def drop(id_: str, error: BaseException | None) -> None:
    if _aliases.pop(id_, _MISSING) is not _MISSING:
        return
    run = _finish(id_)
    if run is None:
        return
    if run.kind == "LLM" or run.kind == "EMBEDDING":
        _models.end(run, _failure(run, error))
    else:
        _end(run, None, _failure(run, error))


def _failure(run: Any, error: BaseException | None) -> BaseException | None:
    """`error` if it is a failure: not one of a workflow's control-flow signals."""
    if error is None or not isinstance(error, Exception):
        return None
    if type(error).__name__ in _CONTROL_FLOW:
        return None
    return error


def _is_generator(value: Any) -> bool:
    return hasattr(value, "__next__") and hasattr(value, "send") or hasattr(value, "__anext__")


def _is_streaming_response(value: Any) -> bool:
    name = type(value).__name__
    return name == "StreamingResponse" or name == "AsyncStreamingResponse"


def _end_streamed(run: Any, texts: list, error: BaseException | None) -> None:
    _end(run, None, error, "".join(texts))


def _end(run: Any, result: Any, error: BaseException | None, text: str | None = None) -> None:
    span = run.span
    kind = run.kind
    attributes: dict = {}
    capture = _genai.capture
    if error is not None:
        span.record_failure(error, True, True)
    elif kind == "RETRIEVER":
        if capture:
            attributes["retrieval.documents"] = _core.to_json(_read.documents(result))
        else:
            attributes["llmprobe.retrieval.document_count"] = len(result) if isinstance(result, list) else 0
    elif kind == "RERANKER":
        if capture:
            attributes["reranker.output_documents"] = _core.to_json(_read.documents(result))
    elif kind == "TOOL":
        content = getattr(result, "content", None)
        if capture and isinstance(content, str):
            attributes["gen_ai.tool.call.result"] = attributes["output.value"] = _genai.content_text(content)
            attributes["output.mime_type"] = "text/plain"
        if getattr(result, "is_error", False) is True:
            # The tool raised and LlamaIndex handed the error to the model as the result.
            span.set_status(_core.STATUS_ERROR, content if isinstance(content, str) else None)
    elif capture:
        if text is None:
            text = _read.text_of(result)
        if text:
            attributes["output.value"] = _genai.content_text(text)
            attributes["output.mime_type"] = "text/plain"
    if attributes:
        span.set_attributes(attributes)
    span.end()
