"""Query engines, retrievers, synthesizers and chat engines as the receiver gets them: the trace
reads query → retrieve → synthesize → LLM, nested as LlamaIndex nested the work and under the
caller's span, also for concurrent async queries and for streamed answers, whose spans end with
the stream."""

from __future__ import annotations

import json

from llama_index_support import INDEX, SCOPE, needs
from llmprobe import __version__ as LLMPROBE_VERSION
from span_query import Tree, attrs, content, kind

QUERY = (
    "chain RetrieverQueryEngine.query",
    (
        ("retrieval VectorIndexRetriever", ()),
        ("chain CompactAndRefine.synthesize", ()),
    ),
)


def _top(tree: Tree, span: dict, depth: int) -> tuple:
    """tree.shape() cut below `depth` levels (what a synthesis runs inside differs by version:
    newer ones announce a refine program between it and the model)."""
    if depth == 0:
        return (span["name"], ())
    return (span["name"], tuple(_top(tree, c, depth - 1) for c in tree.children(span)))


def test_query_reads_query_retrieve_synthesize_llm_under_the_callers_span(llama_app):
    app = llama_app(
        INDEX
        + """
engine = index.as_query_engine(similarity_top_k=2)
with tracer.start_as_current_span("request") as request:
    response = engine.query("What is the capital of France?")
    assert trace.get_current_span() is request
print(response.response)
print(sorted(n.node.ref_doc_id for n in response.source_nodes))
""",
        spans=lambda got: any(s["name"] == "request" for s in got),
    )
    answer, sources = (line.strip() for line in app.lines())
    assert sources == "['france', 'germany']"
    tree = Tree(app.spans)
    request = tree.one("request")
    assert _top(tree, request, 2) == ("request", (QUERY,))

    query = tree.one("chain RetrieverQueryEngine.query")
    a = attrs(query)
    assert (query["scope"], query["scope_version"]) == (SCOPE, LLMPROBE_VERSION)
    assert query["kind"] == "INTERNAL"
    assert a["gen_ai.span.kind"] == "CHAIN" and a["gen_ai.operation.name"] == "chain"
    assert a["gen_ai.framework"] == "llama_index"
    assert a["input.value"] == "What is the capital of France?" and a["input.mime_type"] == "text/plain"
    assert a["output.value"].strip() == answer

    retrieval = tree.one("retrieval VectorIndexRetriever")
    r = attrs(retrieval)
    assert r["gen_ai.span.kind"] == "RETRIEVER" and r["gen_ai.operation.name"] == "retrieval"
    assert r["gen_ai.retrieval.query.text"] == "What is the capital of France?"
    documents = content(retrieval, "retrieval.documents")
    assert {d["document"]["content"] for d in documents} == {
        "Paris is the capital of France.",
        "Berlin is the capital of Germany.",
    }
    for d in documents:
        assert isinstance(d["document"]["id"], str) and isinstance(d["document"]["score"], float)
        assert d["document"]["metadata"]["country"] in ("France", "Germany")
    scores = [d["document"]["score"] for d in documents]
    assert scores == sorted(scores, reverse=True), "documents in rank order"

    # The index's build embedded the documents (a trace of its own); the query embeds the query.
    [embedding] = tree.children(retrieval)
    built = [s for s in tree.named("embeddings MockEmbedding") if s is not embedding]
    assert len(built) == 1 and attrs(built[0])["llmprobe.embeddings.count"] == 2
    e = attrs(embedding)
    assert embedding["kind"] == "CLIENT" and kind(embedding) == "EMBEDDING"
    assert e["gen_ai.operation.name"] == "embeddings"
    assert e["gen_ai.embeddings.dimension.count"] == 8 and e["llmprobe.embeddings.count"] == 1
    assert e["input.value"] == "What is the capital of France?"

    # MockLLM reaches no SDK: LlamaIndex's LLM step is the one LLM span, filled from its events.
    [llm] = tree.llm()
    assert "chain CompactAndRefine.synthesize" in tree.path(llm)
    assert llm["name"] == "text_completion MockLLM.predict" and llm["kind"] == "CLIENT"
    m = attrs(llm)
    assert m["gen_ai.operation.name"] == "text_completion" and m["gen_ai.request.stream"] is False
    assert "Context information is below" in m["gen_ai.prompt.template"]
    variables = json.loads(m["gen_ai.prompt.template.variables"])
    assert "Paris is the capital of France." in variables["context_str"]
    [message] = content(llm, "gen_ai.input.messages")
    assert message["role"] == "user" and "What is the capital of France?" in message["parts"][0]["content"]
    assert content(llm, "gen_ai.output.messages")[0]["parts"][0]["content"].strip() == answer
    assert m["output.value"].strip() == answer
    assert "gen_ai.request.model" not in m, "MockLLM names no model"


