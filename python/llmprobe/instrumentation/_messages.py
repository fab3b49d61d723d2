"""Message normalisation: what a provider's API takes and returns, in the span contract's shape.

The contract's shape (the OpenTelemetry GenAI conventions' message JSON)::

    {"role": "user", "parts": [{"type": "text", "content": "..."}]}
    {"role": "assistant", "parts": [{"type": "tool_call", "id", "name", "arguments"}], "finish_reason": "tool_calls"}
    {"role": "tool", "parts": [{"type": "tool_call_response", "id", "response"}]}

Images, audio, video and files become the conventions' ``uri``, ``blob`` (a data URL: its mime
type kept, its content cut) or ``file`` parts, made by the core (``_core.media_part``) as it
writes those of chat messages. Everything here only reads: a message may be a dict, a
TypedDict, a pydantic model or any object with the same attribute names (the SDK's own response
objects are often sent back in the next request). A one-shot iterable (a generator of messages)
is never iterated: the library still has to send it, so it is left out of the span instead.

Serialising and cutting happen later, in Rust (``_core.to_json``); nothing here builds JSON text.
Chat-completions messages, the hot path of most applications, are read and written by the core
itself in one pass (``_core.chat_input``, ``openai_chat_response``, ``ChunkCollector``, in
rust/src/python/messages.rs); the shapes are the same.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llmprobe import _core

# Containers that can be read without consuming them.
SEQUENCES = (list, tuple)


# type -> how to read it: _DICT (a dict subclass), _MAPPING (another Mapping) or _OBJECT (asked
# once per type: the ABC check is slow).
_mapping_types: dict = {}
_OBJECT, _MAPPING, _DICT = 0, 1, 2
_dict_get = dict.get


def _reading(obj: Any) -> int:
    kind = _DICT if isinstance(obj, dict) else _MAPPING if isinstance(obj, Mapping) else _OBJECT
    _mapping_types[type(obj)] = kind
    return kind


def get(obj: Any, key: str, default: Any = None) -> Any:
    """obj[key] for a mapping, obj.key for anything else; `default` when absent."""
    kind = type(obj)
    if kind is dict:
        return obj.get(key, default)
    how = _mapping_types.get(kind)
    if how is None:
        how = _reading(obj)
    if how is _DICT:
        # dict's own get: a subclass with a __getattr__ (DashScope's responses) would make
        # `obj.get` a slow attribute lookup and a new bound method on every read.
        return _dict_get(obj, key, default)
    if how is _MAPPING:
        return obj.get(key, default)
    return getattr(obj, key, default)


def text_part(content: Any) -> dict:
    return {"type": "text", "content": content}


def tool_call_part(call_id: Any, name: Any, arguments: Any) -> dict:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": parse_arguments(arguments)}


def tool_response_part(call_id: Any, response: Any) -> dict:
    return {"type": "tool_call_response", "id": call_id, "response": response}


def parse_arguments(arguments: Any) -> Any:
    """Tool-call arguments as the structure they encode (the conventions record an object), or
    as given when they are not JSON (a model may stream invalid JSON)."""
    if isinstance(arguments, str) and arguments[:1] in ("{", "["):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# ---- content parts ---------------------------------------------------------------------------


def content_parts(content: Any) -> list:
    """The parts of a message's ``content``: a string, or a list of typed parts (chat
    completions' text / image_url / input_audio / file, the Responses API's input_text /
    input_image / output_text / refusal ...)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    if not isinstance(content, SEQUENCES):
        return []
    parts = []
    for item in content:
        if isinstance(item, str):
            parts.append(text_part(item))
            continue
        kind = get(item, "type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(text_part(get(item, "text")))
        elif kind == "image_url":
            image = get(item, "image_url")
            _media(parts, "image", get(image, "url") if image is not None else None)
        elif kind == "input_image":
            _media(parts, "image", get(item, "image_url"), get(item, "file_id"))
        elif kind == "refusal":
            parts.append({"type": "refusal", "content": get(item, "refusal")})
        elif kind == "input_audio":
            _media(parts, "audio", audio=get(item, "input_audio"))
        elif kind in ("file", "input_file"):
            file = get(item, "file") if kind == "file" else item
            if file is not None:
                url = get(file, "file_data")
                _media(parts, "file", url if url is not None else get(file, "file_url"), get(file, "file_id"))
        elif kind is not None:
            parts.append({"type": str(kind)})
    return parts


def _media(parts: list, kind: str, url: Any = None, file_id: Any = None, audio: Any = None) -> None:
    """A media part from a URL (a link or a data URL), else from an uploaded file's id, else
    from inline audio ({data, format})."""
    part = _core.media_part(kind, url, file_id, audio)
    if part is not None:
        parts.append(part)


# ---- chat completions ------------------------------------------------------------------------


def _response_text(content: Any) -> Any:
    """A tool result: its text when it is given as text parts, else as given."""
    if isinstance(content, SEQUENCES):
        texts = [get(p, "text") for p in content]
        if all(isinstance(t, str) for t in texts):
            return "".join(texts)
    return content


def message_text(messages: list) -> str:
    """The text of output messages: their text parts joined (one line between choices)."""
    texts = []
    for message in messages:
        pieces = [
            p["content"]
            for p in message["parts"]
            if p.get("type") == "text" and isinstance(p.get("content"), str)
        ]
        if pieces:
            texts.append("".join(pieces))
    return "\n".join(texts)


def has_parts(messages: list) -> bool:
    return any(m["parts"] for m in messages)


class AttrView:
    """Attribute access over a dict (and the dicts and lists in it), so that the stream
    assemblers read chunks given as JSON like the SDK's objects, with plain getattr (a Python
    call per field read costs too much when a stream has hundreds of chunks)."""

    __slots__ = ("_data",)

    def __init__(self, data: dict) -> None:
        self._data = data

    def __getattr__(self, key: str) -> Any:
        value = self._data.get(key)
        if type(value) is dict:
            return AttrView(value)
        if type(value) is list:
            return [AttrView(v) if type(v) is dict else v for v in value]
        return value


def attrs(obj: Any) -> Any:
    """`obj` readable with getattr: a dict through AttrView, anything else as it is."""
    return AttrView(obj) if type(obj) is dict else obj


# ---- legacy text completions -----------------------------------------------------------------


def prompt_input(prompt: Any) -> list | None:
    """A text completion's prompt (a string or a list of strings) as user messages."""
    if isinstance(prompt, str):
        return [{"role": "user", "parts": [text_part(prompt)]}]
    if isinstance(prompt, SEQUENCES) and all(isinstance(p, str) for p in prompt):
        return [{"role": "user", "parts": [text_part(p)]} for p in prompt]
    return None  # token ids, or a one-shot iterable


def completion_output(choices: Any) -> list:
    out = []
    if not isinstance(choices, SEQUENCES):
        return out
    for choice in choices:
        text = get(choice, "text")
        message = {"role": "assistant", "parts": [text_part(text)] if text is not None else []}
        finish = get(choice, "finish_reason")
        if finish is not None:
            message["finish_reason"] = finish
        out.append(message)
    return out


class CompletionAssembler:
    """Rebuilds a streamed text completion: text pieces per choice index."""

    __slots__ = ("choices",)

    def __init__(self) -> None:
        self.choices: dict = {}

    def add_chunks(self, chunks: list) -> tuple:
        """As ChatAssembler.add_chunks: (index of the first chunk with text, last usage)."""
        states = self.choices
        first = None
        usage = None
        for position, chunk in enumerate(chunks):
            chunk = attrs(chunk)
            chunk_usage = getattr(chunk, "usage", None)
            if chunk_usage is not None:
                usage = chunk_usage
            for choice in getattr(chunk, "choices", None) or ():
                choice = attrs(choice)
                index = getattr(choice, "index", 0) or 0
                state = states.get(index)
                if state is None:
                    state = states[index] = [[], None]
                text = getattr(choice, "text", None)
                if text:
                    state[0].append(text)
                    if first is None:
                        first = position
                finish = getattr(choice, "finish_reason", None)
                if finish:
                    state[1] = finish
        return first, usage

    def messages(self) -> list:
        out = []
        for index in sorted(self.choices):
            texts, finish = self.choices[index]
            message = {"role": "assistant", "parts": [text_part("".join(texts))] if texts else []}
            if finish is not None:
                message["finish_reason"] = finish
            out.append(message)
        return out


# ---- the Responses API -----------------------------------------------------------------------


def responses_input(value: Any) -> list | None:
    """The Responses API's ``input``: a string, or a list of items (messages, function calls
    and their outputs)."""
    if isinstance(value, str):
        return [{"role": "user", "parts": [text_part(value)]}]
    if not isinstance(value, SEQUENCES):
        return None
    out = []
    for item in value:
        kind = get(item, "type")
        if kind == "function_call":
            out.append(
                {
                    "role": "assistant",
                    "parts": [
                        tool_call_part(get(item, "call_id"), get(item, "name"), get(item, "arguments"))
                    ],
                }
            )
        elif kind == "function_call_output":
            out.append(
                {
                    "role": "tool",
                    "parts": [tool_response_part(get(item, "call_id"), _response_text(get(item, "output")))],
                }
            )
        elif kind in (None, "message") or get(item, "role") is not None:
            role = get(item, "role")
            out.append(
                {
                    "role": str(role) if role is not None else "user",
                    "parts": content_parts(get(item, "content")),
                }
            )
        else:
            out.append({"role": "assistant", "parts": [{"type": str(kind)}]})
    return out


def responses_output(output: Any, finish_reason: Any = None) -> list:
    """A Response's ``output`` items as one assistant message."""
    parts = []
    if isinstance(output, SEQUENCES):
        for item in output:
            kind = get(item, "type")
            if kind == "message":
                parts.extend(content_parts(get(item, "content")))
            elif kind == "function_call":
                parts.append(tool_call_part(get(item, "call_id"), get(item, "name"), get(item, "arguments")))
            elif kind == "custom_tool_call":
                parts.append(tool_call_part(get(item, "call_id"), get(item, "name"), get(item, "input")))
            elif kind == "reasoning":
                summary = get(item, "summary")
                texts = [get(s, "text") for s in summary] if isinstance(summary, SEQUENCES) else []
                texts = [t for t in texts if isinstance(t, str)]
                if texts:
                    parts.append({"type": "reasoning", "content": "\n".join(texts)})
            elif kind is not None:
                parts.append({"type": str(kind)})
    message = {"role": "assistant", "parts": parts}
    if finish_reason is not None:
        message["finish_reason"] = finish_reason
    return [message]


# ---- sizes, when content is not captured -----------------------------------------------------


def characters(messages: list | None) -> int:
    """The characters of the text in normalised messages: what is recorded instead of the
    content when capture is off."""
    total = 0
    for message in messages or ():
        for part in message["parts"]:
            for key in ("content", "arguments", "response", "uri", "file_id"):
                value = part.get(key)
                if isinstance(value, str):
                    total += len(value)
                elif value is not None and key in ("content", "arguments", "response"):
                    total += len(str(value))
    return total


def texts_characters(texts: Any) -> int:
    if isinstance(texts, str):
        return len(texts)
    if isinstance(texts, SEQUENCES):
        return sum(len(t) for t in texts if isinstance(t, str))
    return 0
