"""Reading LlamaIndex's objects into the span contract's shapes: chat messages (with their content
blocks and tool calls), scored nodes as documents, responses as text, a model answer's usage and
finish reason.

Everything here only reads, by attribute and class name, so that the one module serves
llama-index-core 0.10 (messages with a ``content`` string) to 0.14 (messages of typed blocks).
Serialising and cutting happen in Rust (``_core.to_json``).
"""

from __future__ import annotations

import base64
from typing import Any

from llmprobe import _core
from llmprobe.instrumentation._messages import SEQUENCES, get, text_part, tool_call_part, tool_response_part

# ---- messages --------------------------------------------------------------------------------


def role(message: Any) -> str:
    value = getattr(message, "role", None)
    value = getattr(value, "value", value)  # MessageRole is a str enum
    return value if isinstance(value, str) else "user"


def _media_url(block: Any, kind: str, mime_attribute: str) -> str | None:
    """A block's media as a URL: its link, its file path, or its bytes as a data URL."""
    url = getattr(block, "url", None)
    if url:
        return str(url)
    data = getattr(block, kind, None)
    if isinstance(data, bytes) and data:
        mime = getattr(block, mime_attribute, None) or f"{kind}/*"
        # LlamaIndex keeps a block's bytes base64-encoded once validated; raw bytes otherwise.
        try:
            text = data.decode("ascii")
            base64.b64decode(text[:64] + "=" * (-len(text[:64]) % 4), validate=True)
        except ValueError:
            text = base64.b64encode(data).decode("ascii")
        return f"data:{mime};base64,{text}"
    path = getattr(block, "path", None)
    return str(path) if path else None


def _block_parts(parts: list, blocks: Any) -> None:
    for block in blocks:
        kind = type(block).__name__
        if kind == "TextBlock":
            parts.append(text_part(block.text))
        elif kind == "ImageBlock":
            part = _core.media_part("image", _media_url(block, "image", "image_mimetype"))
            if part is not None:
                parts.append(part)
        elif kind == "AudioBlock":
            part = _core.media_part("audio", _media_url(block, "audio", "format"))
            if part is not None:
                parts.append(part)
        elif kind == "DocumentBlock":
            part = _core.media_part("file", _media_url(block, "data", "document_mimetype"))
            if part is not None:
                parts.append(part)
        elif kind == "ToolCallBlock":
            parts.append(
                tool_call_part(
                    getattr(block, "tool_call_id", None),
                    getattr(block, "tool_name", None),
                    getattr(block, "tool_kwargs", None),
                )
            )
        elif kind == "ThinkingBlock":
            parts.append({"type": "reasoning", "content": getattr(block, "content", None)})
        else:
            parts.append({"type": kind.removesuffix("Block").lower() or "unknown"})


def message(msg: Any) -> dict:
    """A LlamaIndex ChatMessage as ``{role, parts}``."""
    who = role(msg)
    kwargs = getattr(msg, "additional_kwargs", None) or {}
    parts: list = []
    blocks = getattr(msg, "blocks", None)
    if who == "tool":
        return {"role": who, "parts": [tool_response_part(kwargs.get("tool_call_id"), msg.content)]}
    if isinstance(blocks, SEQUENCES):
        _block_parts(parts, blocks)
    else:
        content = getattr(msg, "content", None)
        if content:
            parts.append(text_part(content))
    calls = kwargs.get("tool_calls")
    if isinstance(calls, SEQUENCES):
        for call in calls:
            function = get(call, "function")
            if function is not None:
                parts.append(
                    tool_call_part(get(call, "id"), get(function, "name"), get(function, "arguments"))
                )
    return {"role": who, "parts": parts}


def messages(items: Any) -> list:
    return [message(m) for m in items] if isinstance(items, SEQUENCES) else []


def prompt_messages(prompt: Any) -> list:
    """A completion's prompt as the one user message it is."""
    return [{"role": "user", "parts": [text_part(prompt)]}] if isinstance(prompt, str) else []


