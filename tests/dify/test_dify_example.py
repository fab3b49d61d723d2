"""examples/dify_workflow.py, run as its docstring says: the answer on stdout, and at the collector
one trace of the workflow run, its nodes, and the model call under the LLM node."""

from __future__ import annotations

from conftest import HERE
from span_query import Tree, attrs, kind

EXAMPLE = HERE.parents[1] / "examples" / "dify_workflow.py"


def test_the_example_answers_and_its_trace_arrives(run, receiver):
    result = run(["python", str(EXAMPLE), "What is the capital of France?"], receiver=receiver, timeout=120)
    result.check()
    assert result.stdout.strip() == "Paris is the capital of France."
    tree = Tree(receiver.wait_for(lambda got: any(s["name"] == "workflow support-bot" for s in got)))
    [workflow] = tree.roots()
    assert tree.shape(workflow) == (
        "workflow support-bot",
        (
            ("Start(start)", ()),
            ("Answer(llm)", (("chat gpt-4o-mini", ()),)),
            ("End(end)", ()),
        ),
    )
    [llm] = tree.llm()
    assert kind(llm) == "LLM" and attrs(llm)["gen_ai.usage.output_tokens"] == 6
    assert attrs(workflow)["gen_ai.user.id"] == "user-42"
