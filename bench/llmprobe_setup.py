"""llmprobe set up as a config of the LLM-call benchmarks: the body of peer_plugin_openai.py and
peer_plugin_dashscope.py, which differ only in the library instrumented.

The agent is started as ``llmprobe.init()`` does it, and exports spans and metrics over
OTLP/HTTP with the Rust exporter to a local sink (the peers' otlp_sink.py, in a child process),
so the export's CPU is counted in the process CPU the benchmark measures, as the peers'
BatchSpanProcessor worker is. Toggled on/off by the library's
llmprobe.instrumentation.<library>.instrument() / uninstrument().
"""

from __future__ import annotations

import atexit
import importlib
import os
import subprocess
import sys

PEER_BENCH = os.environ.get("LLMPROBE_PEER_BENCH", "/work/shared/peer-bench")


def _start_sink() -> tuple[subprocess.Popen, int]:
    sink = subprocess.Popen(
        [sys.executable, os.path.join(PEER_BENCH, "otlp_sink.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = sink.stdout.readline()
    if not line.startswith("READY"):
        sink.kill()
        raise SystemExit(f"the OTLP sink did not start: {line!r}")
    return sink, int(line.split()[1])


def setup(ctx, library: str, module: str | None = None) -> dict:
    """The harness's handles (enable / disable / span_count / flush / shutdown) for `library`
    ("openai", "dashscope", ...: llmprobe.instrumentation.<library>) instrumented by llmprobe,
    which llmprobe.init() applies when `module` (default: `library`) is imported; content
    captured if ctx.content."""
    sink, port = _start_sink()
    atexit.register(sink.terminate)  # by its pid, ours only
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{port}"
    os.environ["OTEL_TRACES_EXPORTER"] = "otlp"
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true" if ctx.content else "false"
    os.environ.setdefault("OTEL_SERVICE_NAME", "bench")

    import llmprobe

    llmprobe.init()
    importlib.import_module(module or library)  # llmprobe instruments it on import
    from llmprobe import _core

    instrumentation = importlib.import_module(f"llmprobe.instrumentation.{library}")

    def shutdown() -> None:
        _core.force_flush(5.0)
        sink.terminate()
        sink.wait(5)

    return {
        "enable": instrumentation.instrument,
        "disable": instrumentation.uninstrument,
        "span_count": lambda: _core.stats()["spans_ended"],
        "flush": lambda: _core.force_flush(5.0),
        "shutdown": shutdown,
    }
