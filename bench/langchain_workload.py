"""LangChain workloads and configs for langchain_instructions.py: a prompt | model | parser chain
and a one-tool agent, each with LangChain's callbacks traced by llmprobe, by three peers on the
OpenTelemetry SDK, by a handler that does nothing (the floor) or by nothing.

Both workloads run on fake chat models from langchain-core, so every instruction counted is
LangChain's (and LangGraph's) own or the instrumentation's; nothing leaves the process but the
spans, which every config exports over OTLP/HTTP to the peers' otlp_sink.py in a child process.

| mode | one call |
|---|---|
| chain | ``chain.invoke({"q": ...})`` of ``ChatPromptTemplate.from_messages([("system", "be brief"), ("human", "{q}")]) \\| FakeListChatModel \\| StrOutputParser()`` |
| agent | one ``invoke`` of ``langchain.agents.create_agent`` (langchain 1.x) with one ``@tool``: the model asks for one tool call, the tool answers, the model answers (2 model calls + 1 tool call) |

| config | setup; on / off |
|---|---|
| none | no instrumentation; its "off" run makes no calls, so its row is LangChain's own cost per call |
| floor | a ``BaseCallbackHandler`` with ``run_inline = True`` and nothing overridden, added to every callback manager as llmprobe adds its own (``register_configure_hook``); off = its hook taken out of ``_configure_hooks`` |
| llmprobe | llmprobe_setup.setup(): ``llmprobe.init()`` exporting OTLP/HTTP to the sink; ``llmprobe.instrumentation.langchain.instrument()`` / ``uninstrument()`` |
| openinference | openinference-instrumentation-langchain ``LangChainInstrumentor().instrument(tracer_provider=tp)`` / ``uninstrument()`` |
| loongsuite | loongsuite-instrumentation-langchain ``LangChainInstrumentor`` (imported from LOONGSUITE_DIR, see below), same |
| openllmetry | opentelemetry-instrumentation-langchain ``LangchainInstrumentor`` (Traceloop), instrumented once and toggled by swapping the attributes it wrapped: its uninstrument() takes nothing out (see _swapped()) |

The peers' ``tp`` is an SDK TracerProvider + BatchSpanProcessor (default settings) + the SDK's
OTLPSpanExporter (http/protobuf) to the same kind of sink as llmprobe's, so both sides pay for
encoding and sending their spans. Message content is captured by every config.

loongsuite-instrumentation-langchain and opentelemetry-instrumentation-langchain both ship the
package ``opentelemetry.instrumentation.langchain`` (the same ``__init__.py``): installed side by
side, the last one installed overwrites the other's. So loongsuite is installed into a folder of
its own (``pip install --no-deps --target <venv>/loongsuite ...``), put first on sys.path by the
loongsuite config only.
"""

from __future__ import annotations

import atexit
import contextvars
import importlib.metadata
import importlib.util
import itertools
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import llmprobe_setup
from common import importable_llmprobe, seeded_env

CONFIGS = ["none", "floor", "llmprobe", "openinference", "loongsuite", "openllmetry"]
PEERS = ["openinference", "loongsuite", "openllmetry"]
MODES = ["chain", "agent"]
LABELS = {
    "none": "none (LangChain's own cost)",
    "floor": "floor (no-op inline handler)",
    "openinference": "openinference-instrumentation-langchain",
    "loongsuite": "loongsuite-instrumentation-langchain",
    "openllmetry": "opentelemetry-instrumentation-langchain (OpenLLMetry)",
}
LOONGSUITE_DIR = os.environ.get("LLMPROBE_LOONGSUITE_DIR", os.path.join(sys.prefix, "loongsuite"))
# Variables that would change what a child measures (an exporter, content switches, LangSmith
# tracing the user happens to have set): the children start without them. LLMPROBE_* stay, so
# that LLMPROBE_PEER_BENCH and LLMPROBE_LOONGSUITE_DIR reach the children.
CLEARED = ("OTEL_", "TRACELOOP_", "OPENINFERENCE_", "LANGCHAIN_", "LANGSMITH_")

