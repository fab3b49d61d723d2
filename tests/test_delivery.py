"""Getting spans to the collector, and not hanging on it: batching, retry of what may be retried
(and only that), drop counting with its exit line, and a bounded exit whatever the collector does."""

from __future__ import annotations

import time

import pytest
from span_query import drop_lines

SPANS = """
import sys
import time

from opentelemetry import trace

tracer = trace.get_tracer("delivery")
count = int(sys.argv[1])
for i in range(count):
    with tracer.start_as_current_span(f"span {i}"):
        pass
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
print(time.time())  # the moment the application is done: from here on, only llmprobe's exit remains
"""


@pytest.fixture
def spans_app(write_script):
    write_script("spans.py", SPANS)

    def args(count: int, sleep: float = 0.0) -> list[str]:
        return ["python", "spans.py", str(count), str(sleep)]

    return args


def _names(spans: list[dict]) -> list[str]:
    return sorted(s["name"] for s in spans)


def _expected(count: int) -> list[str]:
    return sorted(f"span {i}" for i in range(count))


def test_batches_are_cut_by_size(run, receiver, spans_app):
    result = run(spans_app(35), receiver=receiver, env={"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10"}).check()
    receiver.wait_for(35)
    assert _names(receiver.settle()) == _expected(35)
    sizes = [r["spans"] for r in receiver.trace_requests()]
    assert len(sizes) >= 4 and max(sizes) <= 10, sizes
    assert drop_lines(result.stderr) == []


def test_a_partial_batch_goes_after_the_schedule_delay(run, receiver, spans_app):
    """The app runs on for 1.5 s after its 3 spans: they arrive on the 100 ms delay, not at exit."""
    result = run(spans_app(3, sleep=1.5), receiver=receiver).check()
    receiver.wait_for(3)
    first = receiver.trace_requests()[0]
    assert first["wall"] < float(result.last_line()) - 1.0, "the spans were only sent at exit"


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retry_until_the_collector_accepts(run, receiver, spans_app, status):
    receiver.fail_next(2, status=status)
    result = run(spans_app(5), receiver=receiver, env={"LLMPROBE_SHUTDOWN_TIMEOUT": "10"}).check()
    receiver.wait_for(5)
    assert _names(receiver.settle()) == _expected(5)  # all of them, each once
    assert [r["status"] for r in receiver.trace_requests()][:3] == [status, status, 200]
    assert drop_lines(result.stderr) == []


def test_retry_after_is_honoured(run, receiver, spans_app):
    receiver.fail_next(1, status=503, retry_after=1)
    run(spans_app(2), receiver=receiver, env={"LLMPROBE_SHUTDOWN_TIMEOUT": "10"}).check()
    receiver.wait_for(2)
    first, second = receiver.trace_requests()[:2]
    assert second["time"] - first["time"] >= 0.9, "the retry came before Retry-After (1 s) elapsed"


@pytest.mark.parametrize("status", [400, 401, 413])
def test_other_failures_are_not_retried(run, receiver, spans_app, status):
    receiver.fail_next(1, status=status)  # a retry would succeed: the spans would then arrive
    result = run(spans_app(5), receiver=receiver).check()
    assert receiver.settle(quiet=0.5) == []
    assert [r["status"] for r in receiver.trace_requests()] == [status]
    [(count, reasons)] = drop_lines(result.stderr)
    assert count == 5
    assert "export failed" in reasons and str(status) in reasons


def test_grpc_unavailable_is_retried(run, grpc_receiver, spans_app):
    grpc_receiver.fail_next(2, status=503)
    result = run(
        spans_app(5),
        receiver=grpc_receiver,
        env={"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "LLMPROBE_SHUTDOWN_TIMEOUT": "10"},
    ).check()
    grpc_receiver.wait_for(5)
    assert _names(grpc_receiver.settle()) == _expected(5)
    assert drop_lines(result.stderr) == []


def test_grpc_invalid_argument_is_not_retried(run, grpc_receiver, spans_app):
    grpc_receiver.fail_next(1, status=400)
    result = run(spans_app(5), receiver=grpc_receiver, env={"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}).check()
    assert grpc_receiver.settle(quiet=0.5) == []
    assert grpc_receiver.request_count == 1
    [(count, _)] = drop_lines(result.stderr)
    assert count == 5


def _exit_seconds(result) -> float:
    """Seconds from the application's last line to the process's end: llmprobe's exit alone."""
    return time.time() - float(result.last_line())


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_exit_is_bounded_when_the_collector_is_dead(run, receiver, grpc_receiver, spans_app, protocol):
    collector = grpc_receiver if protocol == "grpc" else receiver
    collector.stop()  # the port is closed: every connection is refused
    result = run(
        spans_app(3, sleep=0.3),
        receiver=collector,
        env={"OTEL_EXPORTER_OTLP_PROTOCOL": protocol, "LLMPROBE_SHUTDOWN_TIMEOUT": "1"},
    ).check()
    exit_seconds = _exit_seconds(result)
    assert exit_seconds <= 1 + 1.5, f"exit took {exit_seconds:.2f}s with LLMPROBE_SHUTDOWN_TIMEOUT=1"
    [(count, _)] = drop_lines(result.stderr)
    assert count == 3


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_exit_is_bounded_when_the_collector_never_answers(run, receiver, grpc_receiver, spans_app, protocol):
    collector = grpc_receiver if protocol == "grpc" else receiver
    collector.hang()  # connections are accepted, requests read, and never answered
    result = run(
        spans_app(3, sleep=0.3), receiver=collector, env={"OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
    ).check()
    exit_seconds = _exit_seconds(result)
    assert exit_seconds <= 2 + 1.5, (
        f"exit took {exit_seconds:.2f}s with the default LLMPROBE_SHUTDOWN_TIMEOUT (2 s)"
    )
    assert collector.request_count >= 1  # the export was really under way when the app ended
    [(count, _)] = drop_lines(result.stderr)
    assert count == 3
    collector.unhang()


def test_spans_dropped_on_a_full_queue_are_counted(run, receiver, spans_app):
    total = 3000
    result = run(
        spans_app(total),
        receiver=receiver,
        env={
            "OTEL_BSP_MAX_QUEUE_SIZE": "5",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "5",
            "LLMPROBE_SHUTDOWN_TIMEOUT": "10",
        },
    ).check()
    received = receiver.settle(quiet=0.5)
    [(dropped, reasons)] = drop_lines(result.stderr)
    assert dropped > 0 and "queue" in reasons and "OTEL_BSP_MAX_QUEUE_SIZE" in reasons
    assert len({s["name"] for s in received}) == len(received)  # none twice
    assert len(received) + dropped == total, f"{len(received)} received + {dropped} dropped != {total}"
