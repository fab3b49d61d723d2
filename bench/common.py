"""What the benchmarks share: the span they make, the chat they send, the children's environment,
summary statistics, per-thread CPU, the receiver.

Every benchmark makes the same span as ../shared/peer-bench: the name ``chat gpt-4o-mini`` and
ten GenAI-style attributes (strings, ints, a float), so numbers compare with the peers' anchors.
The LLM-call benchmarks (openai_*.py, dashscope_*.py) send the same five messages (issue #3's
workload), so their costs compare across libraries.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import urllib.request
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PYTHON_SRC = os.path.join(REPO, "python")

SPAN_NAME = "chat gpt-4o-mini"
ATTRS = {
    "gen_ai.operation.name": "chat",
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.request.max_tokens": 256,
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.id": "chatcmpl-AbCdEf0123456789xyz",
    "gen_ai.usage.input_tokens": 62,
    "gen_ai.usage.output_tokens": 58,
    "server.address": "api.openai.com",
}

MESSAGES = [
    {
        "role": "system",
        "content": "You are a concise assistant that answers questions about observability, "
        "tracing and OpenTelemetry. Keep answers short.",
    },
    {"role": "user", "content": "What is a span?"},
    {"role": "assistant", "content": "A span is one timed operation, with attributes, inside a trace."},
    {"role": "user", "content": "And a trace?"},
    {
        "role": "user",
        "content": "In two sentences, what is the difference between a span and a trace, and why "
        "would I batch spans before exporting them?",
    },
]

# Variables that would change what a child measures (an exporter, a sampler, a queue size the
# user happens to have set): children start without them and get only what the bench sets.
_CLEARED_PREFIXES = ("OTEL_", "LLMPROBE_")


def seeded_env(cleared: tuple[str, ...] = _CLEARED_PREFIXES) -> dict[str, str]:
    """os.environ without the variables whose names start with `cleared` (by default OTEL_* and
    LLMPROBE_*), with a fixed hash seed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(cleared)}
    env["PYTHONHASHSEED"] = "0"
    return env


def clean_env(**overrides: str) -> dict[str, str]:
    """seeded_env() (no OTEL_* / LLMPROBE_*) with this checkout on PYTHONPATH, plus `overrides`."""
    env = seeded_env()
    # The children import llmprobe from this checkout whether or not it is pip-installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PYTHON_SRC, env.get("PYTHONPATH")) if p)
    env.update(overrides)
    return env


def importable_llmprobe() -> None:
    """Use this checkout's llmprobe when the running Python has none installed (its _core is abi3,
    so the checkout's build loads in any venv of a supported Python)."""
    try:
        import llmprobe  # noqa: F401
    except ImportError:
        sys.path.insert(0, PYTHON_SRC)


def quantile(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[round((len(v) - 1) * q)]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "p25": quantile(values, 0.25),
        "p75": quantile(values, 0.75),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def fmt_summary(s: dict[str, float], digits: int = 0) -> str:
    f = f"{{:,.{digits}f}}"
    return f"{f.format(s['median'])} [{f.format(s['p25'])}..{f.format(s['p75'])}] (min {f.format(s['min'])})"


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each thread of this process.

    The main thread is "main"; the others are named as the kernel knows them (15 characters:
    llmprobe's "llmprobe-export" batching thread and its "llmprobe-export-io" tokio thread both
    show as "llmprobe-export"; Python threads as the executable), numbered in start order when
    names repeat: "llmprobe-export", "llmprobe-export#2", ...
    """
    tick = os.sysconf("SC_CLK_TCK")
    pid = os.getpid()
    out: dict[str, float] = {}
    for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
        except OSError:
            continue  # the thread ended meanwhile
        # comm is in parentheses and may contain spaces: split after the last ')'.
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        key = "main" if int(tid) == pid else name
        k, i = key, 1
        while k in out:
            i += 1
            k = f"{key}#{i}"
        out[k] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


def cpu_delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: round(v - before.get(k, 0.0), 3) for k, v in after.items()}


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Receiver:
    """counting_receiver.py as a child process on 127.0.0.1 (started and stopped by its pid)."""

    def __init__(self, decode: str = "shallow", validate_every: int = 0, capture: str | None = None):
        cmd = [sys.executable, os.path.join(HERE, "counting_receiver.py"), "serve", "--decode", decode]
        if validate_every:
            cmd += ["--validate-every", str(validate_every)]
        if capture:
            cmd += ["--capture", capture]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=clean_env())
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            self.stop()
            raise RuntimeError(f"counting receiver did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self.endpoint = f"{self.base}/v1/traces"

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.base}/stats", timeout=10) as r:
            return json.loads(r.read())

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.base}/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def span_summary(name: str, values, content: dict) -> dict:
    """What a --check run prints of a span: its name, how many attributes it has, and which of the
    `content` texts ({label: text}) are in their values."""
    values = [str(v) for v in values]
    text = " ".join(values)
    return {"name": name, "attributes": len(values), "content": [w for w, t in content.items() if t in text]}


def decode_capture(path: str, content: dict) -> list[dict]:
    """span_summary() of every span of an OTLP/protobuf export request saved at `path`, with
    "parent": the name of its parent span if that is in the same request, "" for a root, None
    for a parent elsewhere."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    with open(path, "rb") as f:
        request = ExportTraceServiceRequest.FromString(f.read())
    spans = [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    names = {span.span_id: span.name for span in spans}
    return [
        dict(
            span_summary(span.name, [kv.value for kv in span.attributes], content),
            parent=names.get(span.parent_span_id) if span.parent_span_id else "",
        )
        for span in spans
    ]
