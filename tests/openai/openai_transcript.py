"""A fixed run of every kind of openai call an application makes, written down as JSON: what
each call returned (the SDK objects dumped), what it raised (type, status, message), what a
stream gave, and whether the application's current span was still its own after the call.

Run without llmprobe, under llmprobe, and under llmprobe with its hooks made to fail, the
transcript must be the same: llmprobe may never change what the application gets.
Used by test_openai_faults.py (``python app.py`` where app.py calls ``main()``).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import sys
from typing import Any

import openai
from opentelemetry import trace

USER = [{"role": "user", "content": "transcript question"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def dump(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "dict"):
        return obj.dict()
    return repr(obj)


def failure(exc: BaseException) -> dict:
    return {
        "raised": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "status": getattr(exc, "status_code", None),
        "message": str(exc),
        "body": getattr(exc, "body", None),
    }


def usage_kwargs(method: Any) -> dict:
    if "stream_options" in inspect.signature(method).parameters:
        return {"stream_options": {"include_usage": True}}
    return {"extra_body": {"stream_options": {"include_usage": True}}}


class Transcript:
    def __init__(self) -> None:
        self.entries: list = []
        self.root: Any = None

    def record(self, name: str, fn: Any) -> None:
        try:
            value = fn()
            entry: dict = {"returned": value}
        except Exception as exc:  # noqa: BLE001 - what it raised is the record
            entry = failure(exc)
        # The call gave the application its context back: the current span is its own.
        entry["own_span_current"] = trace.get_current_span() is self.root
        self.entries.append([name, entry])

    async def record_async(self, name: str, fn: Any) -> None:
        try:
            entry: dict = {"returned": await fn()}
        except Exception as exc:  # noqa: BLE001
            entry = failure(exc)
        entry["own_span_current"] = trace.get_current_span() is self.root
        self.entries.append([name, entry])


def sync_calls(t: Transcript, client: Any) -> None:
    chat = client.chat.completions
    t.record("chat", lambda: dump(chat.create(model="gpt-x", messages=USER, temperature=0.5)))
    t.record("chat-n2", lambda: dump(chat.create(model="gpt-x", messages=USER, n=2)))
    t.record("chat-tools", lambda: dump(chat.create(model="gpt-x", messages=USER, tools=TOOLS)))

    def stream(**kwargs: Any) -> Any:
        s = chat.create(model="chunks-6", messages=USER, stream=True, **kwargs)
        return {
            "class": s.__class__.__name__,
            "isinstance": isinstance(s, openai.Stream),
            "chunks": [dump(c) for c in s],
        }

    t.record("stream-usage", lambda: stream(**usage_kwargs(chat.create)))
    t.record("stream", stream)
    t.record("stream-tools", lambda: stream(tools=TOOLS))

    def stream_break() -> Any:
        out = []
        for chunk in chat.create(model="chunks-9", messages=USER, stream=True):
            out.append(dump(chunk))
            if len(out) == 3:
                break
        return out

    t.record("stream-break", stream_break)
    # The stream left by break still holds its HTTP response; older SDKs (no close()) leave it to
    # the cyclic garbage collector, which, run at an unlucky moment inside httpcore's connection
    # pool, deadlocks (an httpcore hazard, with or without llmprobe). Collect it at a safe point.
    gc.collect()

    def stream_next() -> Any:
        s = chat.create(model="chunks-9", messages=USER, stream=True)
        first = [dump(next(s)), dump(next(s))]
        rest = [dump(c) for c in s]
        return [first, rest, next(s, "exhausted")]

    t.record("stream-next", stream_next)
    for model in ("error-400", "error-429", "error-500"):
        t.record(model, lambda m=model: dump(chat.create(model=m, messages=USER)))
    t.record(
        "retried-429",
        lambda: dump(
            client.with_options(max_retries=2).chat.completions.create(model="error-429", messages=USER)
        ),
    )
    t.record(
        "timeout",
        lambda: dump(client.with_options(timeout=0.3).chat.completions.create(model="stall", messages=USER)),
    )

    def broken_stream() -> Any:
        got = []
        try:
            for chunk in chat.create(model="truncated-stream", messages=USER, stream=True):
                got.append(dump(chunk))
        except Exception as exc:  # noqa: BLE001
            return [got, failure(exc)["raised"]]
        return [got, None]

    t.record("broken-stream", broken_stream)
    t.record("completion", lambda: dump(client.completions.create(model="davinci", prompt="Once")))
    t.record(
        "completion-stream",
        lambda: [dump(c) for c in client.completions.create(model="chunks-3", prompt="Once", stream=True)],
    )
    t.record("embeddings", lambda: dump(client.embeddings.create(model="embed", input=["a", "b"])))

    def raw() -> Any:
        response = chat.with_raw_response.create(model="gpt-raw", messages=USER)
        return [response.http_response.status_code, dump(response.parse())]

    t.record("raw", raw)

    def raw_stream() -> Any:
        response = chat.with_raw_response.create(model="chunks-3", messages=USER, stream=True)
        return [dump(c) for c in response.parse()]

    t.record("raw-stream", raw_stream)
    if hasattr(chat, "with_streaming_response"):

        def streaming_response() -> Any:
            with chat.with_streaming_response.create(
                model="chunks-3", messages=USER, stream=True
            ) as response:
                return [dump(c) for c in response.parse()]

        t.record("streaming-response", streaming_response)
    if hasattr(chat, "stream"):

        def helper() -> Any:
            with chat.stream(model="chunks-4", messages=USER) as s:
                events = [e.type for e in s]
                return [events, dump(s.get_final_completion())]

        t.record("stream-helper", helper)
    if hasattr(client, "responses"):
        t.record(
            "responses", lambda: dump(client.responses.create(model="gpt-r", input="hi", instructions="x"))
        )
        t.record(
            "responses-stream",
            lambda: [dump(e) for e in client.responses.create(model="chunks-3", input="hi", stream=True)],
        )


async def async_calls(t: Transcript) -> None:
    client = openai.AsyncOpenAI(max_retries=0)
    chat = client.chat.completions

    async def create() -> Any:
        return dump(await chat.create(model="gpt-async", messages=USER))

    async def stream() -> Any:
        s = await chat.create(model="chunks-5", messages=USER, stream=True, **usage_kwargs(chat.create))
        return {"isinstance": isinstance(s, openai.AsyncStream), "chunks": [dump(c) async for c in s]}

    async def error() -> Any:
        return dump(await chat.create(model="error-500", messages=USER))

    await t.record_async("async-chat", create)
    await t.record_async("async-stream", stream)
    await t.record_async("async-error", error)


def main() -> None:
    tracer = trace.get_tracer("transcript")
    t = Transcript()
    with tracer.start_as_current_span("transcript root") as root:
        t.root = root
        client = openai.OpenAI(max_retries=0)
        sync_calls(t, client)

        async def run_async() -> None:
            await async_calls(t)

        asyncio.run(run_async())
    sys.stdout.write(json.dumps(t.entries, sort_keys=True, default=repr) + "\n")
