"""llmprobe as a config of the peers' harness (/work/shared/peer-bench/bench_llm_overhead.py,
its ``plugin:`` hook): the agent started as ``llmprobe.init()`` does it, spans and metrics
exported over OTLP/HTTP by the Rust exporter to a local sink (the peers' otlp_sink.py, in a child
process), so the export's CPU is counted in the process CPU the harness measures, as the peers'
BatchSpanProcessor worker is. Toggled on/off by instrument() / uninstrument(); the setup is
bench/llmprobe_setup.py's, shared with peer_plugin_dashscope.py.

    python bench_llm_overhead.py --config plugin:/work/main/bench/peer_plugin_openai.py --content
"""

from __future__ import annotations

import os
import sys

# Loaded by its path (a spec from its file), not imported: its folder need not be on sys.path.
HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import llmprobe_setup


def setup(ctx):
    return llmprobe_setup.setup(ctx, "openai")
