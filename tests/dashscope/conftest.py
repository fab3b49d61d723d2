"""Fixtures of the dashscope instrumentation tests.

Every test runs a small application with the real ``dashscope`` package in its own process
(see tests/genai_fixtures.py), talking to the fake DashScope server of fake_dashscope.py over
loopback (DASHSCOPE_HTTP_BASE_URL). Assertions are made on the spans that arrived.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dashscope_secret import SECRET
from genai_fixtures import app_runner

HERE = Path(__file__).resolve().parent

# Put at the top of every app: the folder of these tests (for fake_dashscope's constants).
PRELUDE = f"import sys\nsys.path.insert(0, {str(HERE)!r})\n"


@pytest.fixture
def dashscope_app(run, write_script, receiver, fake_dashscope):
    """dashscope_app(source, spans=N or predicate, env={...}, instrument=True, check=True) -> App
    (see genai_fixtures.app_runner), with the fake server's URL and the test key (SECRET)."""
    env = {"DASHSCOPE_HTTP_BASE_URL": fake_dashscope.base_url, "DASHSCOPE_API_KEY": SECRET}
    return app_runner(run, write_script, receiver, fake_dashscope, PRELUDE, env)
