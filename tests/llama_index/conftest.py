"""Fixtures of the LlamaIndex instrumentation tests.

Every test runs a small LlamaIndex application with the real llama-index-core (and
llama-index-llms-openai, llama-index-llms-dashscope, llama-index-embeddings-dashscope where the
test needs them) in its own process under ``instrument``, with LlamaIndex's own mock models or
its OpenAI and DashScope classes talking to the fake servers of tests/openai and tests/dashscope
over loopback. Assertions are made on the spans (and metrics) as they arrived at the OTLP
receiver.

The same suite runs against any installed llama-index-core from 0.10.20 to 0.14: a test that
needs a feature the installed version lacks skips, naming it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "openai"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "dashscope"))

from fake_dashscope import FakeDashScope
from fake_openai import FakeOpenAI
from genai_fixtures import app_runner, serve
from llama_index_support import HERE, PRELUDE, SECRET, SOURCE_TREE_ENV, VERSIONS


@pytest.fixture(scope="session")
def fake_openai() -> FakeOpenAI:
    yield from serve(FakeOpenAI())


@pytest.fixture
def llama_app(run, write_script, receiver, fake_openai):
    """llama_app(source, spans=N or predicate, env={...}, ...) -> App (see
    genai_fixtures.app_runner), with OPENAI_BASE_URL pointing at the fake OpenAI server."""
    env = {"OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": SECRET, **SOURCE_TREE_ENV}
    return app_runner(run, write_script, receiver, fake_openai, PRELUDE, env)


@pytest.fixture(scope="session")
def fake_dashscope() -> FakeDashScope:
    yield from serve(FakeDashScope())


@pytest.fixture
def llama_dashscope_app(run, write_script, receiver, fake_dashscope):
    """llama_app() with DashScope's base URL pointing at the fake DashScope server."""
    env = {"DASHSCOPE_HTTP_BASE_URL": fake_dashscope.base_url, "DASHSCOPE_API_KEY": SECRET, **SOURCE_TREE_ENV}
    return app_runner(run, write_script, receiver, fake_dashscope, PRELUDE, env)


def pytest_collection_modifyitems(config, items) -> None:
    if VERSIONS.get("llama-index-core") is None:
        skip = pytest.mark.skip(reason="llama-index-core is not installed (pip install llama-index-core)")
        for item in items:
            if Path(str(item.fspath)).resolve().parent == HERE:
                item.add_marker(skip)


def pytest_report_header(config) -> str:
    installed = ", ".join(f"{name} {version}" for name, version in VERSIONS.items() if version)
    return f"llama_index: {installed or 'not installed'}"
