"""What the LangChain tests share (a module of its own: `conftest` is a name every test folder
has): the installed versions, the prelude of every app, and lookups over the trees of spans."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from genai_fixtures import source_tree_env

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


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


VERSIONS = {name: _version(name) for name in _PACKAGES}


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


# ---- trees of spans ----------------------------------------------------------------------------

Span = dict[str, Any]


def attrs(span: Span) -> dict[str, Any]:
    return span["attributes"]


def kind(span: Span) -> str | None:
    return span["attributes"].get("gen_ai.span.kind")


def content(span: Span, key: str) -> Any:
    value = attrs(span).get(key)
    assert isinstance(value, str), f"{key} missing on {span['name']}: {value!r}"
    return json.loads(value)


class Tree:
    """The spans of a run as a tree: parents by id, children in start order."""

    def __init__(self, spans: list[Span]) -> None:
        self.spans = sorted(spans, key=lambda s: (s["start_time"], s["end_time"]))
        self.by_id = {s["span_id"]: s for s in self.spans}

    def named(self, name: str) -> list[Span]:
        return [s for s in self.spans if s["name"] == name]

    def one(self, name: str) -> Span:
        found = self.named(name)
        assert len(found) == 1, f"expected one {name!r}, found {len(found)} in\n{self.render()}"
        return found[0]

    def llm(self) -> list[Span]:
        return [s for s in self.spans if kind(s) == "LLM"]

    def parent(self, span: Span) -> Span | None:
        return self.by_id.get(span["parent_span_id"])

    def children(self, span: Span) -> list[Span]:
        return [s for s in self.spans if s["parent_span_id"] == span["span_id"] and s["trace_id"] == span["trace_id"]]

    def roots(self) -> list[Span]:
        return [s for s in self.spans if s["parent_span_id"] not in self.by_id]

    def path(self, span: Span) -> list[str]:
        """The names from the root down to `span`."""
        names = [span["name"]]
        parent = self.parent(span)
        while parent is not None:
            names.append(parent["name"])
            parent = self.parent(parent)
        return names[::-1]

    def shape(self, span: Span) -> tuple:
        """(name, (children's shapes...)), children in start order."""
        return (span["name"], tuple(self.shape(c) for c in self.children(span)))

    def render(self, spans: list[Span] | None = None, depth: int = 0) -> str:
        lines = []
        for span in spans if spans is not None else self.roots():
            lines.append(f"{'  ' * depth}{span['name']} [{kind(span) or span['kind']}]")
            lines.append(self.render(self.children(span), depth + 1))
        return "\n".join(line for line in lines if line)

    def assert_under(self, child: Span, parent: Span) -> None:
        assert child["trace_id"] == parent["trace_id"] and child["parent_span_id"] == parent["span_id"], (
            f"{child['name']} is not under {parent['name']}:\n{self.render()}"
        )
