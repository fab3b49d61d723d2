"""`instrument python script.py` and `instrument python -m module`: spans made through the
OpenTelemetry API arrive at a real OTLP receiver with the right tree, ids, attributes and resource."""

from __future__ import annotations

import json

import pytest
from span_query import assert_child_of, children, one

REMOTE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REMOTE_SPAN = "00f067aa0ba902b7"

MANUAL = f"""
import json
import os

from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

tracer = trace.get_tracer("e2e.manual", "1.2.3")
facts = {{"pid": os.getpid()}}

with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes={{"at.start": "yes"}}) as root:
    root.set_attributes({{
        "str": "text", "str.unicode": "héllo ✓ 中文 😀", "str.empty": "",
        "bool": True, "int": -42, "int.big": 2**62, "float": 3.25,
        "list.str": ["a", "b"], "list.bool": [True, False], "list.int": [1, 2, 3],
        "list.float": [0.5, 1.5], "tuple.int": (4, 5),
    }})
    root.set_attribute("single", 1)
    root.add_event("checkpoint", {{"step": 1, "label": "é", "ok": True, "ratio": 0.5, "tags": ["x", "y"]}})
    with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
        child.set_status(Status(StatusCode.OK))
        with tracer.start_as_current_span("grandchild") as grandchild:
            carrier = {{}}
            propagate.inject(carrier)
            facts["injected"] = carrier
            grandchild.update_name("grandchild renamed")
    try:
        with tracer.start_as_current_span("failing"):
            raise ValueError("boom")
    except ValueError:
        pass
    with tracer.start_as_current_span("explicit error") as span:
        span.set_status(StatusCode.ERROR, "it went wrong")
    linked = tracer.start_span("manual", links=[Link(root.get_span_context(), {{"why": "link"}})])
    linked.record_exception(KeyError("k"))
    linked.end()

remote = TraceContextTextMapPropagator().extract(
    {{"traceparent": "00-{REMOTE_TRACE}-{REMOTE_SPAN}-01", "tracestate": "vendor=abc"}}
)
with tracer.start_as_current_span("continued", context=remote, kind=SpanKind.CONSUMER):
    pass
print(json.dumps(facts))
"""

ATTRIBUTES = {
    "at.start": "yes",
    "str": "text",
    "str.unicode": "héllo ✓ 中文 😀",
    "str.empty": "",
    "bool": True,
    "int": -42,
    "int.big": 2**62,
    "float": 3.25,
    "list.str": ["a", "b"],
    "list.bool": [True, False],
    "list.int": [1, 2, 3],
    "list.float": [0.5, 1.5],
    "tuple.int": [4, 5],
    "single": 1,
}


