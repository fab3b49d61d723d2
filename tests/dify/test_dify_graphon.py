"""Workflows on Dify's engine as the receiver gets them: one CHAIN span per workflow run under the
caller's, one TASK span per node under it (an iteration's or a loop's nodes under their
container), an LLM node's model call as the one LLM span under its node, with the model, the
provider, the tokens and the time to first token that graphon measured; a failing node fails its
workflow; an aborted run still ends every span."""

from __future__ import annotations

from conftest import HERE
from span_query import Tree, attrs, content, kind, token_sums

WORKFLOWS = HERE / "graphon_workflows.py"


def _run(run, receiver, scenario: str, done, *flags: str) -> Tree:
    run(["python", str(WORKFLOWS), scenario, *flags], receiver=receiver, timeout=120).check()
    return Tree(receiver.wait_for(done))


def _workflow_ended(got: list[dict]) -> bool:
    return any(s["name"] == "workflow wf-demo" for s in got)


def test_start_llm_end(run, receiver):
    tree = _run(run, receiver, "basic", _workflow_ended)
    [workflow] = tree.roots()
    assert tree.shape(workflow) == (
        "workflow wf-demo",
        (
            ("Start(start)", ()),
            ("Ask LLM(llm)", (("chat gpt-4o-mini", ()),)),
            ("End(end)", ()),
        ),
    )
    w = attrs(workflow)
    assert w["gen_ai.span.kind"] == "CHAIN" and w["gen_ai.operation.name"] == "invoke_workflow"
    assert w["gen_ai.framework"] == "dify" and w["gen_ai.user.id"] == "user-1"
    assert content(workflow, "output.value") == {"answer": "Paris is the capital of France."}
    node = tree.one("Ask LLM(llm)")
    assert kind(node) == "TASK" and attrs(node)["dify.node.type"] == "llm"
    [llm] = tree.llm()
    a = attrs(llm)
    assert llm["kind"] == "CLIENT" and llm["scope"] == "llmprobe.instrumentation.dify"
    assert a["gen_ai.request.model"] == "gpt-4o-mini" and a["gen_ai.provider.name"] == "openai"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (11, 6)
    assert a["gen_ai.response.time_to_first_token"] > 0
    assert a["output.value"] == "Paris is the capital of France."
    # The node's own times, as graphon measured them.
    assert workflow["start_time"] <= node["start_time"] <= node["end_time"] <= workflow["end_time"]


def test_branches_iteration_and_a_failing_node(run, receiver):
    tree = _run(run, receiver, "full", _workflow_ended)
    [workflow] = tree.roots()
    children = {s["name"] for s in tree.children(workflow)}
    assert {
        "Knowledge(knowledge-retrieval)",
        "Weather tool(tool)",
        "Per item(iteration)",
        "Broken code(code)",
    } <= children
    iteration = tree.one("Per item(iteration)")
    steps = [s for s in tree.children(iteration) if s["name"] == "Describe item(llm)"]
    assert len(steps) == 2, tree.render()
    for step in steps:
        [llm] = tree.children(step)
        assert kind(llm) == "LLM" and llm["name"] == "chat gpt-4o"
    # The retrieval and the tool call, each under its node.
    [retrieval] = tree.children(tree.one("Knowledge(knowledge-retrieval)"))
    assert retrieval["name"] == "retrieval Knowledge" and kind(retrieval) == "RETRIEVER"
    assert attrs(retrieval)["gen_ai.retrieval.query.text"] == "What is the capital of France?"
    documents = content(retrieval, "retrieval.documents")
    assert [d["document"]["score"] for d in documents] == [0.93, 0.71]
    assert documents[0]["document"]["content"] == "Paris is the capital and largest city of France."
    [tool] = tree.children(tree.one("Weather tool(tool)"))
    assert tool["name"] == "execute_tool weather" and kind(tool) == "TOOL"
    assert attrs(tool)["gen_ai.tool.call.result"] == "Sunny in Paris"
    broken = tree.one("Broken code(code)")
    assert broken["status"]["code"] == "ERROR" and "sandbox unavailable" in broken["status"]["message"]
    assert len(tree.llm()) == 3  # one per model call: the two iteration steps and the answer
    agent = tree.one("invoke_agent Trip planner")
    assert kind(agent) == "AGENT" and attrs(agent)["gen_ai.agent.name"] == "Trip planner", tree.render()
    assert attrs(agent)["dify.node.type"] == "agent" and tree.parent(agent) == workflow
    assert not [s["name"] for s in tree.spans if "llmprobe.run.abandoned" in attrs(s)], tree.render()
    # Only the roots: graphon 0.5's engines for the iteration's steps make no trace of their own.
    assert len(tree.roots()) == 1


