#!/usr/bin/env python3
"""Instructions added per LangChain chain invoke and per agent invoke, counted by callgrind over
every thread of the process: llmprobe next to openinference-, loongsuite- and opentelemetry-
(OpenLLMetry) instrumentation-langchain, and next to the floor, a callback handler that does
nothing (the workloads and configs are langchain_workload.py's).

For each config and mode two processes run under ``valgrind --tool=callgrind
--separate-threads=yes`` (bench/callgrind.py): both set the config up, warm it up in both states,
then make N calls with the instrumentation on, or N calls with it off, flush and exit. The added
cost per call is ``(Ir(on) - Ir(off)) / N`` over all threads, so the peers' BatchSpanProcessor
worker and llmprobe's exporter threads (batching, encoding, HTTP to the sink) are both counted,
as is the final flush that exports the N calls' spans. The collector is off during the N calls
(callgrind.measured_calls()). ``none`` is not toggled: its off run makes no calls, so its row is
LangChain's own cost per call, for scale. A child fails if it exported a span while off or none
while on; the spans per call are printed with the table.

One ``agent`` call is a whole agent invoke: 2 model calls and 1 tool call.

Run it with the venv of bench/README.md ("LangChain"); llmprobe comes from this checkout:

    /tmp/venv-lc-peers/bin/python bench/langchain_instructions.py --check     # ~30 s, no valgrind
    /tmp/venv-lc-peers/bin/python bench/langchain_instructions.py             # ~10 min on 2 cores
    /tmp/venv-lc-peers/bin/python bench/langchain_instructions.py --configs llmprobe --modes chain --keep DIR

``--check`` runs every config and mode once without valgrind (3 calls on, 3 off) and prints the
spans each exported, as a capturing receiver decoded them, with whether the messages' content is
in them. With ``--keep DIR`` the callgrind outputs stay in DIR
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
import langchain_workload as workload
from common import Receiver, decode_capture, span_summary

SCRIPT = str(Path(__file__).resolve())
# Texts whose presence in a span's attributes shows that content was captured.
CONTENT = {
    "question": workload.QUESTION,
    "answer": workload.ANSWER,
    "agent question": f"What is the weather in {workload.CITY}?",
    "tool call id": "call_0",
    "tool output": f"Sunny in {workload.CITY}",
    "agent answer": f"It is sunny in {workload.CITY}.",
}


def child(config: str, mode: str, state: str, calls: int, warmup: int) -> None:
    if state == "check":
        check_child(config, mode, calls)
        return
    original = workload.callback_manager_init() if config in workload.PEERS else None
    h = workload.setup_config(config)
    fn = workload.WORKLOADS[mode]()  # after setup: some peers wrap create_agent
    toggle = h["enable"] is not None
    for on in (False, True) if toggle else (True,):
        if toggle:
            (h["enable"] if on else h["disable"])()
        for _ in range(warmup):
            fn()
    h["flush"]()
    if toggle and state == "off":
        h["disable"]()
    if original is not None:
        wrapped_once(original, state)
    before = h["span_count"]()
    # none's off run makes no calls: its difference is the workload's own cost.
    callgrind.measured_calls(fn, calls if toggle or state == "on" else 0)
    h["flush"]()
    spans = h["span_count"]() - before
    report(config, mode, state, {"spans": spans, "calls": calls})
    instrumented = config not in ("none", "floor")
    if (state == "off" and spans) or (state == "on" and instrumented and not spans):
        raise SystemExit(f"{config} {mode} {state}: {spans} spans for {calls} calls")
    h["shutdown"]()


def wrapped_once(original: object, state: str) -> None:
    """A peer's BaseCallbackManager.__init__ is the original while off and wrapped once while on
    (a toggle that stacked wrappers would add their cost to both states)."""
    now = workload.callback_manager_init()
    ok = now is original if state == "off" else getattr(now, "__wrapped__", None) is original
    if not ok:
        raise SystemExit(f"BaseCallbackManager.__init__ is {now!r} while {state}")


def report(config: str, mode: str, state: str, result: dict) -> None:
    """Leave a child's span count where the parent reads it (count() keeps only instructions)."""
    folder = os.environ.get("LLMPROBE_BENCH_SPANS")
    if folder:
        name = f"{config}.{mode}.{state}.s{os.environ['PYTHONHASHSEED']}.json"
        Path(folder, name).write_text(json.dumps(result))


