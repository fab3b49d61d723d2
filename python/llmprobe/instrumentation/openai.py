"""The openai SDK (1.x to 3.x): one LLM or embedding span per model call, with its metrics.

Patched (each where the installed SDK has it, sync and async):

- ``chat.completions.create`` (and ``parse``, and the beta ``parse`` of the 1.40-1.9x SDKs),
  ``completions.create``, ``embeddings.create``, ``responses.create`` / ``parse``;
- ``chat.completions.stream`` / ``responses.stream``: the helper's manager, so that leaving its
  ``with`` block ends the span of the stream it read (the request itself goes through create);
- nothing else: a call through ``with_raw_response`` / ``with_streaming_response`` goes through
  the same create; when its answer is not read yet, the raw response it returns is handed back
  in a transparent proxy whose ``parse()`` completes the span.

Nothing is changed in the request (no ``include_usage`` is added: a stream without a usage chunk
gives a span without token counts) and nothing is written into the SDK's objects. A streamed
answer is handed back inside a transparent proxy (``_stream``) that ends the span once.

``gen_ai.provider.name`` comes from the base URL's host when it is a known provider's (an
OpenAI-compatible endpoint reached through this SDK), ``openai`` otherwise.

A chat completion, the call applications make most, is read entirely by the core: its request
(``_core.OpenAiBefore``, this module's tables given to it), its answer and its stream's chunks;
no Python frame of this module runs around it. The other operations are read here.
"""

from __future__ import annotations

import json
import weakref
from typing import Any

from llmprobe import _core
from llmprobe.instrumentation import _genai, _messages, _stream, _wrap
from llmprobe.instrumentation._messages import SEQUENCES, get

OWNER = "openai"
SCOPE = "llmprobe.instrumentation.openai"

# Set by instrument(): the tracer, and the SDK's stream and raw-response classes.
_tracer: Any = None
_SYNC_STREAMS: tuple = ()
_ASYNC_STREAMS: tuple = ()
_RAW_RESPONSES: tuple = ()

