"""The resource on exported spans: service.name, OTEL_RESOURCE_ATTRIBUTES, the distro, the process,
llmprobe.app.type (detected from installed distributions, or APSARA_APM_APP_TYPE), and a service per
app with PROFILER_GENAI_SPLITAPP_ENABLE."""

from __future__ import annotations

import importlib.metadata
import socket

import pytest
from otlp_decode import spans_from_jsonl
from span_query import one

APP = """
import os

from opentelemetry import trace

with trace.get_tracer("t").start_as_current_span("resource probe"):
    pass
print(os.getpid())
"""

APP_PACKAGES = ("openai", "dashscope", "llama-index", "llama-index-core", "langchain", "langchain-core")
MODEL_PACKAGES = ("vllm", "sglang")


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def detected_here() -> str:
    """What the issue says detection gives for this interpreter's installed distributions."""
    if any(_installed(n) for n in MODEL_PACKAGES):
        return "model"
    if any(_installed(n) for n in APP_PACKAGES):
        return "app"
    return "microservice"


def _resource(run, receiver, write_script, env=None, name="app.py"):
    write_script(name, APP)
    result = run(["python", name], receiver=receiver, env=env).check()
    span = one(receiver.wait_for(1), "resource probe")
    return span["resource"], result


def test_default_resource(run, receiver, write_script):
    resource, result = _resource(run, receiver, write_script, name="my_service.py")
    assert resource["service.name"] == "my_service"
    assert resource["process.pid"] == int(result.last_line())
    assert resource["host.name"] == socket.gethostname()
    assert isinstance(resource["service.instance.id"], str) and resource["service.instance.id"]
    assert resource["telemetry.distro.name"] == "llmprobe"
    assert resource["telemetry.distro.version"] == importlib.metadata.version("llmprobe")
    for key in ("telemetry.sdk.name", "telemetry.sdk.language", "telemetry.sdk.version"):
        assert resource.get(key), f"{key} missing from {resource}"
    assert resource["llmprobe.app.type"] == detected_here()


def test_service_name_and_resource_attributes_from_the_environment(run, receiver, write_script):
    resource, _ = _resource(
        run,
        receiver,
        write_script,
        env={
            "OTEL_SERVICE_NAME": "checkout",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=staging,team=a%20b%2Cc,service.name=ignored",
        },
    )
    assert resource["service.name"] == "checkout"  # OTEL_SERVICE_NAME wins over the attribute
    assert resource["deployment.environment"] == "staging"
    assert resource["team"] == "a b,c"  # percent-decoded
    # Merged into llmprobe's resource, not in place of it.
    assert resource["telemetry.distro.name"] == "llmprobe"
    assert resource["llmprobe.app.type"] == detected_here()
    assert "process.pid" in resource


def test_service_name_from_resource_attributes(run, receiver, write_script):
    resource, _ = _resource(
        run, receiver, write_script, env={"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs"}
    )
    assert resource["service.name"] == "from-attrs"


@pytest.mark.parametrize("app_type", ["app", "model", "microservice"])
def test_app_type_override(run, receiver, write_script, app_type):
    resource, result = _resource(run, receiver, write_script, env={"APSARA_APM_APP_TYPE": app_type})
    assert resource["llmprobe.app.type"] == app_type
    assert result.warnings() == []


def test_bad_app_type_is_warned_and_detection_used(run, receiver, write_script):
    resource, result = _resource(run, receiver, write_script, env={"APSARA_APM_APP_TYPE": "robot"})
    assert resource["llmprobe.app.type"] == detected_here()
    [warning] = result.warnings()
    for word in ("APSARA_APM_APP_TYPE", "robot", "app", "model", "microservice"):
        assert word in warning


@pytest.mark.parametrize(
    ("distributions", "expected"),
    [(["openai"], "app"), (["langchain_core"], "app"), (["vllm"], "model"), (["openai", "sglang"], "model")],
)
def test_app_type_detected_from_installed_distributions(
    run, receiver, write_script, tmp_path, distributions, expected
):
    """Only the distributions' metadata is installed here (no importable package): detection
    must come from the metadata, without importing the library."""
    site = tmp_path / "site"
    for name in distributions:
        info = site / f"{name}-1.0.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0.0\n")
    resource, result = _resource(run, receiver, write_script, env={"PYTHONPATH": str(site)})
    assert resource["llmprobe.app.type"] == expected
    assert result.warnings() == []


# PROFILER_GENAI_SPLITAPP_ENABLE: a span given a service name (Span.set_service_name), and the
# spans started under it, are reported under the process's resource with that service.name.
SPLIT_APP = """
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

tracer = trace.get_tracer("t")
with tracer.start_as_current_span("app request") as root:
    root.set_service_name("support-bot")
    with tracer.start_as_current_span("app step"):
        pass
root.set_service_name("too-late")  # the span has ended: ignored
# Started under the ended root: still the root's service.
tracer.start_span("late step", context=trace.set_span_in_context(root)).end()
with tracer.start_as_current_span("process request"):
    pass
remote = TraceContextTextMapPropagator().extract(
    {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
tracer.start_span("remote child", context=remote).end()
print("app ran")
"""

