"""Failed calls: the SDK's exception reaches the application unchanged, the SDK's own retries
happen as they would without llmprobe, and the span says ERROR with error.type and the
exception event."""

from __future__ import annotations

import json

import pytest
from openai_checks import assert_failed, assert_llm_span, attrs

CALL = """
import json, openai
client = openai.OpenAI(max_retries={retries}, timeout={timeout})
try:
    client.chat.completions.create(model="{model}", messages=[{{"role": "user", "content": "fail please"}}])
    print(json.dumps({{"raised": None}}))
except Exception as exc:
    print(json.dumps({{"raised": type(exc).__module__ + "." + type(exc).__qualname__,
                      "status": getattr(exc, "status_code", None), "message": str(exc)}}))
"""


@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        ("error-400", "openai.BadRequestError", 400),
        ("error-429", "openai.RateLimitError", 429),
        ("error-500", "openai.InternalServerError", 500),
    ],
)
def test_api_errors(openai_app, model, error, status):
    app = openai_app(CALL.format(model=model, retries=0, timeout=30))
    out = json.loads(app.lines()[-1])
    assert out["raised"] == error and out["status"] == status
    span = app.one()
    assert_llm_span(span, model=model)
    assert_failed(span, error, out["message"][:40])
    assert span["status"]["message"] == out["message"]
    assert "gen_ai.response.id" not in attrs(span)
    assert len(app.requests) == 1


def test_sdk_retries_undisturbed(openai_app):
    """The SDK retries a 429 twice by default: three requests, one call, one span."""
    app = openai_app(CALL.format(model="error-429", retries=2, timeout=30))
    assert json.loads(app.lines()[-1])["raised"] == "openai.RateLimitError"
    assert len(app.requests) == 3
    assert_failed(app.one(), "openai.RateLimitError", "Rate limit")


def test_timeout(openai_app):
    app = openai_app(CALL.format(model="stall", retries=0, timeout=0.5))
    out = json.loads(app.lines()[-1])
    assert out["raised"] == "openai.APITimeoutError"
    assert_failed(app.one(), "openai.APITimeoutError", "timed out")


def test_connection_error(openai_app):
    app = openai_app(
        CALL.format(model="any", retries=0, timeout=5), env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    )
    out = json.loads(app.lines()[-1])
    assert out["raised"] == "openai.APIConnectionError"
    span = app.one()
    assert_failed(span, "openai.APIConnectionError", "Connection error")
    assert attrs(span)["server.port"] == 9


def test_async_error(openai_app):
    app = openai_app("""
        import asyncio, openai
        async def main():
            try:
                await openai.AsyncOpenAI(max_retries=0).chat.completions.create(
                    model="error-500", messages=[{"role": "user", "content": "x"}])
            except openai.InternalServerError as exc:
                print("raised", exc.status_code)
        asyncio.run(main())
    """)
    assert app.lines()[-1] == "raised 500"
    assert_failed(app.one(), "openai.InternalServerError", "server had an error")


def test_cancelled_task_is_not_an_error(openai_app):
    """A task cancelled while waiting for the model ends the span, without marking it failed."""
    app = openai_app("""
        import asyncio, openai
        async def main():
            client = openai.AsyncOpenAI(max_retries=0)
            task = asyncio.ensure_future(client.chat.completions.create(
                model="stall", messages=[{"role": "user", "content": "slow"}]))
            await asyncio.sleep(0.5)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                print("cancelled")
        asyncio.run(main())
    """)
    assert app.lines()[-1] == "cancelled"
    span = app.one()
    assert span["status"]["code"] == "UNSET"
    assert "error.type" not in attrs(span)
