"""MultiModalConversation.call, TextReRank.call and Application.call, at the receiver."""

from __future__ import annotations

import json

from fake_dashscope import ANSWER


def test_multimodal_conversation_text_and_image(dashscope_app):
    app = dashscope_app(
        """
        import dashscope
        msgs = [{"role": "user", "content": [{"image": "https://example.test/cat.png"}, {"text": "What is it?"}]}]
        r = dashscope.MultiModalConversation.call(model="qwen-vl-max", messages=msgs)
        print(r.output.choices[0].message.content[0]["text"])
        """
    )
    assert app.lines() == [ANSWER]
    span = app.one()
    a = span["attributes"]
    assert span["name"] == "chat qwen-vl-max"
    assert a["gen_ai.span.kind"] == "LLM"
    assert json.loads(a["gen_ai.input.messages"]) == [
        {
            "role": "user",
            "parts": [
                {"type": "uri", "modality": "image", "uri": "https://example.test/cat.png"},
                {"type": "text", "content": "What is it?"},
            ],
        }
    ]
    assert a["output.value"] == ANSWER
    assert a["gen_ai.usage.input_tokens"] == 20


def test_multimodal_data_url_is_a_blob_cut_to_the_limit(dashscope_app):
    app = dashscope_app(
        """
        import dashscope
        image = "data:image/png;base64," + "A" * 50000
        msgs = [{"role": "user", "content": [{"image": image}, {"text": "What is it?"}]}]
        dashscope.MultiModalConversation.call(model="qwen-vl-max", messages=msgs)
        """,
        env={"OTEL_INSTRUMENTATION_GENAI_MESSAGE_CONTENT_MAX_LENGTH": "100"},
    )
    messages = json.loads(app.one()["attributes"]["gen_ai.input.messages"])
    assert messages[0]["parts"][0] == {
        "type": "blob",
        "modality": "image",
        "mime_type": "image/png",
        "content": "A" * 100,
    }
    assert len(app.requests[0]["body"]["input"]["messages"][0]["content"][0]["image"]) > 50000


def test_text_rerank(dashscope_app):
    app = dashscope_app(
        """
        import dashscope
        r = dashscope.TextReRank.call(model="gte-rerank", query="which is longest?",
                                      documents=["a", "ccc", "bb"], top_n=2)
        print([x.index for x in r.output.results])
        """
    )
    assert app.lines() == ["[1, 2]"]
    span = app.one()
    a = span["attributes"]
    assert span["name"] == "rerank gte-rerank"
    assert a["gen_ai.span.kind"] == "RERANKER"
    assert a["reranker.query"] == "which is longest?"
    assert a["reranker.model_name"] == "gte-rerank"
    assert a["reranker.top_k"] == 2
    assert [d["document"]["content"] for d in json.loads(a["reranker.input_documents"])] == ["a", "ccc", "bb"]
    out = json.loads(a["reranker.output_documents"])
    assert [d["document"]["content"] for d in out] == ["ccc", "bb"]
    assert [d["document"]["score"] for d in out] == [1.0, 0.9]


def test_application_call_is_chain_with_session(dashscope_app):
    app = dashscope_app(
        """
        import dashscope
        r = dashscope.Application.call(app_id="app-42", prompt="hi")
        print(r.output.text, r.output.session_id)
        s = dashscope.Application.call(app_id="app-42", prompt="again", session_id=r.output.session_id,
                                       stream=True)
        print([c.output.text for c in s][-1])
        """,
        spans=2,
    )
    assert app.lines() == [f"{ANSWER} sess-new", ANSWER]
    first, second = app.llm()
    for span in (first, second):
        a = span["attributes"]
        assert span["name"] == "chain app-42"
        assert a["gen_ai.span.kind"] == "CHAIN"
        assert a["gen_ai.session.id"] == "sess-new"
        assert a["output.value"] == ANSWER
        assert a["gen_ai.usage.input_tokens"] == 4
    assert second["attributes"]["gen_ai.request.stream"] is True
