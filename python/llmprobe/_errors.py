"""How llmprobe describes an exception on a span, as the OpenTelemetry conventions name it."""

from __future__ import annotations

import traceback


def qualified_name(cls: type) -> str:
    """``module.QualName`` of a class; builtins without the module (``ValueError``)."""
    qualname = getattr(cls, "__qualname__", None) or getattr(cls, "__name__", repr(cls))
    module = getattr(cls, "__module__", None)
    return f"{module}.{qualname}" if module and module != "builtins" else qualname


def message(exc: BaseException) -> str:
    # A broken __str__ must not turn recording an exception into a failure of its own.
    try:
        return str(exc)
    except Exception:  # noqa: BLE001
        return ""


def exception_attributes(exc: BaseException, escaped: bool = False) -> dict:
    """The attributes of the ``exception`` event, as the OpenTelemetry conventions name them."""
    return {
        "exception.type": qualified_name(type(exc)),
        "exception.message": message(exc),
        "exception.stacktrace": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        "exception.escaped": bool(escaped),
    }
