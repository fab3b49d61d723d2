"""Fixtures of the tests that run inside Dify's own api/ (a Dify source tree, which no package
registry has): they run when LLMPROBE_DIFY_API_SRC names its api/ folder and the Python running
pytest has Dify's dependencies installed, and skip, naming that, otherwise. The app tests
(test_dify_apps.py) also need Postgres' server programs and redis-server (dify_services.py), and
skip naming whichever is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DIFY_API = os.environ.get("LLMPROBE_DIFY_API_SRC", "")
MISSING = (
    None
    if DIFY_API and (Path(DIFY_API) / "core" / "workflow").is_dir()
    else (
        "needs a Dify source tree: set LLMPROBE_DIFY_API_SRC to its api/ folder, in a Python with Dify's dependencies"
    )
)


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if MISSING and Path(str(item.fspath)).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.skip(reason=MISSING))


def pytest_report_header(config) -> str:
    return f"dify api: {DIFY_API or 'not given (LLMPROBE_DIFY_API_SRC)'}"
