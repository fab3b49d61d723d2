"""A parallel iteration's steps, run in the context of the node that submits them (graphon 0.5 to
0.7): the iteration node submits each step to a thread pool, and a pool thread holds no context
of its own, so neither the step's engine (its layer finds its run there: _layer.inner_layer) nor
what the step's nodes call would find the iteration. Dify 1.9 to 1.12 submit their steps with a
copy of the context themselves, and graphon 0.8 runs steps as frames of its own engine: neither
needs this.

``IterationNode._submit_parallel_iteration_task(executor=..., ...)`` is wrapped to hand the node an
executor whose submit() runs each step in a copy of the submitting thread's context (one copy per
step: a context runs on one thread at a time).
"""

from __future__ import annotations

import contextvars
from typing import Any

MODULE = "graphon.nodes.iteration.iteration_node"
TARGET = "IterationNode._submit_parallel_iteration_task"


class ContextExecutor:
    """The iteration's executor, submitting each step in a copy of the submitter's context; every
    other attribute is the executor's own."""

    __slots__ = ("_executor",)

    def __init__(self, executor: Any) -> None:
        self._executor = executor

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return self._executor.submit(contextvars.copy_context().run, fn, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._executor, name)


def submit_wrapper(wrapped: Any, _instance: Any, args: tuple, kwargs: dict) -> Any:
    executor = kwargs.get("executor")
    if executor is not None and hasattr(executor, "submit"):
        kwargs = {**kwargs, "executor": ContextExecutor(executor)}
    return wrapped(*args, **kwargs)
