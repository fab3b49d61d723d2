"""with_raw_response and with_streaming_response: the application gets the SDK's raw response
objects as before, and each call still gives its one span with the answer."""

from __future__ import annotations

import json

from openai_checks import assert_llm_span, assert_ok, attrs
from openai_support import needs


def test_with_raw_response(openai_app):
    app = openai_app(
        """
        import json, openai
        client = openai.OpenAI(max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-raw", messages=[{"role": "user", "content": "raw one"}])
        completion = raw.parse()
        out = [type(raw).__name__, raw.http_response.status_code, completion.choices[0].message.content]
        stream_raw = client.chat.completions.with_raw_response.create(
            model="chunks-4", stream=True, messages=[{"role": "user", "content": "raw stream"}])
        stream = stream_raw.parse()
        out.append(isinstance(stream, openai.Stream))
        out.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
        print(json.dumps(out))
    """,
        spans=2,
    )
    kind, status, text, is_stream, streamed = json.loads(app.lines()[-1])
    assert kind in ("LegacyAPIResponse", "APIResponse") and status == 200
    assert (text, is_stream, streamed) == ("Echo: raw one", True, "Echo: raw stream")
    plain, stream = app.llm()
    assert_llm_span(plain, model="gpt-raw")
    assert_ok(plain)
    assert attrs(plain)["output.value"] == "Echo: raw one"
    assert attrs(plain)["gen_ai.usage.output_tokens"] == 3
    assert attrs(plain)["gen_ai.response.id"].startswith("chatcmpl-")
    assert_llm_span(stream, model="chunks-4", stream=True)
    assert attrs(stream)["output.value"] == "Echo: raw stream"
    assert attrs(stream)["gen_ai.response.finish_reasons"] == ["stop"]


def test_raw_response_never_parsed(openai_app):
    """The application reads only the headers of a raw streamed answer: the span ends when the
    raw response is collected."""
    app = openai_app("""
        import gc, openai
        client = openai.OpenAI(max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="chunks-4", stream=True, messages=[{"role": "user", "content": "headers only"}])
        print(raw.headers.get("content-type"))
        raw.http_response.close()
        del raw
        gc.collect()
    """)
    assert app.lines()[-1].startswith("text/event-stream")
    span = app.one()
    assert_llm_span(span, model="chunks-4", stream=True)
    assert_ok(span)


@needs("resources.chat.completions.Completions.with_streaming_response")
def test_with_streaming_response(openai_app):
    app = openai_app(
        """
        import json, openai
        client = openai.OpenAI(max_retries=0)
        with client.chat.completions.with_streaming_response.create(
                model="gpt-sr", messages=[{"role": "user", "content": "streaming response"}]) as response:
            completion = response.parse()
        with client.chat.completions.with_streaming_response.create(
                model="chunks-3", stream=True, messages=[{"role": "user", "content": "sr stream"}]) as response:
            text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
        print(json.dumps([completion.choices[0].message.content, text]))
    """,
        spans=2,
    )
    assert json.loads(app.lines()[-1]) == ["Echo: streaming response", "Echo: sr stream"]
    plain, stream = app.llm()
    assert attrs(plain)["output.value"] == "Echo: streaming response"
    assert attrs(plain)["gen_ai.usage.input_tokens"] == 2
    assert attrs(stream)["output.value"] == "Echo: sr stream"


@needs("resources.chat.completions.AsyncCompletions.with_streaming_response")
def test_async_raw_responses(openai_app):
    app = openai_app(
        """
        import asyncio, json, openai
        async def main():
            client = openai.AsyncOpenAI(max_retries=0)
            raw = await client.chat.completions.with_raw_response.create(
                model="gpt-araw", messages=[{"role": "user", "content": "async raw"}])
            first = raw.parse().choices[0].message.content
            async with client.chat.completions.with_streaming_response.create(
                    model="chunks-3", stream=True, messages=[{"role": "user", "content": "async sr"}]) as response:
                stream = await response.parse()
                text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            print(json.dumps([first, text]))
        asyncio.run(main())
    """,
        spans=2,
    )
    assert json.loads(app.lines()[-1]) == ["Echo: async raw", "Echo: async sr"]
    plain, stream = app.llm()
    assert attrs(plain)["output.value"] == "Echo: async raw"
    assert attrs(stream)["output.value"] == "Echo: async sr"


@needs("resources.chat.completions.Completions.with_streaming_response")
def test_streaming_response_left_early(openai_app):
    """A stream read through with_streaming_response and left by break: the end of the with
    block (which closes the response) ends the span."""
    app = openai_app(
        """
        import json, time, openai
        client = openai.OpenAI(max_retries=0)
        out = {}
        with client.chat.completions.with_streaming_response.create(
                model="chunks-20", stream=True, messages=[{"role": "user", "content": "left early"}]) as response:
            stream = response.parse()
            for i, chunk in enumerate(stream):
                if i == 2:
                    break
            time.sleep(0.3)
            out["before"] = time.time_ns()
        out["after"] = time.time_ns()
        print(json.dumps(out))
        """
    )
    out = json.loads(app.lines()[-1])
    span = app.one()
    assert out["before"] <= span["end_time"] <= out["after"]
    assert attrs(span)["output.value"].startswith("Ec")
