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
(see callgrind.measured_calls()): a full collection landing in one run and not the other moved
the result by up to 200k instructions per call.

    /tmp/venv-peers/bin/python bench/openai_instructions.py              # ~15 min on 2 cores
    /tmp/venv-peers/bin/python bench/openai_instructions.py --configs plugin --modes sync --keep DIR

With ``--keep DIR`` the callgrind outputs stay in DIR (``cg.<config>.<mode>.<state>.s<seed>.<pid>-<thread>``)
for callgrind_annotate.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import callgrind
import openai_overhead  # the workload and the config names
from common import importable_llmprobe

SHORT = {
    "otel-v2": "otel-v2-content",
    "openllmetry": "openllmetry-content",
    "openinference": "openinference-content",
    "plugin": f"plugin:{openai_overhead.PLUGIN}",
}


def child(config: str, mode: str, state: str, calls: int, warmup: int) -> None:
    importable_llmprobe()
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
    callgrind.measured_calls(fn, calls, client)
    flush()
    if h["shutdown"]:
        h["shutdown"]()


def main() -> None:
    if callgrind.run_child(child):
        return
    parser = callgrind.parser(__doc__, configs="otel-v2,openllmetry,openinference,plugin")
    parser.add_argument("--keep", help="keep the callgrind outputs in this directory")
    args = parser.parse_args()
    configs = [SHORT.get(c, c) for c in args.configs.split(",")]
    modes = args.modes.split(",")
    counts = callgrind.count(str(Path(__file__).resolve()), configs, modes, args, openai_overhead.child_env())
    added = callgrind.print_table(configs, modes, counts, args.calls, openai_overhead.LABELS)
    ours = SHORT["plugin"]
    for m in modes:
        peers = [added[(c, m)] for c in configs if c != ours]
        if ours in configs and peers:
            print(f"\n{m}: llmprobe / cheapest peer = {added[(ours, m)] / min(peers):.3f}")


if __name__ == "__main__":
    main()
