#!/usr/bin/env python3
"""Instructions added per node of a ten-node Dify workflow on graphon, counted by callgrind over
every thread of the process: llmprobe next to a graphon layer on the OpenTelemetry SDK that makes
the spans Dify's own ObservabilityLayer makes (the workflow and configs are dify_workload.py's).

The machinery is langchain_instructions.py's: for each config two processes run under
``valgrind --tool=callgrind --separate-threads=yes`` (bench/callgrind.py): both set the config
up, warm it up in both states, then make N workflow runs with the instrumentation on, or N runs
with it off, flush and exit. The added cost per node is ``(Ir(on) - Ir(off)) / (N x 10)`` over
all threads: the thread reading ``engine.run()``, graphon's dispatcher and worker threads (where
the layers' hooks run), the SDK's BatchSpanProcessor worker and llmprobe's exporter threads
(batching, encoding, HTTP to the sink), with the final flush that exports the N runs' spans.
No batch or metric timer fires during the runs (dify_workload.TIMERS); the collector is off
during them (callgrind.measured_calls()). ``none`` is not toggled: its off run makes no runs, so
its row is graphon's own cost, for scale. A child fails if it exported a span while off or none
while on, or if an engine built while on has the config's layer other than once, or one built
while off has it at all; the spans per run are printed with the table.

Run it with the graphon venv of bench/README.md ("Dify"):

    .dev/venv-graphon-0.8.0/bin/python bench/dify_instructions.py --check    # ~10 s, no valgrind
    .dev/venv-graphon-0.8.0/bin/python bench/dify_instructions.py            # ~10 min on 2 cores
    .dev/venv-graphon-0.8.0/bin/python bench/dify_instructions.py --configs llmprobe --keep DIR

``--check`` runs every config without valgrind (3 runs on, then 3 off), prints the spans of the
first run as a capturing receiver decoded them (name, parent, attributes, whether the query's and
the answers' text is in them), and fails (exit status 1) if a config exported a span while off,
none while on, left an engine's layers wrong, or did not export one workflow span with the ten
node spans under it per run. With ``--keep DIR`` the callgrind outputs stay in DIR
(``cg.<config>.workflow.<state>.s<seed>.<pid>-<thread>``) for callgrind_annotate.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import callgrind
import dify_workload as workload
from common import Receiver, decode_capture
from langchain_instructions import report, span_counts
from llamaindex_instructions import wrong_spans

SCRIPT = str(Path(__file__).resolve())
# Texts whose presence in a span's attributes shows that content was captured.
CONTENT = {
    "query": workload.QUERY,
    "draft": workload.ANSWERS["draft"],
    "review": workload.ANSWERS["review"],
    "summary": workload.ANSWERS["summary"],
    "final": workload.FINAL,
}
WORKFLOW = "workflow wf-bench"
# Workflow runs per state: a run costs graphon some 34M instructions, a second or two under
# callgrind; every child first spends some 2 minutes importing graphon and the config.
CALLS, WARMUP = 20, 5


def child(config: str, mode: str, state: str, calls: int, warmup: int) -> None:
    if state == "check":
        check_child(config, calls)
        return
    h = workload.setup_config(config)
    fn = workload.make_workflow(h["layers"])
    toggle = h["enable"] is not None
    for on in (False, True) if toggle else (True,):
        if toggle:
            (h["enable"] if on else h["disable"])()
        for _ in range(warmup):
            fn()
    h["flush"]()
    if toggle and state == "off":
        h["disable"]()
    if problem := workload.layered_once(h, workload.build_engine(h["layers"]()), state):
        raise SystemExit(f"{config} {state}: {problem}")
    before = h["span_count"]()
    # none's off run makes no runs: its difference is graphon's own cost.
    callgrind.measured_calls(fn, calls if toggle or state == "on" else 0)
    h["flush"]()
    spans = h["span_count"]() - before
    report(config, mode, state, {"spans": spans, "calls": calls, "llmprobe": llmprobe_build()})
    if wrong_spans(config, state, spans):
        raise SystemExit(f"{config} {state}: {spans} spans for {calls} runs")
    h["shutdown"]()


def llmprobe_build() -> str:
    """Where the llmprobe this process imports (or would) is, and when its _core and its Dify
    layer were written: the children of one run must all have the same (a venv shared with the
    tests, .ci/graphon, gets llmprobe reinstalled from the working tree whenever they run)."""
    spec = importlib.util.find_spec("llmprobe")
    if spec is None or spec.origin is None:
        return "none"
    folder = Path(spec.origin).parent
    files = [*sorted(folder.glob("_core*.so")), folder / "instrumentation" / "dify" / "_layer.py"]
    return f"{folder}: " + ", ".join(f"{f.name} {f.stat().st_mtime_ns}" for f in files if f.exists())


def builds(folder: str) -> set[str]:
    """The llmprobe builds the children reported."""
    return {json.loads(p.read_text()).get("llmprobe", "?") for p in Path(folder).glob("*.json")}


# ---- --check: what each config exports -----------------------------------------------------------


def shape_problems(spans: list[dict], runs: int) -> list[str]:
    """A traced run must export one workflow span, a root, with the ten nodes' spans under it."""
    problems = []
    roots = [s for s in spans if s["parent"] == ""]
    if len(roots) != runs or any(s["name"] != WORKFLOW for s in roots):
        problems.append(f"roots {[s['name'] for s in roots]} for {runs} runs")
    nodes = sum(s["parent"] == WORKFLOW for s in spans)
    if nodes != runs * workload.NODES:
        problems.append(f"{nodes} spans under {WORKFLOW!r} for {runs} runs")
    return problems


