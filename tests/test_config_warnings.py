"""Every bad value of every variable: one warning naming the variable, the value and what is used
instead; the application runs on (and its spans still go where the fallback says)."""

from __future__ import annotations

import re

import pytest
from otlp_receiver import HttpReceiver
from span_query import one

APP = """
from opentelemetry import trace

with trace.get_tracer("t").start_as_current_span("still traced"):
    pass
print("app ran")
"""

# (variable, bad value, what the warning must say is used instead (None: not checked),
#  whether the span still reaches the receiver with that fallback (None: not checked))
BAD_VALUES = [
    ("OTEL_SDK_DISABLED", "maybe", "false", True),
    ("OTEL_RESOURCE_ATTRIBUTES", "novalue", None, True),
    ("OTEL_RESOURCE_ATTRIBUTES", "team=%zz", None, True),
    ("OTEL_TRACES_EXPORTER", "bogus", "otlp", True),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon", "http/protobuf", True),
    ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "carrier-pigeon", "http/protobuf", True),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url", None, None),  # its fallback: test_bad_endpoint_...
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url", None, True),
    ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign", None, True),
    ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "no-equals-sign", None, True),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon", "10000", True),
    ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "-5", "10000", True),
    ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "none", True),
    ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "brotli", "none", True),
    ("OTEL_BSP_SCHEDULE_DELAY", "soon", "5000", True),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "-3", "2048", True),
    ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0", "512", True),
    ("OTEL_BSP_EXPORT_TIMEOUT", "abc", "30000", True),
    ("LLMPROBE_SHUTDOWN_TIMEOUT", "forever", "2", True),
    ("OTEL_TRACES_SAMPLER", "sometimes", "parentbased_always_on", True),
    ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "perhaps", "true", True),
    ("OTEL_INSTRUMENTATION_GENAI_MESSAGE_CONTENT_MAX_LENGTH", "lots", "4096", True),
    ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "big", "no limit", True),
    ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-1", "no limit", True),
    ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "x", "128", True),
    ("OTEL_ATTRIBUTE_COUNT_LIMIT", "x", "128", True),
    ("OTEL_SPAN_EVENT_COUNT_LIMIT", "x", "128", True),
    ("OTEL_SPAN_LINK_COUNT_LIMIT", "x", "128", True),
    ("APSARA_APM_APP_TYPE", "robot", None, True),
    ("PROFILER_GENAI_SPLITAPP_ENABLE", "maybe", "false", True),
]


def _mentions(line: str, variable: str) -> bool:
    # OTEL_TRACES_SAMPLER must not count a line about OTEL_TRACES_SAMPLER_ARG, and so on.
    return re.search(rf"(?<![A-Z0-9_]){re.escape(variable)}(?![A-Z0-9_])", line) is not None


def _check_one_warning(warnings: list[str], variable: str, value: str, instead: str | None) -> None:
    """`warnings`: the run's warning lines, where the one bad variable must give exactly one."""
    assert len(warnings) == 1, f"{variable}={value!r}: expected one warning, got {len(warnings)}: {warnings}"
    [line] = warnings
    assert _mentions(line, variable), f"the warning does not name {variable}: {line}"
    if value:
        assert value in line, f"the warning does not show the value {value!r}: {line}"
    if instead is not None:
        assert instead in line, f"the warning does not say {instead!r} is used instead: {line}"


@pytest.mark.parametrize(
    ("variable", "value", "instead", "arrives"), BAD_VALUES, ids=[f"{v}={x}" for v, x, _, _ in BAD_VALUES]
)
def test_bad_value_gets_one_warning(run, receiver, write_script, variable, value, instead, arrives):
    write_script("app.py", APP)
    # A short exit bound: a fallback pointing at nothing listening must not slow the suite down.
    env = {"LLMPROBE_SHUTDOWN_TIMEOUT": "0.5", variable: value}
    if variable == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
    result = run(["python", "app.py"], receiver=receiver, env=env)
    result.check()
    assert result.stdout == "app ran\n"
    _check_one_warning(result.warnings(), variable, value, instead)
    if arrives:
        one(receiver.wait_for(1), "still traced")


def test_sampler_argument_out_of_range(run, receiver, write_script):
    write_script("app.py", APP)
    result = run(
        ["python", "app.py"],
        receiver=receiver,
        env={"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
    ).check()
    _check_one_warning(result.warnings(), "OTEL_TRACES_SAMPLER_ARG", "2", "1")
    one(receiver.wait_for(1), "still traced")  # ratio 1: sampled


def test_bad_endpoint_warning_says_where_spans_go(run, write_script):
    """The fallback the warning names is the one taken: OTLP to localhost:4318, or the console."""
    local = HttpReceiver()
    local.port = 4318
    try:
        local.start()
    except OSError:
        pytest.skip("port 4318 is taken on this machine; the fallback to it cannot be observed")
    try:
        write_script("app.py", APP)
        result = run(["python", "app.py"], env={"OTEL_EXPORTER_OTLP_ENDPOINT": "not a url"}).check()
        [warning] = result.warnings()
        if "localhost:4318" in warning:
            one(local.wait_for(1), "still traced")
            assert "still traced" not in result.stderr
        else:
            assert "console" in warning, warning
            assert "still traced" in result.stderr and local.settle() == []
    finally:
        local.stop()


def test_many_bad_values_at_once(run, receiver, write_script):
    write_script("app.py", APP)
    bad = {v: x for v, x, _, arrives in BAD_VALUES if arrives and v != "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}
    result = run(["python", "app.py"], receiver=receiver, env=bad).check()
    assert result.stdout == "app ran\n"
    for variable in bad:
        lines = [line for line in result.warnings() if _mentions(line, variable)]
        assert len(lines) == 1, f"{variable}: {lines}"
    one(receiver.wait_for(1), "still traced")


def test_good_values_give_no_warning(run, receiver, write_script):
    write_script("app.py", APP)
    result = run(
        ["python", "app.py"],
        receiver=receiver,
        env={
            "OTEL_SDK_DISABLED": "false",
            "OTEL_SERVICE_NAME": "svc",
            "OTEL_RESOURCE_ATTRIBUTES": "a=b",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "5000",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "none",
            "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "50",
            "OTEL_BSP_EXPORT_TIMEOUT": "1000",
            "LLMPROBE_SHUTDOWN_TIMEOUT": "1.5",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "1.0",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false",
            "OTEL_INSTRUMENTATION_GENAI_MESSAGE_CONTENT_MAX_LENGTH": "100",
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "64",
            "APSARA_APM_APP_TYPE": "app",
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "requests",
            "LLMPROBE_DISABLED_INSTRUMENTATIONS": "openai",
            "PROFILER_GENAI_SPLITAPP_ENABLE": "true",
        },
    )
    assert result.stderr == ""
    span = one(receiver.wait_for(1), "still traced")
    assert span["resource"]["service.name"] == "svc" and span["resource"]["a"] == "b"


@pytest.mark.parametrize("value", ["true", "TRUE", "True"])
def test_sdk_disabled_makes_the_agent_a_no_op(run, receiver, write_script, value):
    write_script(
        "disabled.py",
        """
        from opentelemetry import trace

        with trace.get_tracer("t").start_as_current_span("not exported") as span:
            print("recording:", span.is_recording())
        print("app ran")
    """,
    )
    result = run(["python", "disabled.py"], receiver=receiver, env={"OTEL_SDK_DISABLED": value}).check()
    assert result.stdout == "recording: False\napp ran\n"
    assert result.stderr == ""
    assert receiver.settle() == [] and receiver.request_count == 0
