"""A FastAPI app that answers questions with an OpenAI model: what a user of llmprobe writes, with
nothing of llmprobe in it. Run it under ``instrument`` and every request gives a trace: the
FastAPI request span (opentelemetry-instrumentation-fastapi, which ``instrument`` activates when
it is installed) with the LLM span of the model call under it.

Offline (no API key, nothing leaves the machine): without OPENAI_BASE_URL the app starts the
fake OpenAI-compatible server of the tests (tests/openai/fake_openai.py) and talks to it::

    pip install fastapi uvicorn opentelemetry-instrumentation-fastapi
    instrument python examples/openai_app.py            # serves on http://127.0.0.1:8000
    curl 'http://127.0.0.1:8000/ask?q=What+is+a+span'
    curl -N 'http://127.0.0.1:8000/stream?q=Tell+me+a+story'
    curl 'http://127.0.0.1:8000/weather?city=Paris'

    instrument python examples/openai_app.py --demo     # the three requests above, then exit

With nothing else configured the traces print on stderr; set OTEL_EXPORTER_OTLP_ENDPOINT to
send them to a collector. Against the real API: OPENAI_API_KEY=sk-... OPENAI_BASE_URL unset and
``--real``; OPENAI_MODEL picks the model (default gpt-4o-mini).
"""

from __future__ import annotations

import argparse
import json
import os

import offline
import openai
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}

app = FastAPI(title="ask")
client: openai.AsyncOpenAI | None = None


def _client() -> openai.AsyncOpenAI:
    global client
    if client is None:
        client = openai.AsyncOpenAI()
    return client


@app.get("/ask")
async def ask(q: str) -> dict:
    """One question, one answer."""
    completion = await _client().chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Answer in one sentence."}, {"role": "user", "content": q}],
        temperature=0.2,
    )
    return {"answer": completion.choices[0].message.content, "tokens": completion.usage.total_tokens}


@app.get("/stream")
async def stream(q: str) -> StreamingResponse:
    """The answer as it is generated."""
    chunks = await _client().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": q}],
        stream=True,
        stream_options={"include_usage": True},
    )

    async def text():
        async for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    return StreamingResponse(text(), media_type="text/plain")


@app.get("/weather")
async def weather(city: str) -> dict:
    """A tool-using answer: the model asks for the weather, the app looks it up, the model answers."""
    messages: list = [{"role": "user", "content": f"What is the weather in {city}?"}]
    first = await _client().chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    message = first.choices[0].message
    if not message.tool_calls:
        return {"answer": message.content}
    messages.append(message)
    for call in message.tool_calls:
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"celsius": 18})})
    second = await _client().chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    return {"answer": second.choices[0].message.content}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--demo", action="store_true", help="make one request of each kind, then exit")
    parser.add_argument(
        "--real", action="store_true", help="use the real OpenAI API even without OPENAI_BASE_URL"
    )
    args = parser.parse_args()
    if not os.environ.get("OPENAI_BASE_URL") and not args.real:
        offline.start_fake_openai()
    if args.demo:
        offline.demo(
            app, args.port, ("/ask?q=What+is+a+span", "/stream?q=Tell+me+a+story", "/weather?city=Paris")
        )
    else:
        uvicorn.run(app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
