"""llmprobe as the ``llmprobe`` config of bench/dashscope_overhead.py: the agent started as
``llmprobe.init()`` does it, spans and metrics exported over OTLP/HTTP by the Rust exporter to a
local sink (the peers' otlp_sink.py, in a child process), so the export's CPU is counted in the
process CPU the benchmark measures, as loongsuite's BatchSpanProcessor worker is. Toggled on/off
by llmprobe.instrumentation.dashscope.instrument() / uninstrument().

Same interface as bench/peer_plugin_openai.py: ``setup(ctx)`` returns enable / disable /
span_count / flush / shutdown.
"""

from __future__ import annotations

import atexit
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


def setup(ctx):
    sink, port = _start_sink()
    atexit.register(sink.terminate)  # by its pid, ours only
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{port}"
    os.environ["OTEL_TRACES_EXPORTER"] = "otlp"
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true" if ctx.content else "false"
    os.environ.setdefault("OTEL_SERVICE_NAME", "bench")

    import llmprobe

    llmprobe.init()
    import dashscope  # noqa: F401 - llmprobe instruments it on import
    from llmprobe import _core
    from llmprobe.instrumentation import dashscope as instrumentation

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
