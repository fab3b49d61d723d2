"""LlamaIndex's model steps: LLM calls (``chat``, ``complete``, ``predict``, their ``stream_*``
and ``a*`` forms) and embeddings.

One model call is one LLM span. A LlamaIndex LLM step is started as a model step
(``_core.ModelStep`` in its context): when the class reaches the model through an SDK llmprobe
instruments (``llama_index.llms.openai`` and the OpenAI-like classes through ``openai``,
``llama_index.llms.dashscope`` through ``dashscope``), the SDK's hook counts its call into the
step, the SDK's span is the LLM span and the step ends as its parent, a CHAIN with LlamaIndex's
data. Otherwise (MockLLM, a provider llmprobe does not patch) the step is the LLM span, filled
from LlamaIndex's events: the messages or prompt, the answer, its usage and finish reason, the
time to the first token of a stream, the prompt template of a ``predict``. Embeddings follow the
same rule.

A streamed call (``stream_chat`` and the like) returns its generator before the model is asked:
the step stays current where it returned until the first token (so that the SDK request, made on
the first read, nests under it), and ends with LlamaIndex's end event, or when its generator is
dropped unread.
"""

from __future__ import annotations

import weakref
from time import perf_counter_ns
from typing import Any

from llmprobe import _core, _log
from llmprobe.instrumentation import _genai
from llmprobe.instrumentation._messages import SEQUENCES, text_part
from llmprobe.instrumentation.llama_index import _read

# The id of a LlamaIndex span that is part of another run -> that run's id (None: no run around
# it); kept by _spans, and here because a model step's inner spans are forgotten at its end.
ALIASES: dict = {}