APP_SPANS = ("app request", "app step", "late step")
PROCESS_SPANS = ("process request", "remote child")
# One batch at exit: what goes in one request is then known.
SPLIT_ENV = {
    "OTEL_SERVICE_NAME": "dify-api",
    "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod",
    "OTEL_BSP_SCHEDULE_DELAY": "60000",
}


def _without_service(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k != "service.name"}


def _check_services(spans: list[dict], app_service: str) -> None:
    assert sorted(s["name"] for s in spans) == sorted(APP_SPANS + PROCESS_SPANS)
    process = one(spans, "process request")["resource"]
    assert process["service.name"] == "dify-api" and process["deployment.environment"] == "prod"
    for name in APP_SPANS:
        assert one(spans, name)["resource"]["service.name"] == app_service, name
    assert one(spans, "remote child")["resource"] == process
    for span in spans:
        assert _without_service(span["resource"]) == _without_service(process), span["name"]
    assert one(spans, "app step")["parent_span_id"] == one(spans, "app request")["span_id"]


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json", "grpc"])
def test_split_app_reports_a_named_span_and_its_children_under_their_service(
    run, receiver, grpc_receiver, write_script, protocol
):
    collector = grpc_receiver if protocol == "grpc" else receiver
    write_script("app.py", SPLIT_APP)
    result = run(
        ["python", "app.py"],
        receiver=collector,
        env={**SPLIT_ENV, "PROFILER_GENAI_SPLITAPP_ENABLE": "true", "OTEL_EXPORTER_OTLP_PROTOCOL": protocol},
    ).check()
    assert result.stdout == "app ran\n" and result.stderr == ""
    _check_services(collector.wait_for(5), "support-bot")
    requests = collector.trace_requests()
    if protocol == "http/protobuf":
        # llmprobe's own encoder: one request, one ResourceSpans per service.
        assert [r["resource_spans"] for r in requests] == [2]
    else:
        # opentelemetry-otlp's exporter carries one resource: one request per service.
        assert sorted(r["resource_spans"] for r in requests) == [1, 1]


def test_split_app_in_the_file_exporter(run, write_script, tmp_path):
    write_script("app.py", SPLIT_APP)
    target = tmp_path / "traces.jsonl"
    run(
        ["python", "app.py"],
        env={
            **SPLIT_ENV,
            "PROFILER_GENAI_SPLITAPP_ENABLE": "true",
            "OTEL_TRACES_EXPORTER": "file",
            "LLMPROBE_TRACES_FILE": str(target),
        },
    ).check()
    _check_services(spans_from_jsonl(target.read_text()), "support-bot")


def test_split_app_in_the_console_exporter(run, write_script):
    write_script("app.py", SPLIT_APP)
    result = run(
        ["python", "app.py"],
        env={**SPLIT_ENV, "PROFILER_GENAI_SPLITAPP_ENABLE": "true", "OTEL_TRACES_EXPORTER": "console"},
    ).check()
    lines = {
        name: [line for line in result.stderr.splitlines() if f" {name}  " in line]
        for name in APP_SPANS + PROCESS_SPANS
    }
    assert all(len(found) == 1 for found in lines.values()), result.stderr
    # Said where the service changes: on the root, not on the spans that inherit it.
    assert lines["app request"][0].endswith("[service support-bot]"), result.stderr
    for name in ("app step", "late step", *PROCESS_SPANS):
        assert "[service" not in lines[name][0], result.stderr


def test_without_split_app_set_service_name_changes_nothing(run, receiver, write_script):
    write_script("app.py", SPLIT_APP)
    result = run(["python", "app.py"], receiver=receiver, env=SPLIT_ENV).check()
    assert result.stdout == "app ran\n" and result.stderr == ""
    _check_services(receiver.wait_for(5), "dify-api")
    assert [r["resource_spans"] for r in receiver.trace_requests()] == [1]


def test_bad_split_app_value_is_warned_and_off(run, receiver, write_script):
    write_script("app.py", SPLIT_APP)
    result = run(
        ["python", "app.py"], receiver=receiver, env={**SPLIT_ENV, "PROFILER_GENAI_SPLITAPP_ENABLE": "maybe"}
    ).check()
    assert result.stdout == "app ran\n"
    [warning] = result.warnings()
    for word in ("PROFILER_GENAI_SPLITAPP_ENABLE", "maybe", "false"):
        assert word in warning
    _check_services(receiver.wait_for(5), "dify-api")
