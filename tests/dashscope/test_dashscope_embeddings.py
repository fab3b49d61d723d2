"""MultiModalEmbedding.call and AioMultiModalEmbedding.call, and AioTextReRank.call, at the
receiver: EMBEDDING and RERANKER spans like their text and sync twins."""

from __future__ import annotations

import json

from dashscope_secret import SECRET
from fake_dashscope import MULTIMODAL_DIMENSION

# One line: it is put into the apps' (dedented) source.
ITEMS = (
    '[{"text": "a red cat"}, {"image": "https://example.test/cat.png"}, '
    '{"video": ["https://example.test/f1.jpg", "https://example.test/f2.jpg"]}]'
)

PARTS = [
    {"type": "text", "content": "a red cat"},
    {"type": "uri", "modality": "image", "uri": "https://example.test/cat.png"},
    {"type": "uri", "modality": "video", "uri": "https://example.test/f1.jpg"},
    {"type": "uri", "modality": "video", "uri": "https://example.test/f2.jpg"},
]


def test_multimodal_embedding(dashscope_app):
    app = dashscope_app(
        f"""
        import dashscope
        r = dashscope.MultiModalEmbedding.call(model="multimodal-embedding-v1", input={ITEMS})
        print(r.status_code, [e["type"] for e in r.output["embeddings"]])
        """
    )
    assert app.lines() == ["200 ['text', 'image', 'video']"]
    span = app.one()
    a = span["attributes"]
    assert span["name"] == "embeddings multimodal-embedding-v1"
    assert span["kind"] == "CLIENT"
    assert span["status"]["code"] == "UNSET"
    assert a["gen_ai.span.kind"] == "EMBEDDING"
    assert a["gen_ai.operation.name"] == "embeddings"
    assert a["gen_ai.provider.name"] == "dashscope"
    assert a["gen_ai.request.model"] == "multimodal-embedding-v1"
    assert a["server.address"] == "127.0.0.1"
    assert a["gen_ai.embeddings.dimension.count"] == MULTIMODAL_DIMENSION
    assert a["gen_ai.usage.input_tokens"] == 3
    assert a["gen_ai.response.id"] == "req-1"
    assert a["input.mime_type"] == "application/json"
    assert json.loads(a["input.value"]) == PARTS
    assert "output.value" not in a
    assert "0.5" not in json.dumps(a)  # never the vectors
    assert app.requests[0]["path"].endswith("/services/embeddings/multimodal-embedding/multimodal-embedding")


def test_multimodal_embedding_sdk_items_and_data_url_cut(dashscope_app):
    # The SDK's own item classes; an inline image is cut to the content limit on the span and
    # sent whole.
    app = dashscope_app(
        """
        import dashscope
        image = "data:image/png;base64," + "A" * 50000
        items = [dashscope.MultiModalEmbeddingItemText(text="a cat", factor=1.0),
                 dashscope.MultiModalEmbeddingItemImage(image=image, factor=1.0)]
        r = dashscope.MultiModalEmbedding.call("multimodal-embedding-v1", items, dimension=4)
        print(len(r.output["embeddings"][0]["embedding"]))
        """,
        env={"OTEL_INSTRUMENTATION_GENAI_MESSAGE_CONTENT_MAX_LENGTH": "100"},
    )
    assert app.lines() == ["4"]
    a = app.one()["attributes"]
    assert a["gen_ai.embeddings.dimension.count"] == 4
    text, image = json.loads(a["input.value"])
    assert text == {"type": "text", "content": "a cat"}
    assert image == {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "A" * 100}
    assert len(app.requests[0]["body"]["input"]["contents"][1]["image"]) > 50000


