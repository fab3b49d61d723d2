"""App-type detection from installed distributions, read from folder names only."""

from __future__ import annotations

import subprocess
import sys

import pytest
from llmprobe import _detect


def site(tmp_path, *entries):
    """A fake site-packages folder holding the given metadata folders (or files, for eggs)."""
    folder = tmp_path / "site-packages"
    folder.mkdir()
    for entry in entries:
        (folder / entry).mkdir()
    return str(folder)


def test_names_are_normalised_as_pep_503(tmp_path):
    paths = [
        site(
            tmp_path,
            "Llama_Index_Core-0.12.1.dist-info",
            "langchain_core-0.3.0.dist-info",
            "Some.Thing-1.0-py3.11.egg-info",
            "devpkg.egg-info",
            "not_metadata-1.0",
        )
    ]
    names = _detect.installed_distributions(paths)
    assert names == {"llama-index-core", "langchain-core", "some-thing", "devpkg"}


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (["openai-1.50.0.dist-info"], "app"),
        (["dashscope-1.20.0.dist-info"], "app"),
        (["llama_index-0.12.0.dist-info"], "app"),
        (["llama_index_core-0.12.0.dist-info"], "app"),
        (["langchain-0.3.0.dist-info"], "app"),
        (["langchain_core-0.3.0.dist-info"], "app"),
        (["vllm-0.6.0.dist-info"], "model"),
        (["sglang-0.4.0.dist-info"], "model"),
        # A model server installs openai as its own dependency: it stays a model server.
        (["vllm-0.6.0.dist-info", "openai-1.50.0.dist-info"], "model"),
        (["flask-3.0.0.dist-info", "requests-2.32.0.dist-info"], "microservice"),
        ([], "microservice"),
    ],
)
def test_app_type(tmp_path, entries, expected):
    assert _detect.app_type([site(tmp_path, *entries)]) == expected


def test_unreadable_entries_are_skipped(tmp_path):
    zipped = tmp_path / "library.zip"
    zipped.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    paths = [str(tmp_path / "missing"), str(zipped), site(tmp_path, "openai-1.0.dist-info")]
    assert _detect.app_type(paths) == "app"


def test_an_egg_on_sys_path_counts(tmp_path):
    egg = tmp_path / "sglang-0.4.0-py3.11.egg"
    egg.mkdir()
    assert _detect.app_type([str(egg)]) == "model"


def test_detection_imports_nothing(tmp_path, child_env):
    # In a fresh interpreter: neither the detected libraries nor importlib.metadata get imported.
    fake = site(tmp_path, "openai-1.0.dist-info")
    code = (
        "import sys\n"
        "from llmprobe import _detect\n"
        "before = set(sys.modules)\n"
        f"print(_detect.app_type([{fake!r}]), _detect.app_type())\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0].split()[0] == "app"
    assert out[1] == "[]"


def test_default_paths_are_listed_once():
    first = _detect.metadata_folders()
    assert _detect.metadata_folders() is first
    assert "pytest" in _detect.installed_distributions()  # this very test run's own distribution
