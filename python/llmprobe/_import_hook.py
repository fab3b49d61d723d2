"""Run code right after a module is first imported: the trigger of every instrumentation.

A finder at the front of sys.meta_path answers only for the modules someone waits for. It asks
the finders behind it for the real spec and swaps the spec's loader for a thin stand-in whose
exec_module puts the real loader back (on the spec and on the module, before the module's code
runs, so nothing can observe the stand-in afterwards), runs the real exec_module, then the
callbacks. Loaders with only the legacy load_module get the same treatment through load_module.
A namespace package has no loader to stand in for (importlib makes one while creating the
module), so its spec is returned untouched and its callbacks run at the next import of anything
after it is in sys.modules, which for ``import ns.sub`` is before ns.sub runs.
"""

from __future__ import annotations

import _thread
import sys

# Imported for type checkers only: importing typing would cost every start-up milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    Callback = Callable[[object], None]

from llmprobe import _log

_lock = _thread.RLock()
_waiting: dict[str, list[Callback]] = {}
_namespaces: set[str] = set()  # waited-for namespace packages being imported
_finder = None


def when_imported(module_name: str, callback: Callback) -> None:
    """Call callback(module) right after `module_name` is first imported, or now if it already was.

    A failing callback is logged once and skipped; the import itself always succeeds as it would have.
    """
    with _lock:
        module = sys.modules.get(module_name)
        if module is None:
            _waiting.setdefault(module_name, []).append(callback)
            _install()
            return
    _run(module_name, module, [callback])


def initializing(module_name: str) -> bool:
    """True while `module_name` is being imported (its code still running, its import hooks
    included)."""
    module = sys.modules.get(module_name)
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def _install() -> None:
    global _finder
    if _finder is None:
        _finder = _Finder()
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def _run(name: str, module: object, callbacks: list[Callback]) -> None:
    for callback in callbacks:
        try:
            callback(module)
        except Exception as exc:  # noqa: BLE001
            label = getattr(callback, "__qualname__", None) or repr(callback)
            _log.log_once(f"import hook {label} for module {name}", exc)


def _imported(name: str, module: object) -> None:
    with _lock:
        callbacks = _waiting.pop(name, None)
    if callbacks:
        # The module may have replaced itself in sys.modules while executing.
        _run(name, sys.modules.get(name, module), callbacks)


class _Finder:
    """A meta path finder that never finds anything itself; it only instruments what others find."""

    def find_spec(self, fullname, path=None, target=None):
        if _namespaces:
            _namespaces_imported()
        if fullname not in _waiting:  # the common case: one dict lookup per import
            return None
        spec = None
        try:
            finders = sys.meta_path[sys.meta_path.index(self) + 1 :]
        except ValueError:
            return None
        for finder in finders:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None:
            return None
        if spec.loader is None:
            if spec.submodule_search_locations is not None:
                _namespaces.add(fullname)
            return spec
        loader = spec.loader
        if hasattr(loader, "exec_module"):
            spec.loader = _ExecModuleLoader(loader, spec)
        elif hasattr(loader, "load_module"):
            spec.loader = _LoadModuleLoader(loader, spec)
        return spec

    def invalidate_caches(self) -> None:
        pass


def _namespaces_imported() -> None:
    for name in list(_namespaces):
        module = sys.modules.get(name)
        if module is not None:
            _namespaces.discard(name)
            _imported(name, module)


class _LoaderStandIn:
    """Forwards everything (create_module, get_resource_reader, ...) to the real loader."""

    def __init__(self, loader, spec) -> None:
        self._llmprobe_loader = loader
        self._llmprobe_spec = spec

    def __getattr__(self, name):
        return getattr(self._llmprobe_loader, name)

    def _restore(self, module=None) -> None:
        real = self._llmprobe_loader
        self._llmprobe_spec.loader = real
        if module is not None and getattr(module, "__loader__", None) is self:
            try:
                module.__loader__ = real
            except AttributeError:
                pass


class _ExecModuleLoader(_LoaderStandIn):
    def exec_module(self, module) -> None:
        self._restore(module)
        self._llmprobe_loader.exec_module(module)
        _imported(self._llmprobe_spec.name, module)


class _LoadModuleLoader(_LoaderStandIn):
    def load_module(self, fullname):
        self._restore()
        module = self._llmprobe_loader.load_module(fullname)
        _imported(fullname, module)
        return module


def _reset_for_tests() -> None:
    """Forget every waiting callback and take the finder off sys.meta_path."""
    global _finder
    with _lock:
        _waiting.clear()
        _namespaces.clear()
        if _finder is not None:
            while _finder in sys.meta_path:
                sys.meta_path.remove(_finder)
        _finder = None
