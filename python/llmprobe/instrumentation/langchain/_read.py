"""LangChain's objects in the span contract's shapes: messages, model results, documents, tools.

Everything here only reads. A LangChain message (``BaseMessage``: ``type``, ``content`` as text
or content blocks, an AI message's ``tool_calls``, a tool message's ``tool_call_id``) becomes
the contract's ``{role, parts}``; an ``LLMResult`` gives the output messages, finish reasons,
token usage and response model; documents become the contract's retrieval JSON. Serialising
and cutting happen later, in Rust (``_core.to_json``).
"""

from __future__ import annotations

from typing import Any

from llmprobe.instrumentation._messages import SEQUENCES, parse_arguments, text_part, tool_response_part

# A message's `type` -> the conventions' role.
_ROLES = {
    "human": "user",
    "HumanMessageChunk": "user",
    "ai": "assistant",
    "AIMessageChunk": "assistant",
    "system": "system",
    "SystemMessageChunk": "system",
    "developer": "system",
    "tool": "tool",
    "ToolMessageChunk": "tool",
    "function": "tool",
    "FunctionMessageChunk": "tool",
}

# Providers' finish reasons -> the conventions' values (others are kept as given).
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "STOP": "stop",
    "COMPLETE": "stop",
    "max_tokens": "length",
    "MAX_TOKENS": "length",
    "tool_use": "tool_calls",
    "function_call": "tool_calls",
    "SAFETY": "content_filter",
}

# LangChain's `ls_provider` (set by each chat model integration) -> gen_ai.provider.name.
_PROVIDERS = {
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "tongyi": "dashscope",
    "google_genai": "gcp.gemini",
    "google_vertexai": "gcp.vertex_ai",
    "google": "gcp.gemini",
    "bedrock": "aws.bedrock",
    "amazon_bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
    "mistralai": "mistral_ai",
    "xai": "x_ai",
    "ibm": "ibm.watsonx.ai",
}

# Invocation parameters -> request attributes.
_PARAMETERS = (
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("top_k", "gen_ai.request.top_k"),
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("max_completion_tokens", "gen_ai.request.max_tokens"),
    ("max_output_tokens", "gen_ai.request.max_tokens"),
    ("seed", "gen_ai.request.seed"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
    ("n", "gen_ai.request.choice.count"),
)


def provider(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return None
    return _PROVIDERS.get(name, name)


def finish_reason(reason: Any) -> str | None:
    if not isinstance(reason, str) or not reason:
        return None
    return _FINISH_REASONS.get(reason, reason)


# ---- messages --------------------------------------------------------------------------------


def _block(block: Any) -> dict | None:
    """One content block of a message (OpenAI-style or LangChain's standard blocks)."""
    if isinstance(block, str):
        return text_part(block)
    if not isinstance(block, dict):
        return None
    kind = block.get("type")
    if kind == "text":
        return text_part(block.get("text"))
    if kind == "image_url":
        image = block.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return {"type": "uri", "modality": "image", "uri": url}
    if kind in ("image", "audio", "video", "file"):
        modality = kind if kind != "file" else "file"
        if block.get("url") is not None:
            return {"type": "uri", "modality": modality, "uri": block["url"]}
        data = block.get("base64", block.get("data"))
        if data is not None:
            return {"type": "blob", "modality": modality, "mime_type": block.get("mime_type"), "content": data}
        file_id = block.get("file_id", block.get("id"))
        return {"type": "file", "modality": modality, "file_id": file_id}
    if kind == "reasoning":
        return {"type": "reasoning", "content": block.get("reasoning", block.get("text"))}
    if kind in ("tool_call", "tool_use"):
        return None  # the message's tool_calls say it (once)
    return {"type": str(kind)} if kind is not None else None


def _content_parts(content: Any) -> list:
    if isinstance(content, str):
        return [text_part(content)] if content else []
    if not isinstance(content, SEQUENCES):
        return []
    parts = []
    for block in content:
        part = _block(block)
        if part is not None:
            parts.append(part)
    return parts


def content_text(content: Any) -> str:
    """The text of a message's content: the string, or its text blocks joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, SEQUENCES):
        pieces = []
        for block in content:
            if isinstance(block, str):
                pieces.append(block)
            elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                pieces.append(block["text"])
        return "".join(pieces)
    return ""


def role(message: Any) -> str:
    kind = getattr(message, "type", None)
    found = _ROLES.get(kind)
    if found is not None:
        return found
    custom = getattr(message, "role", None)  # ChatMessage
    return custom if isinstance(custom, str) else str(kind)


def message(msg: Any) -> dict:
    """A LangChain message (or a (role, text) pair, or a dict) in the contract's shape."""
    if isinstance(msg, tuple) and len(msg) == 2:
        who, text = msg
        return {"role": _ROLES.get(who, who), "parts": _content_parts(text)}
    if isinstance(msg, dict):
        who = msg.get("role", msg.get("type", "user"))
        return {"role": _ROLES.get(who, who), "parts": _content_parts(msg.get("content"))}
    if isinstance(msg, str):
        return {"role": "user", "parts": [text_part(msg)]}
    who = role(msg)
    content = getattr(msg, "content", None)
    if who == "tool":
        call_id = getattr(msg, "tool_call_id", None)
        return {"role": "tool", "parts": [tool_response_part(call_id, content_text(content))]}
    parts = _content_parts(content)
    for call in getattr(msg, "tool_calls", None) or ():
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": call.get("name"),
                "arguments": parse_arguments(call.get("args")),
            }
        )
    return {"role": who, "parts": parts}


