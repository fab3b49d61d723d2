#!/usr/bin/env python3
"""Sustained OTLP/HTTP export: spans/s delivered to a local receiver, llmprobe vs the OpenTelemetry SDK.

Both send OTLP/HTTP protobuf to bench/counting_receiver.py (one receiver for the run, shallow
decode with every 20th request fully parsed, so it takes little CPU from the exporters on a 2-core
machine; its own capacity is measured first and printed next to the results). Each configuration
runs in its own child process, one after the other, in alternating order over --rounds:

  sdk       TracerProvider + BatchSpanProcessor(OTLPSpanExporter) with the SDK's defaults
            (queue 2048, batch 512, delay 5 s), as ../shared/peer-bench measured it
  llmprobe  llmprobe.init() with OTEL_EXPORTER_OTLP_TRACES_ENDPOINT at the receiver and the
            defaults (queue 2048, batch 512, delay 5 s), spans made through opentelemetry.trace
  llmprobe@K=V[@K=V...]  llmprobe with these variables too (a variant: A/B a setting in one run)

Two measurements per configuration:
  flat    1 thread makes spans (10 attributes) as fast as it can for --duration s: produced/s,
          exported/s in the window, spans dropped (queue full or export failed), the CPU of each
          thread, and the final flush (--rate R: paced at R spans/s instead of flat out)
  search  a rate-paced producer steps up (x --factor per --step-s step, then --refine bisection
          steps) to find the highest rate at which every span is exported: zero dropped, receiver
          count = produced; then that rate is held for --duration s to confirm it (on drops,
          x --backoff and again, up to --confirm-tries times)

The headline ratio is llmprobe's confirmed zero-drop rate over the SDK's (the SDK's flat-out
exported/s is reported too: it drops, so its "exported/s" is not a zero-drop rate).

  python bench/export_throughput.py                       # ~2.5 min on 2 cores
  python bench/export_throughput.py --search none --duration 30
  python bench/export_throughput.py --configs llmprobe --llmprobe-env OTEL_BSP_MAX_QUEUE_SIZE=65536
  python bench/export_throughput.py --configs llmprobe,llmprobe@OTEL_BSP_MAX_QUEUE_SIZE=32768 \
      --search none --rate 120000 --rounds 4 --capacity-s 0      # A/B the queue size at one rate
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import ATTRS, SPAN_NAME, Receiver, clean_env, cpu_delta, loadavg, thread_cpu

WARMUP = 2000


# ---------------------------------------------------------------------------------------------
# child: one configuration
# ---------------------------------------------------------------------------------------------
class Exporting:
    """A configuration set up in this process: a tracer, a flush, and exporter-side counters."""

    def __init__(self, config: str, endpoint: str) -> None:
        from opentelemetry import trace

        self.config = config.split("@")[0]  # a variant (llmprobe@K=V) differs only in its env
        if config == "sdk":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

            ok_failed = [0, 0]

            class CountingOTLP(OTLPSpanExporter):
                def export(self, spans):
                    result = super().export(spans)
                    ok_failed[0 if result == SpanExportResult.SUCCESS else 1] += len(spans)
                    return result

            provider = TracerProvider(resource=Resource.create({"service.name": "bench-export"}))
            provider.add_span_processor(BatchSpanProcessor(CountingOTLP(endpoint=endpoint)))
            trace.set_tracer_provider(provider)
            self._provider = provider
            self._ok_failed = ok_failed
        else:
            import llmprobe
            from llmprobe import _core

            llmprobe.init()
            self._core = _core
        self.tracer = trace.get_tracer("bench")

    def flush(self, timeout_s: float = 60.0) -> None:
        if self.config == "sdk":
            self._provider.force_flush(int(timeout_s * 1000))
        else:
            self._core.force_flush(timeout_s)

    def counters(self) -> dict[str, int]:
        """exported / failed so far, and for llmprobe its own drop counters."""
        if self.config == "sdk":
            return {"exported": self._ok_failed[0], "failed": self._ok_failed[1]}
        s = self._core.stats()
        return {
            "exported": s["spans_exported"],
            "failed": s["dropped_export_failed"],
            "dropped_queue_full": s["dropped_queue_full"],
            "export_batches": s["export_batches"],
        }

    def produce(self, seconds: float, rate: float | None = None) -> tuple[int, float, list]:
        """Make spans for `seconds`, flat out or paced at `rate`/s; (made, window s, timeline)."""
        start, name, attrs = self.tracer.start_span, SPAN_NAME, ATTRS
        # Paced: ~5 ms of spans per chunk, then sleep until they are due. Fewer, longer sleeps
        # keep the pace accurate (a sleep costs ~0.1 ms, and a Python exporter thread that takes
        # the GIL during it may keep it for the 5 ms switch interval).
        chunk = 200 if rate is None else max(1, round(rate / 200))
        made = 0
        timeline = []
        t0 = time.perf_counter()
        end = t0 + seconds
        due = t0
        next_mark = t0 + 1.0
        while True:
            for _ in range(chunk):
                start(name, attributes=attrs).end()
            made += chunk
            now = time.perf_counter()
            if now >= next_mark:
                timeline.append(
                    {"t": round(now - t0, 2), "made": made, "exported": self.counters()["exported"]}
                )
                next_mark += 1.0
            if now >= end:
                break
            if rate is not None:
                due += chunk / rate
                if due > now:
                    time.sleep(due - now)
                elif now - due > 0.05:
                    due = now  # fell behind by a long stall: do not make up for it in one burst
        return made, time.perf_counter() - t0, timeline


def _delta(after: dict, before: dict) -> dict:
    return {k: after[k] - before.get(k, 0) for k in after}


def child_flat(x: Exporting, duration: float, rate: float | None) -> dict:
    before = x.counters()
    cpu0 = thread_cpu()
    made, window, timeline = x.produce(duration, rate)
    cpu1 = thread_cpu()
    in_window = _delta(x.counters(), before)
    f0 = time.perf_counter()
    x.flush()
    flush_s = time.perf_counter() - f0
    total = _delta(x.counters(), before)
    dropped = made - total["exported"]  # queue full, export failed, or still unsent after the flush
    for point in timeline:
        point["exported"] -= before["exported"]
    return {
        "mode": "flat" if rate is None else f"paced at {rate:g}/s",
        "window_s": round(window, 3),
        "made": made,
        "made_per_s": round(made / window),
        "exported_in_window": in_window["exported"],
        "exported_per_s": round(in_window["exported"] / window),
        "exported_after_flush": total["exported"],
        "dropped": dropped,
        "dropped_pct": round(dropped / made * 100, 2),
        "counters": total,
        "flush_s": round(flush_s, 3),
        "thread_cpu_s": cpu_delta(cpu1, cpu0),
        "timeline": timeline,
    }


def paced_step(x: Exporting, rate: float, seconds: float) -> dict:
    before = x.counters()
    cpu0 = thread_cpu()
    made, window, _ = x.produce(seconds, rate)
    cpu1 = thread_cpu()
    in_window = _delta(x.counters(), before)
    x.flush()
    total = _delta(x.counters(), before)
    dropped = made - total["exported"]
    return {
        "target_per_s": round(rate),
        "made_per_s": round(made / window),
        "exported_per_s": round(in_window["exported"] / window),
        "made": made,
        "exported_after_flush": total["exported"],
        "dropped": dropped,
        "zero_drop": dropped == 0 and total["failed"] == 0,
        # The producer could not keep the pace: the rate is not the exporter's limit.
        "producer_bound": made / window < 0.97 * rate,
        "thread_cpu_s": cpu_delta(cpu1, cpu0),
    }


def child_search(x: Exporting, a) -> dict:
    steps = []

    def step(rate: float) -> dict:
        r = paced_step(x, rate, a.step_s)
        steps.append(r)
        print(
            f"    [{x.config} paced {r['target_per_s']:>8,}/s] made {r['made_per_s']:>8,}/s "
            f"exported {r['exported_per_s']:>8,}/s dropped {r['dropped']:>7,}"
            + ("  (producer could not keep the pace)" if r["producer_bound"] else ""),
            file=sys.stderr,
        )
        return r

    rate = a.start_rate_sdk if x.config == "sdk" else a.start_rate
    good, bad = None, None
    while bad is None:
        r = step(rate)
        if r["zero_drop"] and not r["producer_bound"]:
            good = rate
            rate *= a.factor
        elif r["zero_drop"]:
            good = r["made_per_s"]  # the producer's own ceiling, and nothing was dropped there
            break
        else:
            bad = rate
    if good is None:
        good = 0.0
    for _ in range(a.refine if bad is not None and good else 0):
        mid = (good + bad) / 2
        r = step(mid)
        if r["zero_drop"] and not r["producer_bound"]:
            good = mid
        else:
            bad = mid
    # Hold the best rate for --duration s; a short step can miss a rare stall, so on drops step
    # down (x --backoff) and try again, up to --confirm-tries times.
    confirms = []
    rate = good
    for _ in range(a.confirm_tries if good else 0):
        c = paced_step(x, rate, a.duration)
        confirms.append(c)
        print(
            f"    [{x.config} confirm {c['target_per_s']:,}/s for {a.duration:g} s] "
            f"made {c['made_per_s']:,}/s exported {c['exported_per_s']:,}/s dropped {c['dropped']:,}",
            file=sys.stderr,
        )
        if c["zero_drop"]:
            break
        rate *= a.backoff
    confirm = confirms[-1] if confirms and confirms[-1]["zero_drop"] else None
    return {
        "mode": "search",
        "steps": steps,
        "best_step_rate": round(good),
        "first_dropping_rate": bad,
        "confirms": confirms,
        "confirm": confirm,
    }


def child_main(a) -> None:
    x = Exporting(a.child, a.endpoint)
    for _ in range(WARMUP):
        x.tracer.start_span("warmup", attributes=ATTRS).end()
    x.flush()
    out = {"config": a.child, "warmup_spans": WARMUP}
    if "flat" in a.modes:
        out["flat"] = child_flat(x, a.duration, a.rate)
    if "search" in a.modes:
        out["search"] = child_search(x, a)
    out["counters_total"] = x.counters()
    out["ru_maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(out))


# ---------------------------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------------------------
def child_env(config: str, endpoint: str, extra: list[str]) -> dict[str, str]:
    base, *variant = config.split("@")
    if base == "sdk":
        return clean_env(OTEL_METRICS_EXPORTER="none")
    env = clean_env(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_SERVICE_NAME="bench-export",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
    )
    for kv in extra + variant:
        k, _, v = kv.partition("=")
        env[k] = v
    return env


def run_child(config: str, modes: list[str], receiver: Receiver, a) -> dict:
    receiver.reset()
    rx0 = receiver.stats()
    cmd = [sys.executable, os.path.abspath(__file__), "--child", config, "--endpoint", receiver.endpoint]
    cmd += ["--modes", ",".join(modes), "--duration", str(a.duration), "--step-s", str(a.step_s)]
    cmd += ["--factor", str(a.factor), "--refine", str(a.refine), "--start-rate", str(a.start_rate)]
    cmd += ["--start-rate-sdk", str(a.start_rate_sdk), "--confirm-tries", str(a.confirm_tries)]
    cmd += ["--backoff", str(a.backoff)] + (["--rate", str(a.rate)] if a.rate else [])
    env = child_env(config, receiver.endpoint, a.llmprobe_env)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, check=False)
    sys.stderr.write(proc.stderr)
    if proc.returncode:
        raise SystemExit(f"{config} child failed (rc {proc.returncode})")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    rx = receiver.stats()
    out["receiver"] = {
        "spans": rx["spans"],
        "requests": rx["requests"],
        "bytes_per_span": round(rx["bytes"] / max(1, rx["spans"]), 1),
        "decode_errors": rx["decode_errors"],
        "validated_requests": rx["validated"],
        "cpu_s": round(rx["cpu_s"] - rx0["cpu_s"], 2),
        # Everything the child exported (warm-up included) must have arrived, counted.
        "matches_exporter": rx["spans"] == out["counters_total"]["exported"],
    }
    return out


def receiver_capacity(seconds: float) -> dict | None:
    import counting_receiver as cr

    path = "/tmp/llmprobe-bench-body.bin"
    if not cr.capture_llmprobe_body(path):
        return None
    with open(path, "rb") as f:
        body = f.read()
    return cr.measure_capacity(body, "shallow", 4, seconds, validate_every=20)


def report(res: dict) -> str:
    rows = []
    cap = res.get("receiver_capacity")
    if cap:
        rows.append(
            f"Receiver capacity (shallow decode, every 20th request fully parsed; replaying a captured "
            f"llmprobe request of {cap['spans_per_request']} spans over 4 keep-alive connections): "
            f"**{cap['spans_per_s']:,} spans/s** at {cap['receiver_cpu_pct_of_core']}% of a core "
            f"({cap['receiver_cpu_us_per_span']} us/span)."
        )
        rows.append("")
    rows.append(
        "| config | round | made/s | exported/s | dropped | flush s | main-thread CPU s | "
        "exporter-thread CPU s | receiver CPU s | receiver count ok |"
    )
    rows.append("|---|---|---|---|---|---|---|---|---|---|")
    flat = {}
    for run in res["runs"]:
        f = run.get("flat")
        if not f:
            continue
        flat.setdefault(run["config"], []).append(f)
        cpu = f["thread_cpu_s"]
        other = {k: v for k, v in cpu.items() if k != "main" and v > 0}
        rows.append(
            f"| {run['config']} | {run['round']} | {f['made_per_s']:,} | **{f['exported_per_s']:,}** | "
            f"{f['dropped']:,} ({f['dropped_pct']}%) | {f['flush_s']} | {cpu.get('main', 0)} | "
            f"{', '.join(f'{k} {v}' for k, v in other.items()) or '-'} | {run['receiver']['cpu_s']} | "
            f"{run['receiver']['matches_exporter']} |"
        )
    rows.append("")
    best = {}
    for run in res["runs"]:
        s = run.get("search")
        if not s:
            continue
        c = s["confirm"]
        # Zero drops: every span made in the window was exported, so the sustained rate is made/s.
        best[run["config"]] = c["made_per_s"] if c else None
        ladder = ", ".join(
            f"{st['target_per_s']:,}{'' if st['zero_drop'] else ' DROP'}"
            f"{' (producer-bound)' if st['producer_bound'] else ''}"
            for st in s["steps"]
        )
        rows.append(f"- {run['config']} paced ladder, {res['step_s']:g} s steps (spans/s): {ladder}")
        for t in s["confirms"]:
            rows.append(
                f"- {run['config']} held {t['target_per_s']:,}/s for {res['duration']:g} s: made "
                f"{t['made_per_s']:,}/s, exported {t['exported_per_s']:,}/s in the window, "
                f"{t['exported_after_flush']:,} of {t['made']:,} after the flush, dropped {t['dropped']:,}"
                f" -> **{'zero drops' if t['zero_drop'] else 'drops'}**"
            )
        if not c:
            rows.append(f"- {run['config']}: no rate held with zero drops for {res['duration']:g} s")
    rows.append("")
    med = {c: sorted(fs, key=lambda f: f["exported_per_s"])[len(fs) // 2] for c, fs in flat.items()}
    if "sdk" in med and "llmprobe" in med:
        rows.append(
            f"- flat out, exported/s llmprobe / SDK: {med['llmprobe']['exported_per_s'] / med['sdk']['exported_per_s']:.1f}x "
            f"(dropped {med['llmprobe']['dropped_pct']}% vs {med['sdk']['dropped_pct']}%)"
        )
    if best.get("llmprobe") and best.get("sdk"):
        rows.append(f"- zero-drop sustained rate llmprobe / SDK: **{best['llmprobe'] / best['sdk']:.1f}x**")
    if best.get("llmprobe") and "sdk" in med:
        rows.append(
            f"- llmprobe zero-drop rate / SDK flat-out exported/s (the SDK dropping "
            f"{med['sdk']['dropped_pct']}%): **{best['llmprobe'] / med['sdk']['exported_per_s']:.1f}x**"
        )
    rows.append(
        f"- loadavg {res['loadavg_start']} -> {res['loadavg_end']}, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}, {res['elapsed_s']} s"
    )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="sdk,llmprobe")
    ap.add_argument("--rounds", type=int, default=1, help="flat-out runs per config (alternating order)")
    ap.add_argument("--duration", type=float, default=10.0, help="flat-out window and confirm window, s")
    ap.add_argument("--search", default="sdk,llmprobe", help="configs to rate-search ('none' to skip)")
    ap.add_argument("--rate", type=float, help="pace the flat measurement at this many spans/s instead")
    ap.add_argument("--step-s", type=float, default=3.0, help="length of one paced step, s")
    ap.add_argument("--factor", type=float, default=1.5, help="rate multiplier between steps")
    ap.add_argument("--refine", type=int, default=2, help="bisection steps after the first dropping rate")
    ap.add_argument("--confirm-tries", type=int, default=4, help="confirm attempts, each x --backoff")
    ap.add_argument("--backoff", type=float, default=0.8, help="rate factor after a confirm that dropped")
    ap.add_argument("--start-rate", type=float, default=40000, help="llmprobe's first paced rate, spans/s")
    ap.add_argument("--start-rate-sdk", type=float, default=2000, help="the SDK's first paced rate, spans/s")
    ap.add_argument("--capacity-s", type=float, default=3.0, help="receiver capacity check, s (0: skip)")
    ap.add_argument(
        "--llmprobe-env",
        action="append",
        default=[],
        metavar="K=V",
        help="extra env for llmprobe (repeatable)",
    )
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    ap.add_argument("--modes", default="flat", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        a.modes = a.modes.split(",")
        child_main(a)
        return
    configs = a.configs.split(",")
    search = [] if a.search == "none" else [c for c in a.search.split(",") if c in configs]
    res = {
        "argv": sys.argv,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "duration": a.duration,
        "step_s": a.step_s,
    }
    res["loadavg_start"] = loadavg()
    t0 = time.time()
    if a.capacity_s > 0:
        res["receiver_capacity"] = receiver_capacity(a.capacity_s)
        cap = res["receiver_capacity"]
        if cap:
            print(f"receiver capacity: {cap['spans_per_s']:,} spans/s", file=sys.stderr)
    runs = []
    with Receiver(decode="shallow", validate_every=20) as receiver:
        for r in range(a.rounds):
            for c in configs if r % 2 == 0 else configs[::-1]:
                modes = ["flat"] + (["search"] if r == 0 and c in search else [])
                print(f"[round {r + 1}] {c}: {' + '.join(modes)}", file=sys.stderr)
                run = run_child(c, modes, receiver, a)
                run["round"] = r + 1
                runs.append(run)
                f = run["flat"]
                print(
                    f"  flat: made {f['made_per_s']:,}/s exported {f['exported_per_s']:,}/s dropped "
                    f"{f['dropped']:,} ({f['dropped_pct']}%) receiver cpu {run['receiver']['cpu_s']} s "
                    f"count ok {run['receiver']['matches_exporter']}",
                    file=sys.stderr,
                )
    res["runs"] = runs
    res["loadavg_end"] = loadavg()
    res["elapsed_s"] = round(time.time() - t0)
    text = report(res)
    res["table"] = text
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
