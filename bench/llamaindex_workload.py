"""LlamaIndex workloads and configs for llamaindex_instructions.py: one query of a query engine
over an in-memory vector index, and one chat call of a model, traced by llmprobe, by
openinference-instrumentation-llama-index on the OpenTelemetry SDK, by a span handler and an
event handler that do nothing (the floor) or by nothing.

Both workloads run on llama-index-core's mock models (``MockEmbedding``, ``MockLLM``), so every
instruction counted is LlamaIndex's own or the instrumentation's; nothing leaves the process but
the spans, which every config exports over OTLP/HTTP to the peers' otlp_sink.py in a child
process (the machinery of langchain_workload.py, imported from there).

| mode | one call |
|---|---|
| query | ``query_engine.query(QUESTION)`` of ``VectorStoreIndex.from_documents(DOCUMENTS).as_query_engine(similarity_top_k=2)`` with ``Settings.embed_model = MockEmbedding(embed_dim=8)`` and ``Settings.llm = MockLLM(max_tokens=MAX_TOKENS)``: non-streaming, the default (compact) synthesizer; the index is built once, before any call |
| chat | ``MockLLM(max_tokens=MAX_TOKENS).chat([system, user])`` |

| config | setup; on / off |
|---|---|
| none | no instrumentation; its "off" run makes no calls, so its row is LlamaIndex's own cost per call |
| floor | a ``BaseSpanHandler`` whose span_enter / span_exit / span_drop do nothing and a ``BaseEventHandler`` whose handle does nothing, added to the root dispatcher; off = both taken out of its lists |
| llmprobe | llmprobe_setup.setup(): ``llmprobe.init()`` exporting OTLP/HTTP to the sink; ``llmprobe.instrumentation.llama_index.instrument()`` / ``uninstrument()`` |
| openinference | openinference-instrumentation-llama-index ``LlamaIndexInstrumentor().instrument(tracer_provider=tp)`` / ``uninstrument()`` |

The peer's ``tp`` is langchain_workload's: an SDK TracerProvider + BatchSpanProcessor (default
settings) + the SDK's OTLPSpanExporter (http/protobuf) to an otlp_sink.py of its own. Message
content is captured by every config.

Every config but none works through LlamaIndex's root dispatcher (``get_dispatcher()``): it adds
span and event handlers there and takes them out again. root_handlers() is what the children
check the toggle by: the root's handlers are the baseline's while off, and the baseline's plus
the config's own, one handler of each type, while on.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import langchain_workload as lc
import llmprobe_setup
from common import importable_llmprobe, seeded_env

CONFIGS = ["none", "floor", "llmprobe", "openinference"]
PEERS = ["openinference"]
MODES = ["query", "chat"]
LABELS = {
    "none": "none (LlamaIndex's own cost)",
    "floor": "floor (no-op span + event handler)",
    "openinference": "openinference-instrumentation-llama-index",
}
# Variables that would change what a child measures (an exporter, content switches): the
# children start without them. LLMPROBE_* stay (LLMPROBE_PEER_BENCH must reach the children);
# LLAMA_INDEX_CACHE_DIR stays too (where llama-index-core finds its tokenizer files).
CLEARED = ("OTEL_", "OPENINFERENCE_")

DOCUMENTS = [
    "A span is one timed operation, with a name, a start, an end and attributes.",
    "A trace is the tree of spans that share one trace id and describe a whole request.",
    "Exporters batch finished spans and send them over OTLP to a collector.",
    "A collector receives spans, processes them and forwards them to a tracing backend.",
]
QUESTION = "In two sentences, what is the difference between a span and a trace?"
SYSTEM = "You are a concise assistant that answers questions about tracing."
# What the query's retriever returns (make_query() says why these).
RETRIEVED = [DOCUMENTS[2], DOCUMENTS[3]]
MAX_TOKENS = 16
# MockLLM(max_tokens=n) answers "text" n times, space-separated.
ANSWER = " ".join(["text"] * MAX_TOKENS)


def child_env() -> dict[str, str]:
    """The environment of every measuring child: no OTEL_* / OPENINFERENCE_*, fixed hash seed,
    and numpy's OpenBLAS without its thread pool. The retriever's similarities (numpy, 8
    dimensions) would otherwise wake OpenBLAS's worker threads, which spin for a while after
    each call: an amount of work that depends on wall time, not on the calls (it moved none's
    "other threads" by some 70k instructions per query between two processes)."""
    return dict(seeded_env(CLEARED), OPENBLAS_NUM_THREADS="1")


# ---- workloads ---------------------------------------------------------------------------------


def _node_id(i: int, document) -> str:
    return f"{document.id_}-{i}"


def make_query():
    """The index over DOCUMENTS built once (its embeddings included), then one query per call.

    MockEmbedding gives every text the same vector, so the retriever's top 2 are decided by the
    ties' tie-break, the nodes' ids: the default splitter's are random (uuid4), which would make
    each process retrieve other documents (and tokenize other prompts). Fixed ids make every
    process retrieve the same two, RETRIEVED."""
    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.llms import MockLLM
    from llama_index.core.node_parser import SentenceSplitter

    Settings.embed_model = MockEmbedding(embed_dim=8)
    Settings.llm = MockLLM(max_tokens=MAX_TOKENS)
    Settings.node_parser = SentenceSplitter(id_func=_node_id)
    documents = [Document(text=text, id_=f"doc-{i}") for i, text in enumerate(DOCUMENTS)]
    index = VectorStoreIndex.from_documents(documents)
    engine = index.as_query_engine(similarity_top_k=2)

    def call() -> None:
        response = engine.query(QUESTION)
        assert response.response == ANSWER, response
        assert [n.node.get_content() for n in response.source_nodes] == RETRIEVED, response.source_nodes

    return call


def make_chat():
    from llama_index.core.llms import ChatMessage, MockLLM

    llm = MockLLM(max_tokens=MAX_TOKENS)
    messages = [ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=QUESTION)]

    def call() -> None:
        assert llm.chat(messages).message.content == ANSWER

    return call


WORKLOADS = {"query": make_query, "chat": make_chat}


# ---- the root dispatcher -------------------------------------------------------------------------


def root_handlers() -> tuple[list, list]:
    """(span handlers, event handlers) of LlamaIndex's root dispatcher, as they are now."""
    from llama_index.core.instrumentation import get_dispatcher

    root = get_dispatcher()
    return list(root.span_handlers), list(root.event_handlers)


