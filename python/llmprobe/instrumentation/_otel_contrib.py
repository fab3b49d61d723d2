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

import importlib
import os
import sys

from llmprobe import _detect, _import_hook, _log
from llmprobe.instrumentation import is_disabled, is_implemented

# Imported for type checkers only: importing typing would cost every start-up milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

GROUP = "opentelemetry_instrumentor"


class EntryPoint:
    """An ``opentelemetry_instrumentor`` entry point read from its distribution's
    entry_points.txt: what importlib.metadata's EntryPoint gives (name, value, module, load, dist),
    without importing importlib.metadata at start-up (some 20 ms of imports). The distribution is
    made from its metadata folder only when the instrumentor loads."""

    def __init__(self, name: str, value: str, folder: str) -> None:
        self.name = name
        self.value = value
        self.folder = folder
        module, _, attribute = value.partition(":")
        self.module = module.strip()
        # "module:Class.attr [extra]": the extras say which optional dependencies it needs
        self.attribute = attribute.split("[", 1)[0].strip()

    @property
    def dist(self) -> Any:
        from importlib.metadata import PathDistribution
        from pathlib import Path

        return PathDistribution(Path(self.folder))

    def load(self) -> Any:
        value: Any = importlib.import_module(self.module)
        for part in self.attribute.split(".") if self.attribute else ():
            value = getattr(value, part)
        return value


def _entry_points() -> list[EntryPoint]:
    """The installed distributions' instrumentors, in sys.path order, each once. Only
    distributions with "instrument" in their name are read (opentelemetry-instrumentation-*,
    openinference-instrumentation-*, ...): opening every distribution's entry_points.txt would
    cost milliseconds at every start."""
    unique: dict = {}
    for folder, name in _detect.metadata_folders():
        if "instrument" not in name:
            continue
        for entry_name, value in _group(folder, GROUP):
            # A distribution visible twice on sys.path lists its entry points twice.
            unique.setdefault((entry_name, value), EntryPoint(entry_name, value, folder))
    return list(unique.values())


def _group(folder: str, group: str) -> list[tuple[str, str]]:
    """(name, value) of the entry points of `group` in the entry_points.txt of a metadata folder
    (an INI file: ``[group]`` sections of ``name = value`` lines)."""
    try:
        with open(os.path.join(folder, "entry_points.txt"), encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):  # none (most distributions), or an egg zip
        return []
    found = []
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == group and "=" in line:
            name, _, value = line.partition("=")
            found.append((name.strip(), value.strip()))
    return found


def activate(get_tracer_provider: Callable[[], Any], disabled: Iterable[str] = ()) -> None:
    """Activate every enabled, dependency-satisfied instrumentor (now, or at its module's import)
    with the tracer provider `get_tracer_provider()` gives when it is activated."""
    disabled = list(disabled)
    for entry_point in _entry_points():
        name = entry_point.name
        try:
            if is_disabled(name, disabled) or is_implemented(name):
                continue
            loader = _loader(entry_point, get_tracer_provider)
            if _waits_for_import(name):
                _import_hook.when_imported(name, loader)
            else:
                loader(None)
        except Exception as exc:  # noqa: BLE001
            _log.log_once(f"opentelemetry instrumentation '{name}'", exc)


def _waits_for_import(name: str) -> bool:
    if not name.isidentifier() or name in sys.modules:
        return False
    import importlib.util  # only when an instrumentor is installed: not a start-up cost otherwise

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


def _loader(entry_point: Any, get_tracer_provider: Callable[[], Any]):
    def load(_module: object) -> None:
        if _import_hook.initializing(entry_point.module):
            _deferred.append(load)
            return
        try:
            _load()
        finally:
            while _deferred and not _import_hook.initializing(entry_point.module):
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
        tracer_provider = get_tracer_provider()
        try:
            instrumentor = entry_point.load()()
        except ImportError as exc:
            # The instrumented library is missing or cannot load here; as opentelemetry-instrument
            # does, this instrumentation is skipped without fuss.
            _log.get_logger().debug("opentelemetry instrumentation %s not loaded: %s", entry_point.name, exc)
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
