"""Dify's model runtime: every model call Dify makes, as the LLM, EMBEDDING or RERANKER span of the
contract, wherever it is made (an LLM node, a chat or agent app, a knowledge base's embeddings).

Dify reaches every model through one class per model type, which its ``ModelInstance`` and its
workflow nodes call and which hands the request to the provider's plugin (the plugin daemon):
``LargeLanguageModel.invoke``, ``TextEmbeddingModel.invoke``, ``RerankModel.invoke``, in
``graphon.model_runtime.model_providers.base`` (Dify 1.13 and later) or
``core.model_runtime.model_providers.__base`` (Dify's api/, 1.9 to 1.12). Each is wrapped with the
model hook all SDKs use (_genai.hooks): the span starts as the call does, current while the
request is made (so the plugin daemon's HTTP request nests under it and carries it), and counts
into the model step of an LLM node's context, so that the node's own LLM span is not made: one
model call, one LLM span. A streamed answer (a generator of chunks) is handed back in a stream
proxy that ends the span with the stream (exhausted, failed, closed or dropped).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as _context
from opentelemetry import trace

from llmprobe import _core
from llmprobe.instrumentation import _genai, _stream, _wrap
from llmprobe.instrumentation._messages import SEQUENCES, characters, text_part, tool_call_part

OWNER = "dify-models"
# Model parameters as Dify's model configurations name them (OpenAI's words), as the contract does.
_PARAMETERS = (
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("top_k", "gen_ai.request.top_k"),
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("seed", "gen_ai.request.seed"),
)
# The positional order of each invoke's parameters after `self` (Dify passes keywords, but a
# caller may not).
_LLM_ARGS = ("model", "credentials", "prompt_messages", "model_parameters", "tools", "stop", "stream")
_EMBEDDING_ARGS = ("model", "credentials", "texts")
_RERANK_ARGS = ("model", "credentials", "query", "docs", "score_threshold", "top_n")


def _arguments(names: tuple, args: tuple, kwargs: dict) -> dict:
    if not args:
        return kwargs
    found = dict(zip(names, args))
    found.update(kwargs)
    return found


def provider_of(model: Any) -> str | None:
    """The provider's name (``openai`` of ``langgenius/openai/openai``), from graphon's model
    (its provider) or Dify 1.12's (its plugin's provider_name)."""
    for attribute in ("provider", "provider_name"):
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value:
            return value.rsplit("/", 1)[-1]
    return None


def _role(message: Any) -> str:
    role = getattr(message, "role", None)
    return str(getattr(role, "value", role) or "user")


def _text(content: Any) -> str:
    """A prompt message's text: the string, or the data of its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, SEQUENCES):
        return "".join(
            getattr(part, "data", "") or ""
            for part in content
            if str(getattr(getattr(part, "type", None), "value", "")) == "text"
        )
    return ""


def _tool_call_parts(message: Any) -> list:
    """A prompt or answer message's tool calls (Dify's ToolCall: id, function name and
    arguments) as the contract's tool_call parts."""
    parts = []
    for call in getattr(message, "tool_calls", None) or ():
        function = getattr(call, "function", None)
        parts.append(
            tool_call_part(
                getattr(call, "id", None),
                getattr(function, "name", None),
                getattr(function, "arguments", None),
            )
        )
    return parts


def _messages(prompt_messages: Any) -> list:
    """Dify's prompt messages in the contract's shape (role, text and tool-call parts)."""
    messages = []
    for message in prompt_messages:
        parts: list = []
        text = _text(getattr(message, "content", None))
        if text:
            parts.append(text_part(text))
        parts.extend(_tool_call_parts(message))
        role = _role(message)
        if role == "tool":
            parts = [
                {"type": "tool_call_response", "id": getattr(message, "tool_call_id", None), "response": text}
            ]
        messages.append({"role": role, "parts": parts})
    return messages


def _tools(tools: Any) -> str | None:
    if not tools:
        return None
    flat = [
        {
            "type": "function",
            "name": getattr(tool, "name", None),
            "description": getattr(tool, "description", None),
            "parameters": getattr(tool, "parameters", None),
        }
        for tool in tools
    ]
    return _core.tool_definitions(flat)


# ---- chat ------------------------------------------------------------------------------------


class _Request:
    """What a chat call's end needs (its ``call.extra``)."""

    __slots__ = ("capture",)

    def __init__(self, capture: bool) -> None:
        self.capture = capture


