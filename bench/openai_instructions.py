#!/usr/bin/env python3
"""Instructions added per ``chat.completions.create`` call and per 50-chunk stream, counted by
callgrind over every thread of the process: llmprobe next to the peers, the noise-free
companion of openai_overhead.py (same workload, same harness, same configs).

For each config and mode two processes run under ``valgrind --tool=callgrind``: both set the
config up, warm it up in both states exactly as the harness does, then make N calls with the
instrumentation on, or N calls with it off, flush and exit. The added cost per call is
``(Ir(on) - Ir(off)) / N`` over all threads, so the peers' BatchSpanProcessor worker and
llmprobe's exporter threads (batching, encoding, HTTP to the sink) are both counted, as is the
final flush that exports the N spans. The cyclic garbage collector is off during the N calls
(see child()): a full collection landing in one run and not the other moved the result by up to
200k instructions per call.

    /tmp/venv-peers/bin/python bench/openai_instructions.py              # ~15 min on 2 cores
    /tmp/venv-peers/bin/python bench/openai_instructions.py --configs plugin --modes sync
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

import openai_overhead  # the workload and the config names

SHORT = {
    "otel-v2": "otel-v2-content",
    "openllmetry": "openllmetry-content",
    "openinference": "openinference-content",
    "plugin": f"plugin:{openai_overhead.PLUGIN}",
}


def child(config: str, mode: str, state: str, calls: int, warmup: int) -> None:
    try:
        import llmprobe  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(HERE.parent / "python"))
    b = openai_overhead.harness()
    h = b.setup_config(config, "traces", True)
    client = b.make_client()
    fn = {"sync": b.call_sync, "stream": b.call_stream}[mode]
    toggle = config != "none"

    def flush() -> None:
        if h["flush"]:
            h["flush"]()
        elif h["tp"] is not None:
            h["tp"].force_flush()

    for on in (False, True) if toggle else (True,):
        if toggle:
            (h["enable"] if on else h["disable"])()
        for _ in range(warmup):
            fn(client)
    flush()
    if toggle and state == "off":
        h["disable"]()
    # The cyclic collector runs about once per 200 calls here, and a full collection costs
    # millions of instructions: whether one lands inside the on run or the off run would decide
    # the difference. So it is collected before and kept off during the measured calls.
    gc.collect()
    gc.disable()
    for _ in range(calls):
        fn(client)
    gc.enable()
    flush()
    if h["shutdown"]:
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
    prefix = os.path.join(workdir, f"cg.{abs(hash((config, mode, state)))}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_", "OPENINFERENCE_"))}
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
    parser.add_argument("--configs", default="otel-v2,openllmetry,openinference,plugin")
    parser.add_argument("--modes", default="sync,stream")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    configs = [SHORT.get(c, c) for c in args.configs.split(",")]
    modes = args.modes.split(",")
    runs = [(c, m, s) for c in configs for m in modes for s in ("on", "off")]
    with tempfile.TemporaryDirectory() as workdir, ThreadPoolExecutor(args.jobs) as pool:
        counts = dict(zip(runs, pool.map(lambda r: measure(*r, args.calls, args.warmup, workdir), runs)))
    print("\n| config | mode | instructions added per call: all threads | calling thread | other threads |")
    print("|---|---|---|---|---|")
    added = {}
    for c in configs:
        for m in modes:
            (on_main, on_other), (off_main, off_other) = counts[(c, m, "on")], counts[(c, m, "off")]
            main = (on_main - off_main) / args.calls
            other = (on_other - off_other) / args.calls
            added[(c, m)] = main + other
            label = openai_overhead.LABELS.get(c, c)
            print(f"| {label} | {m} | {main + other:,.0f} | {main:,.0f} | {other:,.0f} |")
    ours = SHORT["plugin"]
    for m in modes:
        peers = [added[(c, m)] for c in configs if c != ours]
        if ours in configs and peers:
            print(f"\n{m}: llmprobe / cheapest peer = {added[(ours, m)] / min(peers):.3f}")


if __name__ == "__main__":
    main()
