"""llmprobe as a plugin of the shared peer benchmarks (../shared/peer-bench), side by side with the peers.

Hooks (the interface of peer-bench/plugin_example.py):
  make_tracer()                             bench_span_sdk.py --config sdk-batch,plugin:THIS
  run_throughput(endpoint, duration, attrs) bench_export.py --scenario throughput --throughput-plugin THIS

From /work/shared/peer-bench, with its venv (llmprobe is imported from this checkout):

  PY=/tmp/venv-peers/bin/python
  $PY bench_span_sdk.py --config api-noop,sdk-batch,plugin:/work/main/bench/peer_plugin.py --rounds 2
  $PY bench_export.py --scenario throughput --only-default --throughput-plugin /work/main/bench/peer_plugin.py

Exporter of make_tracer() (LLMPROBE_BENCH_EXPORTER):
  otlp (default)  llmprobe exports OTLP/HTTP to bench/counting_receiver.py, started here and
                  stopped at exit: end() pushes into the real queue and the exporter thread
                  works meanwhile. The queue holds 262144 spans unless OTEL_BSP_MAX_QUEUE_SIZE is
                  set, so the tight loop's spans are exported rather than dropped (the SDK's no-op
                  exporter drops none either); llmprobe prints a line at exit if any was dropped.
  none            OTEL_TRACES_EXPORTER=none: spans are built and discarded at end().

run_throughput() runs llmprobe with its default queue and batch settings in a child process
(a fresh pipeline per call, as the harness gives each variant a fresh sink); set
LLMPROBE_BENCH_RATE=<spans/s> to pace the producer instead of running it flat out.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from common import Receiver, importable_llmprobe
from export_throughput import child_env

_receiver = None


# ---- bench_span_sdk.py -----------------------------------------------------------------------
def make_tracer():
    """llmprobe's tracer, through the OpenTelemetry API as users get it."""
    global _receiver
    mode = os.environ.get("LLMPROBE_BENCH_EXPORTER", "otlp")
    os.environ.setdefault("OTEL_METRICS_EXPORTER", "none")
    if mode == "none":
        os.environ["OTEL_TRACES_EXPORTER"] = "none"
    else:
        _receiver = Receiver(decode="shallow")
        # Registered before llmprobe's exit flush, so it runs after it (atexit is last-in first-out).
        atexit.register(_receiver.stop)
        os.environ["OTEL_TRACES_EXPORTER"] = "otlp"
        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = _receiver.endpoint
        os.environ.setdefault("OTEL_BSP_MAX_QUEUE_SIZE", "262144")
    importable_llmprobe()
    import llmprobe
    from opentelemetry import trace

    llmprobe.init()
    tracer = trace.get_tracer("bench")
    if type(tracer).__module__ != "llmprobe._tracer":
        raise RuntimeError(f"llmprobe's provider is not the global one (got {type(tracer)})")
    return tracer


# ---- bench_export.py --throughput-plugin -----------------------------------------------------
def run_throughput(endpoint, duration, attrs):
    """1 thread makes spans for `duration` s, llmprobe exports them to `endpoint` (OTLP/HTTP)."""
    # The child is export_throughput.py's llmprobe config, so it gets that config's environment.
    env = child_env("llmprobe", endpoint, [])
    rate = os.environ.get("LLMPROBE_BENCH_RATE")
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        json.dumps([duration, attrs, float(rate) if rate else None]),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode:
        raise RuntimeError(f"llmprobe throughput child failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _throughput_child(duration: float, attrs: dict, rate: float | None) -> dict:
    import resource
    import time

    import export_throughput as et

    x = et.Exporting("llmprobe", "")  # the endpoint comes from the environment
    for _ in range(2000):  # warm-up, as the harness does for the SDK
        x.tracer.start_span("warmup", attributes=attrs).end()
    x.flush()
    before = x.counters()
    made, window, _ = x.produce(duration, rate)
    in_window = x.counters()["exported"] - before["exported"]
    t0 = time.perf_counter()
    x.flush(30.0)
    shutdown_s = time.perf_counter() - t0
    after = x.counters()
    exported = after["exported"] - before["exported"]
    return {
        "produced": made,
        "produced_per_s": made / window,
        "exported_in_window": in_window,
        "exported_per_s_in_window": in_window / window,
        "exported_total": exported,
        "dropped_by_queue": after["dropped_queue_full"] - before["dropped_queue_full"],
        "export_failed": after["failed"] - before["failed"],
        "dropped_pct": (made - exported) / made * 100,
        "shutdown_s": shutdown_s,
        "peak_rss_kb_sampled": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "notes": "llmprobe (Rust exporter, default queue 2048 / batch 512 / delay 5 s); "
        + (f"producer paced at {rate:g}/s; " if rate else "producer flat out; ")
        + "shutdown_s = final force_flush; peak RSS = ru_maxrss",
    }


if __name__ == "__main__":
    importable_llmprobe()
    d, a, r = json.loads(sys.argv[1])
    print(json.dumps(_throughput_child(d, a, r)))
