#!/usr/bin/env python3
"""Added CPU per ``dashscope.Generation.call`` and per 50-chunk streamed call: llmprobe next to
loongsuite-instrumentation-dashscope (on the OpenTelemetry SDK), in one run.

The method is the peers' harness (/work/shared/peer-bench/bench_llm_overhead.py), applied to
DashScope: each config runs in a fresh process that toggles its instrumentation on and off
(paired ABBA repetitions), and the cost is process CPU of all threads, so loongsuite's
BatchSpanProcessor worker and llmprobe's Rust exporter thread are both counted. The added cost
is the median of the per-pair differences (on - off).

The transport costs as little as possible and is the same on and off: the DashScope SDK sends
its synchronous calls through one shared ``requests.Session``, and this script mounts on that
session an adapter that answers at once with the bytes the service sends (a JSON body, or an
SSE stream of ``id:/event:result/:HTTP_STATUS/200/data:`` events), so the SDK's own request
building and response parsing run unchanged. Nothing leaves the process.

Workload: the five messages of openai_overhead.py (common.MESSAGES), ``result_format="message"``,
content capture on for both; the stream is ``stream=True, incremental_output=True`` with 50
content chunks and a final chunk (finish_reason "stop", empty content). As the service does,
every chunk carries ``usage``.

| config | setup |
|---|---|
| none | no instrumentation (the baseline's absolute cost; not toggled) |
| loongsuite | DashScopeInstrumentor on an SDK TracerProvider + BatchSpanProcessor + counting no-op exporter; content via OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental + OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY |
| llmprobe | bench/peer_plugin_dashscope.py: llmprobe.init() exporting OTLP/HTTP to a local sink |

Run it with a venv holding dashscope, loongsuite-instrumentation-dashscope and the SDK (see
bench/README.md, "DashScope: added cost per call"):

    /tmp/venv-dsbench/bin/python bench/dashscope_overhead.py --check      # 1 span/call on, 0 off
    /tmp/venv-dsbench/bin/python bench/dashscope_overhead.py --rounds 3 --out /tmp/ds_overhead.json
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import MESSAGES, importable_llmprobe, seeded_env

HERE = Path(__file__).resolve().parent
PLUGIN = HERE / "peer_plugin_dashscope.py"
CONFIGS = ["none", "loongsuite", "llmprobe"]
LABELS = {"none": "none", "loongsuite": "loongsuite-instrumentation-dashscope", "llmprobe": "llmprobe"}
# Every request is answered by the in-process adapter; a request it missed fails on this port.
BASE_URL = "http://127.0.0.1:9/api/v1"
MODEL = "qwen-plus"
STREAM_CHUNKS = 50
REQUEST_ID = "5c5d0a2e-7d39-9d8f-a0f1-5fb0c1ab2c3d"

REQUEST = {"model": MODEL, "messages": MESSAGES, "result_format": "message", "temperature": 0.2}
REQUEST.update(max_tokens=256, top_p=0.8)

ANSWER = (
    "A span is a single timed operation with attributes, while a trace is the tree of spans "
    "that share one trace id and describe a whole request. Batching spans amortises the cost "
    "of serialisation and network round-trips, so the application thread only pays for a "
    "cheap enqueue. Exporting in batches also lets the collector apply back-pressure without "
    "slowing the application."
)
USAGE = {
    "input_tokens": 62,
    "output_tokens": 58,
    "total_tokens": 120,
    "prompt_tokens_details": {"cached_tokens": 0},
}
# Response headers as the service sends them (apart from the date).
HEADERS = {
    "vary": "Origin,Access-Control-Request-Method,Access-Control-Request-Headers, Accept-Encoding",
    "x-request-id": REQUEST_ID,
    "x-dashscope-call-gateway": "true",
    "req-cost-time": "312",
    "req-arrive-time": "1732600000000",
    "resp-start-time": "1732600000312",
    "x-envoy-upstream-service-time": "311",
    "date": "Tue, 26 Nov 2024 06:26:40 GMT",
    "server": "istio-envoy",
}


def _compact(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _pieces(text: str, n: int) -> list[str]:
    """`text` cut into `n` consecutive pieces of whole words (their concatenation is `text`)."""
    words = text.split(" ")
    bounds = [round(i * len(words) / n) for i in range(n + 1)]
    pieces = [" ".join(words[a:b]) for a, b in zip(bounds, bounds[1:])]
    return [p if i == 0 else " " + p for i, p in enumerate(pieces)]


def _choice(content: str, finish: str) -> dict:
    return {"choices": [{"message": {"content": content, "role": "assistant"}, "finish_reason": finish}]}


def _stream_body() -> bytes:
    pieces = _pieces(ANSWER, STREAM_CHUNKS) + [""]
    events = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        out = USAGE["output_tokens"] if last else i + 1
        usage = dict(USAGE, output_tokens=out, total_tokens=USAGE["input_tokens"] + out)
        data = {
            "output": _choice(piece, "stop" if last else "null"),
            "usage": usage,
            "request_id": REQUEST_ID,
        }
        events.append(b"id:%d\nevent:result\n:HTTP_STATUS/200\ndata:%s\n\n" % (i + 1, _compact(data)))
    return b"".join(events)


JSON_BYTES = _compact({"output": _choice(ANSWER, "stop"), "usage": USAGE, "request_id": REQUEST_ID})
STREAM_BYTES = _stream_body()
N_STREAM_EVENTS = STREAM_BYTES.count(b"\ndata:")


def install_transport() -> None:
    """Mount the canned adapter on the session the SDK sends every synchronous call through."""
    import dashscope
    import requests
    from dashscope.api_entities import http_request
    from requests.adapters import BaseAdapter
    from requests.structures import CaseInsensitiveDict
    from requests.utils import get_encoding_from_headers

    json_headers = dict(
        HEADERS, **{"content-type": "application/json", "content-length": str(len(JSON_BYTES))}
    )
    sse_headers = dict(HEADERS, **{"content-type": "text/event-stream;charset=UTF-8"})

    class CannedAdapter(BaseAdapter):
        """What requests' HTTPAdapter.build_response makes of the service's answer, without a
        socket: the body is read from memory by the same Response methods (iter_lines, json)."""

        def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
            sse = request.headers.get("X-DashScope-SSE") == "enable"
            response = requests.Response()
            response.status_code = 200
            response.reason = "OK"
            response.headers = CaseInsensitiveDict(sse_headers if sse else json_headers)
            response.encoding = get_encoding_from_headers(response.headers)
            response.raw = io.BytesIO(STREAM_BYTES if sse else JSON_BYTES)
            response.url = request.url
            response.request = request
            response.connection = self
            return response

        def close(self) -> None:
            pass

    dashscope.base_http_api_url = BASE_URL
    dashscope.api_key = "sk-bench-0000"
    session = http_request._get_shared_sync_session()
    adapter = CannedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)


def call_sync() -> None:
    from dashscope import Generation

    response = Generation.call(**REQUEST)
    assert response.status_code == 200 and response.output.choices[0].message.content, response


def call_stream() -> None:
    from dashscope import Generation

    n = 0
    for chunk in Generation.call(stream=True, incremental_output=True, **REQUEST):
        assert chunk.status_code == 200, chunk
        n += 1
    assert n == N_STREAM_EVENTS, n


CALLS = {"sync": call_sync, "stream": call_stream}


# ---- configs -----------------------------------------------------------------------------------


class _PluginCtx:
    content = True


def _loongsuite() -> dict:
    # Its content switch (opentelemetry-util-genai): read when the handler is first used.
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_ONLY"
    from opentelemetry import trace
    from opentelemetry.instrumentation.dashscope import DashScopeInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    exported = {"spans": 0, "samples": []}

    class CountingNoopExporter(SpanExporter):
        def export(self, spans):
            exported["spans"] += len(spans)
            if len(exported["samples"]) < 4:
                exported["samples"].extend(spans[: 4 - len(exported["samples"])])
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(CountingNoopExporter()))
    trace.set_tracer_provider(provider)

    # Instrument once, then toggle by swapping the patched class attributes (as the peers'
    # harness does), so that on and off run exactly the same wrapper and original.
    from dashscope.aigc import generation

    before = dict(vars(generation.Generation))
    DashScopeInstrumentor().instrument(tracer_provider=provider)
    after = dict(vars(generation.Generation))
    patched = [(name, before[name], after[name]) for name in after if after[name] is not before.get(name)]
    assert patched, "loongsuite patched nothing on Generation"

    def apply(on: bool) -> None:
        for name, original, wrapper in patched:
            setattr(generation.Generation, name, wrapper if on else original)

    return {
        "enable": lambda: apply(True),
        "disable": lambda: apply(False),
        "span_count": lambda: exported["spans"],
        "flush": provider.force_flush,
        "shutdown": provider.shutdown,
        "samples": exported["samples"],
    }


def _llmprobe() -> dict:
    importable_llmprobe()
    spec = importlib.util.spec_from_file_location("peer_plugin_dashscope", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.setup(_PluginCtx())


def setup_config(config: str) -> dict:
    """The config installed and enabled; with the transport mounted."""
    if config == "none":
        handles = {"enable": None, "disable": None, "span_count": lambda: 0, "flush": lambda: None}
        handles["shutdown"] = lambda: None
    elif config == "loongsuite":
        handles = _loongsuite()
    elif config == "llmprobe":
        handles = _llmprobe()
    else:
        raise SystemExit(f"unknown config {config!r}")
    install_transport()
    return handles


# ---- one config, one process ---------------------------------------------------------------------


def run_one(args: argparse.Namespace) -> dict:
    h = setup_config(args.config)
    modes = ["sync", "stream"] if args.mode == "both" else [args.mode]
    ncalls = {"sync": args.calls, "stream": args.stream_calls}
    paired = args.config != "none"
    state = {"on": True}

    def set_state(on: bool) -> None:
        if paired and on != state["on"]:
            (h["enable"] if on else h["disable"])()
            state["on"] = on

    for on in (False, True) if paired else (True,):
        set_state(on)
        for mode in modes:
            for _ in range(args.warmup):
                CALLS[mode]()
    set_state(True)
    h["flush"]()

    states = ["off", "on"] if paired else ["on"]
    reps = {m: {s: {"cpu_us": [], "wall_us": []} for s in states} for m in modes}
    spans = {m: {s: 0 for s in states} for m in modes}
    for r in range(args.reps):
        for mode in modes:
            fn, n = CALLS[mode], ncalls[mode]
            for st in states if r % 2 == 0 else list(reversed(states)):
                set_state(st == "on")
                h["flush"]()
                before = h["span_count"]()
                gc.collect()
                c0, w0 = time.process_time(), time.perf_counter()
                for _ in range(n):
                    fn()
                c1, w1 = time.process_time(), time.perf_counter()
                h["flush"]()
                spans[mode][st] += h["span_count"]() - before
                reps[mode][st]["cpu_us"].append((c1 - c0) / n * 1e6)
                reps[mode][st]["wall_us"].append((w1 - w0) / n * 1e6)
    set_state(True)
    h["flush"]()
    result = {
        "config": args.config,
        "paired": paired,
        "calls_per_rep": ncalls,
        "reps": args.reps,
        "warmup": args.warmup,
        "stream_events": N_STREAM_EVENTS,
        "loadavg": os.getloadavg(),
        "modes": {},
    }
    for mode in modes:
        entry = {"on": reps[mode]["on"], "spans_per_call_on": spans[mode]["on"] / (args.reps * ncalls[mode])}
        if paired:
            entry["off"] = reps[mode]["off"]
            entry["spans_while_off"] = spans[mode]["off"]
            entry["diff_cpu_us"] = [
                a - b for a, b in zip(reps[mode]["on"]["cpu_us"], reps[mode]["off"]["cpu_us"])
            ]
            entry["diff_wall_us"] = [
                a - b for a, b in zip(reps[mode]["on"]["wall_us"], reps[mode]["off"]["wall_us"])
            ]
        result["modes"][mode] = entry
    h["shutdown"]()
    return result


def check(config: str) -> dict:
    """Spans per call on and off, and what a span holds (loongsuite: from its exporter)."""
    h = setup_config(config)
    out = {}
    for mode, fn in CALLS.items():
        for on in (True, False):
            (h["enable"] if on else h["disable"])()
            h["flush"]()
            before = h["span_count"]()
            for _ in range(5):
                fn()
            h["flush"]()
            out[f"{mode} {'on' if on else 'off'}: spans per call"] = (h["span_count"]() - before) / 5
    h["enable"]()
    for span in h.get("samples", [])[:2]:
        out[f"sample {span.name}"] = sorted(span.attributes)
    if config == "llmprobe":
        from llmprobe import _core

        out["llmprobe stats"] = _core.stats()
    h["shutdown"]()
    return out


# ---- all configs ------------------------------------------------------------------------------------


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], statistics.median(values), q[2]


def matrix(args: argparse.Namespace) -> None:
    runs: dict[str, list[dict]] = {c: [] for c in CONFIGS}
    loads = []
    for round_number in range(args.rounds):
        for config in CONFIGS if round_number % 2 == 0 else list(reversed(CONFIGS)):
            command = [sys.executable, str(Path(__file__).resolve()), "--config", config]
            for flag in ("calls", "stream_calls", "reps", "warmup"):
                command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
            loads.append(os.getloadavg()[0])
            done = subprocess.run(command, capture_output=True, text=True, env=seeded_env(), check=False)
            if done.returncode != 0:
                sys.stderr.write(done.stderr[-4000:])
                raise SystemExit(f"config {config} failed")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            runs[config].append(result)
            summary = " | ".join(
                f"{mode}: on {statistics.median(v['on']['cpu_us']):.0f} us cpu"
                + (f", added {statistics.median(v['diff_cpu_us']):+.1f}" if "diff_cpu_us" in v else "")
                + f", spans/call {v['spans_per_call_on']:.2f}"
                + (f", off {v['spans_while_off']}" if "spans_while_off" in v else "")
                for mode, v in result["modes"].items()
            )
            sys.stderr.write(
                f"round {round_number + 1}/{args.rounds} {config:10s} {summary} load {loads[-1]:.2f}\n"
            )
    table = {}
    for config in CONFIGS[1:]:
        for mode in ("sync", "stream"):
            diffs = [d for r in runs[config] for d in r["modes"][mode]["diff_cpu_us"]]
            walls = [d for r in runs[config] for d in r["modes"][mode]["diff_wall_us"]]
            base = [c for r in runs[config] for c in r["modes"][mode]["off"]["cpu_us"]]
            table[(config, mode)] = {
                "added_cpu_us": _quartiles(diffs),
                "added_wall_us": _quartiles(walls),
                "off_cpu_us": statistics.median(base),
                "round_medians": [statistics.median(r["modes"][mode]["diff_cpu_us"]) for r in runs[config]],
            }
    baseline = {
        mode: statistics.median(c for r in runs["none"] for c in r["modes"][mode]["on"]["cpu_us"])
        for mode in ("sync", "stream")
    }
    lines = [
        "",
        (
            f"baseline (none): sync {baseline['sync']:.0f} us CPU/call, "
            f"stream {baseline['stream']:.0f} us CPU/call; loadavg {min(loads):.2f}-{max(loads):.2f}"
        ),
        "",
        "| config | sync: added CPU us/call, median [p25..p75] (of off) | stream (50 chunks): added CPU us/call |",
        "|---|---|---|",
    ]
    for config in CONFIGS[1:]:
        s, t = table[(config, "sync")], table[(config, "stream")]
        (s25, s50, s75), (t25, t50, t75) = s["added_cpu_us"], t["added_cpu_us"]
        lines.append(
            f"| {LABELS[config]} | {s50:+.0f} [{s25:+.0f}..{s75:+.0f}] (of {s['off_cpu_us']:.0f}) | "
            f"{t50:+.0f} [{t25:+.0f}..{t75:+.0f}] (of {t['off_cpu_us']:.0f}) |"
        )
    for mode in ("sync", "stream"):
        ours = table[("llmprobe", mode)]["added_cpu_us"][1]
        theirs = table[("loongsuite", mode)]["added_cpu_us"][1]
        ratio = f"{ours / theirs:.3f}" if theirs > 0 else "n/a"
        lines.append(
            f"\n{mode}: llmprobe {ours:.1f} us, loongsuite {theirs:.1f} us: llmprobe/loongsuite = {ratio}"
        )
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {
                    "runs": runs,
                    "table": {f"{c}|{m}": v for (c, m), v in table.items()},
                    "baseline": baseline,
                    "loadavg": loads,
                    "args": vars(args),
                },
                indent=1,
                default=str,
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", choices=CONFIGS, help="run one config in this process (JSON on stdout)")
    parser.add_argument("--check", action="store_true", help="spans per call on and off, for every config")
    parser.add_argument("--mode", choices=["sync", "stream", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=150, help="non-streamed calls per repetition")
    parser.add_argument("--stream-calls", type=int, default=40, help="streamed calls per repetition")
    parser.add_argument("--reps", type=int, default=12, help="paired repetitions per process")
    parser.add_argument("--warmup", type=int, default=100, help="warm-up calls per mode and state")
    parser.add_argument("--out", help="write every run's JSON here")
    args = parser.parse_args()
    if args.check and args.config:
        sys.stdout.write(json.dumps(check(args.config), default=str) + "\n")
    elif args.check:
        for config in CONFIGS[1:]:
            command = [sys.executable, str(Path(__file__).resolve()), "--check", "--config", config]
            done = subprocess.run(command, capture_output=True, text=True, env=seeded_env(), check=False)
            if done.returncode != 0:
                sys.stderr.write(done.stderr[-4000:])
                raise SystemExit(f"config {config} failed")
            print(config, json.dumps(json.loads(done.stdout.strip().splitlines()[-1]), indent=1))
    elif args.config:
        sys.stdout.write(json.dumps(run_one(args), default=str) + "\n")
    else:
        matrix(args)


if __name__ == "__main__":
    main()
