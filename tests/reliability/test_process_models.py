"""Promise: under `instrument`, multiprocessing's children export their own spans, once, with
every start method (fork, forkserver, spawn), from a Process and from a ProcessPoolExecutor;
fork and forkserver children leave through os._exit, never through atexit, and their spans
arrive all the same."""

from __future__ import annotations

from collections import Counter

import pytest

APP = """
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

from opentelemetry import trace

tracer = trace.get_tracer("process-models")


def work(tag):
    with tracer.start_as_current_span(f"child {tag}"):
        pass
    return tag


if __name__ == "__main__":
    method = sys.argv[1]
    context = multiprocessing.get_context(method)
    with tracer.start_as_current_span("parent"):
        process = context.Process(target=work, args=(f"process-{method}",))
        process.start()
        process.join()
        with ProcessPoolExecutor(2, mp_context=context) as pool:
            done = list(pool.map(work, [f"pool-{method}-{i}" for i in range(4)]))
    print(process.exitcode, done)
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_every_child_exports_its_spans_once(run, receiver, write_script, method):
    write_script("app.py", APP)
    result = run(["python", "app.py", method], receiver=receiver).check()
    tags = [f"pool-{method}-{i}" for i in range(4)]
    assert result.stdout == f"0 {tags}\n"
    expected = ["parent", f"child process-{method}", *(f"child {tag}" for tag in tags)]
    spans = receiver.wait_for(lambda got: len(got) >= len(expected))
    receiver.settle()
    names = Counter(span["name"] for span in receiver.spans)
    assert names == Counter(expected), names
    assert len({span["span_id"] for span in spans}) == len(spans)
