"""Activate the installed opentelemetry-instrumentation-* packages, as opentelemetry-instrument does.

Each ``opentelemetry_instrumentor`` entry point is checked against the disabled names and against
its declared dependencies (from its distribution's metadata, without importing it), then its
instrumentor is loaded and ``instrument(tracer_provider=<llmprobe's>)`` called. When the entry
point's name is a top-level module that is installed but not imported yet (flask, requests,
httpx, fastapi, ...), all of that waits for the module's first import, so start-up imports none
of them (nor ``packaging``, which the dependency check needs).

Only instrumentors are run: the ``opentelemetry_distro`` and ``opentelemetry_configurator``
entry points would install the OpenTelemetry SDK in place of llmprobe, and are left alone.
An entry point whose name llmprobe instruments itself (openai, langchain, ...) is skipped, so one
call never produces two spans.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from typing import Any

from llmprobe import _import_hook, _log
from llmprobe.instrumentation import is_disabled, is_implemented

GROUP = "opentelemetry_instrumentor"


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    found = entry_points()
    if hasattr(found, "select"):
        selected = found.select(group=GROUP)
    else:  # Python 3.9: a dict of group -> entry points
        selected = found.get(GROUP, ())
    # A distribution visible twice on sys.path lists its entry points twice.
    unique = {}
    for entry_point in selected:
        unique.setdefault((entry_point.name, entry_point.value), entry_point)
    return list(unique.values())


def activate(tracer_provider: Any, disabled: Iterable[str] = ()) -> None:
    """Activate every enabled, dependency-satisfied instrumentor (now, or at its module's import)."""
    disabled = list(disabled)
    for entry_point in _entry_points():
        name = entry_point.name
        try:
            if is_disabled(name, disabled) or is_implemented(name):
                continue
            loader = _loader(entry_point, tracer_provider)
            if _waits_for_import(name):
                _import_hook.when_imported(name, loader)
            else:
                loader(None)
        except Exception as exc:  # noqa: BLE001
            _log.log_once(f"opentelemetry instrumentation '{name}'", exc)


def _waits_for_import(name: str) -> bool:
    if not name.isidentifier() or name in sys.modules:
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _conflict(entry_point: Any) -> bool | None:
    """True when the instrumentor's distribution declares instrumented versions that are not
    installed, read from its metadata without importing anything; None when that cannot be
    told here (the instrumentor's own check then runs once it is loaded)."""
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return None
    try:
        from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts
    except ImportError:
        return None
    try:
        return get_dist_dependency_conflicts(dist) is not None
    except Exception:  # noqa: BLE001 - before 0.49b0 it took a pkg_resources distribution
        return None


# Loaders that waited for their instrumentor's module to finish importing: opentelemetry-
# instrumentation-httpx imports httpx2 (whose instrumentor it also holds) while it is itself being
# imported, for httpx's loader; httpx2's loader, triggered there, runs once that import is done.
_deferred: list = []


def _initializing(module_name: str) -> bool:
    module = sys.modules.get(module_name)
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def _loader(entry_point: Any, tracer_provider: Any):
    def load(_module: object) -> None:
        if _initializing(entry_point.module):
            _deferred.append(load)
            return
        try:
            _load()
        finally:
            while _deferred and not _initializing(entry_point.module):
                waiting = _deferred.pop(0)
                try:
                    waiting(None)
                except Exception as exc:  # noqa: BLE001
                    _log.log_once(waiting.__qualname__, exc)

    def _load() -> None:
        conflict = _conflict(entry_point)
        if conflict:
            return
        checked = conflict is False
        try:
            instrumentor = entry_point.load()()
        except ImportError as exc:
            # The instrumented library is missing or cannot load here; as opentelemetry-instrument
            # does, this instrumentation is skipped without fuss.
            _log.logger.debug("opentelemetry instrumentation %s not loaded: %s", entry_point.name, exc)
            return
        if getattr(instrumentor, "is_instrumented_by_opentelemetry", False):
            return  # the application instrumented it itself
        if checked:
            instrumentor.instrument(tracer_provider=tracer_provider, skip_dep_check=True)
            return
        check = getattr(instrumentor, "_check_dependency_conflicts", None)
        if check is not None and check() is not None:
            return
        instrumentor.instrument(tracer_provider=tracer_provider)

    load.__qualname__ = f"opentelemetry-instrumentation[{entry_point.name}]"
    return load