def span_counts(folder: str, configs: list[str], modes: list[str], calls: int) -> dict:
    """Spans exported per call while on, per (config, mode), over the seeds' runs."""
    out = {}
    for c in configs:
        for m in modes:
            runs = [json.loads(p.read_text()) for p in Path(folder).glob(f"{c}.{m}.on.s*.json")]
            out[(c, m)] = sum(r["spans"] for r in runs) / (calls * len(runs)) if runs else float("nan")
    return out


# ---- --check: what each config exports -----------------------------------------------------------


def check_child(config: str, mode: str, calls: int) -> None:
    """`calls` calls on, then `calls` off: prints JSON, with the on calls' spans (llmprobe's as a
    capturing receiver decoded them, the SDK's from their exporter's last export)."""
    capture = tempfile.mktemp(prefix="lc-check-", suffix=".pb")
    with Receiver(decode="full", capture=capture) as rx:
        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = rx.endpoint
        h = workload.setup_config(config)
        fn = workload.WORKLOADS[mode]()
        counts, spans = {}, []
        for on in (True, False):
            if h["enable"] is not None:
                (h["enable"] if on else h["disable"])()
            h["flush"]()
            before = h["span_count"]()
            for _ in range(calls):
                fn()
            h["flush"]()
            counts["on" if on else "off"] = (h["span_count"]() - before) / calls
            if on and "last_export" in h:
                spans = [
                    span_summary(name, attributes.values(), CONTENT)
                    for name, attributes in h["last_export"]()
                ]
        h["shutdown"]()
    if os.path.exists(capture):
        spans = spans or decode_capture(capture, CONTENT)
        os.unlink(capture)
    print(json.dumps({"spans per call": counts, "spans of the on calls": spans}))


def check(configs: list[str], modes: list[str]) -> None:
    for c in configs:
        for m in modes:
            command = [sys.executable, SCRIPT, "--child", c, m, "check", "3", "0"]
            done = subprocess.run(
                command, capture_output=True, text=True, env=workload.child_env(), check=False
            )
            if done.returncode != 0:
                print(f"\n## {c} {m}: FAILED\n{done.stderr[-3000:]}")
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"\n## {c} {m}: spans per call {result['spans per call']}")
            for span in result["spans of the on calls"]:
                print(f"  {span['name']:40s} {span['attributes']:3d} attributes, content: {span['content']}")


# ---- the run --------------------------------------------------------------------------------------


def print_ratios(added: dict, configs: list[str], modes: list[str]) -> None:
    for m in modes:
        peers = {c: added[(c, m)] for c in workload.PEERS if c in configs}
        lines = []
        if peers:
            cheapest = min(peers, key=peers.get)
            lines.append(f"cheapest peer: {cheapest}")
            if "llmprobe" in configs:
                lines.append(f"llmprobe / cheapest peer = {added[('llmprobe', m)] / peers[cheapest]:.3f}")
            if "floor" in configs:
                lines.append(f"floor / cheapest peer = {added[('floor', m)] / peers[cheapest]:.3f}")
        if "llmprobe" in configs and "floor" in configs:
            lines.append(f"llmprobe / floor = {added[('llmprobe', m)] / added[('floor', m)]:.2f}")
        if "llmprobe" in configs and "none" in configs:
            lines.append(
                f"llmprobe / LangChain's own cost = {added[('llmprobe', m)] / added[('none', m)]:.3f}"
            )
        print(f"\n{m}: " + "; ".join(lines))


def main() -> None:
    if callgrind.run_child(child):
        return
    parser = callgrind.parser(__doc__, configs=",".join(workload.CONFIGS))
    parser.set_defaults(modes=",".join(workload.MODES))
    parser.add_argument("--keep", help="keep the callgrind outputs in this directory")
    parser.add_argument("--check", action="store_true", help="the spans each config exports; no valgrind")
    args = parser.parse_args()
    configs = args.configs.split(",")
    modes = args.modes.split(",")
    print("versions:")
    for name, version in workload.versions().items():
        print(f"  {name}: {version}")
    if args.check:
        check(configs, modes)
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
