"""llmprobe's version: the one its Rust core was built as, which is the package's (pyproject.toml
and Cargo.toml carry the same version, and tests/unit/test_version.py keeps them equal). Read
from the core, start-up needs no importlib.metadata (some 20 ms of imports)."""

from __future__ import annotations


def version() -> str:
    try:
        from llmprobe import _core
    except ImportError:  # a broken install: the agent is off anyway (it says so)
        return "unknown"
    return _core.__version__