def messages(msgs: Any) -> list:
    if not isinstance(msgs, SEQUENCES):
        return []
    return [message(m) for m in msgs]


def prompts(texts: Any) -> list:
    """A text completion's prompts as user messages."""
    if not isinstance(texts, SEQUENCES):
        return []
    return [{"role": "user", "parts": [text_part(t)]} for t in texts if isinstance(t, str)]


# ---- model results ---------------------------------------------------------------------------


class Answer:
    """What an LLMResult says of one model run: output messages, finish reasons, usage,
    response model and id."""

    __slots__ = ("cache_read", "id", "input_tokens", "messages", "model", "output_tokens", "reasoning", "total")

    def __init__(self) -> None:
        self.messages: list = []
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.total: int | None = None
        self.cache_read: int | None = None
        self.reasoning: int | None = None
        self.model: str | None = None
        self.id: str | None = None

    def usage_attributes(self, attributes: dict) -> None:
        for key, value in (
            ("gen_ai.usage.input_tokens", self.input_tokens),
            ("gen_ai.usage.output_tokens", self.output_tokens),
            ("gen_ai.usage.total_tokens", self.total),
            ("gen_ai.usage.cache_read.input_tokens", self.cache_read),
            ("gen_ai.usage.reasoning.output_tokens", self.reasoning),
        ):
            if type(value) is int:
                attributes[key] = value


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def _add(total: int | None, value: Any) -> int | None:
    value = _int(value)
    if value is None:
        return total
    return value if total is None else total + value


def _read_usage_metadata(answer: Answer, usage: dict) -> None:
    answer.input_tokens = _add(answer.input_tokens, usage.get("input_tokens"))
    answer.output_tokens = _add(answer.output_tokens, usage.get("output_tokens"))
    answer.total = _add(answer.total, usage.get("total_tokens"))
    details = usage.get("input_token_details")
    if isinstance(details, dict):
        answer.cache_read = _add(answer.cache_read, details.get("cache_read"))
    details = usage.get("output_token_details")
    if isinstance(details, dict):
        answer.reasoning = _add(answer.reasoning, details.get("reasoning"))


def _read_token_usage(answer: Answer, usage: dict) -> None:
    """A legacy `llm_output["token_usage"]` (OpenAI's names) or `["usage"]` (others')."""
    answer.input_tokens = _int(usage.get("prompt_tokens", usage.get("input_tokens")))
    answer.output_tokens = _int(usage.get("completion_tokens", usage.get("output_tokens")))
    answer.total = _int(usage.get("total_tokens"))
    if answer.total is None and answer.input_tokens is not None and answer.output_tokens is not None:
        answer.total = answer.input_tokens + answer.output_tokens


def answer(result: Any) -> Answer:
    """An LLMResult of one run (LangChain hands each run its own, flattened)."""
    out = Answer()
    usage_seen = False
    for generations in getattr(result, "generations", None) or ():
        for generation in generations or ():
            msg = getattr(generation, "message", None)
            info = getattr(generation, "generation_info", None) or {}
            if msg is not None:
                entry = message(msg)
                entry["role"] = "assistant"
                metadata = getattr(msg, "response_metadata", None) or {}
                reason = info.get("finish_reason") or metadata.get("finish_reason") or metadata.get(
                    "stop_reason"
                ) or metadata.get("done_reason")
                usage = getattr(msg, "usage_metadata", None)
                if isinstance(usage, dict):
                    _read_usage_metadata(out, usage)
                    usage_seen = True
                if out.model is None:
                    model = metadata.get("model_name") or metadata.get("model")
                    if isinstance(model, str):
                        out.model = model
                if out.id is None:
                    msg_id = getattr(msg, "id", None) or metadata.get("id")
                    # LangChain names messages it made itself after the run: not a response id.
                    if isinstance(msg_id, str) and not msg_id.startswith(("run-", "lc_run-", "lc_")):
                        out.id = msg_id
            else:
                text = getattr(generation, "text", None)
                entry = {"role": "assistant", "parts": [text_part(text)] if isinstance(text, str) else []}
                reason = info.get("finish_reason")
            reason = finish_reason(reason)
            if reason is not None:
                entry["finish_reason"] = reason
            out.messages.append(entry)
    llm_output = getattr(result, "llm_output", None)
    if isinstance(llm_output, dict):
        if not usage_seen:
            usage = llm_output.get("token_usage") or llm_output.get("usage")
            if isinstance(usage, dict) and usage:
                _read_token_usage(out, usage)
        if out.model is None:
            model = llm_output.get("model_name") or llm_output.get("model")
            if isinstance(model, str):
                out.model = model
    return out


