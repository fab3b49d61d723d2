"""llmprobe as the ``llmprobe`` config of bench/dashscope_overhead.py: the agent started as
``llmprobe.init()`` does it, spans and metrics exported over OTLP/HTTP by the Rust exporter to a
local sink (the peers' otlp_sink.py, in a child process), so the export's CPU is counted in the
process CPU the benchmark measures, as loongsuite's BatchSpanProcessor worker is. Toggled on/off
by llmprobe.instrumentation.dashscope.instrument() / uninstrument().

Same interface and setup as bench/peer_plugin_openai.py (bench/llmprobe_setup.py):
``setup(ctx)`` returns enable / disable / span_count / flush / shutdown.
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
    return llmprobe_setup.setup(ctx, "dashscope")