_CLIENT = _core.KIND_CLIENT
# Request parameters LlamaIndex's integrations keep on the model (its model_dict) or pass per
# call (additional_kwargs), as the contract names them.
_PARAMETERS = (
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("top_k", "gen_ai.request.top_k"),
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("max_new_tokens", "gen_ai.request.max_tokens"),
    ("seed", "gen_ai.request.seed"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
    ("stop", "gen_ai.request.stop_sequences"),
    ("n", "gen_ai.request.choice.count"),
)


class Model:
    """What a model step's end needs (the run's ``data``)."""

    __slots__ = (
        "aliases",
        "answer",
        "dimension",
        "embedding",
        "input",
        "instance",
        "model",
        "operation",
        "params",
        "provider",
        "template",
    )

    def __init__(self, instance: Any, model: str | None, embedding: bool) -> None:
        self.instance = instance
        self.model = model
        self.embedding = embedding
        self.provider = provider_of(instance)
        self.operation = None  # "chat" or "text_completion", from the first start event
        self.input: list = []
        self.params: dict = {}
        self.answer = None
        self.template = None
        self.dimension = None  # the embedding dimension asked for
        self.aliases: list = []  # the ids of inner spans whose events come after their end


def _known(value: Any) -> bool:
    return isinstance(value, str) and value != "" and value != "unknown"  # MockLLM's "unknown"


def model_of(instance: Any) -> str | None:
    for attribute in ("model", "model_name", "deployment_name", "model_id"):
        value = getattr(instance, attribute, None)
        if _known(value):
            return value
    return None


def provider_of(instance: Any) -> str | None:
    """The provider of an integration package (``llama_index.llms.openai`` -> openai)."""
    parts = type(instance).__module__.split(".")
    if len(parts) > 2 and parts[0] == "llama_index" and parts[1] in ("llms", "embeddings"):
        return parts[2]
    return None


def forget(run: Any) -> None:
    """Drop the aliases of a model step's inner spans (at its end, or when it was abandoned)."""
    data = run.data
    if type(data) is Model:
        for alias in data.aliases:
            ALIASES.pop(alias, None)
        data.aliases.clear()


# ---- start -----------------------------------------------------------------------------------


def llm_attributes(instance: Any, name: str) -> tuple:
    """(span name, attributes, Model) of an LLM step about to start."""
    model = model_of(instance)
    return f"chat {model or name}", {"gen_ai.framework": "llama_index"}, Model(instance, model, False)


def embedding_attributes(instance: Any, method: str, arguments: dict) -> tuple:
    """(span name, attributes, Model) of an embedding step about to start."""
    model = model_of(instance)
    attributes: dict = {"gen_ai.framework": "llama_index", "gen_ai.operation.name": "embeddings"}
    texts = next(iter(arguments.values()), None) if arguments else None
    if isinstance(texts, str):
        attributes["llmprobe.embeddings.count"] = 1
    elif isinstance(texts, SEQUENCES):
        attributes["llmprobe.embeddings.count"] = len(texts)
    if _genai.capture and texts is not None:
        if isinstance(texts, str):
            attributes["input.value"] = _genai.content_text(texts)
            attributes["input.mime_type"] = "text/plain"
        else:
            attributes["input.value"] = _genai.content_json(texts)
            attributes["input.mime_type"] = "application/json"
    data = Model(instance, model, True)
    dimensions = getattr(instance, "dimensions", None)
    if type(dimensions) is int:
        attributes["gen_ai.embeddings.dimension.count"] = data.dimension = dimensions
    return f"embeddings {model or type(instance).__name__}", attributes, data


# ---- events ----------------------------------------------------------------------------------


def _parameters(data: Model, values: Any) -> None:
    if not isinstance(values, dict):
        return
    for key, attribute in _PARAMETERS:
        value = values.get(key)
        if value is not None:
            data.params[attribute] = list(value) if isinstance(value, tuple) else value
    tools = values.get("tools")
    if tools:
        data.params["tools"] = tools
    model = values.get("model") or values.get("model_name")
    if _known(model) and data.model is None:
        data.model = model


def started(run: Any, operation: str, items: list, event: Any) -> None:
    """A chat or completion start event: the outermost one of the step is the call."""
    data = run.data
    if data.operation is not None:
        return  # an inner call of the same step (MockLLM's chat runs its complete)
    data.operation = operation
    data.input = items
    _parameters(data, getattr(event, "model_dict", None))
    _parameters(data, getattr(event, "additional_kwargs", None))


def predicted(run: Any, event: Any) -> None:
    """A predict's start: its prompt template."""
    template = getattr(event, "template", None)
    if template is None:
        return
    text = getattr(template, "template", None)
    if not isinstance(text, str):
        getter = getattr(template, "get_template", None)
        try:
            text = getter() if getter is not None else None
        except Exception:  # noqa: BLE001
            text = None
    if isinstance(text, str):
        run.data.template = (text, getattr(event, "template_args", None))


def progressed(run: Any, table: Any) -> None:
    """A streamed chunk: the first gives the time to first token, and the caller its context."""
    if run.first_token is None:
        run.first_token = perf_counter_ns()
        table.leave_here(run)


def failed(run: Any, table: Any, error: Any) -> None:
    """LlamaIndex's exception event: the call failed (a stream's only end, then), or a stream was
    closed early (GeneratorExit, no failure)."""
    if table.finish(run.key) is not None:
        end(run, error if isinstance(error, Exception) else None)


def answered(run: Any, table: Any, operation: str, response: Any) -> None:
    """An end event: the answer (the outermost call's comes last); a stream's step ends here."""
    data = run.data
    if data.operation is not None and data.operation != operation and data.answer is not None:
        return
    data.answer = response
    streamed_to_its_end = run.streamed and (data.operation is None or data.operation == operation)
    if streamed_to_its_end and table.finish(run.key) is not None:
        end(run, None)


# ---- streams ---------------------------------------------------------------------------------


def streaming(run: Any, table: Any, generator: Any) -> None:
    """The step returned a generator: it ends with its end event, or when the generator is
    dropped before one."""
    run.streamed = True
    try:
        weakref.finalize(generator, _dropped, table, run.key)
    except TypeError:
        pass


def _dropped(table: Any, key: Any) -> None:
    try:
        run = table.finish(key)
        if run is not None:
            end(run, None)
    except Exception as exc:  # noqa: BLE001
        _log.log_once("llama_index stream dropped", exc)


# ---- end -------------------------------------------------------------------------------------


def end(run: Any, error: BaseException | None) -> None:
    """The end of a model step: the parent of an SDK's span (a CHAIN), or the model call's span."""
    data: Model = run.data
    forget(run)
    if data.embedding:
        _end_embedding(run, data, error)
    elif run.step.calls or data.operation is None:
        # An SDK's span under this step is the model call (or the step made none: a helper of
        # the LLM class's, not a call).
        _end_step(run, data, error)
    else:
        _end_llm(run, data, error)


def _end_step(run: Any, data: Model, error: BaseException | None, output: str | None = None) -> None:
    span = run.span
    span.update_name("chain " + run.name)
    attributes: dict = {"gen_ai.span.kind": "CHAIN", "gen_ai.operation.name": "chain"}
    if _genai.capture:
        if data.input:
            attributes["input.value"] = _core.to_json(data.input)
            attributes["input.mime_type"] = "application/json"
        text = output if output is not None else _answer_text(data.answer)
        if text:
            attributes["output.value"] = _genai.content_text(text)
            attributes["output.mime_type"] = "text/plain"
    if isinstance(error, Exception):
        span.record_failure(error, True, True)
    span.set_attributes(attributes)
    span.end()


def _answer_text(answer: Any) -> str | None:
    if answer is None:
        return None
    message = getattr(answer, "message", None)
    if message is not None:
        content = getattr(message, "content", None)
        return content if isinstance(content, str) else None
    text = getattr(answer, "text", None)
    return text if isinstance(text, str) else None


def _metadata_model(instance: Any) -> str | None:
    """The model an LLM class names in its metadata (a property some classes compute; read only
    when nothing else named the model)."""
    try:
        model = instance.metadata.model_name
    except Exception:  # noqa: BLE001
        return None
    return model if _known(model) else None


def _end_llm(run: Any, data: Model, error: BaseException | None) -> None:
    span = run.span
    capture = _genai.capture
    operation = data.operation
    span._set_kind(_CLIENT)
    model = data.model if data.model is not None else _metadata_model(data.instance)
    if operation != "chat" or (model and not run.name.endswith(model)):
        span.update_name(f"{operation} {model or run.name}")
    attributes: dict = {"gen_ai.span.kind": "LLM", "gen_ai.operation.name": operation}
    metric_attributes = {"gen_ai.operation.name": operation}
    if data.provider is not None:
        attributes["gen_ai.provider.name"] = metric_attributes["gen_ai.provider.name"] = data.provider
    if model is not None:
        attributes["gen_ai.request.model"] = metric_attributes["gen_ai.request.model"] = model
    params = data.params
    tools = params.pop("tools", None)
    attributes.update(params)
    attributes["gen_ai.request.stream"] = run.streamed
    if tools and capture:
        definitions = _core.tool_definitions(tools)
        if definitions is not None:
            attributes["gen_ai.tool.definitions"] = definitions
    if data.template is not None and capture:
        text, variables = data.template
        attributes["gen_ai.prompt.template"] = _genai.content_text(text)
        if variables:
            attributes["gen_ai.prompt.template.variables"] = _genai.content_json(variables)
    if capture:
        _genai.put_input_json(attributes, _core.to_json(data.input), 0, True)
    else:
        attributes["llmprobe.input.size"] = _read.characters(data.input)
    answer = data.answer
    tokens = (None, None)
    if answer is not None:
        raw = getattr(answer, "raw", None)
        response_model = _read.response_model(raw)
        if response_model is not None:
            attributes["gen_ai.response.model"] = metric_attributes["gen_ai.response.model"] = response_model
        response_id = _read.response_id(raw)
        if response_id is not None:
            attributes["gen_ai.response.id"] = response_id
        tokens = _read.usage(attributes, answer)
        reason = _read.finish_reason(raw)
        message = getattr(answer, "message", None)
        if message is not None:
            output = _read.message(message)
        else:
            text = getattr(answer, "text", None)
            output = {"role": "assistant", "parts": [text_part(text)] if isinstance(text, str) else []}
        if reason is not None:
            output["finish_reason"] = reason
        text = _answer_text(answer) or ""
        _genai.put_output_json(
            attributes,
            _core.to_json([output]) if capture else None,
            text,
            [reason] if reason is not None else [],
            True,
            len(text),
        )
    first_chunk = None
    if run.first_token is not None:
        attributes["gen_ai.response.time_to_first_token"] = run.first_token - run.started
        first_chunk = (run.first_token - run.started) / 1e9
    span.set_attributes(attributes)
    run.step.count_outer()
    call = _core.Call(span, metric_attributes, None, run.started)
    if isinstance(error, Exception):
        _genai.fail(call, error)
    _genai.end(call, tokens[0], tokens[1], first_chunk)


def _end_embedding(run: Any, data: Model, error: BaseException | None) -> None:
    result = data.answer
    span = run.span
    if run.step.calls:
        _end_step(run, data, error, "")
        return
    span._set_kind(_CLIENT)
    attributes: dict = {"gen_ai.span.kind": "EMBEDDING"}
    metric_attributes = {"gen_ai.operation.name": "embeddings"}
    if data.provider is not None:
        attributes["gen_ai.provider.name"] = metric_attributes["gen_ai.provider.name"] = data.provider
    if data.model is not None:
        attributes["gen_ai.request.model"] = metric_attributes["gen_ai.request.model"] = data.model
    if error is None and isinstance(result, SEQUENCES) and result:
        vector = result[0] if isinstance(result[0], SEQUENCES) else result
        length = _genai.vector_length(vector)
        if length is not None and data.dimension is None:
            attributes["gen_ai.embeddings.dimension.count"] = length
    span.set_attributes(attributes)
    run.step.count_outer()
    call = _core.Call(span, metric_attributes, None, run.started)
    if isinstance(error, Exception):
        _genai.fail(call, error)
    _genai.end(call)
