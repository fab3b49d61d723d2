"""Which kind of application is this? Decided from the installed distributions, never by importing them.

importlib.metadata would parse every installed distribution per name asked; one listing of each
sys.path folder gives the names of all installed distributions at once (the names of their
``*.dist-info`` / ``*.egg-info`` folders), which is all detection needs.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable

# vllm and sglang themselves depend on openai, so "model" is decided before "app".
_MODEL = frozenset({"vllm", "sglang"})
_APP = frozenset({"openai", "dashscope", "llama-index", "llama-index-core", "langchain", "langchain-core"})

_SEPARATORS = re.compile(r"[-_.]+")
_cache: frozenset | None = None


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them: lower case, runs of -_. as one '-'."""
    return _SEPARATORS.sub("-", name).lower()


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


def installed_distributions(paths: Iterable[str] | None = None) -> frozenset:
    """Normalised names of the distributions installed in `paths` (default: sys.path, cached)."""
    global _cache
    if paths is None and _cache is not None:
        return _cache
    names = set()
    for folder in sys.path if paths is None else paths:
        # An .egg on sys.path is itself a distribution (a zip file or a folder).
        name = _name_of(os.path.basename(folder.rstrip("/\\"))) if folder else None
        if name:
            names.add(normalize(name))
        try:
            entries = os.listdir(folder or ".")
        except OSError:  # a zip file, a missing folder, no permission: nothing installed there
            continue
        for entry in entries:
            name = _name_of(entry)
            if name:
                names.add(normalize(name))
    result = frozenset(names)
    if paths is None:
        _cache = result
    return result


def app_type(paths: Iterable[str] | None = None) -> str:
    """The application type: model (a model server: vllm, sglang), app (an LLM client or
    framework: openai, dashscope, llama-index, langchain), else microservice."""
    names = installed_distributions(paths)
    if names & _MODEL:
        return "model"
    if names & _APP:
        return "app"
    return "microservice"
