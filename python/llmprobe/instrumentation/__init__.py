"""The registry of llmprobe's own instrumentations, and when each is applied.

Each instrumentation has a name (what OTEL_PYTHON_DISABLED_INSTRUMENTATIONS and
LLMPROBE_DISABLED_INSTRUMENTATIONS switch off), the modules whose first import triggers it (the
first of them imported applies it, once), and the module that implements it. arm() registers an import hook per enabled instrumentation, so
nothing is imported at start-up and import order does not matter: the library is patched right
after it is imported, or at once if it already was.

Contract for an implementation module ``llmprobe.instrumentation.<name>``:

- ``instrument() -> None``: patch the library (already imported when this is called). Patch
  only public or long-stable entry points, through ``_wrap.wrap`` so that the originals are kept.
- ``uninstrument() -> None``: put every original back (``_wrap.unwrap_all`` of what it wrapped).
- Importing the implementation module must not import anything heavy beyond the library itself.
- Hooks (the code that reads arguments and results and fills spans) run guarded, as
  ``_wrap.hooks`` does: a failing hook is logged once and skipped; the user's call runs exactly
  once and returns or raises exactly what it would have without llmprobe.
- A missing implementation module (a library whose instrumentation is not written yet) is
  skipped silently; any other error while applying it is logged once.
"""

from __future__ import annotations

import importlib

from llmprobe import _import_hook, _log

# Imported for type checkers only: importing typing would cost every start-up milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


class Instrumentation:
    """One instrumentation: the name users disable it by, the modules whose first import applies
    it, and the module that implements it. (A plain class: a NamedTuple would import typing at
    every start-up.)"""

    __slots__ = ("module", "name", "triggers")

    def __init__(self, name: str, triggers: tuple[str, ...], module: str) -> None:
        self.name = name
        self.triggers = triggers
        self.module = module


REGISTRY: dict[str, Instrumentation] = {
    i.name: i
    for i in (
        Instrumentation("openai", ("openai",), "llmprobe.instrumentation.openai"),
        Instrumentation("dashscope", ("dashscope",), "llmprobe.instrumentation.dashscope"),
        Instrumentation("langchain", ("langchain_core",), "llmprobe.instrumentation.langchain"),
        Instrumentation("llama_index", ("llama_index.core",), "llmprobe.instrumentation.llama_index"),
        # graphon: Dify 1.13 and later's engine and model runtime; core.workflow.graph_engine and
        # core.model_runtime: the engine and the model runtime inside Dify 1.9 to 1.12's api/
        # (the instrumentation waits for each part's own module).
        Instrumentation(
            "dify",
            ("graphon", "core.workflow.graph_engine", "core.model_runtime.model_providers"),
            "llmprobe.instrumentation.dify",
        ),
    )
}

# Other spellings users write for the same instrumentation.
_ALIASES = {"llamaindex": "llama_index", "langchain_core": "langchain", "llama_index_core": "llama_index"}
_PREFIXES = ("opentelemetry_instrumentation_", "llmprobe_instrumentation_")

_applied: set[str] = set()


def canonical_name(name: str) -> str:
    """`name` as registered: case-insensitive, '-' and '_' alike, the package prefixes
    ``opentelemetry-instrumentation-`` / ``llmprobe-instrumentation-`` dropped."""
    key = name.strip().lower().replace("-", "_").replace(".", "_")
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    return _ALIASES.get(key, key)


def is_disabled(name: str, disabled: Iterable[str]) -> bool:
    """True when `name` appears in `disabled` in any accepted spelling, or `disabled` holds "*"."""
    wanted = canonical_name(name)
    for item in disabled:
        if item.strip() == "*" or canonical_name(item) == wanted:
            return True
    return False


def is_implemented(name: str) -> bool:
    """True when llmprobe has an implementation for the registered instrumentation `name`."""
    entry = REGISTRY.get(canonical_name(name))
    if entry is None:
        return False
    import importlib.util  # here, not at start-up: it imports contextlib, warnings, ...

    try:
        return importlib.util.find_spec(entry.module) is not None
    except (ImportError, ValueError):
        return False


def arm(disabled: Iterable[str] = ()) -> None:
    """Apply every enabled instrumentation when its library is imported (now, if it already was)."""
    disabled = list(disabled)
    for entry in REGISTRY.values():
        if not is_disabled(entry.name, disabled):
            for trigger in entry.triggers:
                _import_hook.when_imported(trigger, _applier(entry))


def _applier(entry: Instrumentation):
    def apply(_module: object) -> None:
        if entry.name in _applied:
            return
        try:
            impl = importlib.import_module(entry.module)
        except ImportError as exc:
            if exc.name == entry.module:  # not written yet: nothing to apply
                return
            raise
        impl.instrument()
        _applied.add(entry.name)

    apply.__qualname__ = f"instrument[{entry.name}]"
    return apply


def uninstrument_all() -> None:
    """Undo every applied instrumentation (tests, and users who want llmprobe out of the way)."""
    for name in sorted(_applied):
        try:
            importlib.import_module(REGISTRY[name].module).uninstrument()
        except Exception as exc:  # noqa: BLE001
            _log.log_once(f"uninstrument[{name}]", exc)
        _applied.discard(name)