def tool_definitions(tools: Any) -> list | None:
    """Tool definitions as a model integration passes them (OpenAI's ``{type, function}``,
    Anthropic's ``{name, input_schema}``, plain ``{name, parameters}``), in the conventions'
    flat shape."""
    if not isinstance(tools, SEQUENCES) or not tools:
        return None
    out = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        function = tool.get("function")
        if isinstance(function, dict):
            out.append(
                {
                    "type": tool.get("type", "function"),
                    "name": function.get("name"),
                    "description": function.get("description"),
                    "parameters": function.get("parameters"),
                }
            )
        else:
            out.append(
                {
                    "type": tool.get("type", "function"),
                    "name": tool.get("name"),
                    "description": tool.get("description"),
                    "parameters": tool.get("parameters", tool.get("input_schema")),
                }
            )
    return out or None


def request_parameters(attributes: dict, params: dict, metadata: dict) -> None:
    """The sampling parameters a model run was invoked with."""
    for key, attribute in _PARAMETERS:
        value = params.get(key)
        if value is not None and type(value) in (int, float):
            attributes[attribute] = value
    for key, attribute in (("ls_temperature", "gen_ai.request.temperature"), ("ls_max_tokens", "gen_ai.request.max_tokens")):
        value = metadata.get(key)
        if attribute not in attributes and value is not None and type(value) in (int, float):
            attributes[attribute] = value
    stop = params.get("stop") or params.get("stop_sequences") or metadata.get("ls_stop")
    if isinstance(stop, str):
        stop = [stop]
    if isinstance(stop, SEQUENCES) and stop and all(isinstance(s, str) for s in stop):
        attributes["gen_ai.request.stop_sequences"] = list(stop)


# ---- documents -------------------------------------------------------------------------------


def documents(docs: Any) -> list:
    """Documents in rank order, as the contract's retrieval JSON."""
    out = []
    if not isinstance(docs, SEQUENCES):
        return out
    for doc in docs:
        metadata = getattr(doc, "metadata", None)
        entry: dict = {"content": getattr(doc, "page_content", None)}
        doc_id = getattr(doc, "id", None)
        if doc_id is None and isinstance(metadata, dict):
            doc_id = metadata.get("id")
        if doc_id is not None:
            entry["id"] = doc_id
        if isinstance(metadata, dict):
            score = metadata.get("relevance_score", metadata.get("score"))
            if type(score) in (int, float):
                entry["score"] = score
            if metadata:
                entry["metadata"] = metadata
        out.append({"document": entry})
    return out


# ---- chain inputs and outputs ----------------------------------------------------------------

_SCALARS = (str, int, float, bool, type(None))
_MAX_DEPTH = 6


def plain(value: Any, depth: int = 0) -> Any:
    """A chain's input or output for its JSON: LangChain's messages, prompt values and documents
    in the contract's shapes, containers walked, anything else left to the JSON writer."""
    kind = type(value)
    if kind in _SCALARS or depth > _MAX_DEPTH:
        return value
    if kind is dict:
        return {k: plain(v, depth + 1) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [plain(v, depth + 1) for v in value]
    if _BaseMessage is not None and isinstance(value, _BaseMessage):
        return message(value)
    if _Document is not None and isinstance(value, _Document):
        return documents((value,))[0]["document"]
    if _PromptValue is not None and isinstance(value, _PromptValue):
        msgs = getattr(value, "messages", None)
        return messages(msgs) if msgs is not None else getattr(value, "text", str(value))
    return value


def _classes() -> tuple:
    try:
        from langchain_core.documents import Document
        from langchain_core.messages import BaseMessage
        from langchain_core.prompt_values import PromptValue
    except ImportError:  # pragma: no cover - a langchain_core without one of them
        return None, None, None
    return BaseMessage, Document, PromptValue


_BaseMessage, _Document, _PromptValue = _classes()