def test_multimodal_embedding_without_content_capture(dashscope_app):
    app = dashscope_app(
        f"""
        import dashscope
        dashscope.MultiModalEmbedding.call(model="multimodal-embedding-v1", input={ITEMS})
        """,
        env={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"},
    )
    a = app.one()["attributes"]
    assert "input.value" not in a
    assert "example.test" not in json.dumps(a)
    assert a["llmprobe.input.size"] == sum(len(p.get("content", p.get("uri"))) for p in PARTS)


def test_async_multimodal_embedding_and_rerank_nest_under_caller(dashscope_app):
    app = dashscope_app(
        """
        import asyncio
        import dashscope
        from opentelemetry import trace
        async def main():
            with trace.get_tracer("app").start_as_current_span("outer"):
                e = await dashscope.AioMultiModalEmbedding.call(
                    model="multimodal-embedding-v1", input=[{"text": "a cat"}], dimension=4)
                # return_documents: the documents come back with the results (read by key: the
                # SDK's ReRankResult.document attribute is its class default, None).
                r = await dashscope.AioTextReRank.call(model="gte-rerank", query="which is longest?",
                                                       documents=["a", "ccc", "bb"], top_n=2,
                                                       return_documents=True)
            with trace.get_tracer("app").start_as_current_span("after"):
                pass
            print(len(e.output["embeddings"][0]["embedding"]), [x["document"]["text"] for x in r.output.results])
            await dashscope.close_shared_aio_session()
        asyncio.run(main())
        """,
        spans=lambda got: (
            {"embeddings multimodal-embedding-v1", "rerank gte-rerank", "after"} <= {s["name"] for s in got}
        ),
    )
    assert app.lines() == ["4 ['ccc', 'bb']"]
    by_name = {s["name"]: s for s in app.spans}
    outer, after = by_name["outer"], by_name["after"]
    embedding, rerank = by_name["embeddings multimodal-embedding-v1"], by_name["rerank gte-rerank"]
    assert embedding["parent_span_id"] == rerank["parent_span_id"] == outer["span_id"]
    assert after["parent_span_id"] not in (embedding["span_id"], rerank["span_id"], outer["span_id"])
    a = embedding["attributes"]
    assert a["gen_ai.span.kind"] == "EMBEDDING"
    assert a["gen_ai.embeddings.dimension.count"] == 4
    assert json.loads(a["input.value"]) == [{"type": "text", "content": "a cat"}]
    a = rerank["attributes"]
    assert a["gen_ai.span.kind"] == "RERANKER"
    assert a["gen_ai.operation.name"] == "rerank"
    assert a["reranker.query"] == "which is longest?"
    assert a["reranker.model_name"] == "gte-rerank"
    assert a["reranker.top_k"] == 2
    assert [d["document"]["content"] for d in json.loads(a["reranker.input_documents"])] == ["a", "ccc", "bb"]
    out = json.loads(a["reranker.output_documents"])
    assert [d["document"]["content"] for d in out] == ["ccc", "bb"]
    assert [d["document"]["score"] for d in out] == [1.0, 0.9]


def test_error_responses_are_error_spans(dashscope_app):
    # DashScope returns the error as a response (status 400, code, message): the caller gets it
    # as it came; the span is ERROR with error.type = the code.
    app = dashscope_app(
        """
        import asyncio
        import dashscope
        r = dashscope.MultiModalEmbedding.call(model="qwen-bad", input=[{"text": "a"}])
        print(r.status_code, r.code, r.message)
        async def main():
            r = await dashscope.AioTextReRank.call(model="qwen-bad", query="q", documents=["a"])
            print(r.status_code, r.code)
            await dashscope.close_shared_aio_session()
        asyncio.run(main())
        """,
        spans=2,
    )
    assert app.lines() == ["400 InvalidParameter Range of top_p should be (0.0, 1.0]", "400 InvalidParameter"]
    embedding, rerank = app.llm()
    assert embedding["name"] == "embeddings qwen-bad"
    assert rerank["name"] == "rerank qwen-bad"
    for span in (embedding, rerank):
        assert span["status"] == {"code": "ERROR", "message": "Range of top_p should be (0.0, 1.0]"}
        assert span["attributes"]["error.type"] == "InvalidParameter"
        assert span["attributes"]["http.response.status_code"] == 400
    assert "gen_ai.embeddings.dimension.count" not in embedding["attributes"]
    assert "reranker.output_documents" not in rerank["attributes"]


UNTOUCHED = f"""
import asyncio
import dashscope
print(dashscope.MultiModalEmbedding.call(model="multimodal-embedding-v1", input={ITEMS}))
print(dashscope.MultiModalEmbedding.call(model="qwen-bad", input=[{{"text": "a"}}]))
async def main():
    print(await dashscope.AioMultiModalEmbedding.call(model="multimodal-embedding-v1", input={ITEMS}))
    print(await dashscope.AioTextReRank.call(model="gte-rerank", query="q", documents=["a", "bb"],
                                             return_documents=True))
    await dashscope.close_shared_aio_session()
asyncio.run(main())
"""


def test_responses_and_requests_are_untouched(dashscope_app):
    plain = dashscope_app(UNTOUCHED, instrument=False)
    traced = dashscope_app(UNTOUCHED, spans=4)
    assert traced.lines() == plain.lines()
    assert [(r["path"], r["body"]) for r in traced.requests] == [
        (r["path"], r["body"]) for r in plain.requests
    ]
    assert len(traced.llm()) == 4
    assert SECRET not in json.dumps(traced.spans, default=str)