def toggled_once(baseline: tuple[list, list], state: str) -> str | None:
    """What is wrong with the root dispatcher's handlers in `state` ("on" or "off"), or None:
    off, they must be the baseline's (the handlers before the config was set up); on, the
    baseline's plus at least one handler of the config's, no two of one type (a toggle that
    stacked handlers would add their cost to both states, or twice to one)."""
    total = 0
    for base, now, kind in zip(baseline, root_handlers(), ("span", "event")):
        added = [h for h in now if not any(h is b for b in base)]
        if len(now) - len(added) != len(base):
            return f"a baseline {kind} handler is missing: {now!r}"
        if state == "off" and added:
            return f"{kind} handlers {added!r} while off"
        if len({type(h) for h in added}) != len(added):
            return f"{kind} handlers stacked while {state}: {added!r}"
        total += len(added)
    if state == "on" and not total:
        return "no handler added while on"
    return None


# ---- configs -----------------------------------------------------------------------------------


def _floor() -> dict:
    """The cost of LlamaIndex's dispatcher calling one more span handler and one more event
    handler that do nothing: the least any dispatcher-based instrumentation (llmprobe's
    included) can add. span_enter / span_exit / span_drop are overridden as NullSpanHandler's
    are (the base class's would look its open spans up and call new_span)."""
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.span import BaseSpan
    from llama_index.core.instrumentation.span_handlers import BaseSpanHandler

    class NothingSpans(BaseSpanHandler[BaseSpan]):
        def span_enter(self, *args, **kwargs) -> None:
            return None

        def span_exit(self, *args, **kwargs) -> None:
            return None

        def span_drop(self, *args, **kwargs) -> None:
            return None

        def new_span(self, *args, **kwargs) -> None:
            return None

        def prepare_to_exit_span(self, *args, **kwargs) -> None:
            return None

        def prepare_to_drop_span(self, *args, **kwargs) -> None:
            return None

    class NothingEvents(BaseEventHandler):
        def handle(self, event, **kwargs) -> None:
            return None

    root = get_dispatcher()
    span_handler, event_handler = NothingSpans(), NothingEvents()

    def enable() -> None:
        if not any(h is span_handler for h in root.span_handlers):
            root.add_span_handler(span_handler)
        if not any(h is event_handler for h in root.event_handlers):
            root.add_event_handler(event_handler)

    def disable() -> None:
        root.span_handlers[:] = [h for h in root.span_handlers if h is not span_handler]
        root.event_handlers[:] = [h for h in root.event_handlers if h is not event_handler]

    enable()
    return {"enable": enable, "disable": disable, "span_count": lambda: 0, "flush": lambda: None}


