"""What the LlamaIndex tests share (a module of its own: `conftest` is a name every test folder
has): the installed versions, the prelude of every app, and skips naming what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from genai_fixtures import installed_versions, source_tree_env

HERE = Path(__file__).resolve().parent
SCOPE = "llmprobe.instrumentation.llama_index"
SECRET = "sk-llmprobe-test-SECRET-5b2e81aa"

# Put at the top of every app: these tests' folder, the fake servers' folders and the tests' own
# (shared helpers) on sys.path; and mock models LlamaIndex ships, set as its defaults.
PRELUDE = (
    f"import sys\nsys.path[:0] = [{str(HERE)!r}, {str(HERE.parent / 'openai')!r}, {str(HERE.parent)!r}]\n"
)

# A small in-memory index over documents the app writes, with LlamaIndex's mock models.
INDEX = """
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from opentelemetry import trace
tracer = trace.get_tracer("app")
Settings.llm = MockLLM(max_tokens=8)
Settings.embed_model = MockEmbedding(embed_dim=8)
DOCUMENTS = [
    Document(text="Paris is the capital of France.", doc_id="france", metadata={"country": "France"}),
    Document(text="Berlin is the capital of Germany.", doc_id="germany", metadata={"country": "Germany"}),
]
index = VectorStoreIndex.from_documents(DOCUMENTS)
"""

_PACKAGES = (
    "llama-index-core",
    "llama-index-llms-openai",
    "llama-index-llms-dashscope",
    "llama-index-embeddings-dashscope",
    "openai",
    "dashscope",
)


VERSIONS = installed_versions(_PACKAGES)


def _release(name: str) -> tuple:
    version = VERSIONS.get(name) or "0"
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


def needs(package: str, release: tuple | None = None, what: str = "") -> pytest.MarkDecorator:
    """Skip unless `package` is installed (at `release`, e.g. (0, 12), or above)."""
    version = VERSIONS.get(package)
    if version is None:
        return pytest.mark.skipif(True, reason=f"{package} is not installed")
    too_old = release is not None and _release(package) < release
    wanted = ".".join(map(str, release or ()))
    return pytest.mark.skipif(too_old, reason=f"{what or 'this'} needs {package} {wanted}+, found {version}")


SOURCE_TREE_ENV = source_tree_env()
