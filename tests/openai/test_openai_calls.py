"""Non-streamed calls: chat completions (sync, async, tools, n>1, parse), text completions,
embeddings and the Responses API each give one span with the contract's attributes, and the
application gets what the SDK returned."""

from __future__ import annotations

import json

from openai_checks import assert_llm_span, assert_ok, attrs, content, everything, text_parts
from openai_support import needs

CHAT = """
import json, openai
client = openai.OpenAI(max_retries=0)
r = client.chat.completions.create(
    model="gpt-test",
    messages=[
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "What is a span?"},
    ],
    temperature=0.25, top_p=0.5, max_tokens=64, seed=7, stop=["END", "STOP"],
    frequency_penalty=0.5, presence_penalty=-0.5,
    extra_body={"top_k": 5},
)
print(json.dumps({"content": r.choices[0].message.content, "id": r.id, "port": client.base_url.port,
                  "type": type(r).__name__}))
"""


def test_chat_completion_span(openai_app):
    app = openai_app(CHAT)
    out = json.loads(app.lines()[-1])
    assert out["content"] == "Echo: What is a span?"
    assert out["type"] == "ChatCompletion"
    span = app.one()
    assert_llm_span(span, model="gpt-test", port=out["port"])
    assert_ok(span)
    a = attrs(span)
    assert a["gen_ai.request.temperature"] == 0.25
    assert a["gen_ai.request.top_p"] == 0.5
    assert a["gen_ai.request.top_k"] == 5
    assert a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.request.seed"] == 7
    assert a["gen_ai.request.stop_sequences"] == ["END", "STOP"]
    assert a["gen_ai.request.frequency_penalty"] == 0.5
    assert a["gen_ai.request.presence_penalty"] == -0.5
    assert "gen_ai.request.choice.count" not in a  # not set by the caller
    assert a["gen_ai.response.id"] == out["id"]
    assert a["gen_ai.response.model"] == "gpt-test-2024-07-18"
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    # The fake server counts words: 3 + 4 prompt words, 5 answer words; 3 cached, 2 reasoning.
    assert a["gen_ai.usage.input_tokens"] == 7
    assert a["gen_ai.usage.output_tokens"] == 5
    assert a["gen_ai.usage.total_tokens"] == 12
    assert a["gen_ai.usage.cache_read.input_tokens"] == 3
    assert a["gen_ai.usage.reasoning.output_tokens"] == 2
    assert content(span, "gen_ai.input.messages") == [
        {"role": "system", "parts": [{"type": "text", "content": "You answer briefly."}]},
        {"role": "user", "parts": [{"type": "text", "content": "What is a span?"}]},
    ]
    assert a["input.value"] == a["gen_ai.input.messages"]
    assert a["input.mime_type"] == "application/json"
    assert content(span, "gen_ai.output.messages") == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Echo: What is a span?"}],
            "finish_reason": "stop",
        }
    ]
    assert a["output.value"] == "Echo: What is a span?"
    assert a["output.mime_type"] == "text/plain"
    # The request went out once, as the application made it.
    [request] = app.requests
    assert request["body"]["messages"][1]["content"] == "What is a span?"
    assert "stream_options" not in request["body"]


def test_async_chat_completion_span(openai_app):
    app = openai_app("""
        import asyncio, openai
        async def main():
            client = openai.AsyncOpenAI(max_retries=0)
            r = await client.chat.completions.create(model="gpt-async", messages=[{"role": "user", "content": "hi async"}])
            print(r.choices[0].message.content)
        asyncio.run(main())
    """)
    assert app.lines()[-1] == "Echo: hi async"
    span = app.one()
    assert_llm_span(span, model="gpt-async")
    assert_ok(span)
    assert attrs(span)["output.value"] == "Echo: hi async"
    assert attrs(span)["gen_ai.usage.output_tokens"] == 3


