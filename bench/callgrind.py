"""Instructions added per call, counted by callgrind over every thread of a child process: the
machinery of openai_instructions.py and dashscope_instructions.py.

A script supplies its child (``SCRIPT --child CONFIG MODE STATE CALLS WARMUP``, read back by
run_child()): it sets CONFIG up, warms it up, makes CALLS calls of MODE with the instrumentation
in STATE ("on" or "off") through measured_calls(), flushes and exits. count() runs that child
under ``valgrind --tool=callgrind --separate-threads=yes`` for every config, mode and state and
sums each run's per-thread totals into (calling thread, other threads); print_table() prints the
added cost per call, ``(Ir(on) - Ir(off)) / N``.
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

STATES = ("on", "off")


def parser(description: str, configs: str) -> argparse.ArgumentParser:
    """The options both scripts take; `configs` is the default of --configs."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default=configs)
    p.add_argument("--modes", default="sync,stream")
    p.add_argument("--calls", type=int, default=100)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument(
        "--seeds",
        default="0",
        help="PYTHONHASHSEED values, comma-separated: each state runs once per seed and the counts "
        "are averaged (a process's hash layout can make every call of one run some 10-30k "
        "instructions dearer than another's; several seeds average that out)",
    )
    return p


def run_child(child: Callable[[str, str, str, int, int], None]) -> bool:
    """child(config, mode, state, calls, warmup) if this process is a child count() started (its
    command line says so); whether it was."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        config, mode, state, calls, warmup = sys.argv[2:7]
        child(config, mode, state, int(calls), int(warmup))
        return True
    return False


def measured_calls(fn: Callable[..., object], calls: int, *args: object) -> None:
    """`calls` calls of fn(*args), the calls the on and off runs differ by.

    The cyclic collector runs about once per 200 calls of these workloads, and a full collection
    costs millions of instructions: whether one lands inside the on run or the off run would
    decide the difference (it moved a result by up to 200k instructions per call). So it is
    collected before and kept off during the calls.
    """
    gc.collect()
    gc.disable()
    for _ in range(calls):
        fn(*args)
    gc.enable()


def total_instructions(out_prefix: str) -> tuple[int, int]:
    """(calling thread, all other threads) instructions of one run's per-thread outputs."""
    main = others = 0
    # "<prefix>.<pid>" and "<prefix>.<pid>-<thread>" only: another run's prefix may extend this one.
    for path in glob.glob(out_prefix + ".[0-9]*"):
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


def measure(
    script: str, run: tuple[str, str, str, str], calls: int, warmup: int, env: Mapping[str, str], workdir: str
) -> tuple[int, int]:
    """One child of `script` under callgrind, with hash seed `seed`: its (calling thread, other
    threads) instructions."""
    config, mode, state, seed = run
    env = dict(env, PYTHONHASHSEED=seed)
    # Its outputs are cg.<config>.<mode>.<state>.s<seed>.<pid>-<thread> (what --keep leaves); a
    # config that is a path (the peers' plugin:/.../x.py) must not make one a subdirectory.
    name = f"cg.{config}.{mode}.{state}.s{seed}"
    prefix = os.path.join(workdir, name.replace("/", "_"))
    command = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        f"--callgrind-out-file={prefix}.%p",
        sys.executable,
        script,
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


def count(
    script: str, configs: list[str], modes: list[str], args: argparse.Namespace, env: Mapping[str, str]
) -> dict[tuple[str, str, str], tuple[float, float]]:
    """measure() of every (config, mode, state), once per seed of --seeds, with parser()'s
    options `args`, --jobs at a time, with the outputs in args.keep (left there) if the script
    has that option, else in a scratch directory. The counts are the mean over the seeds."""
    seeds = args.seeds.split(",")
    runs = [(c, m, s, seed) for c in configs for m in modes for s in STATES for seed in seeds]
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(args.jobs) as pool:
        workdir = getattr(args, "keep", None) or scratch
        os.makedirs(workdir, exist_ok=True)
        results = list(pool.map(lambda r: measure(script, r, args.calls, args.warmup, env, workdir), runs))
    counts: dict = {}
    for (c, m, s, _), (calling, other) in zip(runs, results):
        total = counts.get((c, m, s), (0, 0))
        counts[(c, m, s)] = (total[0] + calling / len(seeds), total[1] + other / len(seeds))
    return counts


def print_table(
    configs: list[str],
    modes: list[str],
    counts: dict[tuple[str, str, str], tuple[int, int]],
    calls: int,
    labels: Mapping[str, str],
) -> dict[tuple[str, str], float]:
    """The table of instructions added per call; returns the all-threads figure per (config, mode)."""
    print("\n| config | mode | instructions added per call: all threads | calling thread | other threads |")
    print("|---|---|---|---|---|")
    added = {}
    for c in configs:
        for m in modes:
            (on_main, on_other), (off_main, off_other) = counts[(c, m, "on")], counts[(c, m, "off")]
            calling = (on_main - off_main) / calls
            other = (on_other - off_other) / calls
            added[(c, m)] = calling + other
            print(f"| {labels.get(c, c)} | {m} | {calling + other:,.0f} | {calling:,.0f} | {other:,.0f} |")
    return added