def test_concurrent_async_queries_keep_their_own_trees(llama_app):
    app = llama_app(
        INDEX
        + """
import asyncio
engine = index.as_query_engine(similarity_top_k=1)
async def ask(question):
    with tracer.start_as_current_span("ask " + question):
        return await engine.aquery(question)
async def main():
    return await asyncio.gather(ask("France?"), ask("Germany?"), ask("Spain?"))
for response in asyncio.run(main()):
    print(response.response)
""",
        spans=lambda got: sum(s["name"].startswith("ask ") for s in got) == 3,
    )
    assert len(app.lines()) == 3
    tree = Tree(app.spans)
    for question in ("France?", "Germany?", "Spain?"):
        ask = tree.one("ask " + question)
        [query] = tree.children(ask)
        assert query["name"] == "chain RetrieverQueryEngine.aquery"
        assert attrs(query)["input.value"] == question
        names = {s["name"] for s in tree.spans if s["trace_id"] == ask["trace_id"]}
        assert {"retrieval VectorIndexRetriever", "chain CompactAndRefine.asynthesize"} <= names
        retrieval = [s for s in tree.children(query) if kind(s) == "RETRIEVER"]
        assert [attrs(r)["gen_ai.retrieval.query.text"] for r in retrieval] == [question]
        [llm] = [s for s in tree.spans if s["trace_id"] == ask["trace_id"] and kind(s) == "LLM"]
        assert question in content(llm, "gen_ai.input.messages")[0]["parts"][0]["content"]


def test_streamed_query_ends_with_its_stream_and_nests_the_model_call(llama_app):
    app = llama_app(
        INDEX
        + """
engine = index.as_query_engine(streaming=True, similarity_top_k=1)
with tracer.start_as_current_span("request") as request:
    response = engine.query("What is the capital of France?")
    # Between chunks the reader's own context is current: its spans are its own.
    tokens = []
    for i, token in enumerate(response.response_gen):
        assert trace.get_current_span() is request
        tokens.append(token)
        if i == 1:
            with tracer.start_as_current_span("between chunks"):
                pass
print("".join(tokens))
early = engine.query("Germany?")
for token in early.response_gen:
    break
del early, token
import gc; gc.collect()
""",
        spans=lambda got: sum(s["name"] == "chain RetrieverQueryEngine.query" for s in got) == 2,
    )
    tree = Tree(app.spans)
    request = tree.one("request")
    query, other = tree.named("chain RetrieverQueryEngine.query")
    tree.assert_under(query, request)
    tree.assert_under(tree.one("between chunks"), request)
    [synthesize] = [s for s in tree.children(query) if s["name"] == "chain CompactAndRefine.synthesize"]
    [llm] = [s for s in tree.llm() if s["trace_id"] == query["trace_id"]]
    tree.assert_under(llm, synthesize)
    a = attrs(llm)
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.time_to_first_token"] > 0
    # The query and the synthesis end when the stream ends, after the model call, with its text.
    assert llm["end_time"] <= synthesize["end_time"] <= query["end_time"]
    assert attrs(query)["output.value"].strip() == app.lines()[0].strip() != ""
    # A stream left early still ends its spans.
    assert other["end_time"] > other["start_time"]
    assert [s for s in tree.llm() if s["trace_id"] == other["trace_id"]]


