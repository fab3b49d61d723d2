"""Fixtures for the unit tests of llmprobe's Python side."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

PYTHON_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "python"))

# Run from a source tree that is not installed yet: the package is importable all the same.
if importlib.util.find_spec("llmprobe") is None:
    sys.path.insert(0, PYTHON_DIR)

try:
    import llmprobe._core  # noqa: F401

    CORE_ERROR = None
except ImportError as exc:
    CORE_ERROR = f"llmprobe._core (the Rust extension) is not built yet: {exc}"


def llmprobe_python_path() -> str:
    """The folder that holds the llmprobe package this test run imports."""
    import llmprobe

    return os.path.dirname(os.path.dirname(os.path.abspath(llmprobe.__file__)))


def _child_env(**extra: str) -> dict:
    """An environment for a child Python that imports the same llmprobe and exports nowhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMPROBE_"))}
    env["PYTHONPATH"] = llmprobe_python_path()
    env["OTEL_TRACES_EXPORTER"] = "none"
    env["OTEL_METRICS_EXPORTER"] = "none"
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def child_env():
    """child_env(**extra) -> the environment for a child Python process (see _child_env)."""
    return _child_env


@pytest.fixture
def core():
    """Skips the test when the Rust core is not built; else the llmprobe._core module."""
    if CORE_ERROR is not None:
        pytest.skip(CORE_ERROR)
    import llmprobe._core

    return llmprobe._core


@pytest.fixture(autouse=True)
def _fresh_log():
    """Each test sees llmprobe's once-only warnings afresh."""
    from llmprobe import _log

    _log._reset_for_tests()
    yield
    _log._reset_for_tests()