def _model_call(instance: Any, arguments: dict, operation: str) -> tuple:
    """(the model asked for, the span's attributes, the metrics' attributes) every call starts with."""
    model = arguments.get("model")
    model = model if isinstance(model, str) else None
    provider = provider_of(instance)
    attributes: dict = {"gen_ai.framework": "dify"}
    metric_attributes: dict = {"gen_ai.operation.name": operation}
    if model:
        attributes["gen_ai.request.model"] = metric_attributes["gen_ai.request.model"] = model
    if provider:
        attributes["gen_ai.provider.name"] = metric_attributes["gen_ai.provider.name"] = provider
    return model, attributes, metric_attributes


def _before_llm(instance: Any, args: tuple, kwargs: dict) -> tuple:
    arguments = _arguments(_LLM_ARGS, args, kwargs)
    model, attributes, metric_attributes = _model_call(instance, arguments, "chat")
    parameters = arguments.get("model_parameters")
    if isinstance(parameters, dict):
        for name, attribute in _PARAMETERS:
            value = parameters.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                attributes[attribute] = value
    stop = arguments.get("stop")
    if stop:
        attributes["gen_ai.request.stop_sequences"] = [str(s) for s in stop]
    definitions = _tools(arguments.get("tools"))
    if definitions:
        attributes["gen_ai.tool.definitions"] = definitions
    if arguments.get("stream", True):
        attributes["gen_ai.request.stream"] = True
    prompt = arguments.get("prompt_messages")
    if isinstance(prompt, SEQUENCES):
        messages = _messages(prompt)
        if _genai.capture:
            _genai.put_input_json(attributes, _genai.content_json(messages), 0, True)
        else:
            _genai.put_input_json(attributes, None, characters(messages), False)
    return _genai.request("chat", model, attributes, "LLM", metric_attributes, _Request(_genai.capture))


def _answer(attributes: dict, message: Any, reason: Any, capture: bool) -> None:
    """The answer (an assistant prompt message) and its finish reason into `attributes`."""
    reason = _core.finish_reason(reason) if isinstance(reason, str) and reason else None
    reasons = [reason] if reason else []
    if message is None:
        if reasons:
            attributes["gen_ai.response.finish_reasons"] = reasons
        return
    text = _text(getattr(message, "content", None))
    if not capture:
        _genai.put_output_json(attributes, None, text, reasons, size=len(text))
        return
    parts: list = [text_part(text)] if text else []
    parts.extend(_tool_call_parts(message))
    output = [{"role": "assistant", "parts": parts, "finish_reason": reason or "stop"}]
    _genai.put_output_json(attributes, _genai.content_json(output), text, reasons)


def _after_llm(call: _genai.Call, result: Any) -> Any:
    if _is_stream(result):
        state = _stream.StreamState("dify llm stream", _end_llm_stream, call)
        return _stream.wrap(_stream.SyncStreamProxy, _current_until_first(call.span, result), state)
    input_tokens = output_tokens = None
    try:
        attributes: dict = {}
        model = getattr(result, "model", None)
        if isinstance(model, str) and model:
            attributes["gen_ai.response.model"] = model
        input_tokens, output_tokens = _core.usage(attributes, getattr(result, "usage", None))
        _answer(attributes, getattr(result, "message", None), None, call.extra.capture)
        call.span.set_attributes(attributes)
    finally:
        _genai.end(call, input_tokens, output_tokens)
    return None


def _current_until_first(span: Any, chunks: Any) -> Any:
    """`chunks`, with `span` current while the first is fetched: Dify's plugin daemon client
    makes its request then, lazily, so that the request nests under the model call's span and
    carries it. The reader's own context is back before the chunk reaches it."""
    token = _context.attach(trace.set_span_in_context(span))
    try:
        first = next(chunks)
    except StopIteration:
        return
    finally:
        _context.detach(token)
    yield first
    yield from chunks


def _is_stream(result: Any) -> bool:
    return hasattr(result, "__next__") and not hasattr(result, "message")


def _end_llm_stream(state: Any, error: BaseException | None) -> None:
    _genai.end_stream(state, error, _assemble_llm_stream)


def _assemble_llm_stream(call: _genai.Call, attributes: dict, state: Any) -> tuple:
    """The answer of a streamed call from its chunks (Dify's LLMResultChunk: a delta message,
    the usage and finish reason on the last): (the first chunk with content, input tokens,
    output tokens)."""
    first = None
    texts: list = []
    tool_calls: list = []
    usage = reason = model = None
    for position, chunk in enumerate(state.items):
        delta = getattr(chunk, "delta", None)
        message = getattr(delta, "message", None)
        text = _text(getattr(message, "content", None))
        if text:
            texts.append(text)
            if first is None:
                first = position
        tool_calls.extend(getattr(message, "tool_calls", None) or ())
        usage = getattr(delta, "usage", None) or usage
        reason = getattr(delta, "finish_reason", None) or reason
        model = getattr(chunk, "model", None) or model
    if isinstance(model, str) and model:
        attributes["gen_ai.response.model"] = model
    input_tokens, output_tokens = _core.usage(attributes, usage) if usage is not None else (None, None)
    answer = _AssembledMessage("".join(texts), tool_calls)
    _answer(attributes, answer, reason, call.extra.capture)
    return first, input_tokens, output_tokens


