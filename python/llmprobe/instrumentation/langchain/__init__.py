"""LangChain and LangGraph (langchain-core 0.3 and 1.x): chains, graphs, agents, chat models,
LLMs, tools, retrievers, embeddings and rerankers as spans.

One handler (_handler.Handler) is added to every callback manager LangChain configures, the way
LangChain adds its own tracers (``register_configure_hook``): user code changes nothing, and the
callbacks a user passes still run. Runs become spans parented by LangChain's own run ids (see
_runs); embeddings and document compressors, which LangChain calls without callbacks, are
wrapped (_models). A LangChain model run and the SDK request it makes are one model call: one
LLM span (see _handler).
"""

from __future__ import annotations

import contextvars

from llmprobe.instrumentation import _genai
from llmprobe.instrumentation.langchain import _async, _config_context, _models, _read, _runs, _steps

SCOPE = "llmprobe.instrumentation.langchain"

# The ContextVar LangChain's configure hook reads: its default is the handler, so every callback
# manager, in every context, gets it (set by instrument()).
_handler_var: contextvars.ContextVar | None = None


def instrument() -> None:
    """Add llmprobe's handler to LangChain (langchain_core is imported)."""
    global _handler_var
    from langchain_core.tracers.context import register_configure_hook

    from llmprobe.instrumentation.langchain._handler import Handler

    _genai.refresh()
    _read.bind()
    _runs.configure(_genai.tracer(SCOPE))
    if _handler_var is None:
        # The one handler, shared on purpose by every context (it keeps no per-context state).
        _handler_var = contextvars.ContextVar("llmprobe_langchain_handler", default=Handler())  # noqa: B039
        register_configure_hook(_handler_var, True)
    _async.instrument()
    _config_context.instrument()
    _steps.instrument()
    _models.instrument()


def uninstrument() -> None:
    """Take llmprobe's handler out of LangChain and put the wrapped methods back."""
    global _handler_var
    from langchain_core.tracers.context import _configure_hooks

    if _handler_var is not None:
        _configure_hooks[:] = [hook for hook in _configure_hooks if hook[0] is not _handler_var]
        _handler_var = None
    _models.uninstrument()  # also puts back what _async, _config_context and _steps wrapped (the same owner)
    _runs.clear()
