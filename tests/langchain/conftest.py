"""Fixtures of the LangChain instrumentation tests.

Every test runs a small LangChain or LangGraph application with the real langchain-core (and
langchain, langchain-classic, langgraph, langchain-openai where the test needs them) in its own
process under ``instrument``, with LangChain's own fake models or ChatOpenAI talking to the fake
OpenAI server of tests/openai over loopback. Assertions are made on the spans (and metrics) as
they arrived at the OTLP receiver.

The same suite runs against any installed langchain-core 0.3 or 1.x: a test that needs a
package or feature the installed versions lack skips, naming it.
"""

from __future__ import annotations

import pytest
from genai_fixtures import app_runner, skip_folder_without, versions_header
from langchain_support import HERE, PRELUDE, SECRET, SOURCE_TREE_ENV, VERSIONS


@pytest.fixture
def langchain_app(run, write_script, receiver, fake_openai):
    """langchain_app(source, spans=N or predicate, env={...}, ...) -> App (see
    genai_fixtures.app_runner), with OPENAI_BASE_URL pointing at the fake OpenAI server."""
    env = {"OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": SECRET, **SOURCE_TREE_ENV}
    return app_runner(run, write_script, receiver, fake_openai, PRELUDE, env)


@pytest.fixture
def langchain_dashscope_app(run, write_script, receiver, fake_dashscope):
    """langchain_app() with DashScope's base URL pointing at the fake DashScope server."""
    env = {"DASHSCOPE_HTTP_BASE_URL": fake_dashscope.base_url, "DASHSCOPE_API_KEY": SECRET, **SOURCE_TREE_ENV}
    return app_runner(run, write_script, receiver, fake_dashscope, PRELUDE, env)


def pytest_collection_modifyitems(config, items) -> None:
    skip_folder_without(items, HERE, VERSIONS, "langchain-core")


def pytest_report_header(config) -> str:
    return versions_header("langchain", VERSIONS)
