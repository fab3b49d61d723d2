"""What the fault-injection tests of every instrumentation share: a function that raises in place
of llmprobe's own, counting how often it was hit (see tests/openai/openai_faults.py,
tests/langchain/langchain_faults.py)."""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable, Collection

calls = {"count": 0}


class InjectedFault(RuntimeError):
    pass


def boom(*args, **kwargs):
    calls["count"] += 1
    raise InjectedFault("injected fault")


def replace_functions(
    module_name: str,
    names: Collection[str] | None = None,
    plumbing: Collection[str] = (),
    methods_of: Callable[[str], bool] = lambda class_name: False,
) -> None:
    """Make the functions of `module_name` (only `names`, or all but `plumbing`) raise; with
    all of them, also the methods of the module's classes that `methods_of(class name)` picks."""
    module = importlib.import_module(module_name)
    for name, value in list(vars(module).items()):
        if names is not None and name not in names:
            continue
        if names is None and name in plumbing:
            continue
        if isinstance(value, types.FunctionType) and value.__module__ == module_name:
            setattr(module, name, boom)
        elif (
            names is None and isinstance(value, type) and value.__module__ == module_name and methods_of(name)
        ):
            for attribute, method in list(vars(value).items()):
                if isinstance(method, types.FunctionType) and not attribute.startswith("__"):
                    setattr(value, attribute, boom)