QUESTION = "In two sentences, what is the difference between a span and a trace?"
ANSWER = (
    "A span is one timed operation with attributes; a trace is the tree of spans that share one "
    "trace id and describe a whole request."
)
CITY = "Paris"


def child_env() -> dict[str, str]:
    """The environment of every measuring child: no OTEL_* / TRACELOOP_* / OPENINFERENCE_* /
    LANGCHAIN_* / LANGSMITH_*, fixed hash seed."""
    return seeded_env(CLEARED)


# ---- workloads ---------------------------------------------------------------------------------


def make_chain():
    """prompt | fake model | parser; FakeListChatModel cycles through its responses forever."""
    from langchain_core.language_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages([("system", "be brief"), ("human", "{q}")])
    chain = prompt | FakeListChatModel(responses=[ANSWER]) | StrOutputParser()

    def call() -> None:
        assert chain.invoke({"q": QUESTION}) == ANSWER

    return call


def _replies():
    """The agent model's answers, fresh objects every time (LangGraph sets the ids of the
    messages it stores), alternating forever: a tool call, then the final answer."""
    from langchain_core.messages import AIMessage

    call = {"name": "get_weather", "args": {"city": CITY}, "id": "call_0", "type": "tool_call"}
    for _ in itertools.count():
        yield AIMessage(content="", tool_calls=[call])
        yield AIMessage(content=f"It is sunny in {CITY}.")


def make_agent():
    """create_agent with one tool on a GenericFakeChatModel whose bind_tools returns itself (the
    fake has none of its own); one invoke = 2 model calls + 1 tool call."""
    from langchain.agents import create_agent
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}, 21 degrees."

    class ToolCallingFake(GenericFakeChatModel):
        def bind_tools(self, tools, **kwargs):
            return self

    agent = create_agent(ToolCallingFake(messages=_replies()), tools=[get_weather], system_prompt="be brief")
    request = {"messages": [{"role": "user", "content": f"What is the weather in {CITY}?"}]}

    def call() -> None:
        messages = agent.invoke(request)["messages"]
        assert len(messages) == 4 and messages[-1].content == f"It is sunny in {CITY}.", messages

    return call


WORKLOADS = {"chain": make_chain, "agent": make_agent}


# ---- configs -----------------------------------------------------------------------------------


def _none() -> dict:
    return {"enable": None, "disable": None, "span_count": lambda: 0, "flush": lambda: None}


def _floor() -> dict:
    """The cost of LangChain dispatching callbacks to one more inline handler: the least any
    handler-based instrumentation (llmprobe's included) can add."""
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.tracers.context import _configure_hooks, register_configure_hook

    class Nothing(BaseCallbackHandler):
        run_inline = True

    # The handler as the default, as llmprobe's own (every context gets it, nothing set per context).
    var = contextvars.ContextVar("x", default=Nothing())  # noqa: B039

    def disable() -> None:
        _configure_hooks[:] = [hook for hook in _configure_hooks if hook[0] is not var]

    register_configure_hook(var, True)
    return {
        "enable": lambda: register_configure_hook(var, True),
        "disable": disable,
        "span_count": lambda: 0,
        "flush": lambda: None,
    }


class _PluginCtx:
    content = True


def _llmprobe() -> dict:
    """llmprobe_setup.setup() with langchain_core imported first, so that llmprobe.init()
    instruments it at once. The other order (the setup imports
    llmprobe.instrumentation.langchain, whose _read imports langchain_core) fires the import
    hook while that module is half-imported: the hook fails (llmprobe logs "partially
    initialized module ... has no attribute 'instrument'") and LangChain is left uninstrumented
    until instrument() is called."""
    import langchain_core  # noqa: F401

    importable_llmprobe()
    handles = llmprobe_setup.setup(_PluginCtx(), "langchain")
    from llmprobe.instrumentation import langchain

    if langchain._handler_var is None:
        raise SystemExit("llmprobe.init() did not instrument LangChain")
    return handles


