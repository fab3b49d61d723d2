"""Generation.call, not streamed: prompt and messages, both result formats, the model by keyword
or position, error responses and raised errors, as the spans arrive at the OTLP receiver."""

from __future__ import annotations

import json

from dashscope_secret import SECRET
from fake_dashscope import ANSWER
from llmprobe import __version__ as LLMPROBE_VERSION


def test_prompt_text_format(dashscope_app):
    app = dashscope_app(
        """
        import dashscope
        r = dashscope.Generation.call(model="qwen-plus", prompt="Say hi", temperature=0.5, top_k=3, seed=7,
                                      top_p=0.8, max_tokens=100, frequency_penalty=0.3, presence_penalty=0.2,
                                      n=2, stop=["END"])
        print(r.status_code, r.output.text)
        """
    )
    assert app.lines() == [f"200 {ANSWER}"]
    span = app.one()
    a = span["attributes"]
    assert span["name"] == "text_completion qwen-plus"
    assert span["kind"] == "CLIENT"
    # The scope names llmprobe's instrumentation: its version is llmprobe's, not dashscope's.
    assert (span["scope"], span["scope_version"]) == ("llmprobe.instrumentation.dashscope", LLMPROBE_VERSION)
    assert a["gen_ai.provider.name"] == "dashscope"
    assert a["gen_ai.operation.name"] == "text_completion"
    assert a["gen_ai.span.kind"] == "LLM"
    assert a["gen_ai.request.model"] == "qwen-plus"
    assert a["gen_ai.request.temperature"] == 0.5
    assert a["gen_ai.request.top_k"] == 3
    assert a["gen_ai.request.seed"] == 7
    # Every sampling parameter of the conventions' gen_ai.request.* that DashScope takes.
    assert a["gen_ai.request.top_p"] == 0.8
    assert a["gen_ai.request.max_tokens"] == 100
    assert a["gen_ai.request.frequency_penalty"] == 0.3
    assert a["gen_ai.request.presence_penalty"] == 0.2
    assert a["gen_ai.request.choice.count"] == 2
    assert list(a["gen_ai.request.stop_sequences"]) == ["END"]
    assert a["gen_ai.request.stream"] is False
    assert a["server.address"] == "127.0.0.1"
    assert a["gen_ai.usage.input_tokens"] == 11
    assert a["gen_ai.usage.output_tokens"] == 3
    assert a["gen_ai.usage.total_tokens"] == 14
    assert a["gen_ai.response.id"] == "req-1"
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert a["output.value"] == ANSWER
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Say hi"}]}
    ]
    assert len(app.requests) == 1  # the call ran exactly once


def test_messages_message_format_model_by_position(dashscope_app):
    app = dashscope_app(
        """
        import dashscope
        from dashscope import Generation
        msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who are you?"}]
        r = Generation.call("qwen-max", messages=msgs, result_format="message")
        print(r.output.choices[0].message.content)
        """
    )
    assert app.lines() == [ANSWER]
    span = app.one()
    a = span["attributes"]
    assert span["name"] == "chat qwen-max"
    assert a["gen_ai.request.model"] == "qwen-max"
    assert app.requests[0]["body"]["model"] == "qwen-max"
    assert [m["role"] for m in json.loads(a["gen_ai.input.messages"])] == ["system", "user"]
    out = json.loads(a["gen_ai.output.messages"])
    assert out == [
        {"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}
    ]
    assert a["output.value"] == ANSWER


def test_error_response_is_error_span_and_reaches_caller(dashscope_app):
    app = dashscope_app(
        """
        import dashscope
        r = dashscope.Generation.call(model="qwen-bad", prompt="x")
        print(r.status_code, r.code, r.message, r.output)
        """
    )
    assert app.lines() == ["400 InvalidParameter Range of top_p should be (0.0, 1.0] None"]
    span = app.one()
    assert span["attributes"]["error.type"] == "InvalidParameter"
    assert span["status"]["code"] == "ERROR"
    assert span["status"]["message"] == "Range of top_p should be (0.0, 1.0]"
    assert len(app.requests) == 1


def test_raised_error_reaches_caller_and_span_records_it(dashscope_app):
    # Nothing listens on port 9: the SDK raises a connection error.
    app = dashscope_app(
        """
        import dashscope
        dashscope.base_http_api_url = "http://127.0.0.1:9/api/v1"
        try:
            dashscope.Generation.call(model="qwen-plus", prompt="x")
        except Exception as e:
            print("raised", type(e).__module__, type(e).__name__)
        """
    )
    line = app.lines()[-1]
    assert line.startswith("raised requests.exceptions")
    span = app.one()
    assert span["attributes"]["error.type"].startswith("requests.exceptions.")
    assert span["status"]["code"] == "ERROR"
    assert any(e["name"] == "exception" for e in span["events"])


def test_api_key_never_in_spans(dashscope_app):
    app = dashscope_app(
        f"""
        import dashscope
        dashscope.Generation.call(model="qwen-plus", prompt="x", api_key={SECRET!r})
        """
    )
    app.one()
    assert SECRET not in json.dumps(app.spans, default=str)
    assert app.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"