def characters(items: list) -> int:
    """The characters of the text parts of normalised messages (the size recorded when content
    is not captured)."""
    total = 0
    for item in items:
        for part in item["parts"]:
            content = part.get("content")
            if isinstance(content, str):
                total += len(content)
    return total


# ---- answers ---------------------------------------------------------------------------------


def _first_choice(raw: Any) -> Any:
    choices = get(raw, "choices") if raw is not None else None
    if isinstance(choices, SEQUENCES) and choices:
        return choices[0]
    output = get(raw, "output") if raw is not None else None  # DashScope's answer
    choices = get(output, "choices") if output is not None else None
    if isinstance(choices, SEQUENCES) and choices:
        return choices[0]
    return output


def finish_reason(raw: Any) -> str | None:
    """The provider's finish reason in an answer's raw response, in the conventions' words."""
    choice = _first_choice(raw)
    reason = get(choice, "finish_reason") if choice is not None else None
    if isinstance(reason, str) and reason and reason != "null":
        return _core.finish_reason(reason)
    return None


def response_model(raw: Any) -> str | None:
    model = get(raw, "model") if raw is not None else None
    return model if isinstance(model, str) and model else None


def response_id(raw: Any) -> str | None:
    value = get(raw, "id") if raw is not None else None
    if value is None and raw is not None:
        value = get(raw, "request_id")
    return value if isinstance(value, str) and value else None


def usage(attributes: dict, answer: Any) -> tuple:
    """The answer's token usage into `attributes`: from its raw response's ``usage`` (OpenAI's
    or DashScope's shape), else from the counts LlamaIndex's integrations put in its
    ``additional_kwargs``. (input, output) tokens, or Nones."""
    raw = getattr(answer, "raw", None)
    found = get(raw, "usage") if raw is not None else None
    if found is None:
        kwargs = getattr(answer, "additional_kwargs", None)
        if isinstance(kwargs, dict) and ("prompt_tokens" in kwargs or "input_tokens" in kwargs):
            found = kwargs
    if found is None:
        return None, None
    dashscope = get(found, "prompt_tokens") is None and get(found, "input_tokens") is not None
    return _core.usage(attributes, found, dashscope)


# ---- documents and texts ---------------------------------------------------------------------


def documents(nodes: Any) -> list:
    """Scored nodes in rank order as ``[{"document": {id, content, score, metadata}}]``."""
    found = []
    if not isinstance(nodes, SEQUENCES):
        return found
    for scored in nodes:
        node = getattr(scored, "node", scored)
        document: dict = {"id": getattr(node, "node_id", None)}
        try:
            document["content"] = node.get_content()
        except Exception:  # noqa: BLE001
            document["content"] = getattr(node, "text", None)
        score = getattr(scored, "score", None)
        if score is not None:
            document["score"] = score
        metadata = getattr(node, "metadata", None)
        if metadata:
            document["metadata"] = metadata
        found.append({"document": document})
    return found


def query_text(value: Any) -> str | None:
    """A query as text: a string, or a QueryBundle's query_str."""
    if isinstance(value, str):
        return value
    text = getattr(value, "query_str", None)
    return text if isinstance(text, str) else None


def text_of(value: Any) -> str | None:
    """The text of what a LlamaIndex component returned: a string, a Response's or a chat
    engine's ``response``, a ChatResponse's message, a workflow's StopEvent result."""
    if isinstance(value, str):
        return value
    if value is None:
        return None
    for attribute in ("response", "message", "result"):
        inner = getattr(value, attribute, None)
        if isinstance(inner, str):
            return inner
        if inner is None:
            continue
        if attribute == "result":  # a StopEvent's result: an agent's output, ...
            return text_of(inner) if inner is not value else None
        content = getattr(inner, "content", None)
        if isinstance(content, str):
            return content
    return None
