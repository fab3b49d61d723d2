"""The one way llmprobe speaks to the user: short lines on stderr, each said once.

Everything goes through the logger "llmprobe", which has its own stderr handler and does not
propagate, so an application's logging configuration neither silences these lines nor prints
them twice. Tracebacks of failing hooks are logged at DEBUG; to see them:
``logging.getLogger("llmprobe").setLevel(logging.DEBUG)``.
"""

from __future__ import annotations

import _thread
import sys

# Imported for type checkers only: importing typing would cost every start-up milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_lock = _thread.allocate_lock()
_said: set[str] = set()
# The "llmprobe" logger, made at the first line said: most processes never say one, and
# importing logging would cost every start a few milliseconds.
_logger: Any = None


def _make_logger() -> Any:
    import logging

    class _StderrHandler(logging.StreamHandler):
        """Writes to whatever sys.stderr is at the time of the record (as logging.lastResort
        does), so a stderr replaced later (pytest's capture, a daemon's redirection) is honoured."""

        def __init__(self) -> None:
            logging.Handler.__init__(self)

        @property
        def stream(self):  # type: ignore[override]
            return sys.stderr

    class _Formatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            text = f"llmprobe: {record.levelname.lower()}: {record.getMessage()}"
            if record.exc_info:
                text += "\n" + self.formatException(record.exc_info)
            return text

    log = logging.getLogger("llmprobe")
    if not any(type(h).__name__ == "_StderrHandler" for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_Formatter())
        log.addHandler(handler)
    log.propagate = False
    if log.level == logging.NOTSET:
        log.setLevel(logging.WARNING)
    return log


def get_logger() -> Any:
    """The "llmprobe" logger (made, with its stderr handler, on first use)."""
    global _logger
    if _logger is None:
        with _lock:
            if _logger is None:
                _logger = _make_logger()
    return _logger


def _first_time(key: str) -> bool:
    with _lock:
        if key in _said:
            return False
        _said.add(key)
        return True


def warn(msg: str) -> None:
    """Write ``llmprobe: warning: <msg>`` to stderr, once per distinct message."""
    if _first_time(msg):
        get_logger().warning(msg)


def info(msg: str) -> None:
    """Write `msg` at INFO (shown once the "llmprobe" logger's level is INFO), once per distinct
    message."""
    if _first_time(msg):
        get_logger().info(msg)


def log_once(key: str, exc: BaseException) -> None:
    """Report a failing llmprobe hook named `key`: one warning line the first time, with the
    traceback at DEBUG; later failures of the same hook stay silent."""
    if _first_time("hook:" + key):
        logger = get_logger()
        logger.warning(
            "%s failed (%s: %s); skipped, the application continues (further failures of it are not shown)",
            key,
            type(exc).__name__,
            _safe_str(exc),
        )
        logger.debug("traceback of the failure in %s", key, exc_info=(type(exc), exc, exc.__traceback__))


def _safe_str(exc: BaseException) -> str:
    # A broken __str__ on an exception must not turn a logged failure into a logging error.
    try:
        return str(exc)
    except Exception:  # noqa: BLE001
        return "<unprintable>"


def _reset_for_tests() -> None:
    with _lock:
        _said.clear()
