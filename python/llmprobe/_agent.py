"""Start-up: configuration, resource, the Rust pipeline, the global tracer provider, the hooks.

start() is idempotent and never raises: each step is guarded on its own, so a failing step is
reported once on stderr and the application runs on (with less or no tracing).
"""

from __future__ import annotations

import _thread
import atexit
import os
import sys

# Imported for type checkers only: importing typing would cost every start-up milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from llmprobe import _log

# Re-entrant: code run during start-up (an instrumentation applied at once) may call init() again.
_lock = _thread.RLock()
_started = False
# The settings of the last start (from _core.configure); instrumentations read capture_content etc.
settings: dict[str, Any] = {}
# The resource attributes Python handed to the pipeline, and llmprobe's tracer provider (made
# when first needed) and whether it was installed as the API's global one.
resource: dict[str, Any] = {}
tracer_provider = None
_provider_installed = False


def start() -> None:
    """Start the agent once per process; later calls return at once."""
    global _started
    with _lock:
        if _started:
            return
        _started = True
        try:
            _start()
        except Exception as exc:  # noqa: BLE001 - belt and braces: _start guards each step already
            _log.log_once("llmprobe start-up", exc)


def _step(name: str, fn, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        _log.log_once(f"start-up step '{name}'", exc)
        return None


def _start() -> None:
    try:
        from llmprobe import _core
    except ImportError as exc:
        _log.warn(f"the Rust core llmprobe._core could not be loaded ({exc}); tracing is off")
        return

    configured = _step("configuration", _core.configure, dict(os.environ))
    if configured is None:
        return
    new_settings, warnings = configured
    settings.clear()
    settings.update(new_settings)
    for warning in warnings:
        _log.warn(warning)
    if settings.get("sdk_disabled"):
        return  # OTEL_SDK_DISABLED: a no-op agent, nothing patched, nothing installed

    resource.clear()
    resource.update(_step("resource", build_resource, settings) or {})
    try:
        _core.start(resource)
    except Exception as exc:  # noqa: BLE001
        _log.log_once("start of the span pipeline", exc)
        return  # without a pipeline, patching would only add cost
    _step("exit flush", atexit.register, _shutdown)
    if hasattr(os, "register_at_fork"):
        _step("fork handler", os.register_at_fork, after_in_child=_after_fork_in_child)
    _step("multiprocessing exit flush", _flush_multiprocessing_children)

    # The OpenTelemetry API (some 15 ms of imports) is not imported here: llmprobe's provider
    # becomes the global one as soon as the API's trace module is imported (by the application,
    # an instrumentation or llmprobe's own bridge), or now if it already was.
    # Propagation: the API's default when OTEL_PROPAGATORS is unset is already W3C tracecontext
    # + baggage, and a value the user set is theirs; so there is nothing to install here.
    _step("tracer provider", _install_when_imported)
    disabled = list(settings.get("disabled_instrumentations") or ())
    _step("llmprobe instrumentations", _arm_llmprobe, disabled)
    _step("opentelemetry instrumentations", _arm_contrib, disabled)


def build_resource(config: dict[str, Any]) -> dict[str, Any]:
    """What Python knows of the resource; Rust adds the process and host, then the env overrides."""
    from llmprobe import _detect, _version

    app_type = config.get("app_type") or _detect.app_type()
    return {
        "service.name": default_service_name(),
        "llmprobe.app.type": app_type,
        "telemetry.distro.name": "llmprobe",
        "telemetry.distro.version": _version.version(),
    }


def default_service_name(
    argv: list[str] | None = None,
    orig_argv: list[str] | None = None,
    main_module: str | None = None,
) -> str:
    """service.name when OTEL_SERVICE_NAME is not set: the script's stem (``python app.py`` → app),
    the module (``python -m pkg.mod`` → pkg.mod), the console script (``gunicorn …`` → gunicorn).

    Inside sitecustomize (the launcher's start-up) CPython 3.9–3.13 have already set sys.argv,
    but for ``-m`` it is ``['-m', ...]``: the module is then read from sys.orig_argv (3.10+) or
    /proc/self/cmdline (3.9 on Linux). After start-up (llmprobe.init() in the application),
    ``__main__.__spec__`` names the module.
    """
    if argv is None:
        argv = list(getattr(sys, "argv", None) or [])
    first = argv[0] if argv else ""
    if main_module is None:
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        main_module = getattr(spec, "name", None)
    if first == "-m":
        if orig_argv is None:
            orig_argv = getattr(sys, "orig_argv", None) or _proc_cmdline()
        module = _module_of(orig_argv[1:]) if orig_argv else None
        if module:
            return _strip_main(module)
    if main_module and main_module != "__main__":
        return _strip_main(main_module)
    if first and first not in ("-c", "-m", "-"):
        stem = os.path.splitext(os.path.basename(first.rstrip("/\\")))[0]
        if stem:
            return stem
    executable = os.path.basename(sys.executable or "") or "python"
    return f"unknown_service:{executable}"


def _strip_main(module: str) -> str:
    return module.removesuffix(".__main__")


def _module_of(interpreter_args: list[str]) -> str | None:
    """The module of ``-m`` among the interpreter's options, as CPython parses them."""
    i = 0
    while i < len(interpreter_args):
        arg = interpreter_args[i]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            return None  # a script (or stdin) comes first: not -m
        if arg.startswith("--"):
            i += 2 if arg == "--check-hash-based-pycs" else 1
            continue
        # a cluster of one-letter options: -Bm pkg, -mpkg, -X dev, -Wignore
        for j in range(1, len(arg)):
            letter = arg[j]
            if letter in "cmWX":
                value = arg[j + 1 :] or (interpreter_args[i + 1] if i + 1 < len(interpreter_args) else "")
                if letter == "m":
                    return value or None
                if letter == "c":
                    return None
                i += 0 if arg[j + 1 :] else 1
                break
        i += 1
    return None


def _proc_cmdline() -> list[str] | None:
    try:
        with open("/proc/self/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part] or None


def _install_when_imported() -> None:
    from llmprobe import _import_hook

    _import_hook.when_imported("opentelemetry.trace", _api_imported)
    _import_hook.when_imported("llmprobe._tracer", _bridge_imported)


def _api_imported(_module: object) -> None:
    from llmprobe import _import_hook

    # llmprobe's bridge imports the API first thing: its own hook installs the provider once
    # the bridge is complete.
    if not _import_hook.initializing("llmprobe._tracer"):
        _install_tracer_provider()


def _bridge_imported(_module: object) -> None:
    _install_tracer_provider()


def get_tracer_provider():
    """llmprobe's tracer provider (made on first use, which imports the OpenTelemetry API)."""
    global tracer_provider
    with _lock:
        if tracer_provider is None:
            from llmprobe import _tracer

            # Importing the bridge may have made it already (its import hook installs it).
            if tracer_provider is None:
                tracer_provider = _tracer.TracerProvider()
        return tracer_provider


def _install_tracer_provider() -> None:
    """Make llmprobe's provider the API's global one, once; a provider someone else installed
    first is left in place, with a warning."""
    global _provider_installed
    with _lock:
        if _provider_installed:
            return
        _provider_installed = True
    from opentelemetry import trace

    provider = get_tracer_provider()
    # Read without triggering the API's OTEL_PYTHON_TRACER_PROVIDER loading or its warning.
    existing = getattr(trace, "_TRACER_PROVIDER", None)
    if existing is not None and existing is not provider:
        _log.warn(
            f"an OpenTelemetry tracer provider ({type(existing).__module__}.{type(existing).__name__}) "
            "was installed before llmprobe started; spans of code using it do not go through llmprobe"
        )
    elif existing is None:
        trace.set_tracer_provider(provider)


def _arm_llmprobe(disabled: list[str]) -> None:
    from llmprobe import instrumentation

    instrumentation.arm(disabled)


def _arm_contrib(disabled: list[str]) -> None:
    from llmprobe.instrumentation import _otel_contrib

    _otel_contrib.activate(get_tracer_provider, disabled)


def _shutdown() -> None:
    try:
        from llmprobe import _core

        _core.shutdown()
    except Exception as exc:  # noqa: BLE001
        _log.log_once("flush at exit", exc)


def _flush_multiprocessing_children() -> None:
    from llmprobe import _import_hook

    _import_hook.when_imported("multiprocessing.util", _multiprocessing_imported)


class _ChildHook:
    """What multiprocessing's register_after_fork keys its callback by (a weak reference)."""


_CHILD_HOOK = _ChildHook()


def _multiprocessing_imported(util: Any) -> None:
    # A multiprocessing child started by fork or forkserver leaves through os._exit once
    # multiprocessing's own finalizers have run, never through atexit: its spans are flushed by a
    # finalizer of its own, registered in each child after multiprocessing has dropped the ones
    # it inherited (register_after_fork's callbacks run then).
    util.register_after_fork(_CHILD_HOOK, _in_multiprocessing_child)


def _in_multiprocessing_child(_hook: object) -> None:
    try:
        from multiprocessing import util

        # The last finalizer to run: after a pool's, whose work may still end spans.
        util.Finalize(None, _shutdown, exitpriority=-1000)
    except Exception as exc:  # noqa: BLE001
        _log.log_once("flush of a multiprocessing child", exc)


def _after_fork_in_child() -> None:
    try:
        from llmprobe import _core

        _core.after_fork_in_child()
    except Exception as exc:  # noqa: BLE001
        _log.log_once("restart after fork", exc)