@pytest.mark.parametrize(
    ("how", "args", "service"),
    [
        ("script", ["python", "e2eapp/manual.py"], "manual"),
        ("module", ["python", "-m", "e2eapp.manual"], "e2eapp.manual"),
    ],
)
def test_manual_spans_arrive_as_trees(run, receiver, write_script, how, args, service):
    write_script("e2eapp/__init__.py", "")
    write_script("e2eapp/manual.py", MANUAL)
    result = run(args, receiver=receiver).check()
    facts = json.loads(result.last_line())
    assert result.warnings() == []

    spans = receiver.wait_for(7)
    assert len(receiver.settle()) == 7
    root = one(spans, "root")
    child, grandchild = one(spans, "child"), one(spans, "grandchild renamed")
    failing, error, manual = one(spans, "failing"), one(spans, "explicit error"), one(spans, "manual")
    continued = one(spans, "continued")

    # The tree and its ids.
    assert root["parent_span_id"] is None
    assert len(root["trace_id"]) == 32 and int(root["trace_id"], 16) != 0
    assert len(root["span_id"]) == 16 and int(root["span_id"], 16) != 0
    for span in (child, failing, error, manual):
        assert_child_of(span, root)
    assert_child_of(grandchild, child)
    assert {s["name"] for s in children(spans, root)} == {"child", "failing", "explicit error", "manual"}
    assert len({s["span_id"] for s in spans}) == 7
    # What propagation injects is the current span's context, as exported.
    assert facts["injected"]["traceparent"] == f"00-{grandchild['trace_id']}-{grandchild['span_id']}-01"

    # A trace continued from a traceparent: the caller's trace id, parent and trace state.
    assert continued["trace_id"] == REMOTE_TRACE
    assert continued["parent_span_id"] == REMOTE_SPAN
    assert continued["trace_state"] == "vendor=abc"

    assert [root["kind"], child["kind"], grandchild["kind"], continued["kind"]] == [
        "SERVER",
        "CLIENT",
        "INTERNAL",
        "CONSUMER",
    ]
    assert root["attributes"] == ATTRIBUTES
    assert root["start_time"] < root["end_time"]

    [event] = root["events"]
    assert event["name"] == "checkpoint"
    assert event["attributes"] == {"step": 1, "label": "é", "ok": True, "ratio": 0.5, "tags": ["x", "y"]}
    assert root["start_time"] <= event["time"] <= root["end_time"]

    assert root["status"]["code"] == "UNSET"
    assert child["status"]["code"] == "OK"
    assert error["status"] == {"code": "ERROR", "message": "it went wrong"}

    # An exception leaving a span's scope: ERROR status, error.type and the exception event.
    assert failing["status"]["code"] == "ERROR" and "boom" in failing["status"]["message"]
    assert failing["attributes"]["error.type"] in ("ValueError", "builtins.ValueError")
    [exc_event] = failing["events"]
    assert exc_event["name"] == "exception"
    assert exc_event["attributes"]["exception.type"] in ("ValueError", "builtins.ValueError")
    assert exc_event["attributes"]["exception.message"] == "boom"
    stacktrace = exc_event["attributes"]["exception.stacktrace"]
    assert (
        "Traceback" in stacktrace
        and 'raise ValueError("boom")' in stacktrace
        and "ValueError: boom" in stacktrace
    )

    # record_exception records without changing the status; links carry their attributes.
    assert manual["status"]["code"] == "UNSET"
    assert [e["attributes"]["exception.type"] for e in manual["events"]] in (
        ["KeyError"],
        ["builtins.KeyError"],
    )
    assert manual["links"] == [
        {
            "trace_id": root["trace_id"],
            "span_id": root["span_id"],
            "trace_state": "",
            "attributes": {"why": "link"},
        }
    ]

    for span in spans:
        assert (span["scope"], span["scope_version"]) == ("e2e.manual", "1.2.3")
        assert span["resource"]["service.name"] == service
        assert span["resource"]["process.pid"] == facts["pid"]


def test_attribute_values_of_other_types_are_left_out(run, receiver, write_script):
    """None, dicts and mixed lists are not valid attribute values: left out, the rest kept."""
    write_script(
        "odd.py",
        """
        from opentelemetry import trace

        with trace.get_tracer("t").start_as_current_span("odd") as span:
            span.set_attributes({"none": None, "dict": {"a": 1}, "mixed": [1, "a"], "good": "kept"})
            span.set_attribute("object", object())
            span.set_attribute("also.good", 2)
        print("still running")
    """,
    )
    result = run(["python", "odd.py"], receiver=receiver).check()
    assert "still running" in result.stdout
    span = one(receiver.wait_for(1), "odd")
    assert span["attributes"] == {"good": "kept", "also.good": 2}