def test_model_given_as_an_enum_member(openai_app):
    # Applications often keep their model names in an enum; the span names the model by its
    # value, as the request sent it.
    app = openai_app(
        """
        import enum, openai
        class Models(str, enum.Enum):
            FAST = "gpt-fast"
        client = openai.OpenAI(max_retries=0)
        client.chat.completions.create(model=Models.FAST, messages=[{"role": "user", "content": "a"}])
        client.embeddings.create(model=Models.FAST, input="c")
    """,
        spans=2,
    )
    chat, embedding = app.llm()
    assert_llm_span(chat, model="gpt-fast")
    assert_llm_span(embedding, model="gpt-fast", operation="embeddings", kind="EMBEDDING", stream=None)
    assert [r["body"]["model"] for r in app.requests] == ["gpt-fast", "gpt-fast"]


TOOLS = """
import json, openai
client = openai.OpenAI(max_retries=0)
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
messages = [{"role": "user", "content": "Weather in Paris?"}]
first = client.chat.completions.create(model="gpt-tools", messages=messages, tools=tools)
call = first.choices[0].message.tool_calls[0]
messages.append(first.choices[0].message)  # the SDK's own object goes back into the history
messages.append({"role": "tool", "tool_call_id": call.id, "content": "18 degrees"})
second = client.chat.completions.create(model="gpt-tools", messages=messages, tools=tools)
print(json.dumps([first.choices[0].finish_reason, call.function.name, second.choices[0].message.content]))
"""


def test_tool_calls_and_tool_results(openai_app):
    app = openai_app(TOOLS, spans=2)
    assert json.loads(app.lines()[-1]) == ["tool_calls", "get_weather", "The tool said: 18 degrees"]
    first, second = app.llm()
    assert attrs(first)["gen_ai.response.finish_reasons"] == ["tool_calls"]
    # Chat's nested {type, function: {...}} is written in the conventions' flat shape.
    assert content(first, "gen_ai.tool.definitions") == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    [answer] = content(first, "gen_ai.output.messages")
    assert answer["finish_reason"] == "tool_calls"
    assert answer["parts"] == [
        {
            "type": "tool_call",
            "id": "call_weather_1",
            "name": "get_weather",
            "arguments": {"city": "Paris", "unit": "celsius"},
        },
        {
            "type": "tool_call",
            "id": "call_time_2",
            "name": "get_time",
            "arguments": {"timezone": "Europe/Paris"},
        },
    ]
    # An answer of tool calls only: output.value is the output messages' JSON.
    assert attrs(first)["output.mime_type"] == "application/json"
    assert json.loads(attrs(first)["output.value"]) == content(first, "gen_ai.output.messages")
    history = content(second, "gen_ai.input.messages")
    assert [m["role"] for m in history] == ["user", "assistant", "tool"]
    assert [p["type"] for p in history[1]["parts"]] == ["tool_call", "tool_call"]
    assert history[2]["parts"] == [
        {"type": "tool_call_response", "id": "call_weather_1", "response": "18 degrees"}
    ]
    assert attrs(second)["output.value"] == "The tool said: 18 degrees"


def test_several_choices(openai_app):
    app = openai_app("""
        import openai
        r = openai.OpenAI(max_retries=0).chat.completions.create(
            model="gpt-n", n=2, messages=[{"role": "user", "content": "two please"}])
        print(len(r.choices))
    """)
    assert app.lines()[-1] == "2"
    span = app.one()
    a = attrs(span)
    assert a["gen_ai.request.choice.count"] == 2
    assert a["gen_ai.response.finish_reasons"] == ["stop", "stop"]
    messages = content(span, "gen_ai.output.messages")
    assert [text_parts(m) for m in messages] == ["Echo: two please (choice 0)", "Echo: two please (choice 1)"]
    assert a["output.value"] == "Echo: two please (choice 0)\nEcho: two please (choice 1)"


