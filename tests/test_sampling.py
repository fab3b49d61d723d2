"""OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG: what is sampled is exported, the rest is not."""

from __future__ import annotations

import json

from span_query import named, one

ROOTS = """
import sys

from opentelemetry import trace

tracer = trace.get_tracer("t")
recording = 0
for i in range(int(sys.argv[1])):
    with tracer.start_as_current_span("root") as root:
        recording += root.is_recording()
        with tracer.start_as_current_span("child"):
            pass
print(recording)
"""

REMOTE = """
import json

from opentelemetry import propagate, trace

tracer = trace.get_tracer("t")
facts = {}
for flags, name in (("01", "under sampled parent"), ("00", "under unsampled parent")):
    context = propagate.extract({"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-{flags}"})
    with tracer.start_as_current_span(name, context=context) as span:
        carrier = {}
        propagate.inject(carrier)
        facts[name] = carrier["traceparent"]
with tracer.start_as_current_span("new root"):
    pass
print(json.dumps(facts))
"""


def test_always_off_exports_nothing(run, receiver, write_script):
    write_script("roots.py", ROOTS)
    result = run(
        ["python", "roots.py", "20"], receiver=receiver, env={"OTEL_TRACES_SAMPLER": "always_off"}
    ).check()
    assert result.last_line() == "0"
    assert receiver.settle() == [] and receiver.request_count == 0


def test_always_on_exports_everything(run, receiver, write_script):
    write_script("roots.py", ROOTS)
    result = run(
        ["python", "roots.py", "20"], receiver=receiver, env={"OTEL_TRACES_SAMPLER": "always_on"}
    ).check()
    assert result.last_line() == "20"
    assert len(receiver.wait_for(40)) == 40


def test_traceidratio_samples_about_the_ratio(run, receiver, write_script):
    write_script("roots.py", ROOTS)
    result = run(
        ["python", "roots.py", "400"],
        receiver=receiver,
        env={"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"},
    ).check()
    recording = int(result.last_line())
    spans = receiver.settle(quiet=0.5)
    roots = named(spans, "root")
    # Binomial(400, 0.5) has a standard deviation of 10: 120..280 is eight of them either side.
    assert 120 <= len(roots) <= 280, len(roots)
    assert len(roots) == recording
    # traceidratio decides by trace id, and a child has its root's trace id: same decision.
    root_traces = {s["trace_id"] for s in roots}
    assert {s["trace_id"] for s in named(spans, "child")} == root_traces


def test_parentbased_always_off_follows_a_sampled_remote_parent(run, receiver, write_script):
    write_script("remote.py", REMOTE)
    result = run(
        ["python", "remote.py"], receiver=receiver, env={"OTEL_TRACES_SAMPLER": "parentbased_always_off"}
    ).check()
    facts = json.loads(result.last_line())
    spans = receiver.settle()
    sampled = one(spans, "under sampled parent")
    assert (sampled["trace_id"], sampled["parent_span_id"]) == ("ab" * 16, "cd" * 8)
    assert [s["name"] for s in spans] == ["under sampled parent"]  # no root: always_off decides those
    # The unsampled child still propagates its trace, with the sampled flag off.
    assert facts["under unsampled parent"].startswith(f"00-{'ab' * 16}-")
    assert facts["under unsampled parent"].endswith("-00")
    assert facts["under sampled parent"] == f"00-{'ab' * 16}-{sampled['span_id']}-01"


def test_default_sampler_respects_an_unsampled_remote_parent(run, receiver, write_script):
    write_script("remote.py", REMOTE)
    run(["python", "remote.py"], receiver=receiver).check()
    receiver.wait_for(2)
    assert sorted(s["name"] for s in receiver.settle()) == ["new root", "under sampled parent"]
