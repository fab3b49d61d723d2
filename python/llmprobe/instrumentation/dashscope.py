"""The dashscope SDK: one LLM or embedding span per model call, with its metrics.

Patched (class methods, so every import path of the class sees them):

- ``Generation.call`` and ``AioGeneration.call``: ``prompt=`` (text_completion) and
  ``messages=`` (chat), ``result_format`` text or message, streamed or not;
- ``MultiModalConversation.call`` (and its Aio twin): an LLM chat span, media as ``uri`` parts
  (``blob`` for a data URL);
- ``TextEmbedding.call``: an EMBEDDING span, the input texts as ``input.value``;
- ``MultiModalEmbedding.call`` (and its Aio twin): an EMBEDDING span, the input items (text,
  image, video, audio) as content parts in ``input.value``, media parts like the chat
  messages' (a data URL's content is cut to the content limit);
- ``TextReRank.call`` (and its Aio twin): a RERANKER span;
- ``Application.call``: an app run on the Bailian platform, a CHAIN span ``chain {app_id}``
  with the conversation's ``gen_ai.session.id``.

DashScope returns most API errors instead of raising them: a response whose ``status_code`` is
not 200 carries ``code`` and ``message``. Such a call is an ERROR span with ``error.type`` = the
code; the response reaches the caller as it came. A stream is handed back inside the shared
transparent proxy (``_stream``), which ends the span once; nothing is written into the SDK's
responses or chunks, and nothing is added to the request.

A streamed answer comes either as deltas (``incremental_output=True``) or as the full answer so
far in every chunk (the server's default, and what the SDK rebuilds when the caller asked for
``incremental_output=False``); the assembler below tells them apart so that text is never
counted twice.
"""

from __future__ import annotations

import inspect
import types
from sys import modules as _modules
from typing import Any
from urllib.parse import urlsplit

from llmprobe import _core
from llmprobe.instrumentation import _genai, _messages, _stream, _wrap
from llmprobe.instrumentation._messages import SEQUENCES, get

OWNER = "dashscope"
SCOPE = "llmprobe.instrumentation.dashscope"
PROVIDER = "dashscope"

_tracer: Any = None
_GENERATOR = types.GeneratorType
_ASYNC_GENERATOR = types.AsyncGeneratorType
_STREAMS = (_GENERATOR, _ASYNC_GENERATOR)
# The proxy a stream of each kind is handed back in.
_PROXIES = (((_GENERATOR,), _stream.SyncStreamProxy), ((_ASYNC_GENERATOR,), _stream.AsyncStreamProxy))
_NUMBERS = (int, float)

