"""LlamaIndex (llama-index-core 0.10.41 to 0.14): query and chat engines, synthesizers,
retrievers, rerankers, LLMs, embeddings, tools, agents and workflows as spans.

Every LlamaIndex component reports to the root dispatcher of its instrumentation module: a span
for each call of an instrumented method, with LlamaIndex's own span and parent ids, and events
(an LLM call's messages and answer, a stream's chunks, a rerank's model). llmprobe adds one span
handler and one event handler there (_installed); the spans become runs (_spans), model calls are
one LLM span each (_models), and a streamed answer ends the runs that returned it (_streams).
"""

from __future__ import annotations

from llmprobe import _log
from llmprobe.instrumentation import _genai
from llmprobe.instrumentation.llama_index import _spans

SCOPE = "llmprobe.instrumentation.llama_index"
# The first llama-index-core whose dispatcher gives handlers each span's instance and parent (a
# ContextVar, right across asyncio tasks), stamps events with their span and keeps a failing
# handler out of the application. Before it (0.10.20.post1 to 0.10.40) a failed call never
# reports its end and the parents are one per handler, not per task: llmprobe stays out.
OLDEST = (0, 10, 41)

_installed: tuple = ()


def instrument() -> None:
    """Add llmprobe's handlers to LlamaIndex's root dispatcher (llama_index.core is imported)."""
    global _installed
    from llama_index.core.instrumentation import get_dispatcher

    from llmprobe.instrumentation.llama_index._handlers import EventHandler, SpanHandler

    if _release() < OLDEST:
        _log.warn(
            f"llama-index-core {_version()} is older than {'.'.join(map(str, OLDEST))}, "
            "whose dispatcher llmprobe needs: LlamaIndex is not traced"
        )
        return
    _genai.refresh()
    _spans.configure(_genai.tracer(SCOPE))
    if _installed:
        return
    root = get_dispatcher()
    span_handler, event_handler = SpanHandler(), EventHandler()
    root.add_span_handler(span_handler)
    root.add_event_handler(event_handler)
    _installed = (root, span_handler, event_handler)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("llama-index-core")
    except metadata.PackageNotFoundError:
        return "0"


def _release() -> tuple:
    parts = []
    for part in _version().split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit()) if part[:1].isdigit() else ""
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def uninstrument() -> None:
    """Take llmprobe's handlers out of LlamaIndex's root dispatcher."""
    global _installed
    if _installed:
        root, span_handler, event_handler = _installed
        root.span_handlers = [h for h in root.span_handlers if h is not span_handler]
        root.event_handlers = [h for h in root.event_handlers if h is not event_handler]
        _installed = ()
    _spans.clear()
