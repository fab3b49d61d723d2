"""The two handlers llmprobe adds to LlamaIndex's root dispatcher.

The span handler takes the dispatcher's calls directly (``span_enter``, ``span_exit``,
``span_drop``) rather than through the base class's ``new_span`` / ``prepare_to_*`` and its table
of open spans behind a lock: the runs are kept in llmprobe's own table (see _spans). The event
handler looks each event's class up once and ignores those it has no use for.

Every method is guarded: the dispatcher would swallow a failure anyway, but a failure of
llmprobe's is logged once and never changes what LlamaIndex does.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler

from llmprobe import _log
from llmprobe.instrumentation.llama_index import _models, _read, _spans


class SpanHandler(BaseSpanHandler):
    """LlamaIndex's spans as llmprobe's runs."""

    @classmethod
    def class_name(cls) -> str:
        return "LlmprobeSpanHandler"

    # The dispatcher passes `id_`, `bound_args`, `instance`, `parent_id` (and, later, `tags`) by
    # keyword; whatever comes is taken, so that a dispatcher that changes its calls never meets a
    # TypeError here.

    def span_enter(self, *args: Any, **kwargs: Any) -> None:
        try:
            id_ = kwargs["id_"] if "id_" in kwargs else kwargs.get("id", args[0] if args else None)
            _spans.enter(id_, kwargs.get("bound_args"), kwargs.get("instance"), kwargs.get("parent_id"))
        except Exception as exc:  # noqa: BLE001
            _log.log_once("llama_index span_enter", exc)

    def span_exit(self, *args: Any, **kwargs: Any) -> None:
        try:
            id_ = kwargs["id_"] if "id_" in kwargs else kwargs.get("id", args[0] if args else None)
            _spans.exit(id_, kwargs["result"] if "result" in kwargs else (args[1] if len(args) > 1 else None))
        except Exception as exc:  # noqa: BLE001
            _log.log_once("llama_index span_exit", exc)

    def span_drop(self, *args: Any, **kwargs: Any) -> None:
        try:
            id_ = kwargs["id_"] if "id_" in kwargs else kwargs.get("id", args[0] if args else None)
            _spans.drop(id_, kwargs["err"] if "err" in kwargs else (args[1] if len(args) > 1 else None))
        except Exception as exc:  # noqa: BLE001
            _log.log_once("llama_index span_drop", exc)

    # The base class's abstract steps, unused: the three methods above replace them.
    def new_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
        return None


# ---- events ----------------------------------------------------------------------------------


def _chat_start(run: Any, event: Any) -> None:
    _models.started(run, "chat", _read.messages(getattr(event, "messages", None)), event)


def _completion_start(run: Any, event: Any) -> None:
    _models.started(run, "text_completion", _read.prompt_messages(getattr(event, "prompt", None)), event)


def _progress(run: Any, event: Any) -> None:
    _models.progressed(run, _spans.TABLE)


def _chat_end(run: Any, event: Any) -> None:
    _models.answered(run, _spans.TABLE, "chat", getattr(event, "response", None))


def _completion_end(run: Any, event: Any) -> None:
    _models.answered(run, _spans.TABLE, "text_completion", getattr(event, "response", None))


def _exception(run: Any, event: Any) -> None:
    _models.failed(run, _spans.TABLE, getattr(event, "exception", None))


def _predict_start(run: Any, event: Any) -> None:
    _models.predicted(run, event)


def _rerank_start(run: Any, event: Any) -> None:
    model = getattr(event, "model_name", None)
    if isinstance(model, str) and model and model != run.name:
        run.span.update_name("rerank " + model)
        run.span.set_attribute("reranker.model_name", model)
    top = getattr(event, "top_n", None)
    if type(top) is int:
        run.span.set_attribute("reranker.top_k", top)


# Event class name -> (the kind of run it belongs to, what to do with it).
_BY_NAME = {
    "LLMChatStartEvent": ("LLM", _chat_start),
    "LLMCompletionStartEvent": ("LLM", _completion_start),
    "LLMChatInProgressEvent": ("LLM", _progress),
    "LLMCompletionInProgressEvent": ("LLM", _progress),
    "LLMChatEndEvent": ("LLM", _chat_end),
    "LLMCompletionEndEvent": ("LLM", _completion_end),
    "LLMPredictStartEvent": ("LLM", _predict_start),
    "ExceptionEvent": ("LLM", _exception),
    "ReRankStartEvent": ("RERANKER", _rerank_start),
}
_by_type: dict = {}


def _handling(cls: type) -> Any:
    found = _BY_NAME.get(cls.__name__)
    _by_type[cls] = found
    return found


class EventHandler(BaseEventHandler):
    """The events that complete a run: an LLM call's messages, chunks and answer, a rerank's
    model."""

    @classmethod
    def class_name(cls) -> str:
        return "LlmprobeEventHandler"

    def handle(self, event: Any, *args: Any, **kwargs: Any) -> None:
        try:
            cls = type(event)
            how = _by_type[cls] if cls in _by_type else _handling(cls)
            if how is None:
                return
            span_id = getattr(event, "span_id", None)
            run = _spans.TABLE.get(_spans.resolve(span_id)) if span_id is not None else None
            if run is not None and run.kind == how[0]:
                how[1](run, event)
        except Exception as exc:  # noqa: BLE001
            _log.log_once("llama_index event", exc)
