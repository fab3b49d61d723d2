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

import pytest
from genai_fixtures import app_runner, skip_folder_without, versions_header
from llama_index_support import HERE, PRELUDE, SECRET, SOURCE_TREE_ENV, VERSIONS


@pytest.fixture
def llama_app(run, write_script, receiver, fake_openai):
    """llama_app(source, spans=N or predicate, env={...}, ...) -> App (see
    genai_fixtures.app_runner), with OPENAI_BASE_URL pointing at the fake OpenAI server."""
    env = {"OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": SECRET, **SOURCE_TREE_ENV}
    return app_runner(run, write_script, receiver, fake_openai, PRELUDE, env)


@pytest.fixture
def llama_dashscope_app(run, write_script, receiver, fake_dashscope):
    """llama_app() with DashScope's base URL pointing at the fake DashScope server."""
    env = {"DASHSCOPE_HTTP_BASE_URL": fake_dashscope.base_url, "DASHSCOPE_API_KEY": SECRET, **SOURCE_TREE_ENV}
    return app_runner(run, write_script, receiver, fake_dashscope, PRELUDE, env)


def pytest_collection_modifyitems(config, items) -> None:
    skip_folder_without(items, HERE, VERSIONS, "llama-index-core")


def pytest_report_header(config) -> str:
    return versions_header("llama_index", VERSIONS)
