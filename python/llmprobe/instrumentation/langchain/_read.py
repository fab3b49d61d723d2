"""What LangChain reports, read for the span contract: model results, tools, parameters.

Everything here only reads. An ``LLMResult`` gives the answer (its messages, finish reasons,
token usage, response model and id); a model's invocation parameters give the request's. The
messages, documents and chain values themselves are written as JSON in the contract's shapes by
the core in one pass (``_core.langchain_json``, ``langchain_output``, ``langchain_documents``:
rust/src/python/langchain.rs), once bind() has given it LangChain's classes.
"""

from __future__ import annotations

from typing import Any

from llmprobe import _core
from llmprobe.instrumentation._messages import SEQUENCES, text_part

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
_PARAMETERS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "n": "gen_ai.request.choice.count",
}
_NUMBERS = (int, float)


def provider(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return None
    return _PROVIDERS.get(name, name)


def finish_reason(reason: Any) -> str | None:
    """A provider's finish reason in the conventions' words (the core's one table)."""
    if not isinstance(reason, str) or not reason:
        return None
    return _core.finish_reason(reason)


# ---- messages --------------------------------------------------------------------------------


# A message content's text: the string, or its text blocks joined.
content_text = _core.langchain_text


def characters(msgs: Any) -> int:
    """The characters of the messages' text: what is recorded instead when content is not
    captured."""
    if not isinstance(msgs, SEQUENCES):
        return 0
    return sum(len(m) if isinstance(m, str) else len(content_text(getattr(m, "content", None))) for m in msgs)


def prompts_json(texts: Any) -> str:
    """A text completion's prompts as user messages, in JSON."""
    return _core.to_json([{"role": "user", "parts": [text_part(t)]} for t in texts if isinstance(t, str)])


# ---- model results ---------------------------------------------------------------------------


class Answer:
    """What an LLMResult says of one model run: the answer's messages (LangChain's, or texts)
    with their finish reasons and text, the usage, the response model and id."""

    __slots__ = (
        "cache_read",
        "id",
        "input_tokens",
        "messages",
        "model",
        "output_tokens",
        "reasoning",
        "reasons",
        "text",
        "total",
    )

    def __init__(self) -> None:
        self.messages: list = []
        self.reasons: list = []  # per message, the conventions' finish reason or None
        self.text = ""
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
    texts = []
    for generations in getattr(result, "generations", None) or ():
        for generation in generations or ():
            msg = getattr(generation, "message", None)
            info = getattr(generation, "generation_info", None) or {}
            if msg is not None:
                metadata = getattr(msg, "response_metadata", None) or {}
                reason = (
                    info.get("finish_reason")
                    or metadata.get("finish_reason")
                    or metadata.get("stop_reason")
                    or metadata.get("done_reason")
                )
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
                text = content_text(getattr(msg, "content", None))
                out.messages.append(msg)
            else:
                text = getattr(generation, "text", None)
                text = text if isinstance(text, str) else ""
                reason = info.get("finish_reason")
                out.messages.append(text)
            out.reasons.append(finish_reason(reason))
            if text:
                texts.append(text)
    out.text = "\n".join(texts)
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


def request_parameters(attributes: dict, params: dict, metadata: dict) -> None:
    """The sampling parameters a model run was invoked with (LangChain's standard ls_* metadata
    where the parameters do not say)."""
    for key, value in params.items():
        attribute = _PARAMETERS.get(key)
        if attribute is not None and type(value) in _NUMBERS:
            attributes[attribute] = value
    for key, attribute in (
        ("ls_temperature", "gen_ai.request.temperature"),
        ("ls_max_tokens", "gen_ai.request.max_tokens"),
    ):
        value = metadata.get(key)
        if value is not None and attribute not in attributes and type(value) in _NUMBERS:
            attributes[attribute] = value
    stop = params.get("stop") or params.get("stop_sequences") or metadata.get("ls_stop")
    if stop:
        if isinstance(stop, str):
            stop = [stop]
        if isinstance(stop, SEQUENCES) and all(isinstance(s, str) for s in stop):
            attributes["gen_ai.request.stop_sequences"] = list(stop)


def bind() -> None:
    """Give the core LangChain's classes, so that it writes their objects in the contract's
    shapes (langchain_core is imported)."""
    from langchain_core.documents import Document
    from langchain_core.messages import BaseMessage
    from langchain_core.prompt_values import PromptValue

    _core.langchain_classes(BaseMessage, Document, PromptValue)
