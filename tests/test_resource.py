"""The resource on exported spans: service.name, OTEL_RESOURCE_ATTRIBUTES, the distro, the process,
and llmprobe.app.type (detected from installed distributions, or APSARA_APM_APP_TYPE)."""

from __future__ import annotations

import importlib.metadata
import socket

import pytest
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
    resource, _ = _resource(run, receiver, write_script, env={
        "OTEL_SERVICE_NAME": "checkout",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=staging,team=a%20b%2Cc,service.name=ignored",
    })
    assert resource["service.name"] == "checkout"  # OTEL_SERVICE_NAME wins over the attribute
    assert resource["deployment.environment"] == "staging"
    assert resource["team"] == "a b,c"  # percent-decoded
    # Merged into llmprobe's resource, not in place of it.
    assert resource["telemetry.distro.name"] == "llmprobe"
    assert resource["llmprobe.app.type"] == detected_here()
    assert "process.pid" in resource


def test_service_name_from_resource_attributes(run, receiver, write_script):
    resource, _ = _resource(run, receiver, write_script, env={"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs"})
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
def test_app_type_detected_from_installed_distributions(run, receiver, write_script, tmp_path,
                                                        distributions, expected):
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
