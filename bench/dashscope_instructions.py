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

With ``--keep DIR`` the callgrind outputs stay in DIR (``cg.<config>.<mode>.<state>.s<seed>.<pid>-<thread>``)
for callgrind_annotate.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import callgrind
import dashscope_overhead as workload  # the workload, transport and configs
from common import seeded_env


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
    callgrind.measured_calls(fn, calls)
    h["flush"]()
    spans = h["span_count"]() - before
    expected = calls if state == "on" else 0
    if spans != expected:
        raise SystemExit(f"{config} {mode} {state}: {spans} spans for {calls} calls")
    h["shutdown"]()


def main() -> None:
    if callgrind.run_child(child):
        return
    parser = callgrind.parser(__doc__, configs="loongsuite,llmprobe")
    parser.add_argument("--keep", help="keep the callgrind outputs in this directory")
    args = parser.parse_args()
    configs = args.configs.split(",")
    modes = args.modes.split(",")
    # The environment of dashscope_overhead.py's children: no OTEL_* / LLMPROBE_*, fixed hash seed.
    counts = callgrind.count(str(Path(__file__).resolve()), configs, modes, args, seeded_env())
    added = callgrind.print_table(configs, modes, counts, args.calls, workload.LABELS)
    for m in modes:
        if "llmprobe" in configs and "loongsuite" in configs:
            ratio = added[("llmprobe", m)] / added[("loongsuite", m)]
            print(f"\n{m}: llmprobe / loongsuite = {ratio:.3f}")


if __name__ == "__main__":
    main()
