#!/usr/bin/env python3
"""Added CPU per ``chat.completions.create`` call and per 50-chunk stream: llmprobe next to
opentelemetry-instrumentation-openai-v2, OpenLLMetry and OpenInference, in one run.

The measurement is the peers' harness (/work/shared/peer-bench/bench_llm_overhead.py): an
OpenAI client on an in-process mock transport (the network costs nothing), every config in a
fresh process, the instrumentation toggled on and off inside that process (paired ABBA
repetitions), process CPU of all threads (so the peers' BatchSpanProcessor worker and llmprobe's
Rust exporter thread are both counted). This script only changes the workload to issue #3's:
five messages, content capture on for everyone, and a stream of 50 content chunks (with its
role, finish and usage chunks); llmprobe runs through bench/peer_plugin_openai.py (exporting
over OTLP/HTTP to a local sink).

Run it with the peers' venv (pinned versions; see /work/shared/peer-bench/setup_venv.sh):

    /work/shared/peer-bench/setup_venv.sh /tmp/venv-peers
    /tmp/venv-peers/bin/python bench/openai_overhead.py --rounds 2 --out /tmp/openai_overhead.json

The last lines are the table: added CPU us per call (median of the paired differences, with the
quartiles), and llmprobe's cost as a fraction of the cheapest peer's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from common import MESSAGES, importable_llmprobe, seeded_env

HERE = Path(__file__).resolve().parent
PEER_BENCH = Path(os.environ.get("LLMPROBE_PEER_BENCH", "/work/shared/peer-bench"))
PLUGIN = HERE / "peer_plugin_openai.py"
CONFIGS = ["none", "otel-v2-content", "openllmetry-content", "openinference-content", f"plugin:{PLUGIN}"]
LABELS = {
    "otel-v2-content": "opentelemetry-instrumentation-openai-v2",
    "openllmetry-content": "OpenLLMetry",
    "openinference-content": "OpenInference",
    f"plugin:{PLUGIN}": "llmprobe",
}
STREAM_CHUNKS = 50
# The instrumentations' own variables (an exporter, a sampler, content capture the user happens
# to have set): the children start without them. LLMPROBE_* stay, so that LLMPROBE_PEER_BENCH
# reaches the children, which load the harness from it.
CLEARED = ("OTEL_", "TRACELOOP_", "OPENINFERENCE_")


def harness():
    """The peers' harness module, with issue #3's workload in place of its own."""
    sys.path.insert(0, str(PEER_BENCH))
    import bench_llm_overhead as b

    b.MESSAGES = MESSAGES
    b.REQ_KW = {"model": b.MODEL, "messages": MESSAGES, "temperature": 0.2, "max_tokens": 256, "top_p": 1.0}
    # One more sentence, so that the answer has a word for each of the 50 chunks.
    b.ANSWER += (
        " Exporting in batches also lets the collector apply back-pressure without slowing the application."
    )
    b.CHAT_BODY["choices"][0]["message"]["content"] = b.ANSWER
    b.CHAT_BYTES = json.dumps(b.CHAT_BODY).encode()
    b.N_STREAM_CONTENT_CHUNKS = STREAM_CHUNKS
    b.STREAM_BYTES = b._stream_body()
    b.N_STREAM_EVENTS = b.STREAM_BYTES.count(b"data: ")
    return b


def run_one(argv: list[str]) -> None:
    importable_llmprobe()
    b = harness()
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--mode", default="both")
    parser.add_argument("--calls", type=int, default=150)
    parser.add_argument("--stream-calls", type=int, default=40)
    parser.add_argument("--reps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--signals", default="traces")
    parser.add_argument("--content", action="store_true")
    parser.add_argument("--unpaired", action="store_true")
    args = parser.parse_args(argv)
    result = b.run_one(args)
    result["stream_content_chunks"] = b.N_STREAM_CONTENT_CHUNKS
    result["messages"] = len(b.MESSAGES)
    sys.stdout.write(json.dumps(result, default=str) + "\n")


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], statistics.median(values), q[2]


def child_env() -> dict[str, str]:
    """The environment of every measuring child (this script's and openai_instructions.py's)."""
    return seeded_env(CLEARED)


def matrix(args: argparse.Namespace) -> None:
    env = child_env()
    runs: dict[str, list[dict]] = {c: [] for c in CONFIGS}
    for round_number in range(args.rounds):
        order = CONFIGS if round_number % 2 == 0 else list(reversed(CONFIGS))
        for config in order:
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--config",
                config,
                "--mode",
                "both",
                "--calls",
                str(args.calls),
                "--stream-calls",
                str(args.stream_calls),
                "--reps",
                str(args.reps),
                "--warmup",
                str(args.warmup),
                "--content",
            ]
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                sys.stderr.write(done.stderr)
                raise SystemExit(f"config {config} failed")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            runs[config].append(result)
            summary = " | ".join(
                f"{mode}: added {statistics.median(v['diff_cpu_us']):+.1f} us cpu"
                for mode, v in result["modes"].items()
                if "diff_cpu_us" in v
            )
            sys.stderr.write(
                f"round {round_number + 1}/{args.rounds} {LABELS.get(config, config):40s} {summary} "
                f"spans/call {result['spans_per_call']:.2f} load {os.getloadavg()[0]:.2f}\n"
            )
    table = {}
    for config in CONFIGS[1:]:
        for mode in ("sync", "stream"):
            diffs = [d for r in runs[config] for d in r["modes"][mode]["diff_cpu_us"]]
            baseline = [c for r in runs[config] for c in r["modes"][mode]["off"]["cpu_us"]]
            table[(config, mode)] = (
                _quartiles(diffs),
                statistics.median(baseline),
                runs[config][0]["spans_per_call"],
            )
    lines = [
        "",
        (
            "| config | sync: added CPU us/call, median [p25..p75] | stream (50 chunks): added CPU us/call "
            "| spans/call |"
        ),
        "|---|---|---|---|",
    ]
    for config in CONFIGS[1:]:
        (s25, s50, s75), sbase, spans = table[(config, "sync")]
        (t25, t50, t75), tbase, _ = table[(config, "stream")]
        lines.append(
            f"| {LABELS[config]} | {s50:+.0f} [{s25:+.0f}..{s75:+.0f}] (of {sbase:.0f}) | "
            f"{t50:+.0f} [{t25:+.0f}..{t75:+.0f}] (of {tbase:.0f}) | {spans:.2f} |"
        )
    llmprobe = f"plugin:{PLUGIN}"
    for mode in ("sync", "stream"):
        ours = table[(llmprobe, mode)][0][1]
        best_config = min(CONFIGS[1:-1], key=lambda c: table[(c, mode)][0][1])
        best = table[(best_config, mode)][0][1]
        lines.append(
            f"\n{mode}: llmprobe adds {ours:.0f} us, the cheapest peer ({LABELS[best_config]}) {best:.0f} us: "
            f"llmprobe/peer = {ours / best:.3f}"
            if best > 0
            else f"\n{mode}: peer cost not resolved"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {"runs": runs, "table": {f"{c}|{m}": v for (c, m), v in table.items()}, "args": vars(args)},
                default=str,
                indent=1,
            )
        )


def main() -> None:
    if "--config" in sys.argv:
        run_one(sys.argv[1:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=150, help="non-streaming calls per repetition")
    parser.add_argument("--stream-calls", type=int, default=40, help="streaming calls per repetition")
    parser.add_argument("--reps", type=int, default=12, help="paired repetitions per process")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--out", help="write every run's JSON here")
    matrix(parser.parse_args())


if __name__ == "__main__":
    main()