def test_refusal(openai_app):
    app = openai_app("""
        import openai
        r = openai.OpenAI(max_retries=0).chat.completions.create(
            model="refuse", messages=[{"role": "user", "content": "something bad"}])
        print(r.choices[0].message.refusal)
    """)
    [message] = content(app.one(), "gen_ai.output.messages")
    assert message["parts"] == [{"type": "refusal", "content": "I can't help with that."}]


@needs("resources.chat.completions.Completions.parse")
def test_parse_structured_output(openai_app):
    app = openai_app("""
        import openai, pydantic
        class Answer(pydantic.BaseModel):
            content: str
        client = openai.OpenAI(max_retries=0)
        r = client.chat.completions.parse(model="gpt-parse", response_format=Answer,
                                          messages=[{"role": "user", "content": "structured"}])
        print(type(r.choices[0].message.parsed).__name__, r.choices[0].message.parsed.content)
    """)
    assert app.lines()[-1] == "Answer Echo: structured"
    span = app.one()  # parse() does not go through create(): still one span
    assert_llm_span(span, model="gpt-parse")
    assert attrs(span)["gen_ai.output.type"] == "json"
    assert json.loads(attrs(span)["output.value"]) == {"content": "Echo: structured"}
    assert len(app.requests) == 1


@needs("resources.beta.chat.completions.Completions.parse")
def test_beta_parse_is_one_span(openai_app):
    app = openai_app("""
        import openai
        client = openai.OpenAI(max_retries=0)
        r = client.beta.chat.completions.parse(model="gpt-beta", messages=[{"role": "user", "content": "beta"}])
        print(r.choices[0].message.content)
    """)
    assert app.lines()[-1] == "Echo: beta"
    span = app.one()
    assert_llm_span(span, model="gpt-beta")
    assert attrs(span)["output.value"] == "Echo: beta"


def test_text_completion(openai_app):
    app = openai_app("""
        import openai
        r = openai.OpenAI(max_retries=0).completions.create(model="davinci-test", prompt="Once upon", max_tokens=20)
        print(r.choices[0].text)
    """)
    assert app.lines()[-1] == "and then it said: Once upon"
    span = app.one()
    assert_llm_span(span, model="davinci-test", operation="text_completion")
    a = attrs(span)
    assert a["gen_ai.request.max_tokens"] == 20
    assert content(span, "gen_ai.input.messages") == [
        {"role": "user", "parts": [{"type": "text", "content": "Once upon"}]}
    ]
    assert a["output.value"] == " and then it said: Once upon"
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert a["gen_ai.usage.input_tokens"] == 2


def test_embeddings(openai_app):
    app = openai_app(
        """
        import json, openai
        client = openai.OpenAI(max_retries=0)
        r = client.embeddings.create(model="embed-test", input=["first text", "second text"])
        one = client.embeddings.create(model="embed-test", input="just one", encoding_format="float")
        # Vectors as base64 float32 (asked for here; newer SDKs also ask on the caller's behalf
        # and decode), whole or cut to the dimensions asked for.
        packed = client.embeddings.create(model="embed-test", input="packed", encoding_format="base64")
        short = client.embeddings.create(model="embed-test", input="short", encoding_format="base64",
                                         dimensions=5)
        raw = client.embeddings.with_raw_response.create(model="embed-test", input="raw", encoding_format="base64")
        print(json.dumps([len(r.data), r.data[0].embedding[:3], len(one.data[0].embedding),
                          type(packed.data[0].embedding).__name__, len(raw.parse().data)]))
    """,
        spans=5,
    )
    count, head, dims, packed_type, raw_count = json.loads(app.lines()[-1])
    assert count == 2 and dims == 8 and packed_type == "str" and raw_count == 1
    many, single, packed, short, raw = app.llm()
    # The dimension of base64 vectors is counted from their length (8 floats of 4 bytes).
    assert attrs(packed)["gen_ai.embeddings.dimension.count"] == 8
    assert attrs(packed)["gen_ai.request.encoding_formats"] == ["base64"]
    assert attrs(short)["gen_ai.embeddings.dimension.count"] == 5
    assert attrs(raw)["gen_ai.embeddings.dimension.count"] == 8
    assert_llm_span(many, model="embed-test", operation="embeddings", kind="EMBEDDING", stream=None)
    a = attrs(many)
    assert a["gen_ai.usage.input_tokens"] == 4
    assert a["gen_ai.embeddings.dimension.count"] == 8
    assert a["gen_ai.response.model"] == "embed-test-v1"
    assert json.loads(a["input.value"]) == ["first text", "second text"]
    assert a["input.mime_type"] == "application/json"
    assert attrs(single)["input.value"] == "just one"
    assert attrs(single)["input.mime_type"] == "text/plain"
    assert attrs(single)["gen_ai.request.encoding_formats"] == ["float"]
    # Never the vectors.
    assert str(head[0]) not in everything(app.spans)
    assert "output.value" not in a


