"""Tools, retrievers, embeddings and rerankers: TOOL, RETRIEVER, EMBEDDING and RERANKER spans,
with what each kind carries by the contract, nested where LangChain ran them."""

from __future__ import annotations

from langchain_support import Tree, attrs, content, kind


def test_tool_span_with_arguments_result_and_call_id(langchain_app):
    app = langchain_app(
        """
from langchain_core.tools import tool
@tool
def add(a: int, b: int) -> int:
    \"\"\"Add two numbers.\"\"\"
    return a + b
print(add.invoke({"a": 2, "b": 3}))
message = add.invoke({"type": "tool_call", "id": "call_42", "name": "add", "args": {"a": 1, "b": 1}})
print(message.content, message.tool_call_id)
@tool
def broken(x: str) -> str:
    \"\"\"Always fails.\"\"\"
    raise ValueError("tool failed")
try:
    broken.invoke({"x": "y"})
except ValueError as exc:
    print("caught", exc)
""",
        spans=3,
    )
    assert app.lines() == ["5", "2 call_42", "caught tool failed"]
    tree = Tree(app.spans)
    plain, called = tree.named("execute_tool add")
    for span in (plain, called):
        a = attrs(span)
        assert span["kind"] == "INTERNAL"
        assert kind(span) == "TOOL" and a["gen_ai.operation.name"] == "execute_tool"
        assert a["gen_ai.tool.name"] == "add"
        assert a["gen_ai.tool.description"] == "Add two numbers."
    assert content(plain, "gen_ai.tool.call.arguments") == {"a": 2, "b": 3}
    assert attrs(plain)["gen_ai.tool.call.result"] == "5"
    assert "gen_ai.tool.call.id" not in attrs(plain)
    assert attrs(called)["gen_ai.tool.call.id"] == "call_42"
    assert attrs(called)["gen_ai.tool.call.result"] == "2"
    failed = tree.one("execute_tool broken")
    assert failed["status"]["code"] == "ERROR" and attrs(failed)["error.type"] == "ValueError"


RETRIEVER = """
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_core.documents import Document
embeddings = DeterministicFakeEmbedding(size=16)
store = InMemoryVectorStore(embeddings)
store.add_documents([
    Document(id="d1", page_content="Paris is the capital of France", metadata={"source": "geo"}),
    Document(id="d2", page_content="Berlin is the capital of Germany", metadata={"source": "geo"}),
    Document(id="d3", page_content="Bananas are yellow", metadata={"source": "food"}),
])
retriever = store.as_retriever(search_kwargs={"k": 2})
"""


def test_retriever_span_with_query_and_ranked_documents(langchain_app):
    app = langchain_app(
        RETRIEVER
        + """
docs = retriever.invoke("Paris is the capital of France")
print([d.id for d in docs])
""",
        spans=lambda got: any(s["name"].startswith("retrieval") for s in got),
    )
    ids = eval(app.lines()[0])
    assert len(ids) == 2 and ids[0] == "d1"
    tree = Tree(app.spans)
    [retrieval] = [s for s in tree.spans if kind(s) == "RETRIEVER"]
    a = attrs(retrieval)
    assert retrieval["name"] == "retrieval VectorStoreRetriever"
    assert a["gen_ai.operation.name"] == "retrieval"
    assert a["gen_ai.retrieval.query.text"] == "Paris is the capital of France"
    assert a["input.value"] == "Paris is the capital of France"
    documents = content(retrieval, "retrieval.documents")
    assert [d["document"]["id"] for d in documents] == ids
    assert documents[0]["document"]["content"] == "Paris is the capital of France"
    assert documents[0]["document"]["metadata"] == {"source": "geo"}
    # The query's embedding is made inside the retriever: its span is under the retriever's.
    embeds = [s for s in tree.spans if kind(s) == "EMBEDDING"]
    query_embedding = [s for s in embeds if tree.parent(s) is retrieval]
    assert len(query_embedding) == 1, tree.render()
    e = attrs(query_embedding[0])
    assert query_embedding[0]["name"] == "embeddings DeterministicFakeEmbedding"
    assert e["gen_ai.embeddings.dimension.count"] == 16
    assert e["llmprobe.embeddings.count"] == 1
    assert e["input.value"] == "Paris is the capital of France"
    # add_documents embedded three texts at once: one span, never the vectors.
    [indexing] = [s for s in embeds if attrs(s)["llmprobe.embeddings.count"] == 3]
    assert content(indexing, "input.value")[2] == "Bananas are yellow"
    assert all("0." not in str(v) for s in embeds for k, v in attrs(s).items() if k != "input.value")


def test_embed_query_calling_embed_documents_is_one_span(langchain_app):
    app = langchain_app(
        """
from langchain_core.embeddings import Embeddings
class Mine(Embeddings):
    model = "mine-embed"
    def embed_documents(self, texts):
        return [[float(len(t)), 1.0, 2.0] for t in texts]
    def embed_query(self, text):
        return self.embed_documents([text])[0]
print(Mine().embed_query("hello"))
""",
        spans=1,
    )
    assert app.lines() == ["[5.0, 1.0, 2.0]"]
    [span] = [s for s in app.spans if kind(s) == "EMBEDDING"]
    assert span["name"] == "embeddings mine-embed"
    assert attrs(span)["gen_ai.request.model"] == "mine-embed"
    assert attrs(span)["gen_ai.embeddings.dimension.count"] == 3


def test_reranker_span_from_a_document_compressor(langchain_app):
    app = langchain_app(
        RETRIEVER
        + """
from langchain_core.documents import BaseDocumentCompressor
class KeepShort(BaseDocumentCompressor):
    top_n: int = 1
    model_name: str = "short-first"
    def compress_documents(self, documents, query, callbacks=None):
        return sorted(documents, key=lambda d: len(d.page_content))[: self.top_n]
docs = retriever.invoke("capital")
print([d.id for d in KeepShort().compress_documents(docs, "capital")])
""",
        spans=lambda got: any(s["attributes"].get("gen_ai.span.kind") == "RERANKER" for s in got),
    )
    [kept] = eval(app.lines()[0])
    tree = Tree(app.spans)
    [rerank] = [s for s in tree.spans if kind(s) == "RERANKER"]
    a = attrs(rerank)
    assert rerank["name"] == "rerank short-first"
    assert a["reranker.model_name"] == "short-first"
    assert a["reranker.top_k"] == 1
    assert a["reranker.query"] == "capital"
    assert len(content(rerank, "reranker.input_documents")) == 2
    assert [d["document"]["id"] for d in content(rerank, "reranker.output_documents")] == [kept]
