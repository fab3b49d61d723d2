#!/usr/bin/env python3
"""Instructions added per LlamaIndex query (and per chat call of a model), counted by callgrind
over every thread of the process: llmprobe next to openinference-instrumentation-llama-index and
next to the floor, a span handler and an event handler that do nothing (the workloads and
configs are llamaindex_workload.py's).

The machinery is langchain_instructions.py's: for each config and mode two processes run under
``valgrind --tool=callgrind --separate-threads=yes`` (bench/callgrind.py): both set the config
up, warm it up in both states, then make N calls with the instrumentation on, or N calls with it
off, flush and exit. The added cost per call is ``(Ir(on) - Ir(off)) / N`` over all threads, so
the peer's BatchSpanProcessor worker and llmprobe's exporter threads (batching, encoding, HTTP
to the sink) are both counted, as is the final flush that exports the N calls' spans. The
collector is off during the N calls (callgrind.measured_calls()). ``none`` is not toggled: its
off run makes no calls, so its row is LlamaIndex's own cost per call, for scale. A child fails if
it exported a span while off or none while on, or if the root dispatcher's handlers are not the
baseline's while off and the baseline's plus the config's, one of each type, while on
(llamaindex_workload.toggled_once()); the spans per call are printed with the table.

Run it with the venv of bench/README.md ("LlamaIndex"):

    /tmp/venv-li-peers/bin/python bench/llamaindex_instructions.py --check     # ~40 s, no valgrind
    /tmp/venv-li-peers/bin/python bench/llamaindex_instructions.py             # ~12 min on 2 cores
    /tmp/venv-li-peers/bin/python bench/llamaindex_instructions.py --modes chat # ~8 min
    /tmp/venv-li-peers/bin/python bench/llamaindex_instructions.py --configs llmprobe --modes query --keep DIR

The run's default modes are ``query`` only (each child spends some 3 minutes under callgrind on
importing LlamaIndex and building the index before its calls); ``--check``'s are both.

``--check`` runs every config and mode without valgrind (3 calls on, then 3 off), prints the
spans each exported, as a capturing receiver decoded them, with whether the messages' content is
in them, and fails (exit status 1) if a config exported a span while off, none while on, or left
the dispatcher's handlers wrong. With ``--keep DIR`` the callgrind outputs stay in DIR
(``cg.<config>.<mode>.<state>.s<seed>.<pid>-<thread>``) for callgrind_annotate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import callgrind
import llamaindex_workload as workload
from common import Receiver, decode_capture, span_summary
from langchain_instructions import report, span_counts

SCRIPT = str(Path(__file__).resolve())
# Texts whose presence in a span's attributes shows that content was captured.
CONTENT = {
    "question": workload.QUESTION,
    "answer": workload.ANSWER,
    "document": workload.RETRIEVED[0],
    "system": workload.SYSTEM,
}
# Calls per state, fewer than the LangChain bench's 100 / 30: a query costs LlamaIndex some 7.5M
# instructions (openinference adds 30M more), and every child first spends some 6,000M on
# importing LlamaIndex (and the peer) and building the index, about 3 minutes under callgrind.
# For the same reason the default modes are "query" only (chat: --modes chat, ~8 min more).
CALLS, WARMUP = 40, 10


def child(config: str, mode: str, state: str, calls: int, warmup: int) -> None:
    if state == "check":
        check_child(config, mode, calls)
        return
    baseline = workload.root_handlers()
    h = workload.setup_config(config)
    fn = workload.WORKLOADS[mode]()
    toggle = h["enable"] is not None
    for on in (False, True) if toggle else (True,):
        if toggle:
            (h["enable"] if on else h["disable"])()
        for _ in range(warmup):
            fn()
    h["flush"]()
    if toggle and state == "off":
        h["disable"]()
    if toggle and (problem := workload.toggled_once(baseline, state)):
        raise SystemExit(f"{config} {mode} {state}: {problem}")
    before = h["span_count"]()
    # none's off run makes no calls: its difference is the workload's own cost.
    callgrind.measured_calls(fn, calls if toggle or state == "on" else 0)
    h["flush"]()
    spans = h["span_count"]() - before
    report(config, mode, state, {"spans": spans, "calls": calls})
    if wrong_spans(config, state, spans):
        raise SystemExit(f"{config} {mode} {state}: {spans} spans for {calls} calls")
    h["shutdown"]()


def wrong_spans(config: str, state: str, spans: float) -> bool:
    """Spans while off, or (for a config that traces) none while on."""
    instrumented = config not in ("none", "floor")
    return bool((state == "off" and spans) or (state == "on" and instrumented and not spans))


# ---- --check: what each config exports -----------------------------------------------------------


def check_child(config: str, mode: str, calls: int) -> None:
    """`calls` calls on, then `calls` off: prints JSON, with the on calls' spans (llmprobe's as a
    capturing receiver decoded them, the SDK's from their exporter's last export); fails as a
    measuring child does."""
    capture = tempfile.mktemp(prefix="li-check-", suffix=".pb")
    problems = []
    with Receiver(decode="full", capture=capture) as rx:
        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = rx.endpoint
        baseline = workload.root_handlers()
        h = workload.setup_config(config)
        if h["disable"] is not None:
            # The workload made (the query's index and its embeddings) while off: the receiver
            # keeps the first request that has spans, which must be the on calls'.
            h["disable"]()
        fn = workload.WORKLOADS[mode]()
        counts, spans = {}, []
        for on in (True, False):
            state = "on" if on else "off"
            if h["enable"] is not None:
                (h["enable"] if on else h["disable"])()
                if problem := workload.toggled_once(baseline, state):
                    problems.append(f"{state}: {problem}")
            h["flush"]()
            before = h["span_count"]()
            for _ in range(calls):
                fn()
            h["flush"]()
            counts[state] = (h["span_count"]() - before) / calls
            if wrong_spans(config, state, counts[state]):
                problems.append(f"{state}: {counts[state]:g} spans per call")
            if on and "last_export" in h:
                spans = [
                    span_summary(name, attributes.values(), CONTENT)
                    for name, attributes in h["last_export"]()
                ]
        h["shutdown"]()
    if os.path.exists(capture):
        spans = spans or decode_capture(capture, CONTENT)
        os.unlink(capture)
    print(json.dumps({"spans per call": counts, "spans of the on calls": spans, "problems": problems}))
    if problems:
        raise SystemExit(f"{config} {mode}: " + "; ".join(problems))


def check(configs: list[str], modes: list[str]) -> bool:
    """Every config and mode once without valgrind; whether all passed."""
    ok = True
    for c in configs:
        for m in modes:
            command = [sys.executable, SCRIPT, "--child", c, m, "check", "3", "0"]
            done = subprocess.run(
                command, capture_output=True, text=True, env=workload.child_env(), check=False
            )
            lines = done.stdout.strip().splitlines()
            result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
            if done.returncode != 0:
                ok = False
                print(f"\n## {c} {m}: FAILED\n{done.stderr[-3000:]}")
                if result is None:
                    continue
            per_call = result["spans per call"]
            shown = result["spans of the on calls"][: round(per_call.get("on", 0))]
            print(f"\n## {c} {m}: spans per call {per_call}" + ("; the first on call's:" if shown else ""))
            for span in shown:
                print(f"  {span['name']:50s} {span['attributes']:3d} attributes, content: {span['content']}")
    return ok


# ---- the run --------------------------------------------------------------------------------------


def print_ratios(added: dict, configs: list[str], modes: list[str]) -> None:
    for m in modes:
        lines = []
        a = {c: added[(c, m)] for c in configs}
        if "llmprobe" in a and "openinference" in a:
            lines.append(f"llmprobe / openinference = {a['llmprobe'] / a['openinference']:.3f}")
            if "floor" in a and a["openinference"] > a["floor"]:
                above = (a["llmprobe"] - a["floor"]) / (a["openinference"] - a["floor"])
                lines.append(f"(llmprobe - floor) / (openinference - floor) = {above:.3f}")
        if "floor" in a and "openinference" in a:
            lines.append(f"floor / openinference = {a['floor'] / a['openinference']:.3f}")
        if "llmprobe" in a and "floor" in a:
            lines.append(f"llmprobe / floor = {a['llmprobe'] / a['floor']:.2f}")
        if "none" in a:
            for c in ("llmprobe", "openinference"):
                if c in a:
                    lines.append(f"{c} / LlamaIndex's own cost = {a[c] / a['none']:.3f}")
        print(f"\n{m}: " + "; ".join(lines))


def main() -> None:
    if callgrind.run_child(child):
        return
    parser = callgrind.parser(__doc__, configs=",".join(workload.CONFIGS))
    # --modes: by default both for --check, query only for the run (see CALLS).
    parser.set_defaults(modes=None, calls=CALLS, warmup=WARMUP)
    parser.add_argument("--keep", help="keep the callgrind outputs in this directory")
    parser.add_argument("--check", action="store_true", help="the spans each config exports; no valgrind")
    args = parser.parse_args()
    configs = args.configs.split(",")
    modes = (args.modes or (",".join(workload.MODES) if args.check else "query")).split(",")
    print("versions:")
    for name, version in workload.versions().items():
        print(f"  {name}: {version}")
    if args.check:
        if not check(configs, modes):
            raise SystemExit(1)
        return
    print(f"\n{args.calls} calls after {args.warmup} warm-up calls per state, seeds {args.seeds}")
    with tempfile.TemporaryDirectory() as spans_dir:
        env = dict(workload.child_env(), LLMPROBE_BENCH_SPANS=spans_dir)
        counts = callgrind.count(SCRIPT, configs, modes, args, env)
        per_call = span_counts(spans_dir, configs, modes, args.calls)
    added = callgrind.print_table(configs, modes, counts, args.calls, workload.LABELS)
    print("\n| config | " + " | ".join(f"{m}: spans per call" for m in modes) + " |")
    print("|---|" + "---|" * len(modes))
    for c in configs:
        print(f"| {workload.LABELS.get(c, c)} | " + " | ".join(f"{per_call[(c, m)]:g}" for m in modes) + " |")
    print_ratios(added, configs, modes)


if __name__ == "__main__":
    main()
