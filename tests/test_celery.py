"""Work handed to Celery keeps the trace of the code that queued it (as a Dify request queues its
workflow runs and indexing): a producer and a worker, each under `instrument`, in two processes,
through a real broker (kombu's filesystem transport, so no server is needed). `instrument` turns
on OpenTelemetry's Celery instrumentation where it is installed; it carries the trace in the
task's headers."""

from __future__ import annotations

import subprocess
import textwrap

import pytest
from app_runner import clean_env, command
from span_query import Tree

pytest.importorskip("celery", reason="celery is not installed (pip install celery)")
pytest.importorskip(
    "opentelemetry.instrumentation.celery",
    reason="opentelemetry-instrumentation-celery is not installed (pip install opentelemetry-instrumentation-celery)",
)

TASKS = """
import os

from celery import Celery

folder = os.environ["BROKER_FOLDER"]
app = Celery("lp_tasks", broker="filesystem://", backend="file://" + os.path.join(folder, "results"))
app.conf.broker_transport_options = {"data_folder_in": folder, "data_folder_out": folder}
app.conf.broker_connection_retry_on_startup = True


@app.task(name="lp_tasks.index_document")
def index_document(document_id):
    return f"indexed {document_id}"
"""

PRODUCER = """
from opentelemetry import trace

from lp_tasks import index_document

with trace.get_tracer("request").start_as_current_span("POST /datasets/documents"):
    print(index_document.delay("doc-1").get(timeout=60))
"""


def test_a_task_continues_the_trace_of_the_request_that_queued_it(tmp_path, receiver):
    (tmp_path / "lp_tasks.py").write_text(textwrap.dedent(TASKS))
    (tmp_path / "producer.py").write_text(textwrap.dedent(PRODUCER))
    for folder in ("broker", "broker/results"):
        (tmp_path / folder).mkdir(exist_ok=True)
    env = clean_env(
        receiver, BROKER_FOLDER=str(tmp_path / "broker"), PYTHONPATH=str(tmp_path), OTEL_SERVICE_NAME=None
    )
    worker = subprocess.Popen(
        command(["python", "-m", "celery", "-A", "lp_tasks", "worker", "--pool=solo", "--loglevel=warning"]),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        producer = subprocess.run(
            command(["python", "producer.py"]),
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert producer.returncode == 0, producer.stderr
        assert producer.stdout.strip() == "indexed doc-1"
        spans = receiver.wait_for(lambda got: any(s["name"].startswith("run/") for s in got))
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    tree = Tree(spans)
    request = tree.one("POST /datasets/documents")
    run = tree.one("run/lp_tasks.index_document")
    queued = tree.parent(run)
    assert queued is not None and queued["name"] == "apply_async/lp_tasks.index_document", tree.render()
    assert tree.parent(queued) == request
    assert run["trace_id"] == request["trace_id"]
