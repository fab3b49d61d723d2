"""Fixtures of the openai instrumentation tests.

Every test runs a small application with the real ``openai`` package in its own process (see
tests/genai_fixtures.py), talking to the fake OpenAI-compatible server of fake_openai.py over
loopback. Assertions are made on the spans as they arrived at the OTLP receiver.

The same suite runs against any installed openai 1.x to 3.x: tests that need a newer SDK
feature skip, naming it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from genai_fixtures import app_runner
from openai_support import HERE, OPENAI_VERSION, PRELUDE, SECRET, SOURCE_TREE_ENV


@pytest.fixture
def openai_app(run, write_script, receiver, fake_openai):
    """openai_app(source, spans=N or predicate, env={...}, instrument=True, check=True,
    name="app.py", timeout=120) -> App (see genai_fixtures.app_runner), with OPENAI_BASE_URL
    pointing at the fake server and OPENAI_API_KEY=SECRET."""
    env = {"OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": SECRET, **SOURCE_TREE_ENV}
    return app_runner(run, write_script, receiver, fake_openai, PRELUDE, env)


def pytest_collection_modifyitems(config, items) -> None:
    if OPENAI_VERSION is None:
        skip = pytest.mark.skip(reason="the openai package is not installed (pip install openai)")
        for item in items:
            if Path(str(item.fspath)).resolve().parent == HERE:
                item.add_marker(skip)


def pytest_report_header(config) -> str:
    if OPENAI_VERSION is None:
        return "openai: not installed"
    return f"openai {OPENAI_VERSION} ({os.path.dirname(__import__('openai').__file__)})"