def test_child_python_processes_are_instrumented_and_continue_the_trace(run, receiver, write_script):
    write_script(
        "parent.py",
        """
        import os
        import subprocess
        import sys

        from opentelemetry import propagate, trace

        with trace.get_tracer("t").start_as_current_span("in parent"):
            carrier = {}
            propagate.inject(carrier)
            env = dict(os.environ, PARENT_TRACEPARENT=carrier["traceparent"])
            subprocess.run([sys.executable, "child.py"], env=env, check=True)
    """,
    )
    write_script(
        "child.py",
        """
        import os

        from opentelemetry import propagate, trace

        context = propagate.extract({"traceparent": os.environ["PARENT_TRACEPARENT"]})
        with trace.get_tracer("t").start_as_current_span("in child", context=context):
            pass
    """,
    )
    run(["python", "parent.py"], receiver=receiver).check()
    spans = receiver.wait_for(2)
    parent, child = one(spans, "in parent"), one(spans, "in child")
    assert child["trace_id"] == parent["trace_id"] and child["parent_span_id"] == parent["span_id"]
    assert child["resource"]["service.name"] == "child" and parent["resource"]["service.name"] == "parent"
    assert child["resource"]["process.pid"] != parent["resource"]["process.pid"]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_span_open_across_a_fork_is_exported_once_by_the_parent(run, receiver, write_script):
    """Both processes leave the `with` block of a span started before the fork: one span with
    that id arrives, from the parent; the child's own spans arrive from the child, under it."""
    write_script(
        "forking.py",
        """
        import json, os

        from opentelemetry import trace

        tracer = trace.get_tracer("t")
        with tracer.start_as_current_span("job") as job:
            child = os.fork()
            if child == 0:
                with tracer.start_as_current_span("child work"):
                    pass
                job.set_attribute("set.in", "child")
            else:
                os.waitpid(child, 0)
                job.set_attribute("set.in", "parent")
        if child:
            print(json.dumps({"parent": os.getpid(), "child": child}))
    """,
    )
    result = run(["python", "forking.py"], receiver=receiver).check()
    pids = json.loads(result.stdout.strip().splitlines()[-1])
    receiver.wait_for(2)
    spans = receiver.settle()  # everything both processes sent
    job = one(spans, "job")
    work = one(spans, "child work")
    assert job["resource"]["process.pid"] == pids["parent"]
    assert job["attributes"] == {"set.in": "parent"}
    assert work["resource"]["process.pid"] == pids["child"]
    assert_child_of(work, job)


def test_the_applications_own_sitecustomize_and_pythonpath_still_work(run, receiver, write_script, tmp_path):
    write_script(
        "site/sitecustomize.py",
        """
        import os
        os.environ["APP_SITECUSTOMIZE"] = "ran"
    """,
    )
    write_script("site/helper_module.py", "VALUE = 'from the user PYTHONPATH'\n")
    write_script(
        "app.py",
        """
        import os

        import helper_module
        from opentelemetry import trace

        with trace.get_tracer("t").start_as_current_span("app span"):
            pass
        print(os.environ.get("APP_SITECUSTOMIZE"), helper_module.VALUE)
    """,
    )
    result = run(["python", "app.py"], receiver=receiver, env={"PYTHONPATH": str(tmp_path / "site")}).check()
    assert result.last_line() == "ran from the user PYTHONPATH"
    one(receiver.wait_for(1), "app span")


def test_exit_code_and_output_of_the_application_are_its_own(run, receiver, write_script):
    write_script(
        "fails.py",
        """
        from opentelemetry import trace

        with trace.get_tracer("t").start_as_current_span("before the crash"):
            print("working")
        raise RuntimeError("the application's own error")
    """,
    )
    result = run(["python", "fails.py"], receiver=receiver)
    assert result.returncode == 1
    assert result.stdout == "working\n"
    assert "RuntimeError: the application's own error" in result.stderr
    one(receiver.wait_for(1), "before the crash")  # flushed at exit all the same

    write_script("exits.py", "import sys\nprint('bye')\nsys.exit(3)\n")
    result = run(["python", "exits.py"], receiver=receiver)
    assert (result.returncode, result.stdout) == (3, "bye\n")


@pytest.mark.parametrize("under_instrument", [False, True], ids=["plain-python", "under-instrument"])
def test_init_twice_is_harmless(run, receiver, write_script, under_instrument):
    write_script(
        "init_twice.py",
        """
        import llmprobe

        llmprobe.init()
        llmprobe.init()
        from opentelemetry import trace

        with trace.get_tracer("t").start_as_current_span("once"):
            pass
        llmprobe.init()
        print("ok")
    """,
    )
    result = run(["python", "init_twice.py"], receiver=receiver, instrument=under_instrument).check()
    assert result.stdout == "ok\n"
    assert result.warnings() == []
    receiver.wait_for(1)
    spans = receiver.settle()
    assert [s["name"] for s in spans] == ["once"]
    assert spans[0]["resource"]["service.name"] == "init_twice"


def test_a_command_that_does_not_exist(run):
    result = run(["no-such-command-for-llmprobe"])
    assert result.returncode == 127
    assert "no-such-command-for-llmprobe" in result.stderr and "command not found" in result.stderr
    result = run(["./no/such/file"])
    assert result.returncode == 127
    assert "No such file or directory" in result.stderr