# (call argument, span attribute) of the numeric request parameters.
_PARAMETERS = (
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("top_k", "gen_ai.request.top_k"),
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("seed", "gen_ai.request.seed"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
    ("n", "gen_ai.request.choice.count"),
)

# (module, dotted attribute, kind, whether the method is a coroutine function) of what is
# patched; a row whose class the installed SDK lacks is skipped. dashscope 2.0.2 has no async
# TextEmbedding or Application.
_TARGETS = (
    ("dashscope.aigc.generation", "Generation.call", "generation", False),
    ("dashscope.aigc.generation", "AioGeneration.call", "generation", True),
    ("dashscope.embeddings.text_embedding", "TextEmbedding.call", "embedding", False),
    ("dashscope.embeddings.multimodal_embedding", "MultiModalEmbedding.call", "multimodal", False),
    ("dashscope.embeddings.multimodal_embedding", "AioMultiModalEmbedding.call", "multimodal", True),
    ("dashscope.aigc.multimodal_conversation", "MultiModalConversation.call", "generation", False),
    ("dashscope.aigc.multimodal_conversation", "AioMultiModalConversation.call", "generation", True),
    ("dashscope.rerank.text_rerank", "TextReRank.call", "rerank", False),
    ("dashscope.rerank.text_rerank", "AioTextReRank.call", "rerank", True),
    ("dashscope.app.application", "Application.call", "application", False),
)

# base URL -> (span attributes, metric attributes): parsed once per URL.
_servers: dict = {}


class _Request:
    """What the end of a call needs from its request."""

    __slots__ = ("capture", "dimension", "documents", "incremental", "kind", "session")

    def __init__(self, kind: str, capture: bool, incremental: Any = None) -> None:
        self.kind = kind  # "chat", "text_completion", "embeddings", "rerank", "chain"
        self.capture = capture
        self.incremental = incremental  # the caller's incremental_output (None: not given)
        self.dimension: int | None = None  # the embedding dimension the caller asked for
        self.documents: Any = None  # a rerank's input documents
        self.session: Any = None  # an application call's session id


def _positional_names(function: Any) -> tuple:
    """The names of a class method's parameters after ``cls``, in order (so that a model passed
    by position is read like one passed by keyword)."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return ("model",)
    return tuple(p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _arguments(names: tuple, args: tuple, kwargs: dict) -> dict:
    """The call's arguments by name (the caller skips this when all came by keyword)."""
    bound = dict(zip(names, args))
    bound.update(kwargs)
    return bound


def _server() -> tuple:
    # The module is looked up in sys.modules, not imported: an import statement per call costs
    # more than the lookup of the URL itself.
    dashscope = _modules.get("dashscope")
    url = getattr(dashscope, "base_http_api_url", None) or ""
    cached = _servers.get(url)
    if cached is not None:
        return cached
    span_attributes: dict = {"gen_ai.provider.name": PROVIDER}
    metric_attributes: dict = {"gen_ai.provider.name": PROVIDER}
    try:
        parts = urlsplit(url)
        if parts.hostname:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            span_attributes.update({"server.address": parts.hostname, "server.port": port})
            metric_attributes.update({"server.address": parts.hostname, "server.port": str(port)})
    except ValueError:
        pass
    if len(_servers) > 64:
        _servers.clear()
    _servers[url] = (span_attributes, metric_attributes)
    return span_attributes, metric_attributes


def _begin(model: Any, operation: str, span_kind: str, attributes: dict, request: _Request) -> tuple:
    """Add the server, provider and model: the span to start (_genai.request)."""
    server, server_metrics = _server()
    attributes.update(server)
    metric_attributes = dict(server_metrics)
    metric_attributes["gen_ai.operation.name"] = operation
    if not isinstance(model, str):
        model = None if model is None else str(model)
    if model is not None:
        attributes["gen_ai.request.model"] = model
        metric_attributes["gen_ai.request.model"] = model
    return _genai.request(operation, model, attributes, span_kind, metric_attributes, request)


# ---- Generation ------------------------------------------------------------------------------


def _parts(content: list) -> list:
    """DashScope's content parts, which carry no type: ``{"text"}``, ``{"image"}``, ``{"audio"}``,
    ``{"video"}`` (a URL or a local path: a ``uri`` part; a data URL: a ``blob``). A video given
    as a list of frames is one video part per frame."""
    parts = []
    for item in content:
        if isinstance(item, str):
            parts.append(_messages.text_part(item))
            continue
        text = get(item, "text")
        if isinstance(text, str):
            parts.append(_messages.text_part(text))
            continue
        for kind in ("image", "audio", "video"):
            url = get(item, kind)
            if url is None:
                continue
            for frame in url if isinstance(url, SEQUENCES) else (url,):
                parts.append(_core.media_part(kind, frame))
            break
        else:
            typed = _messages.content_parts([item])  # an OpenAI-style typed part
            parts.extend(typed)
    return parts


def _put_generation_input(attributes: dict, arguments: dict, capture: bool) -> str:
    """The input of a Generation (or Application) call into `attributes`, as the SDK builds its
    request: the messages (read by the core, DashScope's untyped content parts included), with
    the prompt appended as a user message when both are given. Returns the operation."""
    messages = arguments.get("messages")
    prompt = arguments.get("prompt")
    if messages is None:
        _genai.put_input(attributes, _messages.prompt_input(prompt), capture)
        return "text_completion"
    if isinstance(prompt, str) and prompt and isinstance(messages, SEQUENCES):
        messages = [*messages, {"role": "user", "content": prompt}]
    written = _core.chat_input(messages, capture, True)
    if written is not None:
        _genai.put_input_json(attributes, written[0], written[1], capture)
    return "chat"


def _before_generation(names: tuple):
    def before(instance: Any, args: tuple, kwargs: dict) -> tuple:
        arguments = _arguments(names, args, kwargs) if args else kwargs
        capture = _genai.capture
        stream = bool(arguments.get("stream"))
        attributes: dict = {"gen_ai.request.stream": stream}
        for name, key in _PARAMETERS:
            value = arguments.get(name)
            if value is not None and type(value) in _NUMBERS:
                attributes[key] = value
        stop = arguments.get("stop")
        if isinstance(stop, str):
            attributes["gen_ai.request.stop_sequences"] = [stop]
        elif isinstance(stop, SEQUENCES) and stop and all(isinstance(s, str) for s in stop):
            attributes["gen_ai.request.stop_sequences"] = list(stop)
        operation = _put_generation_input(attributes, arguments, capture)
        if capture:
            definitions = _core.tool_definitions(arguments.get("tools"))
            if definitions is not None:
                attributes["gen_ai.tool.definitions"] = definitions
        request = _Request(operation, capture, arguments.get("incremental_output"))
        return _begin(arguments.get("model"), operation, "LLM", attributes, request)

    return before


def _is_error(response: Any) -> bool:
    status = get(response, "status_code")
    return status is not None and status != 200


def _response_id(attributes: dict, response: Any) -> None:
    request_id = get(response, "request_id")
    if isinstance(request_id, str) and request_id:
        attributes["gen_ai.response.id"] = request_id


def _after(call: _genai.Call, result: Any) -> Any:
    """A stream the hook did not proxy itself (an application's; a generation's stream is
    proxied by the core): handed back in a proxy that ends the span. Anything else is an answer
    the core did not read itself (a generation's is read by the hook: answer "dashscope")."""
    if isinstance(result, _STREAMS):
        # The core reads each chunk as it passes (no chunk is kept for the end); the end adds the
        # application's session id (_end_stream).
        incremental = call.extra.incremental
        collector = _core.ChunkCollector("dashscope", incremental if type(incremental) is bool else None)
        state = _stream.StreamState("dashscope stream", _end_stream, call, collector)
        if isinstance(result, _GENERATOR):
            return _stream.wrap(_stream.SyncStreamProxy, result, state)
        return _stream.wrap(_stream.AsyncStreamProxy, result, state)
    _complete(call, result)
    return None


def _complete(call: _genai.Call, response: Any) -> None:
    input_tokens = output_tokens = None
    try:
        request: _Request = call.extra
        if request.kind == "chain":
            # Request id, usage and answer, read and written into the span by the core at once.
            failed, input_tokens, output_tokens = _core.dashscope_response(
                call.span, response, request.capture
            )
            if failed:
                _core.dashscope_failure(call, response)
            else:
                attributes: dict = {}
                _session(attributes, get(response, "output"), request)
                call.span.set_attributes(attributes)
            return
        attributes: dict = {}
        _response_id(attributes, response)
        if _is_error(response):
            _core.dashscope_failure(call, response)
        else:
            input_tokens, output_tokens = _core.usage(attributes, get(response, "usage"), True)
            output = get(response, "output")
            if request.kind == "embeddings":
                _embedding_output(attributes, output, request)
                if input_tokens is None and "gen_ai.usage.total_tokens" in attributes:
                    # TextEmbedding reports only total_tokens: every token of an embedding
                    # call is an input token.
                    input_tokens = attributes["gen_ai.usage.total_tokens"]
                    attributes["gen_ai.usage.input_tokens"] = input_tokens
            else:
                _rerank_output(attributes, output, request)
        call.span.set_attributes(attributes)
    finally:
        _genai.end(call, input_tokens, output_tokens)


def _error(call: _genai.Call, error: BaseException) -> None:
    try:
        _genai.fail(call, error)
    finally:
        _genai.end(call)


# ---- streams ---------------------------------------------------------------------------------


def _end_stream(state: _stream.StreamState, error: BaseException | None) -> None:
    """Fill and end the span of an application's stream from the chunks it gave."""
    _genai.end_stream(state, error, _assemble_stream)


def _assemble_stream(call: _genai.Call, attributes: dict, state: _stream.StreamState) -> tuple:
    """The answer, usage and errors of an application stream's chunks (each a whole response),
    which the core read as they passed (full-so-far or delta, see the module's docstring) and
    writes into the span, and the session id of its last chunk: the position of the first chunk
    with content, and the token counts."""
    request: _Request = call.extra
    collector = state.collector
    first, input_tokens, output_tokens, _, failed = collector.write_answer(call.span, request.capture)
    if failed is not None:
        _core.dashscope_failure(call, failed)
    last = collector.last
    if last is not None:
        _session(attributes, get(last, "output"), request)
    return first, input_tokens, output_tokens


# ---- embeddings ------------------------------------------------------------------------------


def _before_embedding(names: tuple):
    def before(instance: Any, args: tuple, kwargs: dict) -> tuple:
        arguments = _arguments(names, args, kwargs) if args else kwargs
        capture = _genai.capture
        attributes: dict = {}
        dimension = _asked_dimension(attributes, arguments)
        texts = arguments.get("input")
        if capture:
            if isinstance(texts, str):
                attributes["input.value"] = _genai.content_text(texts)
                attributes["input.mime_type"] = "text/plain"
            elif isinstance(texts, SEQUENCES) and texts and all(isinstance(t, str) for t in texts):
                attributes["input.value"] = _genai.content_json(list(texts))
                attributes["input.mime_type"] = "application/json"
        else:
            attributes["llmprobe.input.size"] = _messages.texts_characters(texts)
        request = _Request("embeddings", capture)
        request.dimension = dimension
        return _begin(arguments.get("model"), "embeddings", "EMBEDDING", attributes, request)

    return before


def _before_multimodal_embedding(names: tuple):
    def before(instance: Any, args: tuple, kwargs: dict) -> tuple:
        arguments = _arguments(names, args, kwargs) if args else kwargs
        capture = _genai.capture
        attributes: dict = {}
        dimension = _asked_dimension(attributes, arguments)
        items = arguments.get("input")
        # Read before the SDK runs: it replaces a local file's path by the URL it uploaded it to,
        # in the caller's own item.
        parts = _parts(items) if isinstance(items, SEQUENCES) else None
        if parts is not None:
            if capture:
                attributes["input.value"] = _genai.content_json(parts)
                attributes["input.mime_type"] = "application/json"
            else:
                attributes["llmprobe.input.size"] = _messages.characters([{"parts": parts}])
        request = _Request("embeddings", capture)
        request.dimension = dimension
        return _begin(arguments.get("model"), "embeddings", "EMBEDDING", attributes, request)

    return before


def _asked_dimension(attributes: dict, arguments: dict) -> int | None:
    """The embedding dimension the caller asked for (the span's, whatever the answer says)."""
    dimension = arguments.get("dimension")
    if type(dimension) is not int:
        return None
    attributes["gen_ai.embeddings.dimension.count"] = dimension
    return dimension


def _embedding_output(attributes: dict, output: Any, request: _Request) -> None:
    """The vectors' length, when the caller asked for no dimension."""
    if output is None or request.dimension is not None:
        return
    embeddings = get(output, "embeddings")
    if isinstance(embeddings, SEQUENCES) and embeddings:
        count = _genai.vector_length(get(embeddings[0], "embedding"))
        if count is not None:
            attributes["gen_ai.embeddings.dimension.count"] = count


# ---- rerank ----------------------------------------------------------------------------------


def _before_rerank(names: tuple):
    def before(instance: Any, args: tuple, kwargs: dict) -> tuple:
        arguments = _arguments(names, args, kwargs) if args else kwargs
        capture = _genai.capture
        model = arguments.get("model")
        attributes: dict = {}
        if isinstance(model, str):
            attributes["reranker.model_name"] = model
        top_n = arguments.get("top_n")
        if type(top_n) is int:
            attributes["reranker.top_k"] = top_n
        query = arguments.get("query")
        documents = arguments.get("documents")
        request = _Request("rerank", capture)
        if isinstance(documents, SEQUENCES):
            request.documents = documents
        if capture:
            if isinstance(query, str):
                attributes["reranker.query"] = _genai.content_text(query)
                attributes["input.value"] = attributes["reranker.query"]
                attributes["input.mime_type"] = "text/plain"
            if request.documents is not None:
                attributes["reranker.input_documents"] = _genai.content_json(
                    [{"document": {"id": str(i), "content": d}} for i, d in enumerate(request.documents)]
                )
        return _begin(model, "rerank", "RERANKER", attributes, request)

    return before


def _rerank_output(attributes: dict, output: Any, request: _Request) -> None:
    results = get(output, "results") if output is not None else None
    if not isinstance(results, SEQUENCES):
        return
    documents = request.documents
    ranked = []
    for result in results:
        index = get(result, "index")
        document: dict = {"id": str(index), "score": get(result, "relevance_score")}
        if request.capture:
            returned = get(result, "document")
            text = get(returned, "text") if returned is not None else None
            if not isinstance(text, str) and type(index) is int and documents is not None:
                text = documents[index] if 0 <= index < len(documents) else None
            if isinstance(text, str):
                document["content"] = text
        ranked.append({"document": document})
    attributes["reranker.output_documents"] = _genai.content_json(ranked)
    if request.capture:
        attributes["output.value"] = attributes["reranker.output_documents"]
        attributes["output.mime_type"] = "application/json"


# ---- application (an app on the Bailian platform) ---------------------------------------------


def _before_application(names: tuple):
    def before(instance: Any, args: tuple, kwargs: dict) -> tuple:
        arguments = _arguments(names, args, kwargs) if args else kwargs
        capture = _genai.capture
        attributes: dict = {"gen_ai.request.stream": bool(arguments.get("stream"))}
        app_id = arguments.get("app_id")
        if isinstance(app_id, str):
            attributes["gen_ai.agent.id"] = app_id
        _put_generation_input(attributes, arguments, capture)
        request = _Request("chain", capture, arguments.get("incremental_output"))
        session = arguments.get("session_id")
        if isinstance(session, str) and session:
            request.session = session
            attributes["gen_ai.session.id"] = session
        # The app id names the span; no model is known before the answer.
        server, server_metrics = _server()
        attributes.update(server)
        metric_attributes = dict(server_metrics)
        metric_attributes["gen_ai.operation.name"] = "chain"
        name = app_id if isinstance(app_id, str) else None
        return _genai.request("chain", name, attributes, "CHAIN", metric_attributes, request)

    return before


def _session(attributes: dict, output: Any, request: _Request) -> None:
    session = get(output, "session_id") if output is not None else None
    if isinstance(session, str) and session and session != request.session:
        attributes["gen_ai.session.id"] = session


# ---- applying --------------------------------------------------------------------------------


# kind (in _TARGETS) -> the factory of its before hook, given the method's parameter names.
_BEFORE = {
    "generation": _before_generation,
    "embedding": _before_embedding,
    "multimodal": _before_multimodal_embedding,
    "rerank": _before_rerank,
    "application": _before_application,
}


def instrument() -> None:
    global _tracer
    import importlib

    _genai.refresh()
    _tracer = _genai.tracer(SCOPE)
    for module_name, path, kind, is_async in _TARGETS:
        try:
            module = importlib.import_module(module_name)
            owner_name, _, method = path.partition(".")
            function = getattr(getattr(module, owner_name), method)
        except (ImportError, AttributeError):
            continue  # an SDK without this API
        names = _positional_names(function)
        before = _BEFORE[kind](names)
        # A generation's answer is read by the core, streamed (the core makes the proxy) or
        # not; an application's stream goes to _after for its proxy.
        generation = kind == "generation"
        wrapper = _genai.hooks(
            f"dashscope {path}",
            before,
            _after,
            _error,
            OWNER,
            _tracer,
            "dashscope" if generation else None,
            _STREAMS,
            is_async,
            _PROXIES if generation else (),
        )
        _wrap.wrap(module, path, wrapper, owner=OWNER)


def uninstrument() -> None:
    _wrap.unwrap_all(OWNER)