def test_legacy_function_call(openai_app):
    app = openai_app(
        """
        import json, openai
        client = openai.OpenAI(max_retries=0)
        functions = [{"name": "get_weather", "description": "Weather of a city",
                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
        r = client.chat.completions.create(model="gpt-legacy", functions=functions,
                                           messages=[{"role": "user", "content": "Weather in Paris?"}])
        print(json.dumps([r.choices[0].finish_reason, r.choices[0].message.function_call.name]))
    """
    )
    assert json.loads(app.lines()[-1]) == ["function_call", "get_weather"]
    span = app.one()
    # The provider's "function_call" is the conventions' "tool_calls".
    assert attrs(span)["gen_ai.response.finish_reasons"] == ["tool_calls"]
    [answer] = content(span, "gen_ai.output.messages")
    assert answer["finish_reason"] == "tool_calls"
    assert answer["parts"] == [
        {
            "type": "tool_call",
            "id": None,
            "name": "get_weather",
            "arguments": {"city": "Paris", "unit": "celsius"},
        }
    ]
    assert content(span, "gen_ai.tool.definitions") == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]


@needs("resources.responses")
def test_responses_api(openai_app):
    app = openai_app(
        """
        import json, openai
        client = openai.OpenAI(max_retries=0)
        r = client.responses.create(model="gpt-resp", input="Hello responses", instructions="Be terse.",
                                    max_output_tokens=50, temperature=0.1)
        tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}},
                 {"type": "web_search_preview"}]
        t = client.responses.create(model="gpt-resp", input=[{"role": "user", "content": "weather?"}], tools=tools)
        cut = client.responses.create(model="gpt-resp", input="a long question to answer", max_output_tokens=2)
        print(json.dumps([r.output_text, [o.type for o in t.output], cut.status, cut.output_text]))
    """,
        spans=3,
    )
    text, kinds, status, cut_text = json.loads(app.lines()[-1])
    assert text == "Echo: Hello responses" and kinds == ["function_call", "function_call"]
    assert (status, cut_text) == ("incomplete", "Echo: a")
    plain, tools, cut = app.llm()
    assert_llm_span(plain, model="gpt-resp")
    a = attrs(plain)
    assert a["gen_ai.request.max_tokens"] == 50
    assert a["gen_ai.request.temperature"] == 0.1
    assert content(plain, "gen_ai.system_instructions") == [{"type": "text", "content": "Be terse."}]
    assert content(plain, "gen_ai.input.messages") == [
        {"role": "user", "parts": [{"type": "text", "content": "Hello responses"}]}
    ]
    assert a["output.value"] == "Echo: Hello responses"
    # The response's status in the conventions' words, as a chat completion says it.
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert content(plain, "gen_ai.output.messages")[0]["finish_reason"] == "stop"
    assert a["gen_ai.usage.input_tokens"] == 2
    assert a["gen_ai.usage.output_tokens"] == 3
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1
    assert a["gen_ai.usage.reasoning.output_tokens"] == 4
    assert a["gen_ai.response.id"].startswith("resp-")
    [answer] = content(tools, "gen_ai.output.messages")
    assert [p["name"] for p in answer["parts"]] == ["get_weather", "get_time"]
    assert answer["finish_reason"] == "tool_calls"
    assert attrs(tools)["gen_ai.response.finish_reasons"] == ["tool_calls"]
    # The flat shape already; a built-in tool keeps its type alone.
    assert content(tools, "gen_ai.tool.definitions") == [
        {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}},
        {"type": "web_search_preview"},
    ]
    # Cut by max_output_tokens: "length", as a chat completion cut by max_tokens.
    assert attrs(cut)["gen_ai.response.finish_reasons"] == ["length"]
    assert attrs(cut)["output.value"] == "Echo: a"