# (keyword argument, span attribute) of the numeric request parameters.
_CHAT_PARAMETERS = (
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("max_completion_tokens", "gen_ai.request.max_tokens"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
    ("seed", "gen_ai.request.seed"),
    ("n", "gen_ai.request.choice.count"),
)
_RESPONSES_PARAMETERS = (
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("max_output_tokens", "gen_ai.request.max_tokens"),
)
# Parameters an OpenAI-compatible server takes in extra_body (vLLM, DashScope).
_EXTRA_BODY_PARAMETERS = (("top_k", "gen_ai.request.top_k"),)

# Known OpenAI-compatible providers, by the end of their API host name.
_PROVIDERS = (
    ("api.openai.com", "openai"),
    ("openai.azure.com", "azure.ai.openai"),
    ("dashscope.aliyuncs.com", "dashscope"),
    ("dashscope-intl.aliyuncs.com", "dashscope"),
    ("api.deepseek.com", "deepseek"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    ("api.groq.com", "groq"),
    ("api.x.ai", "x_ai"),
    ("api.mistral.ai", "mistral_ai"),
    ("api.perplexity.ai", "perplexity"),
    ("api.anthropic.com", "anthropic"),
    ("api.cohere.com", "cohere"),
    ("api.cohere.ai", "cohere"),
    ("api.moonshot.cn", "moonshot"),
    ("open.bigmodel.cn", "zhipu"),
    ("volces.com", "volcengine"),
)

# ---- the operations --------------------------------------------------------------------------

# What the end of a call needs from its request: kind ("chat", "text_completion", "responses",
# "embeddings"), capture, stream, dimensions, choices (n).
_Request = _core.OpenAiRequest

# Set by instrument(): the core's reader of requests (_core.OpenAiBefore). It is chat
# completions' `before` itself, and gives the other operations' `before`s below what every call
# has (begin: model, server, provider) and their numeric parameters and output type (sampling,
# responses_numbers, output_type), each read one way.
_before: Any = None


def _before_completion(instance: Any, args: tuple, kwargs: dict) -> tuple:
    capture = _genai.capture
    stream = bool(kwargs.get("stream"))
    attributes: dict = {"gen_ai.request.stream": stream}
    _before.sampling(attributes, kwargs)
    _genai.put_input(attributes, _messages.prompt_input(kwargs.get("prompt")), capture)
    request = _Request("text_completion", capture, stream)
    return _before.begin(instance, kwargs, request, "text_completion", "LLM", attributes)


def _before_responses(instance: Any, args: tuple, kwargs: dict) -> tuple:
    capture = _genai.capture
    stream = bool(kwargs.get("stream"))
    attributes: dict = {"gen_ai.request.stream": stream}
    _before.responses_numbers(attributes, kwargs)
    text = kwargs.get("text")
    if text is not None and not isinstance(text, str):
        output_type = _before.output_type(get(text, "format"))
        if output_type is not None:
            attributes["gen_ai.output.type"] = output_type
    if kwargs.get("text_format") is not None and isinstance(kwargs.get("text_format"), type):
        attributes["gen_ai.output.type"] = "json"
    tier = kwargs.get("service_tier")
    if isinstance(tier, str):
        attributes["openai.request.service_tier"] = tier
    _genai.put_input(attributes, _messages.responses_input(kwargs.get("input")), capture)
    instructions = kwargs.get("instructions")
    if isinstance(instructions, str):
        if capture:
            attributes["gen_ai.system_instructions"] = _genai.content_json(
                [_messages.text_part(instructions)]
            )
        else:
            attributes["llmprobe.system_instructions.size"] = len(instructions)
    if capture:
        definitions = _core.tool_definitions(kwargs.get("tools"))
        if definitions is not None:
            attributes["gen_ai.tool.definitions"] = definitions
    request = _Request("responses", capture, stream)
    return _before.begin(instance, kwargs, request, "chat", "LLM", attributes)


def _before_embeddings(instance: Any, args: tuple, kwargs: dict) -> tuple:
    capture = _genai.capture
    attributes: dict = {}
    dimensions = kwargs.get("dimensions")
    if type(dimensions) is int:
        attributes["gen_ai.embeddings.dimension.count"] = dimensions
    else:
        dimensions = None
    encoding = kwargs.get("encoding_format")
    if isinstance(encoding, str):
        attributes["gen_ai.request.encoding_formats"] = [encoding]
    texts = kwargs.get("input")
    if capture:
        if isinstance(texts, str):
            attributes["input.value"] = _genai.content_text(texts)
            attributes["input.mime_type"] = "text/plain"
        elif isinstance(texts, SEQUENCES) and texts and all(isinstance(t, str) for t in texts):
            attributes["input.value"] = _genai.content_json(texts)
            attributes["input.mime_type"] = "application/json"
    else:
        attributes["llmprobe.input.size"] = _messages.texts_characters(texts)
    request = _Request("embeddings", capture, False, dimensions)
    return _before.begin(instance, kwargs, request, "embeddings", "EMBEDDING", attributes)


# ---- the end of a call -----------------------------------------------------------------------


def _response_ids(call: _genai.Call, attributes: dict, response: Any) -> None:
    response_id = get(response, "id")
    if isinstance(response_id, str):
        attributes["gen_ai.response.id"] = response_id
    model = get(response, "model")
    if isinstance(model, str):
        attributes["gen_ai.response.model"] = model
        call.metric_attributes["gen_ai.response.model"] = model
    tier = get(response, "service_tier")
    if isinstance(tier, str):
        attributes["openai.response.service_tier"] = tier


def _complete(call: _genai.Call, response: Any) -> None:
    """Fill and end the span of a call from its (non-streamed) answer: an SDK object, or the
    answer's JSON (a dict) when it came as a raw response."""
    input_tokens = output_tokens = None
    try:
        request: _Request = call.extra
        if request.kind == "chat":
            # Ids, usage and answer, read and written into the span by the core at once.
            input_tokens, output_tokens, model = _core.openai_chat_response(
                call.span, response, request.capture
            )
            if model is not None:
                call.metric_attributes["gen_ai.response.model"] = model
            return
        attributes: dict = {}
        _response_ids(call, attributes, response)
        input_tokens, output_tokens = _core.usage(attributes, get(response, "usage"))
        kind = request.kind
        if kind == "embeddings":
            if request.dimensions is None:
                data = get(response, "data")
                if isinstance(data, SEQUENCES) and data:
                    count = _genai.vector_length(get(data[0], "embedding"))
                    if count is not None:
                        attributes["gen_ai.embeddings.dimension.count"] = count
        else:
            if kind == "text_completion":
                messages = _messages.completion_output(get(response, "choices"))
            else:
                finish = _responses_finish(response)
                messages = _messages.responses_output(get(response, "output"), finish)
            _genai.put_output(attributes, messages, request.capture)
        call.span.set_attributes(attributes)
    finally:
        _genai.end(call, input_tokens, output_tokens)


# Output items that ask the caller to run something (a completed response holding one ended for
# a tool call, as a chat completion's "tool_calls").
_TOOL_CALL_ITEMS = frozenset(("function_call", "custom_tool_call", "computer_call", "local_shell_call"))
# Why a response is incomplete -> the conventions' finish reason.
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


def _responses_finish(response: Any) -> str | None:
    """A Response's status as the conventions' finish reason, as a chat completion would give
    it: a completed answer is "stop" ("tool_calls" when its output calls a tool), an answer cut
    by max_output_tokens "length", a filtered one "content_filter", a failed one "error". A
    response still queued or in progress (background mode) has none yet."""
    status = get(response, "status")
    if status == "completed":
        output = get(response, "output")
        calls = isinstance(output, SEQUENCES) and any(get(i, "type") in _TOOL_CALL_ITEMS for i in output)
        return "tool_calls" if calls else "stop"
    if status == "incomplete":
        details = get(response, "incomplete_details")
        reason = get(details, "reason") if details is not None else None
        return _INCOMPLETE_REASONS.get(reason, "length")
    if status in ("failed", "cancelled"):
        return "error"
    return None


def _end_stream(state: _stream.StreamState, error: BaseException | None) -> None:
    """Fill and end the span of a streamed call from the items the stream gave."""
    _genai.end_stream(state, error, _assemble_stream)


def _assemble_stream(call: _genai.Call, attributes: dict, state: _stream.StreamState) -> tuple:
    request: _Request = call.extra
    if request.kind == "responses":
        return _responses_stream(call, attributes, state.items, request.capture)
    return _chunks_stream(call, attributes, state.collector, request)


def _chunks_stream(call: _genai.Call, attributes: dict, collector: Any, request: _Request) -> tuple:
    """Text-completion chunks (a chat stream's are read by the core: _genai.end_stream): the
    answer; the index of the first chunk with content; the token counts of the usage chunk,
    when the stream had one."""
    assembler = _messages.CompletionAssembler()
    first, usage = assembler.add_chunks(collector.items)
    head, tail = collector.first, collector.last
    if head is not None:
        _response_ids(call, attributes, head)
        last_model = get(tail, "model")
        if isinstance(last_model, str) and last_model != attributes.get("gen_ai.response.model"):
            _response_ids(call, attributes, tail)
    input_tokens, output_tokens = _core.usage(attributes, usage)
    _genai.put_output(attributes, assembler.messages(), request.capture)
    return first, input_tokens, output_tokens


_RESPONSES_FINAL = ("response.completed", "response.incomplete", "response.failed")
_RESPONSES_CONTENT = (
    "response.output_text.delta",
    "response.refusal.delta",
    "response.function_call_arguments.delta",
)


def _responses_stream(call: _genai.Call, attributes: dict, items: list, capture: bool) -> tuple:
    """Responses API events: the final response (response.completed / incomplete / failed)
    carries everything; a stream cut short gives what its text deltas said."""
    first = None
    final = None
    started = None
    texts = []
    attrs = _messages.attrs
    for index, event in enumerate(items):
        event = attrs(event)
        kind = getattr(event, "type", None)
        if kind in _RESPONSES_CONTENT:
            if first is None:
                first = index
            if kind == "response.output_text.delta":
                delta = getattr(event, "delta", None)
                if isinstance(delta, str):
                    texts.append(delta)
        elif kind in _RESPONSES_FINAL:
            final = getattr(event, "response", None)
        elif kind == "response.created":
            started = getattr(event, "response", None)
    response = final if final is not None else started
    if response is not None:
        _response_ids(call, attributes, response)
    input_tokens = output_tokens = None
    if final is not None:
        input_tokens, output_tokens = _core.usage(attributes, get(final, "usage"))
        finish = _responses_finish(final)
        messages = _messages.responses_output(get(final, "output"), finish)
    else:
        messages = [{"role": "assistant", "parts": [_messages.text_part("".join(texts))] if texts else []}]
    _genai.put_output(attributes, messages, capture)
    return first, input_tokens, output_tokens


# ---- hooks -----------------------------------------------------------------------------------


def _after(call: _genai.Call, result: Any) -> Any:
    """The call returned: end its span now, or hand back a proxy that ends it later (with the
    stream, or with the raw response's parse())."""
    if isinstance(result, _SYNC_STREAMS):
        return _proxy(call, result, _stream.SyncStreamProxy)
    if isinstance(result, _ASYNC_STREAMS):
        return _proxy(call, result, _stream.AsyncStreamProxy)
    if _RAW_RESPONSES and isinstance(result, _RAW_RESPONSES):
        return _raw(call, result)
    _complete(call, result)
    return None


def _proxy(call: _genai.Call, stream: Any, proxy_class: type) -> Any:
    """A stream the hook did not proxy itself (one a raw response's parse() gave, or not a
    chat completion's) in its proxy."""
    try:
        # Chat chunks are read as they pass; other streams keep theirs.
        if call.extra.kind == "chat":
            # The core reads the chunks as they pass, writes the answer and ends the span.
            collector = _core.ChunkCollector("chat")
            state = _stream.StreamState("openai stream", _genai.end_stream, call, collector, True)
        else:
            state = _stream.StreamState("openai stream", _end_stream, call, _core.ChunkCollector())
        return _stream.wrap(proxy_class, stream, state)
    except BaseException:
        _genai.end(call)  # no proxy, no later end: end the span now rather than never
        raise


def _error(call: _genai.Call, error: BaseException) -> None:
    try:
        _genai.fail(call, error)
    finally:
        _genai.end(call)


# ---- raw responses ---------------------------------------------------------------------------

# type of a raw response -> whether its parse() is a coroutine function (AsyncAPIResponse).
_async_parse: dict = {}


def _raw(call: _genai.Call, response: Any) -> Any:
    """A call made through with_raw_response / with_streaming_response returned the raw HTTP
    answer. A JSON answer already read is recorded now (and the raw response handed back as it
    is); otherwise the application gets the raw response in a transparent proxy whose parse()
    gives the span its answer (or its stream)."""
    request: _Request = call.extra
    if not request.stream:
        body = _read_body(response)
        if body is not None:
            _complete(call, body)
            return None
    kind = type(response)
    is_async = _async_parse.get(kind)
    if is_async is None:
        import inspect

        is_async = _async_parse[kind] = inspect.iscoroutinefunction(getattr(kind, "parse", None))
    return (_AsyncRawResponseProxy if is_async else _RawResponseProxy)(response, call)


def _read_body(response: Any) -> Any:
    """The JSON of an answer whose body was already read; None when it was not (reading it
    would change what the application's own reads do) or is not JSON."""
    http = getattr(response, "http_response", None)
    if http is None:
        return None
    try:
        content = http.content  # raises when the body has not been read yet
    except Exception:  # noqa: BLE001
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None


def _take(box: list) -> Any:
    # The call waiting in a raw response proxy, once (list.pop is atomic: parse, close and the
    # garbage collector may race).
    try:
        return box.pop()
    except IndexError:
        return None


def _raw_abandoned(box: list) -> None:
    # The raw response was collected (or the interpreter exits) without parse() or close().
    call = _take(box)
    if call is not None:
        _wrap.guarded("openai raw response", _genai.end, call)


def _raw_parsed(box: list, result: Any) -> Any:
    call = _take(box)
    if call is None:
        return None
    return _wrap.guarded("openai raw response", _after, call, result)


def _raw_failed(box: list, error: BaseException) -> None:
    call = _take(box)
    if call is not None:
        _wrap.guarded("openai raw response", _error, call, error)


def _raw_closed(proxy: Any) -> None:
    """close() of the raw response: the span ends, and so does that of the stream its parse()
    gave (the stream can be read no further)."""
    _raw_abandoned(proxy._self_box)
    stream = proxy._self_stream
    if stream is not None:
        _stream.close_stream(stream)


class _RawResponseProxy(_stream._Proxy):
    """A raw response, unchanged for the application, whose parse() ends the call's span (or
    hands the stream it gives to a stream proxy) and whose close() or collection ends it with
    what is known when parse() never came."""

    def __init__(self, response: Any, call: _genai.Call) -> None:
        super().__init__(response)
        self._self_box = [call]
        self._self_stream = None
        weakref.finalize(self, _raw_abandoned, self._self_box)

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        try:
            result = self.__wrapped__.parse(*args, **kwargs)
        except BaseException as exc:
            _raw_failed(self._self_box, exc)
            raise
        replacement = _raw_parsed(self._self_box, result)
        if replacement is None:
            return result
        self._self_stream = replacement
        return replacement

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            _wrap.guarded("openai raw response", _raw_closed, self)


class _AsyncRawResponseProxy(_RawResponseProxy):
    """The same for AsyncAPIResponse, whose parse() and close() are coroutine functions."""

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        try:
            result = await self.__wrapped__.parse(*args, **kwargs)
        except BaseException as exc:
            _raw_failed(self._self_box, exc)
            raise
        replacement = _raw_parsed(self._self_box, result)
        if replacement is None:
            return result
        self._self_stream = replacement
        return replacement

    async def close(self) -> Any:
        try:
            return await self.__wrapped__.close()
        finally:
            _wrap.guarded("openai raw response", _raw_closed, self)


# ---- stream helpers' managers ----------------------------------------------------------------


def _wrap_manager(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    manager = wrapped(*args, **kwargs)
    proxy = _wrap.guarded("openai stream helper", _ManagerProxy, manager)
    return manager if proxy is None else proxy


class _ManagerProxy(_stream._Proxy):
    """The SDK's stream manager, unchanged, except that leaving its ``with`` block also ends the
    span of the raw stream its helper stream read (the helper closes the HTTP response itself)."""

    def __init__(self, manager: Any) -> None:
        super().__init__(manager)
        self._self_helper = None

    def __enter__(self):
        helper = self.__wrapped__.__enter__()
        self._self_helper = helper
        return helper

    def __exit__(self, exc_type, exc, tb):
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            _wrap.guarded("openai stream helper", _stream.close_inner, self._self_helper)

    async def __aenter__(self):
        helper = await self.__wrapped__.__aenter__()
        self._self_helper = helper
        return helper

    async def __aexit__(self, exc_type, exc, tb):
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            _wrap.guarded("openai stream helper", _stream.close_inner, self._self_helper)


# ---- patching --------------------------------------------------------------------------------

# (module, attribute path, hook key, name of the before hook, sync/async). A module or attribute
# the installed SDK does not have is skipped. Hooks are named, and looked up when instrument()
# runs, so that the hooks in effect are this module's at that time.
_RESOURCE_TARGETS = (
    ("openai.resources.chat.completions", "Completions.create", "openai chat", "_before", False),
    ("openai.resources.chat.completions", "AsyncCompletions.create", "openai chat", "_before", True),
    ("openai.resources.chat.completions", "Completions.parse", "openai chat", "_before", False),
    ("openai.resources.chat.completions", "AsyncCompletions.parse", "openai chat", "_before", True),
    ("openai.resources.beta.chat.completions", "Completions.parse", "openai chat", "_before", False),
    ("openai.resources.beta.chat.completions", "AsyncCompletions.parse", "openai chat", "_before", True),
    ("openai.resources.completions", "Completions.create", "openai completion", "_before_completion", False),
    (
        "openai.resources.completions",
        "AsyncCompletions.create",
        "openai completion",
        "_before_completion",
        True,
    ),
    ("openai.resources.embeddings", "Embeddings.create", "openai embeddings", "_before_embeddings", False),
    (
        "openai.resources.embeddings",
        "AsyncEmbeddings.create",
        "openai embeddings",
        "_before_embeddings",
        True,
    ),
    ("openai.resources.responses", "Responses.create", "openai responses", "_before_responses", False),
    ("openai.resources.responses", "AsyncResponses.create", "openai responses", "_before_responses", True),
    ("openai.resources.responses", "Responses.parse", "openai responses", "_before_responses", False),
    ("openai.resources.responses", "AsyncResponses.parse", "openai responses", "_before_responses", True),
)
_MANAGER_TARGETS = (
    ("openai.resources.chat.completions", "Completions.stream"),
    ("openai.resources.chat.completions", "AsyncCompletions.stream"),
    ("openai.resources.beta.chat.completions", "Completions.stream"),
    ("openai.resources.beta.chat.completions", "AsyncCompletions.stream"),
    ("openai.resources.responses", "Responses.stream"),
    ("openai.resources.responses", "AsyncResponses.stream"),
)


def _classes(module: str, *names: str) -> tuple:
    import importlib

    try:
        found = importlib.import_module(module)
    except ImportError:
        return ()
    return tuple(getattr(found, n) for n in names if isinstance(getattr(found, n, None), type))


def _try_wrap(module: str, path: str, wrapper: Any) -> None:
    try:
        _wrap.wrap(module, path, wrapper, owner=OWNER)
    except (ImportError, AttributeError):
        pass  # not in this version of the SDK


def instrument() -> None:
    """Patch the openai SDK (already imported)."""
    global _tracer, _before, _SYNC_STREAMS, _ASYNC_STREAMS, _RAW_RESPONSES
    _genai.refresh()
    _before = _core.OpenAiBefore(
        _genai.capture, _PROVIDERS, _CHAT_PARAMETERS, _RESPONSES_PARAMETERS, _EXTRA_BODY_PARAMETERS
    )
    _tracer = _genai.tracer(SCOPE)
    _SYNC_STREAMS = _classes("openai._streaming", "Stream")
    _ASYNC_STREAMS = _classes("openai._streaming", "AsyncStream")
    _RAW_RESPONSES = _classes("openai._legacy_response", "LegacyAPIResponse") + _classes(
        "openai._response", "APIResponse", "AsyncAPIResponse"
    )
    hooks = globals()
    # A chat completion, streamed or not, is read by the core (answer "openai_chat"; the core
    # makes a chat stream's proxy); raw responses and everything else go to _after.
    passed_on = _SYNC_STREAMS + _ASYNC_STREAMS + _RAW_RESPONSES
    streams = ((_SYNC_STREAMS, _stream.SyncStreamProxy), (_ASYNC_STREAMS, _stream.AsyncStreamProxy))
    for module, path, key, before, is_async in _RESOURCE_TARGETS:
        chat = before == "_before"  # chat completions: the core reads request and answer
        wrapper = _genai.hooks(
            key,
            hooks[before],
            hooks["_after"],
            hooks["_error"],
            OWNER,
            _tracer,
            "openai_chat" if chat else None,
            passed_on,
            is_async,
            streams if chat else (),
        )
        _try_wrap(module, path, wrapper)
    for module, path in _MANAGER_TARGETS:
        _try_wrap(module, path, _wrap_manager)


def uninstrument() -> None:
    """Put the SDK's originals back."""
    global _before
    _wrap.unwrap_all(OWNER)
    _before = None
