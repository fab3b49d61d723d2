"""Make llmprobe's openai instrumentation fail on purpose, before openai is imported (so before
the instrumentation is applied), for the fault-injection tests. Each mode replaces a set of
llmprobe's functions with one that raises:

- ``hooks``: every function of the instrumentation modules (openai.py, _genai.py, _messages.py,
  _stream.py) except the plumbing that installs the wrappers and runs the user's call (the
  wrappers themselves must exist for the test to mean anything: see ``patched()``), and the
  core's reader of requests (chat completions' ``before``, and what the other ``before``s take
  from it);
- ``after``: only what runs once the call returned or raised (the end of a call, of a stream,
  of a raw response), so that spans start and then fail half-way;
- ``core``: the Rust boundary: starting a span, setting attributes, ending, recording a failure,
  serialising content, metrics;
- ``late-core``: the Rust boundary once the span exists (attributes, end, failure, metrics).
"""

from __future__ import annotations

from fault_injection import boom, calls, replace_functions  # noqa: F401 - calls: read by the tests

MODULES = (
    "llmprobe.instrumentation.openai",
    "llmprobe.instrumentation._genai",
    "llmprobe.instrumentation._messages",
    "llmprobe.instrumentation._stream",
)
# The plumbing: installing the wrappers, the wrappers, and the proxies' own forwarding.
PLUMBING = {
    "instrument",
    "uninstrument",
    "refresh",
    "settings",
    "hooks",
    "tracer",
    "_classes",
    "_try_wrap",
    "_wrap_manager",
    "wrap",
    "_then_finish",
    "_no_context_manager",
    "_context_env",
}
AFTER = {
    "llmprobe.instrumentation.openai": [
        "_after",
        "_error",
        "_complete",
        "_end_stream",
        "_raw",
        "_after_parse",
    ],
    "llmprobe.instrumentation._stream": ["finish", "close_inner"],
    "llmprobe.instrumentation._genai": ["end", "fail", "put_output"],
}


def _replace_functions(module_name: str, names: list[str] | None = None) -> None:
    # Methods of the assemblers and states too (not of the proxies: they are the plumbing).
    replace_functions(module_name, names, PLUMBING, methods_of=lambda name: "Proxy" not in name)


class FaultyBefore:
    """Stands for _core.OpenAiBefore: made as instrument() makes it; every use of it raises."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    __call__ = begin = responses_numbers = sampling = output_type = boom


def inject(mode: str) -> None:
    if mode == "hooks":
        from llmprobe import _core

        for name in MODULES:
            _replace_functions(name)
        _core.OpenAiBefore = FaultyBefore
    elif mode == "after":
        for name, functions in AFTER.items():
            _replace_functions(name, functions)
    elif mode in ("core", "late-core"):
        # Only the instrumentation's spans fail: the application's own spans (the transcript's
        # root) go through the same tracer classes and must keep working.
        from llmprobe import _core, _tracer
        from llmprobe.instrumentation import _genai

        class FaultySpan(_tracer.Span):
            set_attributes = set_attribute = end = record_failure = boom

        class FaultyTracer(_tracer.Tracer):
            # What a model call's hook starts its spans with (it does not go through start_span).
            _span_class = boom if mode == "core" else FaultySpan

            def start_span(self, *args, **kwargs):
                if mode == "core":
                    boom()
                span = super().start_span(*args, **kwargs)
                span.__class__ = FaultySpan
                return span

        _genai.Tracer = FaultyTracer
        _core.truncate = boom
        _core.record_genai_metrics = boom
        _core.ChunkIter = boom  # a stream's for loop then runs over the stream's own iterator
        _core.openai_chat_response = boom
        _core.usage = boom
        if mode == "core":
            _core.to_json = boom
            _core.OpenAiBefore = FaultyBefore
    elif mode != "none":
        raise ValueError(mode)


def patched() -> bool:
    """True when openai's chat completions create is llmprobe's wrapper (the faults apply to
    something)."""
    import openai.resources.chat.completions as chat

    return type(vars(chat.Completions)["create"]).__name__ == "FunctionWrapper"
