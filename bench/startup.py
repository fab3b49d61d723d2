#!/usr/bin/env python3
"""What `instrument` adds to a Python process's start: the time from spawning a process to the
first line of its script, bare, under llmprobe's ``instrument`` and under OpenTelemetry's
``opentelemetry-instrument``, in one run with the three interleaved (this machine's load moves
every figure; interleaving moves them alike).

    python bench/startup.py                     # 40 rounds, ~1 min
    python bench/startup.py --rounds 100 --importtime

The script is ``-c`` code whose first statement takes ``time.time()``: the parent takes it too,
just before spawning, so "first line" is spawn -> first statement (interpreter start, site,
sitecustomize: the agent's whole start-up). "exit" is spawn -> the process is gone (llmprobe's
exit flush included; there are no spans to flush). Both agents export OTLP/HTTP to a port where
nothing listens, as a deployment with its collector configured would: no span is made, so
nothing is sent. Reported per config: median and quartiles over the rounds, and the median
added to bare.

With ``--importtime`` each config runs once more under ``-X importtime``, and the modules its
start-up imports beyond bare are listed with their cumulative import times (one run: indicative).

Needs ``instrument`` (llmprobe installed, or this checkout's python/ on PYTHONPATH) and
``opentelemetry-instrument`` (opentelemetry-distro with opentelemetry-exporter-otlp-proto-http)
in the running Python's environment; a config whose command is missing is reported and skipped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "python"
CODE = "import time; t = time.time(); print('FIRST', t)"
# Where no collector listens: both agents are configured as for a real one.
ENDPOINT = "http://127.0.0.1:9"


def _script(name: str) -> str | None:
    """The console script `name` of the running Python's environment (its bin folder, not a
    pyenv shim in front of it, which would add its own start-up to the figure)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else None


def commands() -> dict[str, list[str]]:
    python = sys.executable
    found = {"bare": [python, "-c", CODE]}
    instrument = _script("instrument")
    if instrument:
        found["llmprobe"] = [instrument, python, "-c", CODE]
    else:  # this checkout: the launcher as a module
        found["llmprobe"] = [python, "-m", "llmprobe.launcher", python, "-c", CODE]
    # The launcher alone: `instrument` with the agent switched off (OTEL_SDK_DISABLED).
    found["llmprobe, agent off"] = found["llmprobe"]
    # The agent alone: what a process started with the bootstrap on PYTHONPATH pays (every child
    # process of an instrumented command, every worker a server spawns, a container that sets
    # PYTHONPATH itself), without the launcher's own process.
    found["llmprobe, no launcher"] = [python, "-c", CODE]
    otel = _script("opentelemetry-instrument")
    if otel:
        found["opentelemetry-instrument"] = [otel, python, "-c", CODE]
    return found


def environment(config: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMPROBE_"))}
    env.update(
        OTEL_SERVICE_NAME="startup-bench",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=ENDPOINT,
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    if config.startswith("llmprobe, agent off"):
        env["OTEL_SDK_DISABLED"] = "true"
    if config == "llmprobe, no launcher":
        from llmprobe.launcher import python_path

        env["PYTHONPATH"] = python_path(env.get("PYTHONPATH"))
    if config.startswith("llmprobe") and not _script("instrument"):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(SRC), env.get("PYTHONPATH"))))
    return env


def compile_llmprobe(env: dict[str, str]) -> None:
    """Byte-compile the llmprobe package the children import, as pip does when it installs one:
    a checkout run with PYTHONDONTWRITEBYTECODE (or never imported by this Python) would compile
    its modules at every start, and that would be the figure."""
    find = "import importlib.util; print(importlib.util.find_spec('llmprobe').submodule_search_locations[0])"
    where = subprocess.run(
        [sys.executable, "-c", find], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run([sys.executable, "-m", "compileall", "-q", where], check=True)


def one(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(spawn -> first line, spawn -> exit) in ms."""
    started = time.time()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    ended = time.time()
    lines = [line for line in done.stdout.splitlines() if line.startswith("FIRST ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr[-1500:]}")
    return (float(lines[-1].split()[1]) - started) * 1000, (ended - started) * 1000


def imports(command: list[str], env: dict[str, str]) -> dict[str, int]:
    """Module -> cumulative import time (µs) of one run under -X importtime."""
    done = subprocess.run(
        command, env=dict(env, PYTHONPROFILEIMPORTTIME="1"), capture_output=True, text=True, check=False
    )
    found = {}
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            _, cumulative, name = line.split("|")
            found[name.strip()] = int(cumulative)
    return found


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], statistics.median(values), q[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()
    configs = commands()
    envs = {name: environment(name) for name in configs}
    compile_llmprobe(envs["llmprobe"])
    for name in list(configs):  # one warm-up each (page cache, .pyc files), and a check it runs
        try:
            one(configs[name], envs[name])
        except RuntimeError as exc:
            print(f"{name}: skipped: {exc}", file=sys.stderr)
            del configs[name]
    first: dict[str, list[float]] = {name: [] for name in configs}
    exits: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name in configs:
            a, b = one(configs[name], envs[name])
            first[name].append(a)
            exits[name].append(b)
    print(f"Python {sys.version.split()[0]}, {args.rounds} rounds, configs interleaved; ms")
    print("| config | first line: median [p25, p75] | added | exit: median | added |")
    print("|---|---|---|---|---|")
    base_first = statistics.median(first["bare"])
    base_exit = statistics.median(exits["bare"])
    for name in configs:
        q1, med, q3 = quartiles(first[name])
        exit_median = statistics.median(exits[name])
        print(
            f"| {name} | {med:.1f} [{q1:.1f}, {q3:.1f}] | {med - base_first:+.1f} "
            f"| {exit_median:.1f} | {exit_median - base_exit:+.1f} |"
        )
    if args.importtime:
        bare = imports(configs["bare"], envs["bare"])
        for name in configs:
            if name == "bare":
                continue
            extra = {m: t for m, t in imports(configs[name], envs[name]).items() if m not in bare}
            top = sorted(extra.items(), key=lambda kv: -kv[1])[:15]
            print(f"\n{name}: modules imported beyond bare, cumulative µs (one run)")
            for module, micros in top:
                print(f"  {micros:8d}  {module}")


if __name__ == "__main__":
    main()
