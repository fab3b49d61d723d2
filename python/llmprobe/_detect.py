"""Which kind of application is this? Decided from the installed distributions, never by importing them.

importlib.metadata would parse every installed distribution per name asked; one listing of each
sys.path folder gives the names of all installed distributions at once (the names of their
``*.dist-info`` / ``*.egg-info`` folders), which is all detection needs.
"""

from __future__ import annotations

import os
import sys

# Imported for type checkers only: importing typing would cost every start-up milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

# vllm and sglang themselves depend on openai, so "model" is decided before "app".
_MODEL = frozenset({"vllm", "sglang"})
_APP = frozenset({"openai", "dashscope", "llama-index", "llama-index-core", "langchain", "langchain-core"})

_cache: list[tuple[str, str]] | None = None


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them: lower case, runs of -_. as one '-'."""
    # Without re (start-up imports nothing it can do without): '_' and '.' become '-', then
    # runs of '-' one.
    name = name.lower().replace("_", "-").replace(".", "-")
    while "--" in name:
        name = name.replace("--", "-")
    return name


def _name_of(entry: str) -> str | None:
    """The distribution name in a metadata folder's or egg's file name, else None.

    ``Foo_Bar-1.0.dist-info``, ``foo-1.0-py3.9.egg-info``, ``foo.egg-info`` (a develop install)
    and ``foo-1.0-py3.9.egg``: in each the name is what comes before the first '-', since the
    name part has its '-' escaped as '_'.
    """
    for suffix in (".dist-info", ".egg-info", ".egg"):
        if entry.endswith(suffix):
            stem = entry[: -len(suffix)]
            return stem.split("-", 1)[0] or None
    return None


def metadata_folders(paths: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """(path, normalised name) of every distribution's metadata folder (or egg) in `paths`
    (default: sys.path, listed once and cached), in sys.path order."""
    global _cache
    if paths is None and _cache is not None:
        return _cache
    found = []
    for folder in sys.path if paths is None else paths:
        # An .egg on sys.path is itself a distribution (a zip file or a folder).
        name = _name_of(os.path.basename(folder.rstrip("/\\"))) if folder else None
        if name:
            found.append((folder, normalize(name)))
        try:
            entries = os.listdir(folder or ".")
        except OSError:  # a zip file, a missing folder, no permission: nothing installed there
            continue
        for entry in entries:
            name = _name_of(entry)
            if name:
                found.append((os.path.join(folder or ".", entry), normalize(name)))
    if paths is None:
        _cache = found
    return found


def installed_distributions(paths: Iterable[str] | None = None) -> frozenset:
    """Normalised names of the distributions installed in `paths` (default: sys.path)."""
    return frozenset(name for _, name in metadata_folders(paths))


def app_type(paths: Iterable[str] | None = None) -> str:
    """The application type: model (a model server: vllm, sglang), app (an LLM client or
    framework: openai, dashscope, llama-index, langchain), else microservice."""
    names = installed_distributions(paths)
    if names & _MODEL:
        return "model"
    if names & _APP:
        return "app"
    return "microservice"
