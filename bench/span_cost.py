#!/usr/bin/env python3
"""Python-side cost of one span (start, 10 attributes, end): llmprobe vs the OpenTelemetry SDK.

Configurations, each in its own long-lived worker process (same interpreter, clean OTEL_* env):
  sdk            OpenTelemetry Python SDK: TracerProvider + BatchSpanProcessor with a no-op
                 (counting) exporter, installed as the global provider, as ../shared/peer-bench
  llmprobe       llmprobe.init() with OTEL_TRACES_EXPORTER=none: the span is built in Rust and
                 discarded at end() (no queue, no exporter thread)
  llmprobe-otlp  llmprobe.init() exporting OTLP/HTTP to bench/counting_receiver.py: end() pushes
                 into the queue and the exporter thread encodes and sends meanwhile. The queue
                 (OTEL_BSP_MAX_QUEUE_SIZE) is sized to hold a whole repetition, so no span is
                 dropped, as none is by the SDK's no-op exporter; drops are reported anyway.
  llmprobe-otlp-redact
                 llmprobe-otlp with LLMPROBE_REDACT_PATTERNS (two patterns the span does not
                 match; start_span only): the exporter thread's cost of looking for them.

Patterns, all through the opentelemetry.trace API the way users and instrumentations call it:
  start_span     tracer.start_span(NAME, attributes=ATTRS).end()
  current_span   with tracer.start_as_current_span(NAME) as s: s.set_attributes(ATTRS)
  raw            llmprobe._core.Span(NAME, 0, None, ATTRS).end()   (llmprobe only: the floor)

Rounds alternate the order of the workers (A B C, C B A, ...), so machine noise reaches every
configuration alike; the workers that are not measuring wait on a pipe. Between repetitions each
worker flushes (untimed). Per configuration and pattern: ns per span, median over rounds with
p25..p75 and min, as wall time, CPU time of the calling thread, and CPU time of the whole process
(which includes the SDK's batch thread and llmprobe's exporter threads). Ratios llmprobe / SDK:
of the medians, and the median of the per-round paired ratios.

--callgrind counts instructions instead (valgrind --tool=callgrind, immune to a noisy machine):
per configuration, one run with N spans of a pattern and one with 0 (same start-up and warm-up),
(Ir(N) - Ir(0)) / N, for the main thread and for all threads.

  python bench/span_cost.py                         # ~1 min on 2 cores
  python bench/span_cost.py --rounds 40 --target-ms 400 --out /tmp/span_cost.json
  python bench/span_cost.py --callgrind             # ~2-3 min; --cg-spans for more
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import ATTRS, SPAN_NAME, Receiver, clean_env, fmt_summary, loadavg, summary

REDACT_PATTERNS = r"[\w.+-]+@[\w-]+\.[\w.]+,CUST-[0-9]{4,}"
ALL_CONFIGS = ["sdk", "llmprobe", "llmprobe-otlp", "llmprobe-otlp-redact"]
PATTERNS = {
    "sdk": ["start_span", "current_span"],
    "llmprobe": ["start_span", "current_span", "raw"],
    "llmprobe-otlp": ["start_span", "current_span", "raw"],
    "llmprobe-otlp-redact": ["start_span"],
}
MAX_SPANS_PER_REP = 60_000


# ---------------------------------------------------------------------------------------------
# worker side
# ---------------------------------------------------------------------------------------------
class Subject:
    """One configuration, set up in this process: a tracer, a flush, and its span counters."""

    def __init__(self, config: str) -> None:
        self.config = config
        from opentelemetry import trace

        if config == "sdk":
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

            exported = [0]

            class CountingNoop(SpanExporter):
                def export(self, spans):
                    exported[0] += len(spans)
                    return SpanExportResult.SUCCESS

            provider = TracerProvider()
            provider.add_span_processor(BatchSpanProcessor(CountingNoop()))
            trace.set_tracer_provider(provider)
            self._provider = provider
            self._exported = exported
            self.raw_span = None
        else:
            import llmprobe
            from llmprobe import _core

            llmprobe.init()
            self._core = _core
            self.raw_span = _core.Span
        self.tracer = trace.get_tracer("bench")
        expected = "opentelemetry.sdk.trace" if config == "sdk" else "llmprobe._tracer"
        if type(self.tracer).__module__ != expected:
            raise SystemExit(f"{config}: the API gave a {type(self.tracer)}, not a {expected} tracer")

    def flush(self) -> None:
        if self.config == "sdk":
            self._provider.force_flush()
        else:
            self._core.force_flush(60.0)

    def counters(self) -> dict[str, int]:
        if self.config == "sdk":
            return {"exported": self._exported[0]}
        return dict(self._core.stats())

    def loop(self, pattern: str):
        tracer, name, attrs = self.tracer, SPAN_NAME, ATTRS
        if pattern == "start_span":
            start = tracer.start_span

            def run(n: int) -> None:
                for _ in range(n):
                    start(name, attributes=attrs).end()

        elif pattern == "current_span":
            current = tracer.start_as_current_span

            def run(n: int) -> None:
                for _ in range(n):
                    with current(name) as s:
                        s.set_attributes(attrs)

        elif pattern == "raw" and self.raw_span is not None:
            span = self.raw_span

            def run(n: int) -> None:
                for _ in range(n):
                    span(name, 0, None, attrs).end()

        else:
            raise SystemExit(f"pattern {pattern} does not apply to {self.config}")
        return run


def measure(subject: Subject, pattern: str, n: int) -> dict[str, float]:
    run = subject.loop(pattern)
    gc.collect()
    c0, p0, w0 = time.thread_time_ns(), time.process_time_ns(), time.perf_counter_ns()
    run(n)
    w1, c1, p1 = time.perf_counter_ns(), time.thread_time_ns(), time.process_time_ns()
    subject.flush()  # untimed: the next repetition starts with an idle exporter
    return {"n": n, "wall_ns": (w1 - w0) / n, "thread_cpu_ns": (c1 - c0) / n, "process_cpu_ns": (p1 - p0) / n}


def worker_main(config: str, warmup: int) -> None:
    """Serve the parent: one JSON command per stdin line, one JSON answer per stdout line."""
    subject = Subject(config)
    for pattern in PATTERNS[config]:
        subject.loop(pattern)(warmup)
    subject.flush()
    out = sys.stdout
    out.write(json.dumps({"ready": config, "counters": subject.counters()}) + "\n")
    out.flush()
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "run":
            answer = measure(subject, cmd["pattern"], cmd["n"])
        elif cmd["op"] == "counters":
            answer = subject.counters()
        else:
            break
        out.write(json.dumps(answer) + "\n")
        out.flush()


class Worker:
    def __init__(self, config: str, env: dict[str, str], warmup: int) -> None:
        self.config = config
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", config, "--warmup", str(warmup)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.ready = None

    def wait_ready(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"worker {self.config} failed to start (see its stderr above)")
        self.ready = json.loads(line)
        return self.ready

    def ask(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"worker {self.config} died")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------------------------------------
# parent: timed rounds
# ---------------------------------------------------------------------------------------------
def worker_env(config: str, receiver: Receiver | None) -> dict[str, str]:
    if config == "sdk":
        return clean_env()
    if config == "llmprobe":
        return clean_env(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none")
    # llmprobe-otlp-redact: the same, with LLMPROBE_REDACT_PATTERNS (an e-mail address and an
    # id pattern) that the bench's attributes do not match: the cost of looking, on the exporter
    # thread, which is what every span pays.
    redact = {"LLMPROBE_REDACT_PATTERNS": REDACT_PATTERNS} if config == "llmprobe-otlp-redact" else {}
    return clean_env(
        **redact,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_SERVICE_NAME="bench-span-cost",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.endpoint,
        # Room for one whole repetition: the cost measured is that of a span that gets exported.
        OTEL_BSP_MAX_QUEUE_SIZE=str(MAX_SPANS_PER_REP + 4096),
    )


def run_timed(a) -> dict:
    configs = a.configs.split(",")
    receiver = Receiver(decode="shallow") if any(c.startswith("llmprobe-otlp") for c in configs) else None
    workers = []
    try:
        workers = [Worker(c, worker_env(c, receiver), a.warmup) for c in configs]
        for w in workers:
            w.wait_ready()
        # Spans per repetition: fixed, or sized per (config, pattern) to take about --target-ms.
        sizes = {}
        for w in workers:
            for p in PATTERNS[w.config]:
                if a.spans:
                    sizes[(w.config, p)] = a.spans
                else:
                    probe = w.ask(op="run", pattern=p, n=2000)
                    n = int(a.target_ms * 1e6 / probe["wall_ns"])
                    sizes[(w.config, p)] = max(2000, min(MAX_SPANS_PER_REP, n))
        before = {w.config: w.ask(op="counters") for w in workers}
        load0 = loadavg()
        t0 = time.time()
        results: dict[tuple[str, str], list[dict]] = {}
        for r in range(a.rounds):
            order = workers if r % 2 == 0 else workers[::-1]
            for w in order:
                patterns = PATTERNS[w.config] if r % 2 == 0 else PATTERNS[w.config][::-1]
                for p in patterns:
                    res = w.ask(op="run", pattern=p, n=sizes[(w.config, p)])
                    res["round"] = r
                    results.setdefault((w.config, p), []).append(res)
            line = "  ".join(
                f"{c}/{p} {rs[-1]['wall_ns']:,.0f}" for (c, p), rs in results.items() if p != "raw"
            )
            print(f"round {r + 1}/{a.rounds}: ns/span wall  {line}", file=sys.stderr)
        after = {w.config: w.ask(op="counters") for w in workers}
        elapsed = time.time() - t0
        rx_stats = receiver.stats() if receiver else None
    finally:
        for w in workers:
            w.close()
        if receiver:
            receiver.stop()
    return {
        "configs": configs,
        "sizes": {f"{c}/{p}": n for (c, p), n in sizes.items()},
        "results": {f"{c}/{p}": rs for (c, p), rs in results.items()},
        "spans": span_accounting(configs, before, after, results),
        "receiver": rx_stats,
        "loadavg_start": load0,
        "loadavg_end": loadavg(),
        "elapsed_s": round(elapsed, 1),
    }


def span_accounting(configs, before, after, results) -> dict:
    """Spans made in the timed rounds, and how many were exported or dropped."""
    out = {}
    for c in configs:
        made = sum(r["n"] for (cc, _), rs in results.items() if cc == c for r in rs)
        b, e = before[c], after[c]
        if c == "sdk":
            out[c] = {"made": made, "exported": e["exported"] - b["exported"]}
        else:
            d = {k: e[k] - b.get(k, 0) for k in e}
            out[c] = {
                "made": made,
                "ended": d["spans_ended"],
                "exported": d["spans_exported"],
                "dropped": d["dropped_queue_full"] + d["dropped_export_failed"] + d["dropped_at_shutdown"],
            }
    return out


def report_timed(res: dict) -> str:
    rows = []
    rows.append(
        "| config | pattern | spans/rep | wall ns/span median [p25..p75] (min) | "
        "calling-thread CPU ns/span | process CPU ns/span |"
    )
    rows.append("|---|---|---|---|---|---|")
    summ = {}
    for key, rs in res["results"].items():
        c, p = key.split("/")
        w = summary([r["wall_ns"] for r in rs])
        t = summary([r["thread_cpu_ns"] for r in rs])
        pc = summary([r["process_cpu_ns"] for r in rs])
        summ[key] = w
        rows.append(
            f"| {c} | {p} | {res['sizes'][key]:,} | {fmt_summary(w)} | {fmt_summary(t)} | {fmt_summary(pc)} |"
        )
    rows.append("")
    rows.append("| ratio (wall) | of medians | paired per round: median [p25..p75] |")
    rows.append("|---|---|---|")
    for c in res["configs"]:
        if c == "sdk" or "sdk" not in res["configs"]:
            continue
        for p, base in (
            ("start_span", "start_span"),
            ("current_span", "current_span"),
            ("raw", "start_span"),
        ):
            key, ref = f"{c}/{p}", f"sdk/{base}"
            if key not in res["results"] or ref not in res["results"]:
                continue
            paired = [x["wall_ns"] / y["wall_ns"] for x, y in zip(res["results"][key], res["results"][ref])]
            ps = summary(paired)
            rows.append(
                f"| {key} / {ref} | {summ[key]['median'] / summ[ref]['median']:.4f} "
                f"(1/{summ[ref]['median'] / summ[key]['median']:.1f}) | "
                f"{ps['median']:.4f} [{ps['p25']:.4f}..{ps['p75']:.4f}] |"
            )
    rows.append("")
    for c, acc in res["spans"].items():
        rows.append(f"- {c}: " + ", ".join(f"{k} {v:,}" for k, v in acc.items()))
    if res["receiver"]:
        rx = res["receiver"]
        rows.append(
            f"- receiver: {rx['spans']:,} spans in {rx['requests']:,} requests, decode errors {rx['decode_errors']}"
        )
    rows.append(
        f"- loadavg {res['loadavg_start']} -> {res['loadavg_end']}, {res['elapsed_s']} s of rounds, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------
# callgrind
# ---------------------------------------------------------------------------------------------
def cg_child_main(config: str, pattern: str, n: int, warmup: int) -> None:
    subject = Subject(config)
    for p in PATTERNS[config]:
        subject.loop(p)(warmup)
    subject.flush()
    subject.loop(pattern)(n)
    subject.flush()


def callgrind_totals(prefix: str) -> dict[str, int]:
    """Ir per thread file of one callgrind run (--separate-threads=yes): {"1": main, "2": ...}."""
    totals = {}
    for path in sorted(glob.glob(prefix + "*")):
        thread = path.rsplit("-", 1)[-1] if "-" in os.path.basename(path) else "1"
        with open(path) as f:
            for line in f:
                if line.startswith(("totals:", "summary:")):
                    totals[str(int(thread))] = int(line.split()[1])
                    break
    return totals


def run_callgrind_one(config, pattern, n, a, env, outdir) -> dict:
    prefix = os.path.join(outdir, f"cg.{config}.{pattern}.{n}")
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        f"--callgrind-out-file={prefix}",
        sys.executable,
        os.path.abspath(__file__),
        "--cg-child",
        config,
        "--pattern",
        pattern,
        "--cg-n",
        str(n),
        "--warmup",
        str(a.cg_warmup),
    ]
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"callgrind run {config}/{pattern}/{n} failed")
    totals = callgrind_totals(prefix)
    print(f"  callgrind {config} {pattern} n={n}: {totals} ({time.time() - t0:.0f} s)", file=sys.stderr)
    return totals


def run_callgrind(a) -> dict:
    configs = a.configs.split(",")
    receiver = Receiver(decode="shallow") if any(c.startswith("llmprobe-otlp") for c in configs) else None
    outdir = tempfile.mkdtemp(prefix="llmprobe-callgrind-")
    jobs = []  # (config, pattern, n)
    for c in configs:
        jobs.append((c, PATTERNS[c][0], 0))
        jobs += [(c, p, a.cg_spans) for p in PATTERNS[c]]
    try:
        with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
            futures = {
                job: pool.submit(run_callgrind_one, *job, a, worker_env(job[0], receiver), outdir)
                for job in jobs
            }
            totals = {job: f.result() for job, f in futures.items()}
    finally:
        if receiver:
            receiver.stop()
    out = {"spans": a.cg_spans, "warmup": a.cg_warmup, "outdir": outdir, "per_span": {}}
    for c in configs:
        base = totals[(c, PATTERNS[c][0], 0)]
        for p in PATTERNS[c]:
            t = totals[(c, p, a.cg_spans)]
            main = (t.get("1", 0) - base.get("1", 0)) / a.cg_spans
            every = (sum(t.values()) - sum(base.values())) / a.cg_spans
            out["per_span"][f"{c}/{p}"] = {"main_thread_ir": round(main), "all_threads_ir": round(every)}
    return out


def report_callgrind(res: dict) -> str:
    rows = [
        (
            f"Instructions per span (callgrind; (Ir({res['spans']}) - Ir(0)) / {res['spans']}, "
            f"after {res['warmup']} warm-up spans per pattern)"
        ),
        "",
        "| config/pattern | main thread Ir/span | all threads Ir/span | main thread vs sdk |",
        "|---|---|---|---|",
    ]
    ps = res["per_span"]
    for key, v in ps.items():
        c, p = key.split("/")
        ref = ps.get("sdk/" + ("start_span" if p == "raw" else p))
        ratio = f"{v['main_thread_ir'] / ref['main_thread_ir']:.4f}" if ref and c != "sdk" else "-"
        rows.append(f"| {key} | {v['main_thread_ir']:,} | {v['all_threads_ir']:,} | {ratio} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--configs",
        help=f"comma list of {ALL_CONFIGS} (default: all of them; with --callgrind: sdk,llmprobe)",
    )
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--target-ms", type=float, default=200, help="length of one repetition")
    ap.add_argument("--spans", type=int, default=0, help="spans per repetition (default: from --target-ms)")
    ap.add_argument("--warmup", type=int, default=5000, help="warm-up spans per pattern")
    ap.add_argument("--callgrind", action="store_true", help="count instructions instead of timing")
    ap.add_argument("--cg-spans", type=int, default=2000)
    ap.add_argument("--cg-warmup", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=2, help="callgrind runs at once")
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--cg-child", help=argparse.SUPPRESS)
    ap.add_argument("--pattern", help=argparse.SUPPRESS)
    ap.add_argument("--cg-n", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker_main(a.worker, a.warmup)
        return
    if a.cg_child:
        cg_child_main(a.cg_child, a.pattern, a.cg_n, a.warmup)
        return
    if a.callgrind:
        a.configs = a.configs or "sdk,llmprobe"  # the deterministic ones by default
        res = run_callgrind(a)
        text = report_callgrind(res)
    else:
        a.configs = a.configs or ",".join(ALL_CONFIGS)
        res = run_timed(a)
        text = report_timed(res)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(
                {"argv": sys.argv, "date": time.strftime("%Y-%m-%d %H:%M"), "result": res, "table": text},
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
