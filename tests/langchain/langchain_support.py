"""What the LangChain tests share (a module of its own: `conftest` is a name every test folder
has): the installed versions, the prelude of every app, and lookups over the trees of spans."""

from __future__ import annotations

from pathlib import Path

import pytest
from genai_fixtures import installed_versions, source_tree_env
from span_query import Tree, attrs, content, kind  # noqa: F401  (the LangChain tests' names)

HERE = Path(__file__).resolve().parent
SCOPE = "llmprobe.instrumentation.langchain"
SECRET = "sk-llmprobe-test-SECRET-7f3a9c0d"

# Put at the top of every app: these tests' folder, the openai tests' (the fake server's module)
# and the tests' own (shared helpers) on sys.path.
PRELUDE = (
    f"import sys\nsys.path[:0] = [{str(HERE)!r}, {str(HERE.parent / 'openai')!r}, {str(HERE.parent)!r}]\n"
)

_PACKAGES = (
    "langchain-core",
    "langchain",
    "langchain-classic",
    "langchain-openai",
    "langchain-community",
    "langgraph",
    "dashscope",
)


VERSIONS = installed_versions(_PACKAGES)


def _major(name: str) -> int:
    version = VERSIONS.get(name)
    return int(version.split(".")[0]) if version else 0


def needs(package: str, major: int | None = None) -> pytest.MarkDecorator:
    """Skip unless `package` is installed (at `major` or above)."""
    version = VERSIONS.get(package)
    if version is None:
        return pytest.mark.skipif(True, reason=f"{package} is not installed")
    return pytest.mark.skipif(
        major is not None and _major(package) < major, reason=f"needs {package} {major}.x, found {version}"
    )


SOURCE_TREE_ENV = source_tree_env()
