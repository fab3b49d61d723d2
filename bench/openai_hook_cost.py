#!/usr/bin/env python3
"""The CPU llmprobe's openai hooks take per call, measured directly (a low-noise companion to
openai_overhead.py, whose paired whole-call differences are only as precise as the machine is
quiet: a 50-chunk stream costs the SDK itself about 10 ms, and the noise is hundreds of us).

The hooks run exactly as in a call (the wrapper from _genai.hooks with openai.py's before/after,
a real span, content capture on, metrics on) around a stand-in for the SDK's request that
returns the answer the SDK would have parsed: the same ChatCompletion, or the same 54 chunks
(role, 50 content chunks, finish, usage) from a stream. Between two measured calls a real SDK
call runs (unmeasured), so that the hooks find the caches as a real application leaves them.
Spans go to a local OTLP sink; the exporter thread's CPU is reported apart (process - thread).

    python bench/openai_hook_cost.py            # any Python with openai and llmprobe importable
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CALLS = 600


def main() -> None:
    sink = subprocess.Popen(
        [
            sys.executable,
            os.path.join(os.environ.get("LLMPROBE_PEER_BENCH", "/work/shared/peer-bench"), "otlp_sink.py"),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    port = int(sink.stdout.readline().split()[1])
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{port}"
    try:
        import llmprobe
    except ImportError:
        sys.path.insert(0, str(HERE.parent / "python"))
    import openai_overhead

    b = openai_overhead.harness()
    import llmprobe

    llmprobe.init()
    from llmprobe import _core
    from llmprobe.instrumentation import _genai
    from llmprobe.instrumentation import openai as lp
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    client = b.make_client()
    lp.uninstrument()  # the SDK calls between measured ones run without llmprobe
    completion = ChatCompletion.model_validate(json.loads(b.CHAT_BYTES))
    chunks = [
        ChatCompletionChunk.model_validate(json.loads(line[6:]))
        for line in b.STREAM_BYTES.split(b"\n\n")
        if line.startswith(b"data: {")
    ]

    class Stream:  # stands for openai.Stream: the proxy takes it for one
        def __init__(self) -> None:
            self._chunks = iter(chunks)

        def __iter__(self):
            return self._chunks

    lp._SYNC_STREAMS = (*lp._SYNC_STREAMS, Stream)
    passed_on = lp._SYNC_STREAMS + lp._ASYNC_STREAMS + lp._RAW_RESPONSES
    wrapper = _genai.hooks(
        "bench", lp._before, lp._after, lp._error, lp.OWNER, lp._tracer, "openai_chat", passed_on
    )
    resource = client.chat.completions

    def hooked_sync() -> None:
        wrapper(lambda **kw: completion, resource, (), dict(b.REQ_KW))

    def hooked_stream() -> None:
        for _ in wrapper(lambda **kw: Stream(), resource, (), dict(b.REQ_KW, stream=True)):
            pass

    for name, hooked, real in (("sync", hooked_sync, b.call_sync), ("stream", hooked_stream, b.call_stream)):
        main_thread, whole = [], []
        gc.collect()
        for _ in range(CALLS):
            real(client)
            p0, t0 = time.process_time_ns(), time.thread_time_ns()
            hooked()
            main_thread.append(time.thread_time_ns() - t0)
            whole.append(time.process_time_ns() - p0)
        _core.force_flush(5.0)
        print(
            f"{name}: hooks + span + metrics on the calling thread: median "
            f"{statistics.median(main_thread) / 1e3:.1f} us (p25 {statistics.quantiles(main_thread, n=4)[0] / 1e3:.1f})"
        )
    print(f"speed probe: {_probe():.0f} ns per `s += i` (this machine when quiet: 33-35; scale by it)")
    sink.terminate()
    sink.wait(5)


def _probe() -> float:
    best = 1.0
    for _ in range(5):
        started = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return best * 1e3


if __name__ == "__main__":
    main()
