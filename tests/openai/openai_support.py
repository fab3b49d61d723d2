"""What the openai tests share (a module of its own: `conftest` is a name every test folder has).

The constants the apps and assertions use, and what the installed openai SDK offers, so that a
test needing a newer SDK feature skips, naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from genai_fixtures import source_tree_env

HERE = Path(__file__).resolve().parent

# The API key every app uses: it must never appear in anything llmprobe sends.
SECRET = "sk-llmprobe-test-SECRET-7f3a9c0d"

# Put at the top of every app: the folder of these tests and the tests' own (for helper modules)
# on sys.path.
PRELUDE = f"import sys\nsys.path[:0] = [{str(HERE)!r}, {str(HERE.parent)!r}]\n"


SOURCE_TREE_ENV = source_tree_env()


# ---- what the installed SDK has ------------------------------------------------------------------


def _openai_version() -> str | None:
    try:
        import openai
    except ImportError:
        return None
    return openai.__version__


OPENAI_VERSION = _openai_version()


def sdk_has(path: str) -> bool:
    """True when the installed openai has the dotted attribute `path` (below `openai`)."""
    import importlib

    if OPENAI_VERSION is None:
        return False
    import openai

    obj: Any = openai
    parts = path.split(".")
    for i, part in enumerate(parts):
        if not hasattr(obj, part):
            try:
                obj = importlib.import_module("openai." + ".".join(parts[: i + 1]))
                continue
            except ImportError:
                return False
        obj = getattr(obj, part)
    return True


def needs(path: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not sdk_has(path), reason=f"the installed openai has no {path}")
