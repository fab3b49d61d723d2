"""What the provider instrumentation tests (tests/openai, tests/dashscope) share: running a small
application against a fake provider server and collecting the spans at the OTLP receiver.

A module of its own, imported by each provider's conftest.py: a test module never imports a
`conftest` (every test folder has one, and which one that name binds depends on run order).

Each app runs as a user would run it: in its own process, under the installed ``instrument``
launcher (or plain, to compare), talking to the fake server over loopback and exporting to the
repository's OTLP receiver (tests/conftest.py). Assertions are made on the spans as they arrived.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple


def source_tree_env() -> dict[str, str]:
    """PYTHONPATH for the apps when this source tree has a built core but the llmprobe installed
    in this Python is another copy (a `pip install .` made earlier): the tests then exercise the
    code next to them, not a stale copy. An installed copy built from this tree is used as is."""
    import importlib.util
    from pathlib import Path

    source = Path(__file__).resolve().parents[1] / "python"
    spec = importlib.util.find_spec("llmprobe")
    installed = Path(spec.origin).resolve().parent.parent if spec and spec.origin else None
    if installed == source or not list((source / "llmprobe").glob("_core*.so")):
        return {}
    return {"PYTHONPATH": str(source)}


class App(NamedTuple):
    result: Any  # app_runner.Result: returncode, stdout, stderr
    spans: list[dict]  # every span the receiver got
    requests: list[dict]  # what the fake server received during the run (a copy)

    def llm(self) -> list[dict]:
        """The GenAI spans, in start order."""
        return sorted(
            (s for s in self.spans if "gen_ai.span.kind" in s["attributes"]), key=lambda s: s["start_time"]
        )

    def one(self) -> dict:
        spans = self.llm()
        assert len(spans) == 1, (
            f"expected one GenAI span, got {[s['name'] for s in spans]}\n{self.result.stderr}"
        )
        return spans[0]

    def lines(self) -> list[str]:
        return self.result.stdout.strip().splitlines()


def serve(server: Any) -> Iterator[Any]:
    """The body of a session fixture for a fake server (anything with start() and stop()):
    ``yield from serve(FakeX())``."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _genai_spans(got: list[dict]) -> int:
    return len([s for s in got if "gen_ai.span.kind" in s["attributes"]])


def app_runner(run, write_script, receiver, fake: Any, prelude: str, base_env: dict[str, str]):
    """The function an ``<provider>_app`` fixture returns:

    ``runner(source, spans=N or predicate, env={...}, instrument=True, check=True, name="app.py",
    timeout=120) -> App``

    writes `source` (dedented, after `prelude`) as the app, runs it to its end with the
    provider's `base_env` (its base URL and test key) plus `env`, checks it exited cleanly (unless
    check=False), then waits for `spans` GenAI spans (or a predicate over the spans that arrived
    to hold; with spans=0 or instrument=False, for the receiver to settle)."""

    def _run(
        source: str,
        *,
        spans: int | Callable[[list[dict]], Any] = 1,
        env: dict[str, str | None] | None = None,
        instrument: bool = True,
        check: bool = True,
        name: str = "app.py",
        timeout: float = 120,
    ) -> App:
        fake.clear()
        path = write_script(name, prelude + textwrap.dedent(source))
        full_env = {**base_env, **(env or {})}
        result = run(
            ["python", str(path)], receiver=receiver, env=full_env, instrument=instrument, timeout=timeout
        )
        if check:
            result.check()
        if spans == 0 or not instrument:
            arrived = receiver.settle()
        elif isinstance(spans, int):
            receiver.wait_for(lambda got: _genai_spans(got) >= spans)
            arrived = receiver.settle()
        else:
            arrived = receiver.wait_for(spans)
        return App(result, arrived, list(fake.requests))

    return _run


# ---- what the framework suites (tests/langchain, tests/llama_index) share ----------------------


def installed_versions(names: tuple[str, ...]) -> dict[str, str | None]:
    """Each distribution's installed version, or None."""
    from importlib import metadata

    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def missing_modules(names: tuple[str, ...]) -> list[str]:
    """The modules of `names` that cannot be imported here (found without importing them)."""
    import importlib.util

    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # its parent package is not there either
            found = False
        if not found:
            missing.append(name)
    return missing


def skip_folder_without(items: list, folder: Any, versions: dict, package: str) -> None:
    """pytest_collection_modifyitems of a framework's folder: skip its tests, naming `package`,
    when it is not installed."""
    if versions.get(package) is not None:
        return
    from pathlib import Path

    import pytest

    skip = pytest.mark.skip(reason=f"{package} is not installed (pip install {package})")
    for item in items:
        if Path(str(item.fspath)).resolve().parent == folder:
            item.add_marker(skip)


def versions_header(label: str, versions: dict) -> str:
    installed = ", ".join(f"{name} {version}" for name, version in versions.items() if version)
    return f"{label}: {installed or 'not installed'}"


class TranscriptRuns:
    """The fault-injection tests' runs of one transcript app (`source`, formatted with the mode):
    plain (without llmprobe, run once and kept), under llmprobe, or under llmprobe made to fail.
    Each run gives (app, the transcript, the status line, the request bodies the server got)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.plain_run: tuple | None = None

    def run(self, make_app: Callable, mode: str) -> tuple:
        import json

        app = make_app(self.source.format(mode=mode), spans=0, instrument=mode != "plain", timeout=180)
        transcript, status = app.lines()[-2], json.loads(app.lines()[-1])
        bodies = sorted(r["raw"].decode() for r in app.requests)
        return app, json.loads(transcript), status, bodies

    def plain(self, make_app: Callable) -> tuple:
        """(the transcript, the request bodies) without llmprobe."""
        if self.plain_run is None:
            _, transcript, _, bodies = self.run(make_app, "plain")
            self.plain_run = (transcript, bodies)
        return self.plain_run
