"""Async callback managers: where an async run's context is set and given back.

The handler makes a run's span current where the run starts, and gives its caller the context
back where it ends (see _runs). Under async callback managers, LangChain runs the end callbacks
of a run in a task of their own (shielded from cancellation), in a copy of the caller's context,
from which the caller's context cannot be set; and langchain-core 0.3 also runs a model's start
callbacks in tasks of their own. So the async run managers are wrapped: after a start, the run's
context is made current in the caller's own context (where it is not already), and before an end,
the caller's context is given back there, before LangChain hands the end to the handlers. Where a
model's token callbacks are shielded too (langchain-core 0.3), a stream's first token gives the
caller its context back there as well (see the handler's on_llm_new_token).
"""

from __future__ import annotations

from llmprobe import _log
from llmprobe.instrumentation import _wrap
from llmprobe.instrumentation.langchain import _runs

OWNER = "langchain"
_MODULE = "langchain_core.callbacks.manager"
_STARTS = (
    "AsyncCallbackManager.on_chain_start",
    "AsyncCallbackManager.on_chat_model_start",
    "AsyncCallbackManager.on_llm_start",
    "AsyncCallbackManager.on_tool_start",
    "AsyncCallbackManager.on_retriever_start",
)
_ENDS = (
    "AsyncCallbackManagerForChainRun.on_chain_end",
    "AsyncCallbackManagerForChainRun.on_chain_error",
    "AsyncCallbackManagerForLLMRun.on_llm_end",
    "AsyncCallbackManagerForLLMRun.on_llm_error",
    "AsyncCallbackManagerForToolRun.on_tool_end",
    "AsyncCallbackManagerForToolRun.on_tool_error",
    "AsyncCallbackManagerForRetrieverRun.on_retriever_end",
    "AsyncCallbackManagerForRetrieverRun.on_retriever_error",
)


async def _started(wrapped, instance, args, kwargs):
    managers = await wrapped(*args, **kwargs)
    try:
        _runs.enter_started(managers if isinstance(managers, list) else (managers,))
    except Exception as exc:  # noqa: BLE001
        _log.log_once("langchain async start", exc)
    return managers


async def _ending(wrapped, instance, args, kwargs):
    try:
        _runs.leave_run(instance.run_id)
    except Exception as exc:  # noqa: BLE001
        _log.log_once("langchain async end", exc)
    return await wrapped(*args, **kwargs)


async def _token(wrapped, instance, args, kwargs):
    try:
        run = _runs.get(instance.run_id)
        if run is not None and run.token is not None:
            _runs.leave_here(run)
    except Exception as exc:  # noqa: BLE001
        _log.log_once("langchain async token", exc)
    return await wrapped(*args, **kwargs)


def instrument() -> None:
    for path in _STARTS:
        _wrap.wrap(_MODULE, path, _started, owner=OWNER)
    for path in _ENDS:
        _wrap.wrap(_MODULE, path, _ending, owner=OWNER)
    from langchain_core.callbacks.manager import AsyncCallbackManagerForLLMRun

    # Only where LangChain runs the token callbacks in tasks of their own (functools.wraps of its
    # `shielded` marks them): elsewhere the handler gives the context back itself, at no cost here.
    if hasattr(vars(AsyncCallbackManagerForLLMRun).get("on_llm_new_token"), "__wrapped__"):
        _wrap.wrap(_MODULE, "AsyncCallbackManagerForLLMRun.on_llm_new_token", _token, owner=OWNER)
