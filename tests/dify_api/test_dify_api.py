"""Inside Dify's api/ (LLMPROBE_DIFY_API_SRC): a workflow as Dify's app runner starts it (Dify's
node factory and WorkflowEntry, with Dify's own layers), and a chat model call through Dify's
model runtime to a stand-in plugin daemon, checked at the OTLP receiver."""

from __future__ import annotations

import os
from pathlib import Path

from span_query import Tree, attrs, kind

# (Not from conftest: another suite's conftest module may hold that name in this run.)
SCRIPT = Path(__file__).resolve().parent / "dify_api_workflows.py"
DIFY_API = os.environ.get("LLMPROBE_DIFY_API_SRC", "")


def _run(run, receiver, scenario: str, done, **env: str):
    environment = {"PYTHONPATH": DIFY_API, "PYTHONWARNINGS": "ignore", **env}
    result = run(
        ["python", str(SCRIPT), scenario], receiver=receiver, env=environment, cwd=DIFY_API, timeout=180
    )
    result.check()
    return result, Tree(receiver.wait_for(done))


def _traceparent(result, path: str) -> tuple:
    [header] = [
        line.rsplit(": ", 1)[1]
        for line in result.stdout.splitlines()
        if line.startswith(f"traceparent {path}")
    ]
    _version, trace_id, span_id, _flags = header.split("-")
    return trace_id, span_id


def _workflow_ended(got: list[dict]) -> bool:
    return any(s["name"] == "workflow wf-7" for s in got)


def _check_workflow(result, tree: Tree) -> None:
    [workflow] = tree.roots()
    assert tree.shape(workflow) == (
        "workflow wf-7",
        (
            ("Start(start)", ()),
            ("Weather(http-request)", (("GET", ()),)),
            ("End(end)", ()),
        ),
    ), tree.render()
    assert (
        attrs(workflow)["gen_ai.user.id"] == "user-7" and attrs(workflow)["dify.workflow.run_id"] == "run-7"
    )
    request = tree.one("GET")
    assert _traceparent(result, "/weather") == (request["trace_id"], request["span_id"])


def test_a_workflow_run_as_dify_runs_it(run, receiver):
    result, tree = _run(run, receiver, "workflow", _workflow_ended)
    assert "layers: ['LlmprobeLayer', 'ExecutionLimitsLayer']" in result.stdout
    _check_workflow(result, tree)


def test_dify_own_node_spans_are_not_doubled(run, receiver):
    """With Dify's own OpenTelemetry switch on (ENABLE_OTEL_FOR_INSTRUMENT, the flag Dify reads
    for agents), Dify's ObservabilityLayer is on the engine; its node spans (named after the
    titles alone) are switched off, so each node is traced once, and the tree is the same."""
    result, tree = _run(run, receiver, "workflow", _workflow_ended, ENABLE_OTEL_FOR_INSTRUMENT="true")
    assert "'ObservabilityLayer'" in result.stdout
    assert not {"Start", "Weather", "End"} & {s["name"] for s in tree.spans}, tree.render()
    _check_workflow(result, tree)


def test_a_chat_through_dify_model_runtime(run, receiver):
    """LargeLanguageModel.invoke, as Dify's ModelInstance calls it: one LLM span, the streamed
    answer, the tokens the plugin daemon reported; the daemon's request under it, carrying it as
    its traceparent; the credentials nowhere."""
    result, tree = _run(run, receiver, "chat", lambda got: any(kind(s) == "LLM" for s in got))
    assert "answer: Paris is the capital." in result.stdout
    [llm] = tree.llm()
    a = attrs(llm)
    assert llm["name"] == "chat gpt-4o-mini" and a["gen_ai.provider.name"] == "openai"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (9, 4)
    assert a["gen_ai.request.temperature"] == 0.3 and a["gen_ai.response.finish_reasons"] == ["stop"]
    [request] = tree.children(llm)
    assert request["kind"] == "CLIENT"
    assert _traceparent(result, "/plugin/") == (request["trace_id"], request["span_id"])
    assert not any("sk-secret" in str(value) for span in tree.spans for value in attrs(span).values())