def check_child(config: str, calls: int) -> None:
    """`calls` runs on, then `calls` off: prints JSON, with the on runs' spans as a capturing
    receiver decoded them; fails as a measuring child does."""
    capture = tempfile.mktemp(prefix="dify-check-", suffix=".pb")
    problems: list[str] = []
    spans: list[dict] = []
    with Receiver(decode="full", capture=capture) as rx:
        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = rx.endpoint
        h = workload.setup_config(config)
        fn = workload.make_workflow(h["layers"])
        counts = {}
        for on in (True, False):
            state = "on" if on else "off"
            if h["enable"] is not None:
                (h["enable"] if on else h["disable"])()
            if problem := workload.layered_once(h, workload.build_engine(h["layers"]()), state):
                problems.append(problem)
            h["flush"]()
            before = h["span_count"]()
            for _ in range(calls):
                fn()
            h["flush"]()
            counts[state] = (h["span_count"]() - before) / calls
            if wrong_spans(config, state, counts[state]):
                problems.append(f"{state}: {counts[state]:g} spans per run")
        h["shutdown"]()
    if os.path.exists(capture):
        spans = decode_capture(capture, CONTENT)
        os.unlink(capture)
        problems += shape_problems(spans, calls)
    elif config not in ("none", "floor"):  # the configs that trace nothing (wrong_spans())
        problems.append("the receiver got no span")
    print(json.dumps({"spans per run": counts, "spans of the on runs": spans, "problems": problems}))
    if problems:
        raise SystemExit(f"{config}: " + "; ".join(problems))


def check(configs: list[str]) -> bool:
    """Every config once without valgrind; whether all passed."""
    ok = True
    for c in configs:
        command = [sys.executable, SCRIPT, "--child", c, "workflow", "check", "3", "0"]
        done = subprocess.run(command, capture_output=True, text=True, env=workload.child_env(), check=False)
        lines = done.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
        if done.returncode != 0:
            ok = False
            print(f"\n## {c}: FAILED\n{done.stderr[-3000:]}")
            if result is None:
                continue
        per_run = result["spans per run"]
        shown = result["spans of the on runs"][: round(per_run.get("on", 0))]
        print(f"\n## {c}: spans per run {per_run}" + ("; the first on run's:" if shown else ""))
        for span in shown:
            print(
                f"  {span['name']:34s} under {span['parent'] or '(root)':20s} {span['attributes']:3d} "
                f"attributes, content: {span['content']}"
            )
    return ok


# ---- the run --------------------------------------------------------------------------------------


def print_results(configs: list[str], counts: dict, calls: int, spans: dict) -> dict:
    """The table of instructions added per node and per run; returns the all-threads figure per
    node for each config."""
    mode, nodes = "workflow", workload.NODES
    print(
        "\n| config | per node: all threads | calling thread | other threads | per run: all threads "
        "| spans per run |"
    )
    print("|---|---|---|---|---|---|")
    added = {}
    for c in configs:
        (on_main, on_other), (off_main, off_other) = counts[(c, mode, "on")], counts[(c, mode, "off")]
        calling, other = (on_main - off_main) / calls, (on_other - off_other) / calls
        added[c] = (calling + other) / nodes
        print(
            f"| {workload.LABELS.get(c, c)} | {added[c]:,.0f} | {calling / nodes:,.0f} | {other / nodes:,.0f} "
            f"| {calling + other:,.0f} | {spans[(c, mode)]:g} |"
        )
    lines = []
    if "llmprobe" in added and "otel-sdk" in added:
        lines.append(f"llmprobe / otel-sdk = {added['llmprobe'] / added['otel-sdk']:.3f}")
        if "floor" in added:
            above = (added["llmprobe"] - added["floor"]) / (added["otel-sdk"] - added["floor"])
            lines.append(f"(llmprobe - floor) / (otel-sdk - floor) = {above:.3f}")
    if "floor" in added:
        lines += [
            f"{c} / floor = {added[c] / added['floor']:.2f}" for c in ("llmprobe", "otel-sdk") if c in added
        ]
    if "none" in added:
        lines += [f"{c} / graphon's own cost = {added[c] / added['none']:.3f}" for c in added if c != "none"]
    print("\n" + "\n".join(lines))
    return added


def main() -> None:
    if callgrind.run_child(child):
        return
    parser = callgrind.parser(__doc__, configs=",".join(workload.CONFIGS))
    parser.set_defaults(modes="workflow", calls=CALLS, warmup=WARMUP)
    parser.add_argument("--keep", help="keep the callgrind outputs in this directory")
    parser.add_argument("--check", action="store_true", help="the spans each config exports; no valgrind")
    args = parser.parse_args()
    configs = args.configs.split(",")
    print("versions:")
    for name, version in workload.versions().items():
        print(f"  {name}: {version}")
    if args.check:
        if not check(configs):
            raise SystemExit(1)
        return
    print(
        f"\n{args.calls} workflow runs of {workload.NODES} nodes after {args.warmup} warm-up runs per state, seeds {args.seeds}"
    )
    with tempfile.TemporaryDirectory() as spans_dir:
        env = dict(workload.child_env(), LLMPROBE_BENCH_SPANS=spans_dir)
        counts = callgrind.count(SCRIPT, configs, ["workflow"], args, env)
        spans = span_counts(spans_dir, configs, ["workflow"], args.calls)
        seen = builds(spans_dir)
    print_results(configs, counts, args.calls, spans)
    if len(seen) > 1:
        print("\nWARNING: the children imported different llmprobe builds (reinstalled during the run?):")
        for build in sorted(seen):
            print(f"  {build}")
    else:
        print(f"\nllmprobe build of every child: {seen.pop() if seen else '?'}")


if __name__ == "__main__":
    main()
