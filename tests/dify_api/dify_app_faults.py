"""Make llmprobe's hooks of Dify's apps fail on purpose (tests/dify_api/test_dify_apps.py), before
Dify is imported. Each mode replaces a set of llmprobe's functions with one that raises:

- ``hooks``: every function of the app, agent-tool and retrieval hooks (_apps, _agent_tools,
  _retrieval) except the wrappers themselves, which are what keeps the call running when the
  rest fails;
- ``after``: only what runs at a run's or a tool call's end, so that spans start and then fail;
- ``tracer``: starting any span of llmprobe's Dify instrumentation (not the spans of the
  OpenTelemetry instrumentations of Redis, SQLAlchemy, Flask, which call the same tracer class
  from code llmprobe does not guard).
"""

from __future__ import annotations

from fault_injection import boom, calls, replace_functions  # noqa: F401 - calls: read by the script

APPS = "llmprobe.instrumentation.dify._apps"
TOOLS = "llmprobe.instrumentation.dify._agent_tools"
RETRIEVAL = "llmprobe.instrumentation.dify._retrieval"
# The wrappers and what makes them (applied when Dify's modules are imported).
PLUMBING = {
    "generator_wrapper",
    "queue_wrapper",
    "runner_hooks",
    "publish_replacement",
    "log_unsupported",
}
AFTER = {
    APPS: ["_end_run", "_fail_run", "answer"],
    TOOLS: ["_end", "_fail"],
    RETRIEVAL: ["_end", "_fail", "documents"],
}


def inject(mode: str) -> None:
    if mode == "hooks":
        for module in (APPS, TOOLS, RETRIEVAL):
            replace_functions(module, None, PLUMBING)
    elif mode == "after":
        for module, names in AFTER.items():
            replace_functions(module, names)
    elif mode == "tracer":
        from llmprobe import _tracer

        original = _tracer.Tracer.start_span

        def start_span(self, *args, **kwargs):
            if self._scope.startswith("llmprobe.instrumentation.dify"):
                return boom()
            return original(self, *args, **kwargs)

        _tracer.Tracer.start_span = start_span
    else:
        raise ValueError(f"no fault mode {mode!r}")
