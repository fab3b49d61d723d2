"""The import hook: the trigger of every instrumentation."""

from __future__ import annotations

import importlib
import sys
import textwrap
import zipfile

import pytest
from llmprobe import _import_hook


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """A folder on sys.path to write modules into; they are forgotten after the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]
    _import_hook._reset_for_tests()
    importlib.invalidate_caches()


def write(folder, relative, text):
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_fires_once_after_the_first_import(modules):
    write(modules, "lp_target_once.py", "VALUE = 42\n")
    seen = []
    _import_hook.when_imported("lp_target_once", lambda m: seen.append((m.__name__, m.VALUE)))
    assert seen == []
    import lp_target_once

    assert seen == [("lp_target_once", 42)]
    importlib.reload(lp_target_once)
    importlib.import_module("lp_target_once")  # importing again must not fire it again

    assert seen == [("lp_target_once", 42)]


def test_the_module_keeps_its_real_loader(modules):
    write(modules, "lp_target_loader.py", "SEEN = type(__loader__).__name__\n")
    _import_hook.when_imported("lp_target_loader", lambda m: None)
    import lp_target_loader

    # Neither during its own execution nor afterwards does the module see llmprobe's stand-in.
    assert lp_target_loader.SEEN == "SourceFileLoader"
    assert type(lp_target_loader.__loader__).__name__ == "SourceFileLoader"
    assert type(lp_target_loader.__spec__.loader).__name__ == "SourceFileLoader"


def test_runs_at_once_for_an_imported_module():
    import json

    seen = []
    _import_hook.when_imported("json", seen.append)
    assert seen == [json]
    _import_hook._reset_for_tests()


def test_a_failing_callback_does_not_break_the_import(modules, capsys):
    write(modules, "lp_target_fail.py", "VALUE = 1\n")

    def broken(module):
        raise RuntimeError("hook bug")

    later = []
    _import_hook.when_imported("lp_target_fail", broken)
    _import_hook.when_imported("lp_target_fail", later.append)
    import lp_target_fail

    assert lp_target_fail.VALUE == 1
    assert later == [lp_target_fail]  # the callbacks after the failing one still ran
    err = capsys.readouterr().err
    assert err.count("llmprobe: warning:") == 1
    assert "hook bug" in err


def test_a_module_that_fails_to_import_fires_on_its_successful_import(modules):
    path = write(modules, "lp_target_retry.py", "raise ImportError('not yet')\n")
    seen = []
    _import_hook.when_imported("lp_target_retry", seen.append)
    with pytest.raises(ImportError, match="not yet"):
        importlib.import_module("lp_target_retry")
    assert seen == []
    path.write_text("VALUE = 2\n")
    importlib.invalidate_caches()
    importlib.import_module("lp_target_retry")

    assert [m.VALUE for m in seen] == [2]


def test_submodule(modules):
    write(modules, "lp_pkg/__init__.py", "")
    write(modules, "lp_pkg/core.py", "VALUE = 3\n")
    seen = []
    _import_hook.when_imported("lp_pkg.core", seen.append)
    importlib.import_module("lp_pkg")
    assert seen == []
    from lp_pkg import core

    assert seen == [core]


def test_namespace_package_still_imports(modules):
    write(modules, "lp_ns/inner.py", "VALUE = 4\n")  # lp_ns has no __init__.py
    seen = []
    _import_hook.when_imported("lp_ns", seen.append)
    _import_hook.when_imported("lp_ns.inner", seen.append)
    import lp_ns.inner

    assert lp_ns.inner.VALUE == 4
    assert lp_ns.__file__ is None  # what importlib gives a namespace package, untouched
    # The namespace package's hook ran before its submodule's.
    assert seen == [lp_ns, lp_ns.inner]


def test_zipimport(modules):
    archive = modules / "lp_zipped.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("lp_zipmod.py", "VALUE = 5\n")
    sys.path.insert(0, str(archive))
    try:
        seen = []
        _import_hook.when_imported("lp_zipmod", seen.append)
        import lp_zipmod

        assert lp_zipmod.VALUE == 5
        assert type(lp_zipmod.__loader__).__name__ == "zipimporter"
        if sys.version_info >= (3, 10):  # zipimporter has exec_module from 3.10
            assert seen == [lp_zipmod]
    finally:
        sys.path.remove(str(archive))


class _LegacyLoader:
    """A loader from before PEP 451: load_module only."""

    def load_module(self, fullname):
        module = type(sys)(fullname)
        module.VALUE = 6
        module.__loader__ = self
        sys.modules[fullname] = module
        return module


class _LegacyFinder:
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "lp_legacy":
            return None
        return importlib.util.spec_from_loader(fullname, _LegacyLoader())


@pytest.mark.filterwarnings("ignore::ImportWarning")
def test_loader_without_exec_module(modules):
    finder = _LegacyFinder()
    sys.meta_path.append(finder)
    try:
        seen = []
        _import_hook.when_imported("lp_legacy", seen.append)
        import lp_legacy

        assert lp_legacy.VALUE == 6
        assert isinstance(lp_legacy.__loader__, _LegacyLoader)
        assert seen == [lp_legacy]
    finally:
        sys.meta_path.remove(finder)


def test_reset_takes_the_finder_away(modules):
    _import_hook.when_imported("lp_never_imported", lambda m: None)
    assert any(type(f).__name__ == "_Finder" for f in sys.meta_path)
    _import_hook._reset_for_tests()
    assert not any(type(f).__name__ == "_Finder" for f in sys.meta_path)
