"""Export to https:// collectors, over OTLP/HTTP and OTLP/gRPC: the server's certificate is
trusted through OTEL_EXPORTER_OTLP_CERTIFICATE (a private CA bundle), and an untrusted one
loses the spans with the reason at exit, never the application."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from otlp_receiver import GrpcReceiver, HttpReceiver
from span_query import one

APP = """
from opentelemetry import trace
trace.get_tracer("tls-test").start_span("over tls").end()
print("app ran")
"""


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for localhost, as a server's leaf (CA:FALSE, with a SAN)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


@pytest.fixture(params=["http/protobuf", "grpc"])
def tls_receiver(request, certificate):
    receiver = (HttpReceiver if request.param == "http/protobuf" else GrpcReceiver)(tls=certificate).start()
    receiver.protocol = request.param
    yield receiver
    receiver.stop()


def test_spans_reach_an_https_collector_trusted_by_certificate(run, write_script, tls_receiver, certificate):
    write_script("app.py", APP)
    result = run(
        ["python", "app.py"],
        receiver=tls_receiver,
        env={
            "OTEL_EXPORTER_OTLP_PROTOCOL": tls_receiver.protocol,
            "OTEL_EXPORTER_OTLP_CERTIFICATE": certificate[0],
        },
    ).check()
    assert result.stdout == "app ran\n"
    assert tls_receiver.endpoint.startswith("https://")
    span = one(tls_receiver.wait_for(1), "over tls")
    assert span["resource"]["service.name"] == "app"
    assert "dropped" not in result.stderr


def test_an_untrusted_collector_costs_only_the_spans(run, write_script, tls_receiver):
    write_script("app.py", APP)
    result = run(
        ["python", "app.py"],
        receiver=tls_receiver,
        env={
            "OTEL_EXPORTER_OTLP_PROTOCOL": tls_receiver.protocol,
            "OTEL_EXPORTER_OTLP_TIMEOUT": "1000",
            "LLMPROBE_SHUTDOWN_TIMEOUT": "3",
        },
    ).check()
    assert result.stdout == "app ran\n"
    assert "llmprobe: 1 span was dropped" in result.stderr
    assert tls_receiver.spans == []


def test_a_missing_certificate_file_is_reported(run, write_script, receiver, tmp_path):
    write_script("app.py", APP)
    missing = Path(tmp_path) / "nope.pem"
    result = run(
        ["python", "app.py"],
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://localhost:1",
            "OTEL_EXPORTER_OTLP_CERTIFICATE": str(missing),
        },
    ).check()
    assert result.stdout == "app ran\n"
    assert "OTEL_EXPORTER_OTLP_CERTIFICATE" in result.stderr and "nope.pem" in result.stderr