@needs("llama-index-core", (0, 11), "a span of LlamaIndex's own for a node postprocessor")
def test_reranker_between_retrieval_and_synthesis(llama_app):
    app = llama_app(
        INDEX
        + """
from typing import List, Optional
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle

class ReverseRerank(BaseNodePostprocessor):
    top_n: int = 1
    def _postprocess_nodes(self, nodes: List[NodeWithScore], query_bundle: Optional[QueryBundle] = None):
        return list(reversed(nodes))[: self.top_n]

engine = index.as_query_engine(similarity_top_k=2, node_postprocessors=[ReverseRerank()])
print(engine.query("Which capital?").response)
""",
        spans=lambda got: any(s["name"] == "chain RetrieverQueryEngine.query" for s in got),
    )
    tree = Tree(app.spans)
    rerank = tree.one("rerank ReverseRerank")
    query = tree.one("chain RetrieverQueryEngine.query")
    tree.assert_under(rerank, query)
    r = attrs(rerank)
    assert r["gen_ai.span.kind"] == "RERANKER" and r["gen_ai.operation.name"] == "rerank"
    assert r["reranker.query"] == "Which capital?" and r["reranker.top_k"] == 1
    inputs = content(rerank, "reranker.input_documents")
    outputs = content(rerank, "reranker.output_documents")
    assert len(inputs) == 2 and outputs == inputs[::-1][:1]
    # retrieve, then rerank, then synthesize
    assert [kind(s) for s in tree.children(query)] == ["RETRIEVER", "RERANKER", "CHAIN"]


@needs("llama-index-core", (0, 11), "a span of LlamaIndex's own for a chat engine's chat")
def test_chat_engine(llama_app):
    app = llama_app(
        INDEX
        + """
from llama_index.core.chat_engine import SimpleChatEngine
chat = SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=4))
print(chat.chat("hello there").response)
""",
        spans=lambda got: any(s["name"].startswith("chain SimpleChatEngine") for s in got),
    )
    tree = Tree(app.spans)
    [chat] = [s for s in tree.spans if s["name"].startswith("chain SimpleChatEngine.")]
    assert attrs(chat)["input.value"] == "hello there"
    assert attrs(chat)["output.value"].strip() == app.lines()[0].strip()
    [llm] = [s for s in tree.llm() if s["trace_id"] == chat["trace_id"]]
    tree.assert_under(llm, chat)
    assert attrs(llm)["gen_ai.operation.name"] == "chat"
    assert [m["role"] for m in content(llm, "gen_ai.input.messages")][-1] == "user"


def test_no_content_when_capture_is_off(llama_app):
    app = llama_app(
        INDEX
        + """
engine = index.as_query_engine(similarity_top_k=2)
print(engine.query("What is the capital of France?").response)
""",
        env={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"},
        spans=lambda got: any(s["name"] == "chain RetrieverQueryEngine.query" for s in got),
    )
    tree = Tree(app.spans)
    for span in tree.spans:
        for key, value in attrs(span).items():
            text = str(value)
            assert "France" not in text and "capital" not in text, (span["name"], key, text)
    retrieval = tree.one("retrieval VectorIndexRetriever")
    assert attrs(retrieval)["llmprobe.retrieval.document_count"] == 2
    [llm] = tree.llm()
    assert attrs(llm)["llmprobe.input.size"] > len("What is the capital of France?")
    assert attrs(llm)["llmprobe.output.size"] > 0


def test_a_llama_index_older_than_supported_is_left_alone_with_one_warning(llama_app):
    app = llama_app(
        """
from importlib import metadata
real = metadata.version
# What a llama-index-core of before 0.10.41 says of itself (its dispatcher loses failed calls).
metadata.version = lambda name: "0.10.30" if name == "llama-index-core" else real(name)
"""
        + INDEX
        + """
with tracer.start_as_current_span("request"):
    print(index.as_query_engine().query("France?").response)
""",
        spans=lambda got: any(s["name"] == "request" for s in got),
    )
    assert [s["name"] for s in app.spans] == ["request"]
    expected = (
        "llmprobe: warning: llama-index-core 0.10.30 is older than 0.10.41, whose dispatcher llmprobe needs: "
        "LlamaIndex is not traced"
    )
    assert app.result.warnings() == [expected]
