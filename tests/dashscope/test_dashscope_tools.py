"""Tools and tool calls, whole and streamed; content capture off."""

from __future__ import annotations

import json

import pytest
from fake_dashscope import ANSWER

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
EXPECTED_CALL = {
    "type": "tool_call",
    "id": "call_1",
    "name": "get_weather",
    "arguments": {"city": "Hangzhou"},
}


@pytest.mark.parametrize("stream", ["False", "'incremental'", "'full'"])
def test_tool_calls(dashscope_app, stream):
    app = dashscope_app(
        f"""
        import dashscope
        mode = {stream}
        kwargs = dict(stream=True, incremental_output=mode == "incremental") if mode else {{}}
        msgs = [{{"role": "user", "content": "Weather in Hangzhou?"}}]
        r = dashscope.Generation.call(model="qwen-tools", messages=msgs, tools={TOOLS!r},
                                      result_format="message", **kwargs)
        if mode:
            r = list(r)[-1]
        print(r.output.choices[0].finish_reason)
        """
    )
    assert app.lines() == ["tool_calls"]
    a = app.one()["attributes"]
    # DashScope's nested {type, function: {...}}, in the conventions' flat shape.
    assert json.loads(a["gen_ai.tool.definitions"]) == [
        {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    ]
    out = json.loads(a["gen_ai.output.messages"])
    assert out == [{"role": "assistant", "parts": [EXPECTED_CALL], "finish_reason": "tool_calls"}]
    assert list(a["gen_ai.response.finish_reasons"]) == ["tool_calls"]


def test_tool_result_message_in_input(dashscope_app):
    app = dashscope_app(
        """
        import dashscope
        msgs = [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
        ]
        dashscope.Generation.call(model="qwen-plus", messages=msgs, result_format="message")
        """
    )
    messages = json.loads(app.one()["attributes"]["gen_ai.input.messages"])
    assert messages[1]["parts"] == [
        {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {}}
    ]
    assert messages[2] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny"}],
    }


def test_capture_off_records_no_content(dashscope_app):
    app = dashscope_app(
        """
        import dashscope
        dashscope.Generation.call(model="qwen-plus", messages=[{"role": "user", "content": "secret question"}],
                                  result_format="message")
        """,
        env={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"},
    )
    a = app.one()["attributes"]
    text = json.dumps(a)
    assert "secret question" not in text and ANSWER not in text
    assert "gen_ai.input.messages" not in a and "output.value" not in a
    assert a["llmprobe.input.size"] == len("secret question")
    assert a["gen_ai.usage.output_tokens"] == 3