def test_media_parts_and_limits(openai_app):
    """Images, audio and files are the conventions' uri / blob / file parts, chat and Responses
    API alike: a link is a uri, a data URL a blob that keeps its mime type, an uploaded file its
    id. Every content string (a blob's content too) is cut to the limit, in characters, and the
    JSON stays valid."""
    app = openai_app(
        """
        import openai
        client = openai.OpenAI(max_retries=0)
        data_url = "data:image/png;base64," + "A" * 5000
        client.chat.completions.create(model="gpt-vision", messages=[
            {"role": "user", "content": [
                {"type": "text", "text": "héllo wörld, what is in this picture?"},
                {"type": "image_url", "image_url": {"url": data_url}},
                {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}},
                {"type": "input_audio", "input_audio": {"data": "UklGR" * 100, "format": "wav"}},
                {"type": "file", "file": {"file_id": "file-abc"}},
                {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
            ]}])
        client.responses.create(model="gpt-resp", input=[{"role": "user", "content": [
            {"type": "input_text", "text": "and these?"},
            {"type": "input_image", "image_url": "https://x.test/dog.png"},
            {"type": "input_image", "file_id": "file-img"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0x", "filename": "b.pdf"},
        ]}])
    """,
        spans=2,
        env={"OTEL_INSTRUMENTATION_GENAI_MESSAGE_CONTENT_MAX_LENGTH": "12"},
    )
    chat, responses = app.llm()
    [message] = content(chat, "gen_ai.input.messages")
    assert message["parts"] == [
        {"type": "text", "content": "héllo wörld,"},
        {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "AAAAAAAAAAAA"},
        {"type": "uri", "modality": "image", "uri": "https://x.te"},
        {"type": "blob", "modality": "audio", "mime_type": "audio/wav", "content": "UklGRUklGRUk"},
        {"type": "file", "modality": "file", "file_id": "file-abc"},
        {"type": "blob", "modality": "file", "mime_type": "application/", "content": "JVBERi0x"},
    ]
    assert attrs(chat)["output.value"] == "Echo: héllo "
    [message] = content(responses, "gen_ai.input.messages")
    assert message["parts"] == [
        {"type": "text", "content": "and these?"},
        {"type": "uri", "modality": "image", "uri": "https://x.te"},
        {"type": "file", "modality": "image", "file_id": "file-img"},
        {"type": "blob", "modality": "file", "mime_type": "application/", "content": "JVBERi0x"},
    ]
    # The requests went out whole.
    assert app.requests[0]["body"]["messages"][0]["content"][1]["image_url"]["url"].endswith("A" * 5000)


def test_uninstrumented_spans_absent_when_disabled(openai_app):
    app = openai_app(
        """
        import openai
        print(openai.OpenAI(max_retries=0).chat.completions.create(
            model="gpt-off", messages=[{"role": "user", "content": "off"}]).choices[0].message.content)
    """,
        spans=0,
        env={"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai"},
    )
    assert app.lines()[-1] == "Echo: off"
    assert app.llm() == []
