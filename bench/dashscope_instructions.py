#!/usr/bin/env python3
"""Instructions added per ``dashscope.Generation.call`` and per 50-chunk streamed call, counted
by callgrind over every thread of the process: llmprobe next to loongsuite-instrumentation-
dashscope, the noise-free companion of dashscope_overhead.py (same workload, transport and
configs).

For each config and mode two processes run under ``valgrind --tool=callgrind
--separate-threads=yes``: both set the config up and warm it up in both states, then make N calls
with the instrumentation on, or N calls with it off, flush and exit. The added cost per call is
``(Ir(on) - Ir(off)) / N`` over all threads, so loongsuite's BatchSpanProcessor worker and
llmprobe's exporter threads (batching, encoding, HTTP to the sink) are both counted, as is the
final flush that exports the N spans.

    /tmp/venv-dsbench/bin/python bench/dashscope_instructions.py               # ~6 min on 2 cores
    /tmp/venv-dsbench/bin/python bench/dashscope_instructions.py --configs llmprobe --modes sync --keep DIR

With ``--keep DIR`` the callgrind outputs stay in DIR (``cg.<config>.<mode>.<state>.<pid>-<thread>``)
for callgrind_annotate.
"""

from __future__ import annotations

import argparse
import gc
import glob
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dashscope_overhead as workload  # the workload, transport and configs


def child(config: str, mode: str, state: str, calls: int, warmup: int) -> None:
    h = workload.setup_config(config)
    fn = workload.CALLS[mode]
    for on in (False, True):
        (h["enable"] if on else h["disable"])()
        for _ in range(warmup):
            fn()
    h["flush"]()
    if state == "off":
        h["disable"]()
    before = h["span_count"]()
    # As in openai_instructions.py: no full collection may land in one run and not the other.
    gc.collect()
    gc.disable()
    for _ in range(calls):
        fn()
    gc.enable()
    h["flush"]()
    spans = h["span_count"]() - before
    expected = calls if state == "on" else 0
    if spans != expected:
        raise SystemExit(f"{config} {mode} {state}: {spans} spans for {calls} calls")
    h["shutdown"]()


def total_instructions(out_prefix: str) -> tuple[int, int]:
    """(calling thread, all other threads) instructions of one run's per-thread outputs."""
    main = others = 0
    for path in glob.glob(out_prefix + "*"):
        with open(path) as f:
            for line in f:
                if line.startswith(("totals:", "summary:")):
                    count = int(line.split()[1])
                    if path.endswith("-01"):
                        main += count
                    else:
                        others += count
                    break
    return main, others


def measure(config: str, mode: str, state: str, calls: int, warmup: int, workdir: str) -> tuple[int, int]:
    prefix = os.path.join(workdir, f"cg.{config}.{mode}.{state}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMPROBE_"))}
    env["PYTHONHASHSEED"] = "0"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        f"--callgrind-out-file={prefix}.%p",
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        config,
        mode,
        state,
        str(calls),
        str(warmup),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"{config} {mode} {state} failed")
    return total_instructions(prefix)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        config, mode, state, calls, warmup = sys.argv[2:7]
        child(config, mode, state, int(calls), int(warmup))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", default="loongsuite,llmprobe")
    parser.add_argument("--modes", default="sync,stream")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", help="keep the callgrind outputs in this directory")
    args = parser.parse_args()
    configs = args.configs.split(",")
    modes = args.modes.split(",")
    runs = [(c, m, s) for c in configs for m in modes for s in ("on", "off")]
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(args.jobs) as pool:
        workdir = args.keep or scratch
        os.makedirs(workdir, exist_ok=True)
        counts = dict(zip(runs, pool.map(lambda r: measure(*r, args.calls, args.warmup, workdir), runs)))
    print("\n| config | mode | instructions added per call: all threads | calling thread | other threads |")
    print("|---|---|---|---|---|")
    added = {}
    for c in configs:
        for m in modes:
            (on_main, on_other), (off_main, off_other) = counts[(c, m, "on")], counts[(c, m, "off")]
            main_thread = (on_main - off_main) / args.calls
            other = (on_other - off_other) / args.calls
            added[(c, m)] = main_thread + other
            label = workload.LABELS.get(c, c)
            print(f"| {label} | {m} | {main_thread + other:,.0f} | {main_thread:,.0f} | {other:,.0f} |")
    for m in modes:
        if "llmprobe" in configs and "loongsuite" in configs:
            ratio = added[("llmprobe", m)] / added[("loongsuite", m)]
            print(f"\n{m}: llmprobe / loongsuite = {ratio:.3f}")


if __name__ == "__main__":
    main()