def _sdk_provider() -> tuple[object, dict]:
    """TracerProvider + BatchSpanProcessor + OTLP/HTTP exporter to the peers' sink, and a counter
    of the spans it exported."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

    sink, port = llmprobe_setup._start_sink()
    atexit.register(sink.terminate)  # by its pid, ours only
    exported = {"spans": 0, "last": []}

    class CountingExporter(OTLPSpanExporter):
        def export(self, spans):
            result = super().export(spans)
            if result is SpanExportResult.SUCCESS:
                exported["spans"] += len(spans)
            exported["last"] = spans
            return result

    provider = TracerProvider()
    # langchain_instructions.py --check points it at a capturing receiver (normal runs have no OTEL_*).
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{port}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(CountingExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)

    def shutdown() -> None:
        provider.shutdown()
        sink.terminate()
        sink.wait(5)

    handles = {
        "span_count": lambda: exported["spans"],
        "flush": provider.force_flush,
        "shutdown": shutdown,
        "last_export": lambda: [(span.name, span.attributes) for span in exported["last"]],
    }
    return provider, handles


def _instrumentor(config: str) -> type:
    """The peer's instrumentor class, with its content capture switched on (set before it is
    imported: some read their switches once)."""
    if config == "openinference":
        for what in ("INPUTS", "OUTPUTS", "INPUT_MESSAGES", "OUTPUT_MESSAGES", "INPUT_TEXT", "OUTPUT_TEXT"):
            os.environ[f"OPENINFERENCE_HIDE_{what}"] = "false"
        from openinference.instrumentation.langchain import LangChainInstrumentor

        return LangChainInstrumentor
    if config == "loongsuite":
        # Its content switch (loongsuite-otel-util-genai): without the opt-in it records none.
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_ONLY"
        sys.path.insert(0, LOONGSUITE_DIR)
        from opentelemetry.instrumentation.langchain import LangChainInstrumentor

        assert "loongsuite" in sys.modules["opentelemetry.instrumentation.langchain"].__file__
        return LangChainInstrumentor
    os.environ["TRACELOOP_TRACE_CONTENT"] = "true"
    from opentelemetry.instrumentation.langchain import LangchainInstrumentor

    return LangchainInstrumentor


# The modules whose functions and classes OpenLLMetry's instrument() wraps.
OPENLLMETRY_WRAPS = (
    "langchain_core.callbacks",
    "langgraph.pregel",
    "langgraph.types",
    "langgraph.prebuilt",
    "langgraph.prebuilt.chat_agent_executor",
    "langchain.agents",
    "langchain.agents.factory",
    "langchain.agents.middleware.types",
)


def _patched_attributes() -> dict[tuple[object, str], object]:
    """{(owner, name): value} of every attribute of the langchain*/langgraph* modules and of the
    classes they define."""
    import inspect

    out = {}
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("langchain", "langgraph")):
            continue
        for attr, value in list(vars(module).items()):
            out[(module, attr)] = value
            if inspect.isclass(value) and value.__module__ == name:
                for cattr, cvalue in list(vars(value).items()):
                    out[(value, cattr)] = cvalue
    return out


def _swapped(instrument) -> tuple[object, object]:
    """instrument() once; enable / disable that put its wrappers in and take them out again.

    For OpenLLMetry, whose uninstrument() takes nothing out: it calls
    ``unwrap("langchain_core.callbacks", "BaseCallbackManager.__init__")``, which
    opentelemetry-instrumentation's unwrap() reads as getattr(langchain_core.callbacks,
    "BaseCallbackManager.__init__"), finds nothing and skips (likewise Pregel.stream and the
    rest). Toggled with instrument() / uninstrument(), its handler keeps tracing while "off" and
    every instrument() stacks one more wrapper on BaseCallbackManager.__init__. The peers'
    OpenAI harness toggles every peer this way (bench_llm_overhead.py, instrumentor()).
    """
    import importlib

    import wrapt

    # What it wraps, imported first, so that each wrapper replaces an attribute seen before.
    for module in OPENLLMETRY_WRAPS:
        importlib.import_module(module)
    before = _patched_attributes()
    instrument()
    after = _patched_attributes()
    patched = [
        (owner, name, before[(owner, name)], value)
        for (owner, name), value in after.items()
        if (owner, name) in before
        and before[(owner, name)] is not value
        and isinstance(value, wrapt.ObjectProxy)
    ]
    new = [key for key, value in after.items() if key not in before and isinstance(value, wrapt.ObjectProxy)]
    assert patched and not new, (patched, new)

    def apply(on: bool) -> None:
        for owner, name, original, wrapper in patched:
            setattr(owner, name, wrapper if on else original)

    return (lambda: apply(True)), (lambda: apply(False))


def _peer(config: str) -> dict:
    provider, handles = _sdk_provider()
    instrumentor = _instrumentor(config)()
    if config == "openllmetry":
        handles["enable"], handles["disable"] = _swapped(
            lambda: instrumentor.instrument(tracer_provider=provider)
        )
    else:
        instrumentor.instrument(tracer_provider=provider)
        handles["enable"] = lambda: instrumentor.instrument(tracer_provider=provider)
        handles["disable"] = instrumentor.uninstrument
    if not instrumentor.is_instrumented_by_opentelemetry:
        raise SystemExit(f"{config}: instrument() did not instrument (a dependency conflict?)")
    return handles


def callback_manager_init() -> object:
    """What BaseCallbackManager.__init__ is now: the peers wrap it to add their handler."""
    from langchain_core.callbacks.base import BaseCallbackManager

    return BaseCallbackManager.__dict__["__init__"]


def setup_config(config: str) -> dict:
    """The config installed and enabled: handles enable / disable (None for none), span_count,
    flush, shutdown."""
    if config == "none":
        handles = _none()
    elif config == "floor":
        handles = _floor()
    elif config == "llmprobe":
        handles = _llmprobe()
    elif config in PEERS:
        handles = _peer(config)
    else:
        raise SystemExit(f"unknown config {config!r}")
    handles.setdefault("shutdown", lambda: None)
    return handles


# ---- versions ----------------------------------------------------------------------------------

PACKAGES = [
    "langchain",
    "langchain-core",
    "langgraph",
    "langgraph-prebuilt",
    "langgraph-checkpoint",
    "langsmith",
    "pydantic",
    "openinference-instrumentation-langchain",
    "openinference-instrumentation",
    "openinference-semantic-conventions",
    "loongsuite-instrumentation-langchain",
    "loongsuite-otel-util-genai",
    "opentelemetry-instrumentation-langchain",
    "opentelemetry-semantic-conventions-ai",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-http",
    "opentelemetry-instrumentation",
    "protobuf",
    "wrapt",
]


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pass
    for dist in importlib.metadata.distributions(name=name, path=[LOONGSUITE_DIR]):
        return f"{dist.version} (in {LOONGSUITE_DIR})"
    return "not installed"


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def versions() -> dict[str, str]:
    """What the run measured: Python, valgrind, every package above, llmprobe's commit and build."""
    valgrind = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, check=False).stdout
    so = sorted((HERE.parent / "python" / "llmprobe").glob("_core*.so"))
    out = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "valgrind": valgrind.strip(),
    }
    out.update({name: _version(name) for name in PACKAGES})
    dirty = " (+ uncommitted changes)" if _git("status", "--porcelain", "python", "rust") else ""
    out["checkout"] = f"{_git('rev-parse', '--short', 'HEAD')}{dirty}"
    if so:
        out["checkout's _core"] = f"{so[0].name}, built {_mtime(so[0])}"
    # The children import the llmprobe found first on PYTHONPATH, else this checkout's.
    spec = importlib.util.find_spec("llmprobe")
    out["llmprobe imported from"] = (
        os.path.dirname(spec.origin) if spec else str(HERE.parent / "python" / "llmprobe")
    )
    return out


def _mtime(path: Path) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(path.stat().st_mtime))
