"""Streamed Generation.call and AioGeneration.call, and TextEmbedding.call, at the receiver."""

from __future__ import annotations

import json

import pytest
from fake_dashscope import ANSWER


@pytest.mark.parametrize("incremental", ["True", "False", "None"])
@pytest.mark.parametrize("result_format", ["text", "message"])
def test_stream_assembled_once(dashscope_app, incremental, result_format):
    app = dashscope_app(
        f"""
        import dashscope
        chunks = dashscope.Generation.call(model="qwen-plus", messages=[{{"role": "user", "content": "hi"}}],
                                           stream=True, incremental_output={incremental},
                                           result_format={result_format!r})
        n = 0
        for c in chunks:
            n += 1
        print(n)
        """
    )
    assert app.lines() == ["3"]
    a = app.one()["attributes"]
    assert a["gen_ai.request.stream"] is True
    assert a["output.value"] == ANSWER
    assert json.loads(a["gen_ai.output.messages"])[0]["parts"] == [{"type": "text", "content": ANSWER}]
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert a["gen_ai.usage.output_tokens"] == 3
    assert a["gen_ai.response.time_to_first_token"] > 0


def test_stream_left_early_ends_span_and_later_span_is_not_its_child(dashscope_app):
    app = dashscope_app(
        """
        import gc
        import dashscope
        from opentelemetry import trace
        chunks = dashscope.Generation.call(model="qwen-plus", prompt="hi", stream=True, incremental_output=True)
        for c in chunks:
            break
        del chunks, c
        gc.collect()
        with trace.get_tracer("app").start_as_current_span("after"):
            pass
        print("ok")
        """,
        spans=lambda got: {s["name"] for s in got} >= {"text_completion qwen-plus", "after"},
    )
    llm = app.one()
    after = next(s for s in app.spans if s["name"] == "after")
    assert after["parent_span_id"] != llm["span_id"]
    assert llm["end_time"] <= after["start_time"]
    assert llm["attributes"]["output.value"] == "Hello"


def test_stream_error_event_is_error_span(dashscope_app):
    app = dashscope_app(
        """
        import dashscope
        print([int(c.status_code) for c in dashscope.Generation.call(model="qwen-midstream-error", prompt="x",
                                                                 stream=True)])
        """
    )
    assert app.lines() == ["[200, 400]"]
    span = app.one()
    assert span["attributes"]["error.type"] == "DataInspectionFailed"
    assert span["status"] == {"code": "ERROR", "message": "inappropriate content"}
    # The error chunk has no usage: the tokens are those of the last chunk that had an answer.
    usage = [span["attributes"].get(f"gen_ai.usage.{k}_tokens") for k in ("input", "output")]
    assert usage == [11, 1]


def test_aio_generation_plain_and_streamed(dashscope_app):
    app = dashscope_app(
        """
        import asyncio
        import dashscope
        async def main():
            r = await dashscope.AioGeneration.call(model="qwen-turbo", prompt="hi")
            print(r.output.text)
            s = await dashscope.AioGeneration.call(model="qwen-turbo", prompt="hi", stream=True,
                                                   incremental_output=True)
            print("".join([c.output.text async for c in s]))
        asyncio.run(main())
        """,
        spans=2,
    )
    assert app.lines() == [ANSWER, ANSWER]
    plain, streamed = app.llm()
    assert plain["attributes"]["output.value"] == ANSWER
    assert plain["attributes"]["gen_ai.request.stream"] is False
    assert streamed["attributes"]["output.value"] == ANSWER
    assert streamed["attributes"]["gen_ai.request.stream"] is True


def test_text_embedding(dashscope_app):
    app = dashscope_app(
        """
        import dashscope
        r = dashscope.TextEmbedding.call(model="text-embedding-v3", input=["a", "b"])
        print(len(r.output["embeddings"]))
        """
    )
    assert app.lines() == ["2"]
    span = app.one()
    a = span["attributes"]
    assert span["name"] == "embeddings text-embedding-v3"
    assert a["gen_ai.span.kind"] == "EMBEDDING"
    assert a["gen_ai.embeddings.dimension.count"] == 8
    assert a["gen_ai.usage.input_tokens"] == 5  # the service reports only total_tokens
    assert json.loads(a["input.value"]) == ["a", "b"]
    assert "0.25" not in json.dumps(a)


def test_text_embedding_dimension_is_the_one_asked_for(dashscope_app):
    app = dashscope_app(
        """
        import dashscope
        for model in ("text-embedding-v3", "text-embedding-v2"):
            r = dashscope.TextEmbedding.call(model=model, input="a", dimension=4)
            print(len(r.output["embeddings"][0]["embedding"]))
        """,
        spans=2,
    )
    # v2 has one dimension whatever is asked: the span still says what the caller asked for.
    assert app.lines() == ["4", "8"]
    by_model = {s["name"]: s["attributes"] for s in app.spans}
    assert by_model["embeddings text-embedding-v3"]["gen_ai.embeddings.dimension.count"] == 4
    assert by_model["embeddings text-embedding-v2"]["gen_ai.embeddings.dimension.count"] == 4


def test_async_stream_left_early_ends_span(dashscope_app):
    app = dashscope_app(
        """
        import asyncio, gc
        import dashscope
        from opentelemetry import trace
        async def main():
            s = await dashscope.AioGeneration.call(model="qwen-turbo", prompt="hi", stream=True,
                                                   incremental_output=True)
            async for c in s:
                break
            await s.aclose()
            with trace.get_tracer("app").start_as_current_span("after"):
                pass
            print(c.output.text)
        asyncio.run(main())
        """,
        spans=lambda got: {"text_completion qwen-turbo", "after"} <= {s["name"] for s in got},
    )
    assert app.lines() == ["Hello"]
    llm = next(s for s in app.spans if s["name"] == "text_completion qwen-turbo")
    after = next(s for s in app.spans if s["name"] == "after")
    assert after["parent_span_id"] != llm["span_id"]
    assert llm["end_time"] <= after["start_time"]
    assert llm["attributes"]["output.value"] == "Hello"


def test_aio_multimodal_conversation(dashscope_app):
    app = dashscope_app(
        """
        import asyncio
        import dashscope
        async def main():
            msgs = [{"role": "user", "content": [{"text": "hi"}]}]
            r = await dashscope.AioMultiModalConversation.call(model="qwen-vl-plus", messages=msgs)
            print(r.output.choices[0].message.content[0]["text"])
        asyncio.run(main())
        """
    )
    assert app.lines() == [ANSWER]
    a = app.one()["attributes"]
    assert a["output.value"] == ANSWER
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]}
    ]


def test_stream_iterated_straight_from_the_call_is_recorded_whole(dashscope_app):
    # No name holds the stream: only the loop's iterator keeps it alive, and its span must not
    # end (as a collected stream) before the first chunk.
    app = dashscope_app(
        """
        import dashscope
        msgs = [{"role": "user", "content": "hi"}]
        print(sum(1 for _ in dashscope.Generation.call(model="qwen-plus", messages=msgs, stream=True,
                                                         incremental_output=True, result_format="message")))
        """
    )
    assert app.lines() == ["3"]
    a = app.one()["attributes"]
    assert a["output.value"] == ANSWER
    assert a["gen_ai.usage.output_tokens"] == 3
    assert a["gen_ai.response.time_to_first_token"] > 0
