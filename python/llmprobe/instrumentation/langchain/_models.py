"""Embeddings and document compressors: LangChain calls them without callbacks, so their
methods are wrapped, on every class that defines them (the classes defined before instrument()
and, through ``__init_subclass__``, every class defined after).

- ``Embeddings.embed_documents`` / ``embed_query`` (and their async twins where a class defines
  them): EMBEDDING ``embeddings {model}``: the model, the number of texts, the vectors'
  dimension, never the vectors; the texts as ``input.value`` when content is captured. A call
  made inside another of the same kind (an ``embed_query`` that calls ``embed_documents``) is
  not traced again.
- ``BaseDocumentCompressor.compress_documents`` / ``acompress_documents`` (rerankers, filters,
  extractors): RERANKER ``rerank {model}`` with the query and the documents in and out.

As for chat models, the call is one model operation: when an SDK llmprobe instruments makes the
request under it (OpenAIEmbeddings through openai), the SDK's span is the EMBEDDING (or
RERANKER) span and this one becomes its parent, a CHAIN (see _core.ModelStep).
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import Any

from opentelemetry import context as _context

from llmprobe import _core, _log
from llmprobe.instrumentation import _genai, _wrap
from llmprobe.instrumentation import _runs as _contexts
from llmprobe.instrumentation._messages import SEQUENCES
from llmprobe.instrumentation.langchain import _read, _runs

OWNER = "langchain"
_SYNC = ("embed_documents", "embed_query")
_ASYNC = ("aembed_documents", "aembed_query")
_COMPRESS_SYNC = ("compress_documents",)
_COMPRESS_ASYNC = ("acompress_documents",)
# The kind of operation running in the context (an inner call of the same kind is not traced).
_OPERATION_KEY = _context.create_key("llmprobe-langchain-operation")
_MODEL_STEP_KEY = _genai.MODEL_STEP_KEY
_SPAN_KEY = _contexts._SPAN_KEY
_CLIENT = _core.KIND_CLIENT
_INTERNAL = _core.KIND_INTERNAL

# (base class, sync method names, async method names, wrapper, async wrapper)
_patched_bases: list = []


def _model_of(instance: Any) -> str | None:
    for attribute in ("model", "model_name", "deployment", "model_id"):
        value = getattr(instance, attribute, None)
        if isinstance(value, str) and value:
            return value
    return None


def _provider_of(instance: Any) -> str | None:
    """The provider of an integration package (``langchain_openai`` -> openai)."""
    package = type(instance).__module__.split(".", 1)[0]
    if package.startswith("langchain_") and package not in (
        "langchain_core",
        "langchain_community",
        "langchain_classic",
    ):
        return _read.provider(package[len("langchain_") :])
    return None


class _Operation:
    """One embeddings or rerank call in flight."""

    __slots__ = ("context", "kind", "metric_attributes", "span", "started", "step", "token")


def _begin(kind: str, instance: Any, args: tuple, kwargs: dict) -> _Operation | None:
    current = _contexts.current()
    if current.get(_OPERATION_KEY) == kind:
        return None  # inside another call of the same kind: it is the operation
    op = _Operation()
    op.kind = kind
    model = _model_of(instance)
    name = type(instance).__name__
    attributes: dict = {"gen_ai.framework": "langchain"}
    op.metric_attributes = {}
    if kind == "embeddings":
        attributes["gen_ai.operation.name"] = "embeddings"
        texts = args[0] if args else kwargs.get("texts", kwargs.get("text"))
        if isinstance(texts, str):
            attributes["llmprobe.embeddings.count"] = 1
        elif isinstance(texts, SEQUENCES):
            attributes["llmprobe.embeddings.count"] = len(texts)
        if _genai.capture and texts is not None:
            attributes["input.value"] = (
                _genai.content_json(texts) if not isinstance(texts, str) else _genai.content_text(texts)
            )
            attributes["input.mime_type"] = "text/plain" if isinstance(texts, str) else "application/json"
        span_name = f"embeddings {model or name}"
    else:
        attributes["gen_ai.operation.name"] = "rerank"
        documents = args[0] if args else kwargs.get("documents")
        query = args[1] if len(args) > 1 else kwargs.get("query")
        attributes["reranker.model_name"] = model or name
        top = getattr(instance, "top_n", None)
        if type(top) is int:
            attributes["reranker.top_k"] = top
        if _genai.capture:
            if isinstance(query, str):
                attributes["reranker.query"] = attributes["input.value"] = _genai.content_text(query)
                attributes["input.mime_type"] = "text/plain"
            attributes["reranker.input_documents"] = _core.langchain_documents(documents)
        span_name = f"rerank {model or name}"
    if model is not None:
        attributes["gen_ai.request.model"] = op.metric_attributes["gen_ai.request.model"] = model
    provider = _provider_of(instance)
    if provider is not None:
        attributes["gen_ai.provider.name"] = op.metric_attributes["gen_ai.provider.name"] = provider
    op.metric_attributes["gen_ai.operation.name"] = attributes["gen_ai.operation.name"]
    op.span = _runs.TABLE.span(span_name, attributes, _INTERNAL, current)
    op.step = _runs.TABLE.model_step(current)
    op.context, op.token = _contexts.enter(
        current, {_SPAN_KEY: op.span, _MODEL_STEP_KEY: op.step, _OPERATION_KEY: kind}
    )
    op.started = perf_counter_ns()
    return op


def _finish(op: _Operation, instance: Any, result: Any, error: BaseException | None) -> None:
    _contexts.leave(op.context, op.token)
    span = op.span
    attributes: dict = {}
    if op.kind == "rerank" and error is None and _genai.capture:
        attributes["reranker.output_documents"] = _core.langchain_documents(result)
    if op.step.calls:
        # The SDK's span is the operation; this one is the step around it.
        span.update_name("chain " + type(instance).__name__)
        attributes["gen_ai.span.kind"] = "CHAIN"
        attributes["gen_ai.operation.name"] = "chain"
        if isinstance(error, Exception):
            span.record_failure(error, True, True)
        span.set_attributes(attributes)
        span.end()
        return
    span._set_kind(_CLIENT)
    attributes["gen_ai.span.kind"] = "EMBEDDING" if op.kind == "embeddings" else "RERANKER"
    if op.kind == "embeddings" and error is None:
        vector = result[0] if result and isinstance(result[0], SEQUENCES) else result
        if isinstance(vector, SEQUENCES):
            attributes["gen_ai.embeddings.dimension.count"] = len(vector)
    span.set_attributes(attributes)
    call = _core.Call(span, op.metric_attributes, None, op.started)
    if error is not None:
        _genai.fail(call, error)
    _genai.end(call)


def _sync_wrapper(kind: str):
    def wrapper(wrapped, instance, args, kwargs):
        try:
            op = _begin(kind, instance, args, kwargs)
        except Exception as exc:  # noqa: BLE001
            _log.log_once(f"langchain {kind}", exc)
            op = None
        if op is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            _wrap.guarded(f"langchain {kind}", _finish, op, instance, None, exc)
            raise
        _wrap.guarded(f"langchain {kind}", _finish, op, instance, result, None)
        return result

    return wrapper


def _async_wrapper(kind: str):
    async def wrapper(wrapped, instance, args, kwargs):
        try:
            op = _begin(kind, instance, args, kwargs)
        except Exception as exc:  # noqa: BLE001
            _log.log_once(f"langchain {kind}", exc)
            op = None
        if op is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _wrap.guarded(f"langchain {kind}", _finish, op, instance, None, exc)
            raise
        _wrap.guarded(f"langchain {kind}", _finish, op, instance, result, None)
        return result

    return wrapper


def _patch_class(cls: type, sync: tuple, asynchronous: tuple, wrapper: Any, async_wrapper: Any) -> None:
    """Wrap the methods `cls` itself defines (concretely: an abstract one is the base's)."""
    own = vars(cls)
    for names, hook in ((sync, wrapper), (asynchronous, async_wrapper)):
        for name in names:
            method = own.get(name)
            if method is not None and callable(method) and not getattr(method, "__isabstractmethod__", False):
                try:
                    _wrap.wrap(cls, name, hook, owner=OWNER)
                except Exception as exc:  # noqa: BLE001
                    _log.log_once(f"langchain wrap {cls.__name__}.{name}", exc)


def _subclasses(base: type) -> list:
    found, todo = [], [base]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.append(sub)
                todo.append(sub)
    return found


def _patch_hierarchy(base: type, sync: tuple, asynchronous: tuple, kind: str) -> None:
    wrapper, async_wrapper = _sync_wrapper(kind), _async_wrapper(kind)
    for cls in [base, *_subclasses(base)]:
        _patch_class(cls, sync, asynchronous, wrapper, async_wrapper)
    had_own = "__init_subclass__" in vars(base)
    original = vars(base).get("__init_subclass__")

    def init_subclass(cls, **kw):
        if original is not None:
            original.__func__(cls, **kw)
        else:
            super(base, cls).__init_subclass__(**kw)
        try:
            _patch_class(cls, sync, asynchronous, wrapper, async_wrapper)
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain subclass", exc)

    base.__init_subclass__ = classmethod(init_subclass)
    _patched_bases.append((base, had_own, original))


def instrument() -> None:
    from langchain_core.documents import BaseDocumentCompressor
    from langchain_core.embeddings import Embeddings

    _patch_hierarchy(Embeddings, _SYNC, _ASYNC, "embeddings")
    _patch_hierarchy(BaseDocumentCompressor, _COMPRESS_SYNC, _COMPRESS_ASYNC, "rerank")


def uninstrument() -> None:
    _wrap.unwrap_all(OWNER)
    while _patched_bases:
        base, had_own, original = _patched_bases.pop()
        if had_own:
            base.__init_subclass__ = original
        else:
            del base.__init_subclass__
