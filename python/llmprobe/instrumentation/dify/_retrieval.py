"""A chat or completion app's knowledge retrieval (Dify's api/): a RETRIEVER span under the app's
span, current while Dify retrieves (so the embedding and rerank calls nest under it).

Dify's chat and completion runners retrieve through ``DatasetRetrieval.retrieve(app_id, user_id,
tenant_id, model_config, config, query, ...)``, which returns the context it found as one string.
The documents themselves (segment id, content, score, dataset and document names) reach the app
only as the one retriever-resources event retrieve() publishes to the run's queue while it runs
(when the app shows its sources): the queue's hook (_apps.publish_replacement) hands that event to
documents(), on the retrieving thread, where this retrieval's span is current. (A workflow's
knowledge-retrieval node is the node's RETRIEVER span, _layer's.)
"""

from __future__ import annotations

import contextvars
from typing import Any

from opentelemetry import context as _context
from opentelemetry import trace

from llmprobe import _core
from llmprobe.instrumentation import _genai

MODULE = "core.rag.retrieval.dataset_retrieval"
TARGET = "DatasetRetrieval.retrieve"
# The retrieval in progress on this thread (for documents()).
_CURRENT: contextvars.ContextVar[Any] = contextvars.ContextVar("llmprobe-dify-retrieval", default=None)


def _begin(tracer: Any, args: tuple, kwargs: dict) -> tuple:
    config = kwargs.get("config", args[4] if len(args) > 4 else None)
    query = kwargs.get("query", args[5] if len(args) > 5 else None)
    attributes = {
        "gen_ai.span.kind": "RETRIEVER",
        "gen_ai.operation.name": "retrieval",
        "gen_ai.framework": "dify",
    }
    dataset_ids = getattr(config, "dataset_ids", None)
    if dataset_ids:
        attributes["dify.dataset.ids"] = [str(dataset_id) for dataset_id in dataset_ids]
    if _genai.capture and isinstance(query, str) and query:
        attributes["gen_ai.retrieval.query.text"] = attributes["input.value"] = _genai.content_text(query)
        attributes["input.mime_type"] = "text/plain"
    # Named after the knowledge bases once their documents say which (documents()).
    span = tracer.start_span("retrieval knowledge", attributes=attributes)
    return span, _context.attach(trace.set_span_in_context(span)), _CURRENT.set(span)


def _end(state: tuple, result: Any) -> None:
    span, token, current = state
    _CURRENT.reset(current)
    _context.detach(token)
    found = result[0] if isinstance(result, tuple) and result else None
    if _genai.capture and isinstance(found, str) and found:
        span.set_attribute("output.value", _genai.content_text(found))
        span.set_attribute("output.mime_type", "text/plain")
    span.end()


def _fail(state: tuple, error: BaseException) -> None:
    span = state[0]
    if isinstance(error, Exception):
        span.record_failure(error, True, True)
    _end(state, None)


def documents(event: Any) -> None:
    """The retriever-resources event of the retrieval running on this thread: its documents, in
    rank order, and the names of the knowledge bases they come from."""
    span = _CURRENT.get()
    resources = getattr(event, "retriever_resources", None)
    if span is None or not resources:
        return
    names = sorted({r.dataset_name for r in resources if isinstance(getattr(r, "dataset_name", None), str)})
    if names:
        span.update_name("retrieval " + ", ".join(names))
    if not _genai.capture:
        span.set_attribute("llmprobe.retrieval.document_count", len(resources))
        return
    found = []
    for resource in resources:
        metadata = {
            key: value
            for key in ("dataset_id", "dataset_name", "document_id", "document_name", "position")
            if (value := getattr(resource, key, None)) is not None
        }
        document = {
            "id": getattr(resource, "segment_id", None) or getattr(resource, "document_id", None),
            "content": getattr(resource, "content", None),
            "score": getattr(resource, "score", None),
            "metadata": metadata,
        }
        found.append({"document": document})
    span.set_attribute("retrieval.documents", _core.to_json(found))
