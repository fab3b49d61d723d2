"""Fixtures of the Dify engine tests: the workflows of graphon_workflows.py (graphon 0.5 to 0.8),
run in their own process under ``instrument``, with fake model, tool and retrieval runtimes
plugged in where graphon asks for them. graphon needs Python 3.12: in an environment without it the folder skips,
naming it."""

from __future__ import annotations

from pathlib import Path

from genai_fixtures import installed_versions, skip_folder_without, versions_header

HERE = Path(__file__).resolve().parent
VERSIONS = installed_versions(("graphon",))


def pytest_collection_modifyitems(config, items) -> None:
    skip_folder_without(items, HERE, VERSIONS, "graphon")


def pytest_report_header(config) -> str:
    return versions_header("dify", VERSIONS)
