"""Where LangChain runs a run's own code: the private context of ``set_config_context``.

LangChain (and LangGraph) run a runnable's code (a chain step, a lambda, a tool, a graph node, a
stream's steps) in a copy of the caller's context that ``set_config_context(child_config)``
makes, ``child_config``'s callbacks naming the run as their parent. The handler makes a run's
span current where the run starts, so that this copy has it; once the copy exists, the caller's
own context needs it no more. For a run started inside a generator (``chain.stream()``,
``graph.astream()``), the caller's context is the consumer's, which would otherwise see the
run's span as its current span between chunks (a web server's "http send" spans under the
chain). So ``set_config_context`` is wrapped: when it has made the copy, the run's span is made
current in the copy and the caller's context is given back at once.

Runs whose code LangChain runs without such a copy (a model's request, a retriever, a legacy
``Chain._call``) keep their span current in the caller's context until they end; a model run
gives it back at its first streamed token (see the handler).
"""

from __future__ import annotations

from typing import Any

from llmprobe import _import_hook, _log
from llmprobe.instrumentation import _wrap
from llmprobe.instrumentation.langchain import _runs

OWNER = "langchain"
# The modules that call set_config_context by a name of their own (langchain-core 1.x and
# later 0.3, LangGraph 1.x).
_MODULES = (
    "langchain_core.runnables.config",
    "langchain_core.runnables.base",
    "langchain_core.runnables.fallbacks",
    "langchain_core.tools.base",
    "langgraph._internal._runnable",
)


class _Scoped(tuple):
    """(set_config_context's context manager, its config): the manager, which also moves the run's
    span into the copy when it is entered. (A tuple: made without a Python frame.)"""

    __slots__ = ()

    def __enter__(self) -> Any:
        manager, config = self
        context = manager.__enter__()
        try:
            _runs.enter_copy(context, config)
        except Exception as exc:  # noqa: BLE001
            _log.log_once("langchain set_config_context", exc)
        return context

    def __exit__(self, *exc_info: object) -> Any:
        return self[0].__exit__(*exc_info)


def _replacement(original: Any) -> Any:
    # A plain function, not a wrapt wrapper: LangChain calls it for every step of every chain.
    def set_config_context(config: Any, *args: Any, **kwargs: Any) -> _Scoped:
        return _Scoped((original(config, *args, **kwargs), config))

    set_config_context.__llmprobe__ = True
    return set_config_context


def _patch(module: Any) -> None:
    current = getattr(module, "set_config_context", None)
    if current is None or getattr(current, "__llmprobe__", False):
        return  # not in this version, or the name of a module already patched
    _wrap.replace(module, "set_config_context", _replacement, owner=OWNER)


def instrument() -> None:
    for name in _MODULES:
        _import_hook.when_imported(name, _patch)
