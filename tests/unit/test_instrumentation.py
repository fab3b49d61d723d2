"""The registry of llmprobe's instrumentations, and the activation of opentelemetry-instrumentation-*."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest
from llmprobe import _import_hook, instrumentation
from llmprobe.instrumentation import Instrumentation


@pytest.mark.parametrize(
    "spelling",
    [
        "openai",
        "OpenAI",
        " openai ",
        "opentelemetry-instrumentation-openai",
        "opentelemetry_instrumentation_openai",
    ],
)
def test_disabled_names_in_any_spelling(spelling):
    assert instrumentation.is_disabled("openai", [spelling])
    assert not instrumentation.is_disabled("dashscope", [spelling])


def test_other_spellings_and_the_wildcard():
    assert instrumentation.is_disabled("llama_index", ["llama-index"])
    assert instrumentation.is_disabled("llama_index", ["opentelemetry-instrumentation-llamaindex"])
    assert instrumentation.is_disabled("langchain", ["langchain-core"])
    assert instrumentation.is_disabled("flask", ["*"])
    assert not instrumentation.is_disabled("flask", [])


def test_the_registry():
    triggers = {entry.name: entry.triggers for entry in instrumentation.REGISTRY.values()}
    assert triggers == {
        "openai": ("openai",),
        "dashscope": ("dashscope",),
        "langchain": ("langchain_core",),
        "llama_index": ("llama_index.core",),
        "dify": ("graphon", "core.workflow.graph_engine", "core.model_runtime.model_providers"),
    }
    for entry in instrumentation.REGISTRY.values():
        assert entry.module == f"llmprobe.instrumentation.{entry.name}"


IMPLEMENTATION = """\
import lp_reg_lib
calls = []
def instrument():
    calls.append("instrument")
    lp_reg_lib.patched = True
def uninstrument():
    calls.append("uninstrument")
    lp_reg_lib.patched = False
"""


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A registry of one instrumentation for a library written to tmp_path."""
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "lp_reg_lib.py").write_text("patched = False\n")
    (tmp_path / "lp_reg_impl.py").write_text(IMPLEMENTATION)
    entry = Instrumentation("lpreg", ("lp_reg_lib",), "lp_reg_impl")
    monkeypatch.setattr(instrumentation, "REGISTRY", {"lpreg": entry})
    before = set(sys.modules)
    yield tmp_path
    instrumentation.uninstrument_all()
    _import_hook._reset_for_tests()
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_applied_when_the_library_is_imported(registry):
    instrumentation.arm([])
    assert "lp_reg_impl" not in sys.modules  # nothing imported at arm time
    lib = importlib.import_module("lp_reg_lib")
    assert lib.patched
    impl = sys.modules["lp_reg_impl"]
    instrumentation.arm([])  # arming again applies nothing twice
    instrumentation.uninstrument_all()
    assert impl.calls == ["instrument", "uninstrument"] and not lib.patched


def test_disabled_is_not_applied(registry):
    instrumentation.arm(["LPREG"])
    assert not importlib.import_module("lp_reg_lib").patched
    assert "lp_reg_impl" not in sys.modules


def test_a_missing_implementation_is_skipped_silently(registry, capsys):
    (registry / "lp_reg_impl.py").unlink()
    instrumentation.arm([])
    assert not importlib.import_module("lp_reg_lib").patched
    assert capsys.readouterr().err == ""


def test_a_failing_implementation_is_logged_once(registry, capsys):
    (registry / "lp_reg_impl.py").write_text("import lp_reg_missing_dependency\n")
    instrumentation.arm([])
    assert not importlib.import_module("lp_reg_lib").patched
    err = capsys.readouterr().err
    assert err.count("llmprobe: warning:") == 1
    assert "lp_reg_missing_dependency" in err


CONTRIB_SCRIPT = """\
import json, sys
lazy = {name: name in sys.modules for name in ("flask", "requests")}
import flask, requests
from opentelemetry import trace
app = flask.Flask(__name__)

@app.route("/hello")
def hello():
    span = trace.get_current_span()
    return {"span": type(span).__module__}

client = app.test_client()
answer = client.get(
    "/hello", headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
).get_json()
print(json.dumps({
    "imported_at_start": lazy,
    "span_module": answer["span"],
    "flask_class": flask.Flask.__name__,
    "requests_wrapped": hasattr(requests.Session.send, "__wrapped__"),
}))
"""


def run_contrib(tmp_path, child_env, **env):
    pytest.importorskip("flask")
    pytest.importorskip("opentelemetry.instrumentation.flask")
    pytest.importorskip("opentelemetry.instrumentation.requests")
    (tmp_path / "contrib_app.py").write_text(CONTRIB_SCRIPT)
    out = tmp_path / "spans.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "llmprobe.launcher", sys.executable, "contrib_app.py"],
        check=False,
        cwd=str(tmp_path),
        env=child_env(OTEL_TRACES_EXPORTER="file", LLMPROBE_TRACES_FILE=str(out), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    spans = []
    if out.exists():
        for line in out.read_text().splitlines():
            for resource_spans in json.loads(line)["resourceSpans"]:
                for scope_spans in resource_spans["scopeSpans"]:
                    spans.extend(scope_spans["spans"])
    return json.loads(result.stdout), spans


def test_opentelemetry_instrumentations_are_activated_lazily(core, tmp_path, child_env):
    seen, spans = run_contrib(tmp_path, child_env)
    assert seen["imported_at_start"] == {"flask": False, "requests": False}
    assert seen["flask_class"] == "_InstrumentedFlask"
    assert seen["requests_wrapped"]
    assert seen["span_module"] == "llmprobe._tracer"  # Flask's span is llmprobe's
    (server,) = [span for span in spans if span["kind"] == 2]
    assert server["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    assert server["parentSpanId"] == "b7ad6b7169203331"


@pytest.mark.parametrize(
    "variable", ["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "LLMPROBE_DISABLED_INSTRUMENTATIONS"]
)
def test_opentelemetry_instrumentations_can_be_disabled(core, tmp_path, child_env, variable):
    seen, spans = run_contrib(tmp_path, child_env, **{variable: "opentelemetry-instrumentation-flask"})
    assert seen["flask_class"] == "Flask"
    assert seen["requests_wrapped"]
    assert spans == []