class _AssembledMessage:
    __slots__ = ("content", "tool_calls")

    def __init__(self, content: str, tool_calls: list) -> None:
        self.content = content
        self.tool_calls = tool_calls


# ---- embeddings and rerank -------------------------------------------------------------------


def _before_embedding(instance: Any, args: tuple, kwargs: dict) -> tuple:
    arguments = _arguments(_EMBEDDING_ARGS, args, kwargs)
    model, attributes, metric_attributes = _model_call(instance, arguments, "embeddings")
    texts = arguments.get("texts")
    if isinstance(texts, SEQUENCES):
        attributes["llmprobe.embeddings.count"] = len(texts)
        if _genai.capture:
            attributes["input.value"] = _genai.content_json(list(texts))
            attributes["input.mime_type"] = "application/json"
    return _genai.request("embeddings", model, attributes, "EMBEDDING", metric_attributes)


def _after_embedding(call: _genai.Call, result: Any) -> None:
    input_tokens = None
    try:
        attributes: dict = {}
        usage = getattr(result, "usage", None)
        tokens = getattr(usage, "tokens", None)
        if type(tokens) is int:  # every token of an embedding call is an input token
            attributes["gen_ai.usage.input_tokens"] = input_tokens = tokens
        vectors = getattr(result, "embeddings", None)
        if isinstance(vectors, SEQUENCES) and vectors:
            dimension = _genai.vector_length(vectors[0])
            if dimension:
                attributes["gen_ai.embeddings.dimension.count"] = dimension
        call.span.set_attributes(attributes)
    finally:
        _genai.end(call, input_tokens)


def _before_rerank(instance: Any, args: tuple, kwargs: dict) -> tuple:
    arguments = _arguments(_RERANK_ARGS, args, kwargs)
    model, attributes, metric_attributes = _model_call(instance, arguments, "rerank")
    if model:
        attributes["reranker.model_name"] = model
    top_n = arguments.get("top_n")
    if type(top_n) is int:
        attributes["reranker.top_k"] = top_n
    query, docs = arguments.get("query"), arguments.get("docs")
    if _genai.capture:
        if isinstance(query, str):
            attributes["reranker.query"] = attributes["input.value"] = _genai.content_text(query)
            attributes["input.mime_type"] = "text/plain"
        if isinstance(docs, SEQUENCES):
            documents = [{"document": {"id": str(i), "content": d}} for i, d in enumerate(docs)]
            attributes["reranker.input_documents"] = _genai.content_json(documents)
    return _genai.request("rerank", model, attributes, "RERANKER", metric_attributes)


def _after_rerank(call: _genai.Call, result: Any) -> None:
    try:
        ranked = []
        for document in getattr(result, "docs", None) or ():
            entry: dict = {
                "id": str(getattr(document, "index", "")),
                "score": getattr(document, "score", None),
            }
            if _genai.capture and isinstance(getattr(document, "text", None), str):
                entry["content"] = document.text
            ranked.append({"document": entry})
        attributes = {"reranker.output_documents": _genai.content_json(ranked)}
        if _genai.capture:
            attributes["output.value"] = attributes["reranker.output_documents"]
            attributes["output.mime_type"] = "application/json"
        call.span.set_attributes(attributes)
    finally:
        _genai.end(call)


def _error(call: _genai.Call, error: BaseException) -> None:
    try:
        _genai.fail(call, error)
    finally:
        _genai.end(call)


# The model classes: (their module in the model providers' base package, class, before, after).
CALLS = (
    ("large_language_model", "LargeLanguageModel", _before_llm, _after_llm),
    ("text_embedding_model", "TextEmbeddingModel", _before_embedding, _after_embedding),
    ("rerank_model", "RerankModel", _before_rerank, _after_rerank),
)


def wrap_invoke(module: Any, class_name: str, before: Any, after: Any, tracer: Any, owner: str) -> None:
    """Wrap `module`'s model class `class_name`'s ``invoke`` (skipped where this version lacks it)."""
    model_class = getattr(module, class_name, None)
    if model_class is None or not hasattr(model_class, "invoke"):
        return
    wrapper = _genai.hooks(f"dify {class_name}.invoke", before, after, _error, OWNER, tracer)
    _wrap.wrap(model_class, "invoke", wrapper, owner=owner)
