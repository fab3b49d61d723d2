"""Dify's apps, end to end inside Dify's api/ (LLMPROBE_DIFY_API_SRC) with a real Postgres and Redis
(dify_services.py): a chat, a completion, an agent-chat (with a tool), an advanced-chat, a workflow
app and a chat app with a knowledge base, each asked through Dify's service API by an end user as a client would, blocking and
streamed, against a stand-in plugin daemon (dify_api_apps.py). Checked at the OTLP receiver: each
run is one span under its web request, named after the app, with the user, the conversation, the
query and the answer; its model calls, tool calls, retrieval and nodes under it."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import dify_services
import pytest
from span_query import Tree, attrs, kind

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "dify_api_apps.py"
DIFY_API = os.environ.get("LLMPROBE_DIFY_API_SRC", "")
QUESTION = "What is the capital of France?"
ANSWER = "Paris is the capital."
# Each app's span, and how many runs the script makes of it.
RUNS = {
    "workflow Travel Chat": 3,  # blocking, streamed, and a second turn of the blocking conversation
    "workflow Travel Completion": 2,
    "invoke_agent Travel Agent": 1,  # Dify runs agents streamed only
    "workflow Travel Advanced": 2,
    "workflow Travel Workflow": 2,
    "workflow Travel Knowledge": 1,  # a chat app with a knowledge base: retrieval, then the model
}
WORKFLOW_MODES = {"workflow Travel Advanced": "advanced-chat", "workflow Travel Workflow": "workflow"}
ENDPOINTS = {
    "workflow Travel Chat": "POST /v1/chat-messages",
    "workflow Travel Completion": "POST /v1/completion-messages",
    "invoke_agent Travel Agent": "POST /v1/chat-messages",
    "workflow Travel Advanced": "POST /v1/chat-messages",
    "workflow Travel Workflow": "POST /v1/workflows/run",
    "workflow Travel Knowledge": "POST /v1/chat-messages",
}


@pytest.fixture(scope="module")
def dify_db():
    reason = dify_services.missing()
    if reason:
        pytest.skip(reason)
    services = dify_services.start(DIFY_API)
    yield services
    services.stop()


def _env(dify_db, **extra: str) -> dict:
    return {**dify_db.env, "PYTHONPATH": DIFY_API, "PYTHONWARNINGS": "ignore", **extra}


def _all_runs_ended(got: list[dict]) -> bool:
    names = [s["name"] for s in got]
    return all(names.count(name) >= count for name, count in RUNS.items())


def _genai_children(tree: Tree, span: dict) -> list[dict]:
    """The children that are GenAI spans (not the database and cache calls around them)."""
    return [child for child in tree.children(span) if kind(child)]


def _conversations(stdout: str) -> dict[str, str]:
    return dict(re.findall(r"^conversation (.+): (\S+)$", stdout, re.MULTILINE))


# Each test runs Dify's whole app (a Flask app and six apps set up, some forty requests) once or twice.
pytestmark = pytest.mark.timeout(600)


def test_each_app_run_is_one_span_under_its_web_request(run, receiver, dify_db):
    dify_db.reset()
    env = _env(dify_db, PROFILER_GENAI_SPLITAPP_ENABLE="true")
    result = run(["python", str(SCRIPT)], receiver=receiver, env=env, cwd=DIFY_API, timeout=300).check()
    assert result.stdout.count(f": {ANSWER}") == sum(RUNS.values()), result.stdout
    tree = Tree(receiver.wait_for(_all_runs_ended, timeout=60))
    conversations = set(_conversations(result.stdout).values())
    assert len(conversations) == 6, result.stdout  # chat twice, agent, advanced-chat twice, knowledge

    for name, count in RUNS.items():
        spans = tree.named(name)
        assert len(spans) == count, tree.render()
        for span in spans:
            a = attrs(span)
            request = tree.parent(span)
            assert request is not None and request["name"] == ENDPOINTS[name], tree.render([request or span])
            assert request["kind"] == "SERVER"
            assert a["gen_ai.framework"] == "dify" and a["gen_ai.user.id"] == "user-7"
            assert a["dify.app.name"] == name.split(" ", 1)[1] and a["dify.app.id"]
            # PROFILER_GENAI_SPLITAPP_ENABLE: the app's spans are the app's service; the request not.
            assert span["resource"]["service.name"] == a["dify.app.name"]
            assert request["resource"]["service.name"] != a["dify.app.name"]
            if "Workflow" not in name:  # a completion's conversation is Dify's own, never shown
                assert a["gen_ai.session.id"] == a["gen_ai.conversation.id"]
                assert "Completion" in name or a["gen_ai.session.id"] in conversations

    for span in tree.named("workflow Travel Chat") + tree.named("workflow Travel Completion"):
        a = attrs(span)
        assert (kind(span), a["gen_ai.operation.name"]) == ("CHAIN", "invoke_workflow")
        assert a["output.value"] == ANSWER and a["dify.message.id"]
        [llm] = _genai_children(tree, span)
        assert llm["name"] == "chat gpt-4o-mini" and kind(llm) == "LLM"
        assert (attrs(llm)["gen_ai.usage.input_tokens"], attrs(llm)["gen_ai.usage.output_tokens"]) == (9, 4)
        assert llm["resource"]["service.name"] == a["dify.app.name"]
    chats = tree.named("workflow Travel Chat")
    assert {attrs(s)["input.value"] for s in chats} == {QUESTION, "And of Italy?"}
    # The second turn continues the blocking run's conversation: one session, two runs.
    assert len({attrs(s)["gen_ai.session.id"] for s in chats}) == 2

    [agent] = tree.named("invoke_agent Travel Agent")
    a = attrs(agent)
    assert (kind(agent), a["gen_ai.agent.name"], a["input.value"], a["output.value"]) == (
        "AGENT",
        "Travel Agent",
        QUESTION,
        ANSWER,
    )
    steps = _genai_children(tree, agent)
    assert [(s["name"], kind(s)) for s in steps] == [
        ("chat gpt-4o-mini", "LLM"),
        ("execute_tool weekday", "TOOL"),
        ("chat gpt-4o-mini", "LLM"),
    ], tree.render([agent])
    tool = attrs(steps[1])
    assert tool["dify.tool.provider"] == "time" and tool["gen_ai.tool.description"]
    assert '"year":2025' in tool["gen_ai.tool.call.arguments"] and "Monday" in tool["gen_ai.tool.call.result"]

    for name, last in (
        ("workflow Travel Advanced", "Answer(answer)"),
        ("workflow Travel Workflow", "End(end)"),
    ):
        for span in tree.named(name):
            a = attrs(span)
            assert (kind(span), a["dify.app.mode"]) == ("CHAIN", WORKFLOW_MODES[name])
            nodes = _genai_children(tree, span)
            assert [n["name"] for n in nodes] == ["Start(start)", "LLM(llm)", last], tree.render([span])
            [llm] = _genai_children(tree, nodes[1])
            assert llm["name"] == "chat gpt-4o-mini"
    # The workflow runs Dify told the client of are the spans' (a blocking chatflow tells none).
    runs = {attrs(s)["dify.workflow.run_id"] for name in WORKFLOW_MODES for s in tree.named(name)}
    told = set(re.findall(r"^workflow run .+: (\S+)$", result.stdout, re.MULTILINE))
    assert len(runs) == 4 and told and told <= runs, (runs, told)
    assert all(attrs(s)["input.value"] == QUESTION for s in tree.named("workflow Travel Advanced"))
    assert all(QUESTION in attrs(s)["input.value"] for s in tree.named("workflow Travel Workflow"))

    # The knowledge chat: its retrieval, then the model call, whose prompt has what was retrieved.
    [app] = tree.named("workflow Travel Knowledge")
    retrieval, llm = _genai_children(tree, app)
    assert (retrieval["name"], kind(retrieval), llm["name"]) == (
        "retrieval Travel Facts",
        "RETRIEVER",
        "chat gpt-4o-mini",
    ), tree.render([app])
    r = attrs(retrieval)
    assert r["gen_ai.retrieval.query.text"] == QUESTION and len(r["dify.dataset.ids"]) == 1
    [found] = json.loads(r["retrieval.documents"])
    document = found["document"]
    assert "Eiffel Tower" in document["content"] and document["id"] and document["score"] is not None
    assert document["metadata"]["dataset_name"] == "Travel Facts"
    assert document["metadata"]["document_name"] == "france.txt"
    assert "Eiffel Tower" in r["output.value"] and "Eiffel Tower" in attrs(llm)["gen_ai.input.messages"]

    # Every request to the plugin daemon's model endpoint carried the LLM span it was made under.
    headers = re.findall(r"^traceparent /plugin/\S+/dispatch/llm/invoke: (\S+)$", result.stdout, re.MULTILINE)
    assert len(headers) == len(tree.llm()) == 12
    for header in headers:
        _version, trace_id, span_id, _flags = header.split("-")
        [request] = [s for s in tree.spans if s["span_id"] == span_id and s["trace_id"] == trace_id]
        assert kind(tree.parent(request)) == "LLM"


# A run as the application saw it: the answers, tool results and sources, without the random ids.
SEEN = re.compile(r"^((?:answer|tool|retrieved) .*)$", re.MULTILINE)
FAULTY = """
import sys
sys.path[:0] = [{tests!r}, {here!r}]
import dify_app_faults
dify_app_faults.inject({mode!r})
import dify_api_apps
code = dify_api_apps.main(dify_api_apps.MODES)
print("faults:", dify_app_faults.calls["count"], flush=True)
sys.exit(code)
"""


@pytest.fixture(scope="module")
def plain_run(dify_db, tmp_path_factory):
    """The apps run once under llmprobe with nothing injected: what the faulty runs must match."""
    from app_runner import run_app

    dify_db.reset()
    result = run_app(["python", str(SCRIPT)], env=_env(dify_db), cwd=DIFY_API, timeout=300).check()
    return SEEN.findall(result.stdout)


@pytest.mark.parametrize("mode", ["hooks", "after", "tracer"])
def test_the_apps_see_no_difference_when_llmprobe_fails(run, dify_db, plain_run, tmp_path, mode):
    assert len(plain_run) == sum(RUNS.values()) + 2, plain_run  # the answers, the agent's tool, the source
    script = tmp_path / "faulty_apps.py"
    script.write_text(FAULTY.format(tests=str(HERE.parent), here=str(HERE), mode=mode))
    dify_db.reset()
    result = run(["python", str(script)], env=_env(dify_db), cwd=DIFY_API, timeout=300).check()
    assert SEEN.findall(result.stdout) == plain_run
    faults = int(result.stdout.rsplit("faults:", 1)[1].split()[0])
    assert faults > 0, "no injected fault was hit"
    warnings = [line for line in result.stderr.splitlines() if line.startswith("llmprobe: warning")]
    assert warnings and len(warnings) == len(set(warnings)), result.stderr
