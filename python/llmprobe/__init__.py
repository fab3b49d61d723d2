"""llmprobe: auto-instrumentation for Python LLM applications, with a Rust span pipeline.

Run an application under ``instrument`` (``instrument python app.py``), or call
``llmprobe.init()`` from its code. Importing this package starts nothing and imports nothing heavy.
"""

from __future__ import annotations

# Imported for type checkers only: importing typing would cost every start-up milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["__version__", "init"]


def init() -> None:
    """Start the agent from code, as ``instrument`` does at start-up. Calling it again is harmless."""
    from llmprobe import _agent

    _agent.start()


def __getattr__(name: str) -> Any:
    # __version__ reads the package metadata, which costs an import; only pay it when asked.
    if name == "__version__":
        from llmprobe._version import version

        return version()
    raise AttributeError(f"module 'llmprobe' has no attribute {name!r}")