def test_a_failing_model_fails_its_node_and_workflow(run, receiver):
    tree = _run(run, receiver, "fail", _workflow_ended)
    [workflow] = tree.roots()
    node = tree.one("Ask LLM(llm)")
    [llm] = tree.llm()
    for span in (workflow, node, llm):
        assert span["status"]["code"] == "ERROR", tree.render()
        assert "rate limited" in span["status"]["message"]


def test_an_aborted_run_ends_its_spans(run, receiver):
    tree = _run(run, receiver, "abort", _workflow_ended)
    [workflow] = tree.roots()
    assert attrs(workflow)["dify.workflow.status"] == "aborted"
    assert all(s["end_time"] >= s["start_time"] for s in tree.spans)


def test_a_model_reached_through_an_sdk_is_one_llm_span_under_its_node(run, receiver, fake_openai):
    """The LLM node's runtime calls the openai SDK on the node's worker: the SDK's span is the one
    LLM span, under the node (a TASK), for the answer and for each iteration step."""
    env = {"OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "sk-test"}
    run(["python", str(WORKFLOWS), "full", "sdk"], receiver=receiver, env=env, timeout=120).check()
    tree = Tree(receiver.wait_for(_workflow_ended))
    [workflow] = tree.roots()
    llms = tree.llm()
    assert len(llms) == 3, tree.render()
    for llm in llms:
        assert llm["scope"] == "llmprobe.instrumentation.openai", tree.render()
        node = tree.parent(llm)
        assert kind(node) == "TASK" and attrs(node)["dify.node.type"] == "llm", tree.render()
        assert attrs(llm)["gen_ai.usage.input_tokens"] > 0
    steps = [s for s in tree.children(tree.one("Per item(iteration)")) if s["name"] == "Describe item(llm)"]
    assert len(steps) == 2 and all(len(tree.children(step)) == 1 for step in steps), tree.render()
    spans_input = sum(attrs(s)["gen_ai.usage.input_tokens"] for s in llms)
    receiver.wait_for(lambda _: token_sums(receiver).get("input") == spans_input, timeout=10)
    assert token_sums(receiver)["input"] == spans_input
    assert tree.parent(tree.one("Answer with context(llm)")) == workflow


def test_an_http_call_in_a_node_carries_its_trace(run, receiver):
    """A tool's HTTP request (httpx, traced by OpenTelemetry's httpx instrumentation, which
    `instrument` turns on) is a CLIENT span under the tool's call, and the request carries it as
    its W3C traceparent: what reaches Dify's plugin daemon or a tool's service."""
    result = run(["python", str(WORKFLOWS), "full", "http"], receiver=receiver, timeout=120)
    result.check()
    tree = Tree(receiver.wait_for(_workflow_ended))
    [tool] = tree.children(tree.one("Weather tool(tool)"))
    assert kind(tool) == "TOOL" and tool["name"] == "execute_tool weather", tree.render()
    [request] = tree.children(tool)
    assert request["kind"] == "CLIENT", tree.render()
    [header] = [
        line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("traceparent: ")
    ]
    _version, trace_id, span_id, _flags = header.split("-")
    assert (trace_id, span_id) == (request["trace_id"], request["span_id"]), tree.render()
    assert request["trace_id"] == tree.roots()[0]["trace_id"]


def test_a_model_reached_through_dify_model_runtime_is_one_llm_span(run, receiver):
    """The LLM node reaches its model as Dify does: through the model runtime's
    LargeLanguageModel.invoke (Dify's ModelInstance calls it, and it hands the request to the
    provider's plugin). That call is the one LLM span, under the node, with the prompt, the
    streamed answer, the tokens and the time to the first token."""
    tree = _run(run, receiver, "full", _workflow_ended, "provider")
    llms = tree.llm()
    assert len(llms) == 3, tree.render()
    for llm in llms:
        node = tree.parent(llm)
        assert kind(node) == "TASK" and attrs(node)["dify.node.type"] == "llm", tree.render()
        a = attrs(llm)
        assert llm["kind"] == "CLIENT" and a["gen_ai.provider.name"] == "openai"
        assert a["gen_ai.request.stream"] is True and a["gen_ai.response.time_to_first_token"] > 0
    # Counted once: the token metric's input tokens are the LLM and embedding spans' own.
    spans_input = sum(attrs(s).get("gen_ai.usage.input_tokens", 0) for s in tree.spans)
    receiver.wait_for(lambda _: token_sums(receiver).get("input") == spans_input, timeout=10)
    assert spans_input > 0 and token_sums(receiver)["input"] == spans_input
    answer = tree.children(tree.one("Answer with context(llm)"))[0]
    a = attrs(answer)
    assert a["gen_ai.request.model"] == "gpt-4o-mini" and a["gen_ai.usage.output_tokens"] == 6
    assert (
        content(answer, "gen_ai.output.messages")[0]["parts"][0]["content"]
        == "Paris is the capital of France."
    )
    assert content(answer, "gen_ai.input.messages")[-1]["role"] == "user"
    # The retrieval's embedding of the query and its reranking, under the retrieval.
    [retrieval] = tree.children(tree.one("Knowledge(knowledge-retrieval)"))
    embedding, rerank = sorted(tree.children(retrieval), key=kind)
    assert kind(embedding) == "EMBEDDING" and embedding["name"] == "embeddings text-embedding-3-small"
    assert attrs(embedding)["gen_ai.embeddings.dimension.count"] == 4
    assert attrs(embedding)["gen_ai.usage.input_tokens"] == 7
    assert kind(rerank) == "RERANKER" and attrs(rerank)["reranker.top_k"] == 2
    assert [d["document"]["score"] for d in content(rerank, "reranker.output_documents")] == [0.93, 0.71]


def test_a_failing_model_runtime_fails_its_span_node_and_workflow(run, receiver):
    tree = _run(run, receiver, "fail", _workflow_ended, "provider")
    [llm] = tree.llm()
    assert llm["status"]["code"] == "ERROR" and "rate limited" in llm["status"]["message"], tree.render()
    assert tree.one("Ask LLM(llm)")["status"]["code"] == "ERROR"
    assert tree.roots()[0]["status"]["code"] == "ERROR"


def test_each_app_is_its_own_service_with_splitapp(run, receiver):
    """PROFILER_GENAI_SPLITAPP_ENABLE=true: every span of the run, the model calls included, is
    reported under a resource whose service.name is the app's."""
    env = {"PROFILER_GENAI_SPLITAPP_ENABLE": "true"}
    run(["python", str(WORKFLOWS), "full", "provider"], receiver=receiver, env=env, timeout=120).check()
    tree = Tree(receiver.wait_for(_workflow_ended))
    assert len(tree.spans) > 15
    assert {s["resource"]["service.name"] for s in tree.spans} == {"wf-demo"}, tree.render()


def test_a_parallel_iteration_nests_what_each_step_calls(run, receiver, fake_openai):
    """A parallel iteration runs its steps on a thread pool (graphon 0.5 to 0.7 submits them with no
    context): each step's node span is current on its pool thread all the same, so the SDK call
    each step makes is the one LLM span under that step's node."""
    env = {"OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "sk-test"}
    run(["python", str(WORKFLOWS), "piter", "sdk"], receiver=receiver, env=env, timeout=120).check()
    tree = Tree(receiver.wait_for(_workflow_ended))
    [workflow] = tree.roots()
    steps = [s for s in tree.children(tree.one("Per item(iteration)")) if s["name"] == "Describe item(llm)"]
    assert len(steps) == 2, tree.render()
    for step in steps:
        [llm] = tree.children(step)
        assert kind(llm) == "LLM" and llm["scope"] == "llmprobe.instrumentation.openai", tree.render()
    assert len(tree.llm()) == 2 and all(s["trace_id"] == workflow["trace_id"] for s in tree.spans)