def _llmprobe() -> dict:
    """llmprobe_setup.setup() with llama_index.core imported first, so that llmprobe.init()
    instruments it at once (its import hook's trigger is llama_index.core; the other order would
    fire the hook while llmprobe.instrumentation.llama_index is half-imported, as
    langchain_workload._llmprobe explains for LangChain)."""
    import llama_index.core  # noqa: F401

    importable_llmprobe()
    before = root_handlers()
    handles = llmprobe_setup.setup(lc._PluginCtx(), "llama_index")
    if sum(map(len, root_handlers())) == sum(map(len, before)):
        raise SystemExit("llmprobe.init() did not instrument LlamaIndex (no handler on the root dispatcher)")
    return handles


def _openinference() -> dict:
    """LlamaIndexInstrumentor on langchain_workload's SDK provider, content capture on (set
    before it is imported: TraceConfig reads the switches when the instrumentor is made).

    Its uninstrument() takes its handlers out of the root dispatcher (every span handler and
    event handler of its classes), and instrument() adds a new pair only if none of their
    classes is there, so instrument() / uninstrument() toggle it; toggled_once() checks that.
    Each instrument() makes a new span handler, whose _ExportQueue starts a daemon thread that
    wakes every 0.1 s for as long as the process lives (the thread's target holds the queue):
    the children make both states' processes toggle it the same number of times, so both have
    the same threads, idle while nothing streams."""
    for what in ("INPUTS", "OUTPUTS", "INPUT_MESSAGES", "OUTPUT_MESSAGES", "INPUT_TEXT", "OUTPUT_TEXT"):
        os.environ[f"OPENINFERENCE_HIDE_{what}"] = "false"
    from openinference.instrumentation.llama_index import LlamaIndexInstrumentor

    provider, handles = lc._sdk_provider()
    instrumentor = LlamaIndexInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    if not instrumentor.is_instrumented_by_opentelemetry:
        raise SystemExit("openinference: instrument() did not instrument (a dependency conflict?)")
    handles["enable"] = lambda: instrumentor.instrument(tracer_provider=provider)
    handles["disable"] = instrumentor.uninstrument
    return handles


def setup_config(config: str) -> dict:
    """The config installed and enabled: handles enable / disable (None for none), span_count,
    flush, shutdown."""
    if config == "none":
        handles = lc._none()
    elif config == "floor":
        handles = _floor()
    elif config == "llmprobe":
        handles = _llmprobe()
    elif config == "openinference":
        handles = _openinference()
    else:
        raise SystemExit(f"unknown config {config!r}")
    handles.setdefault("shutdown", lambda: None)
    return handles


# ---- versions ----------------------------------------------------------------------------------

PACKAGES = [
    "llama-index-core",
    "llama-index-instrumentation",
    "llama-index-workflows",
    "pydantic",
    "tiktoken",
    "openinference-instrumentation-llama-index",
    "openinference-instrumentation",
    "openinference-semantic-conventions",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-http",
    "opentelemetry-instrumentation",
    "protobuf",
    "wrapt",
    "llmprobe",
]


def versions() -> dict[str, str]:
    """langchain_workload.versions() (Python, valgrind, llmprobe's commit, build and where it is
    imported from) with this benchmark's packages instead of LangChain's."""
    theirs = lc.versions()
    out = {k: theirs[k] for k in ("python", "valgrind")}
    out.update({name: lc._version(name) for name in PACKAGES})
    out.update({k: v for k, v in theirs.items() if k not in out and k not in lc.PACKAGES})
    return out
