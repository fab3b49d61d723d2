"""Streamed answers: the application iterates the SDK's stream as before (through a transparent
proxy), the span carries the rebuilt answer, the usage chunk when there is one, the time to the
first token, and ends exactly once: when the stream is exhausted, closed, left by a `with` block
or garbage-collected, never before.

Each app prints the times (time.time_ns) that bound when the span may end; the span's end, as it
arrived at the receiver, must lie between them."""

from __future__ import annotations

import json

import pytest
from openai_checks import assert_failed, assert_llm_span, assert_ok, attrs, content, text_parts
from openai_support import needs, sdk_has

# Requests a usage chunk in a way every 1.x to 3.x SDK accepts (older ones have no stream_options).
USAGE = """
import inspect, openai
def usage_kwargs(method):
    if "stream_options" in inspect.signature(method).parameters:
        return {"stream_options": {"include_usage": True}}
    return {"extra_body": {"stream_options": {"include_usage": True}}}
"""


def times(app) -> dict:
    return json.loads(app.lines()[-1])


def assert_ends_between(span: dict, after: int, before: int) -> None:
    assert after <= span["end_time"] <= before, (
        f"span ended at {span['end_time']}, outside [{after}, {before}] "
        f"({(span['end_time'] - after) / 1e6:.1f} ms after the lower bound)"
    )


@pytest.mark.parametrize("usage", [True, False], ids=["usage-chunk", "no-usage-chunk"])
def test_sync_stream(openai_app, usage):
    app = openai_app(
        USAGE
        + f"""
import json, time
client = openai.OpenAI(max_retries=0)
kwargs = usage_kwargs(client.chat.completions.create) if {usage} else {{}}
started = time.time_ns()
stream = client.chat.completions.create(model="chunks-8", messages=[{{"role": "user", "content": "stream it"}}],
                                        stream=True, **kwargs)
text, last = "", 0
for chunk in stream:
    if chunk.choices:
        text += chunk.choices[0].delta.content or ""
    last = time.time_ns()
print(json.dumps({{"text": text, "started": started, "last": last, "after": time.time_ns(),
                  "type": type(stream).__name__, "is_stream": isinstance(stream, openai.Stream)}}))
"""
    )
    t = times(app)
    assert t["text"] == "Echo: stream it"
    assert t["is_stream"] is True
    span = app.one()
    assert_llm_span(span, model="chunks-8", stream=True)
    assert_ok(span)
    assert_ends_between(span, t["last"], t["after"])
    a = attrs(span)
    assert content(span, "gen_ai.output.messages") == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Echo: stream it"}],
            "finish_reason": "stop",
        }
    ]
    assert a["output.value"] == "Echo: stream it"
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert a["gen_ai.response.model"] == "chunks-8-2024-07-18"
    assert a["gen_ai.response.id"].startswith("chatcmpl-")
    ttft = a["gen_ai.response.time_to_first_token"]
    assert 0 < ttft <= span["end_time"] - span["start_time"]
    if usage:
        assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (2, 3)
        assert a["gen_ai.usage.cache_read.input_tokens"] == 3
    else:  # absent, not guessed
        assert not [k for k in a if k.startswith("gen_ai.usage.")]
    # The request is the application's: llmprobe adds no stream_options.
    [request] = app.requests
    assert ("stream_options" in request["body"]) is usage


def test_stream_with_usage_in_the_finish_chunk(openai_app):
    # vLLM and DashScope's compatible mode send the usage with the finish reason, not in a chunk
    # of its own: it is recorded all the same, and so is the answer.
    app = openai_app(
        """
import openai
client = openai.OpenAI(max_retries=0)
stream = client.chat.completions.create(model="usage-with-finish", stream=True,
                                        messages=[{"role": "user", "content": "count it"}])
print("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
"""
    )
    assert app.lines()[-1] == "Echo: count it"
    a = attrs(app.one())
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (2, 3)
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert a["output.value"] == "Echo: count it"


def test_finish_in_the_last_text_chunk(openai_app):
    # Some servers end a stream with its last piece of text: that chunk carries the finish
    # reason and the usage, and no chunk follows it.
    app = openai_app(
        """
import openai
client = openai.OpenAI(max_retries=0)
stream = client.chat.completions.create(model="finish-in-text", stream=True,
                                        messages=[{"role": "user", "content": "cut it short"}])
chunks = list(stream)
print(chunks[-1].choices[0].finish_reason, "".join(c.choices[0].delta.content or "" for c in chunks))
"""
    )
    assert app.lines()[-1] == "length Echo: cut it short"
    a = attrs(app.one())
    assert a["gen_ai.response.finish_reasons"] == ["length"]
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (3, 4)
    assert a["output.value"] == "Echo: cut it short"
    assert json.loads(a["gen_ai.output.messages"])[0]["finish_reason"] == "length"


@pytest.mark.parametrize("usage", [True, False], ids=["usage-chunk", "no-usage-chunk"])
def test_async_stream(openai_app, usage):
    app = openai_app(
        USAGE
        + f"""
import asyncio, json, time
async def main():
    client = openai.AsyncOpenAI(max_retries=0)
    kwargs = usage_kwargs(client.chat.completions.create) if {usage} else {{}}
    stream = await client.chat.completions.create(model="chunks-6", stream=True, **kwargs,
                                                  messages=[{{"role": "user", "content": "async stream"}}])
    text, last = "", 0
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        last = time.time_ns()
    print(json.dumps({{"text": text, "last": last, "after": time.time_ns(),
                      "is_stream": isinstance(stream, openai.AsyncStream)}}))
asyncio.run(main())
"""
    )
    t = times(app)
    assert t["text"] == "Echo: async stream" and t["is_stream"] is True
    span = app.one()
    assert_llm_span(span, model="chunks-6", stream=True)
    assert_ends_between(span, t["last"], t["after"])
    a = attrs(span)
    assert a["output.value"] == "Echo: async stream"
    assert a["gen_ai.response.time_to_first_token"] > 0
    assert ("gen_ai.usage.output_tokens" in a) is usage


def test_tool_call_deltas_are_assembled(openai_app):
    app = openai_app("""
        import openai
        client = openai.OpenAI(max_retries=0)
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
        stream = client.chat.completions.create(model="gpt-tools", stream=True, tools=tools,
                                                messages=[{"role": "user", "content": "weather?"}])
        print(sum(1 for _ in stream))
    """)
    span = app.one()
    [message] = content(span, "gen_ai.output.messages")
    assert message["finish_reason"] == "tool_calls"
    assert message["parts"] == [
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
    assert attrs(span)["gen_ai.response.time_to_first_token"] > 0


def test_text_completion_stream(openai_app):
    app = openai_app("""
        import openai
        stream = openai.OpenAI(max_retries=0).completions.create(model="chunks-4", prompt="tell me", stream=True)
        print("".join(c.choices[0].text for c in stream if c.choices))
    """)
    assert app.lines()[-1] == "and then it said: tell me"
    span = app.one()
    assert_llm_span(span, model="chunks-4", operation="text_completion", stream=True)
    assert attrs(span)["output.value"] == " and then it said: tell me"
    assert attrs(span)["gen_ai.response.finish_reasons"] == ["stop"]


# ---- when the span ends ----------------------------------------------------------------------

LIFECYCLE = {
    # A `for` over the stream itself, left by break: the stream is dropped with the loop.
    "break-anonymous": """
        for i, chunk in enumerate(client.chat.completions.create(model="chunks-20", stream=True, messages=MESSAGES)):
            if i == 2:
                break
        out["after"] = time.time_ns()
    """,
    # Left by break but still referenced: the span stays open until close().
    "break-then-close": """
        stream = client.chat.completions.create(model="chunks-20", stream=True, messages=MESSAGES)
        for i, chunk in enumerate(stream):
            if i == 2:
                break
        time.sleep(0.3)
        out["before"] = time.time_ns()
        stream.close()
        out["after"] = time.time_ns()
    """,
    # The end of a with block ends it.
    "with-block": """
        with client.chat.completions.create(model="chunks-20", stream=True, messages=MESSAGES) as stream:
            for i, chunk in enumerate(stream):
                if i == 2:
                    break
            time.sleep(0.3)
            out["before"] = time.time_ns()
        out["after"] = time.time_ns()
    """,
    # Abandoned: nothing ends it but the garbage collector.
    "abandoned": """
        stream = client.chat.completions.create(model="chunks-20", stream=True, messages=MESSAGES)
        next(stream)
        next(stream)
        time.sleep(0.3)
        out["before"] = time.time_ns()
        del stream
        gc.collect()
        out["after"] = time.time_ns()
    """,
    # Read slowly: the span lasts as long as the reading.
    "slow-reader": """
        stream = client.chat.completions.create(model="chunks-5", stream=True, messages=MESSAGES)
        for chunk in stream:
            time.sleep(0.1)
            out["before"] = time.time_ns()
        out["after"] = time.time_ns()
    """,
    # Exhausted, then closed, left by `with` and collected: still one span, ended at exhaustion.
    "everything-once": """
        stream = client.chat.completions.create(model="chunks-5", stream=True, messages=MESSAGES)
        with stream:
            for chunk in stream:
                pass
            out["after"] = time.time_ns()
            time.sleep(0.3)
            stream.close()
        del stream
        gc.collect()
    """,
    # Still open when the interpreter exits: ended at exit, before the exit flush.
    "open-at-exit": """
        global KEEP
        KEEP = client.chat.completions.create(model="chunks-20", stream=True, messages=MESSAGES)
        next(KEEP), next(KEEP), next(KEEP)
        out["before"] = time.time_ns()
        out["after"] = time.time_ns() + 60 * 10**9
    """,
}


# The SDK's Stream has close() and `with` since openai 1.x of early 2024.
HAS_CLOSE = needs("_streaming.Stream.close")
NEEDS_CLOSE = {"break-then-close", "with-block", "everything-once"}


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=[HAS_CLOSE] if c in NEEDS_CLOSE else []) for c in LIFECYCLE]
)
def test_span_ends_with_the_stream(openai_app, case):
    body = "\n".join("    " + line for line in __import__("textwrap").dedent(LIFECYCLE[case]).splitlines())
    app = openai_app(f"""
import gc, json, time, openai
client = openai.OpenAI(max_retries=0)
MESSAGES = [{{"role": "user", "content": "a long answer please"}}]
out = {{"started": time.time_ns()}}
def main():
{body}
main()
print(json.dumps(out))
""")
    t = times(app)
    span = app.one()
    assert_ok(span)
    assert_ends_between(span, t.get("before", t["started"]), t["after"])
    if case in ("break-anonymous", "break-then-close", "abandoned", "open-at-exit", "with-block"):
        # Ended early: the answer so far, and no finish reason (the model did not finish).
        answer = attrs(span).get("output.value", "")
        assert answer and "Echo: a long answer please".startswith(answer) and len(answer) < 20, answer
        assert "gen_ai.response.finish_reasons" not in attrs(span)
    if case == "slow-reader":
        assert span["end_time"] - span["start_time"] >= 0.5e9
        assert attrs(span)["output.value"] == "Echo: a long answer please"


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_stream_open_across_a_fork_is_the_parents(openai_app, receiver):
    # A process forks (a pre-fork server, multiprocessing) while a stream is open: the child
    # leaves it alone and exits normally (its atexit hooks run). The span is the parent's alone:
    # one span, with the whole answer, from the parent's process, and so is the call's duration.
    app = openai_app("""
        import gc, json, os, sys, openai
        client = openai.OpenAI(max_retries=0)
        stream = client.chat.completions.create(
            model="chunks-5", stream=True, messages=[{"role": "user", "content": "a long answer please"}])
        text = next(stream).choices[0].delta.content or ""
        child = os.fork()
        if child == 0:
            gc.collect()
            sys.exit(0)
        os.waitpid(child, 0)
        text += "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        print(json.dumps({"text": text, "pid": os.getpid(), "child": child}))
    """)
    out = json.loads(app.lines()[-1])
    span = app.one()
    assert attrs(span)["output.value"] == out["text"] == "Echo: a long answer please"
    assert attrs(span)["gen_ai.response.finish_reasons"] == ["stop"]
    assert span["resource"]["process.pid"] == out["pid"]
    receiver.wait_for(lambda _: _durations_by_pid(receiver), timeout=10)
    assert _durations_by_pid(receiver) == {out["pid"]: 1}, out


def _durations_by_pid(receiver) -> dict[int, int]:
    """How many calls each process counted in gen_ai.client.operation.duration (its last
    export: the histogram is cumulative)."""
    counts: dict[int, int] = {}
    for request in receiver.metrics:
        for resource in request.get("resourceMetrics", []):
            pid = next(
                int(a["value"]["intValue"])
                for a in resource["resource"]["attributes"]
                if a["key"] == "process.pid"
            )
            for scope in resource.get("scopeMetrics", []):
                for metric in scope.get("metrics", []):
                    if metric["name"] == "gen_ai.client.operation.duration":
                        counts[pid] = sum(int(p["count"]) for p in metric["histogram"]["dataPoints"])
    return counts


@needs("_streaming.AsyncStream.close")
def test_async_stream_left_by_break(openai_app):
    app = openai_app("""
        import asyncio, json, time, openai
        async def main():
            client = openai.AsyncOpenAI(max_retries=0)
            out = {}
            stream = await client.chat.completions.create(model="chunks-20", stream=True,
                                                          messages=[{"role": "user", "content": "async break"}])
            async for chunk in stream:
                break
            await asyncio.sleep(0.3)
            out["before"] = time.time_ns()
            async with stream:
                pass
            out["after"] = time.time_ns()
            print(json.dumps(out))
        asyncio.run(main())
    """)
    t = times(app)
    assert_ends_between(app.one(), t["before"], t["after"])


@HAS_CLOSE
def test_stream_proxy_is_transparent(openai_app):
    app = openai_app("""
        import json, openai
        client = openai.OpenAI(max_retries=0)
        stream = client.chat.completions.create(model="gpt-t", stream=True, messages=[{"role": "user", "content": "t"}])
        out = {
            "isinstance": isinstance(stream, openai.Stream),
            "class": stream.__class__.__name__,
            "status": stream.response.status_code,
            "repr": repr(stream).startswith("<openai.") or repr(stream)[:40],
            "first": next(stream).choices[0].delta.role,
        }
        it = iter(stream)  # an iterator as the SDK's own is: next() on it, iter() of it is it
        out["iterator"] = iter(it) is it and callable(it.close)
        out["second"] = next(it).choices[0].delta.content
        with stream as same:
            out["with_gives_the_stream"] = same is stream
            out["rest"] = "".join(c.choices[0].delta.content or "" for c in same if c.choices)
        print(json.dumps(out))
    """)
    out = times(app)
    assert out == {
        "isinstance": True,
        "class": "Stream",
        "status": 200,
        "repr": True,
        "first": "assistant",
        "iterator": True,
        "second": "Ec",
        "with_gives_the_stream": True,
        "rest": "ho: t",
    }
    assert attrs(app.one())["output.value"] == "Echo: t"


@pytest.mark.skipif(
    not (
        sdk_has("resources.chat.completions.Completions.stream") or sdk_has("resources.beta.chat.completions")
    ),
    reason="the installed openai has no chat.completions.stream helper (GA or beta)",
)
def test_chat_stream_helper(openai_app):
    app = openai_app(
        """
        import json, time, openai
        client = openai.OpenAI(max_retries=0)
        chat = client.chat.completions if hasattr(client.chat.completions, "stream") else client.beta.chat.completions
        out = {}
        with chat.stream(model="chunks-7", messages=[{"role": "user", "content": "helper"}]) as s:
            events = [e.type for e in s]
            out["final"] = s.get_final_completion().choices[0].message.content
        # Left early: the span ends when the with block does.
        with chat.stream(model="chunks-20", messages=[{"role": "user", "content": "early"}]) as s:
            for event in s:
                break
            time.sleep(0.3)
            out["before"] = time.time_ns()
        out["after"] = time.time_ns()
        out["content.delta"] = "content.delta" in events
        print(json.dumps(out))
    """,
        spans=2,
    )
    out = times(app)
    assert out["final"] == "Echo: helper" and out["content.delta"]
    full, early = app.llm()
    assert_llm_span(full, model="chunks-7", stream=True)
    assert attrs(full)["output.value"] == "Echo: helper"
    assert_ends_between(early, out["before"], out["after"])


@needs("resources.responses")
def test_responses_stream(openai_app):
    app = openai_app(
        """
        import json, openai
        client = openai.OpenAI(max_retries=0)
        events = [e.type for e in client.responses.create(model="chunks-3", input="stream resp", stream=True)]
        with client.responses.stream(model="chunks-3", input="helper resp") as s:
            for _ in s:
                pass
            final = s.get_final_response().output_text
        cut = [e.type for e in client.responses.create(model="chunks-3", input="one two three",
                                                       max_output_tokens=2, stream=True)]
        print(json.dumps([events[-1], final, cut[-1]]))
    """,
        spans=3,
    )
    assert json.loads(app.lines()[-1]) == ["response.completed", "Echo: helper resp", "response.incomplete"]
    created, helper, cut = app.llm()
    assert attrs(cut)["gen_ai.response.finish_reasons"] == ["length"]
    assert attrs(cut)["output.value"] == "Echo: one"
    for span, text in ((created, "Echo: stream resp"), (helper, "Echo: helper resp")):
        assert_llm_span(span, model="chunks-3", stream=True)
        a = attrs(span)
        assert a["output.value"] == text
        assert a["gen_ai.usage.output_tokens"] == 3
        assert a["gen_ai.response.finish_reasons"] == ["stop"]
        assert a["gen_ai.response.time_to_first_token"] > 0
        assert a["gen_ai.response.id"].startswith("resp-")


def test_stream_broken_by_the_server(openai_app):
    app = openai_app("""
        import openai
        stream = openai.OpenAI(max_retries=0).chat.completions.create(
            model="truncated-stream", stream=True, messages=[{"role": "user", "content": "cut"}])
        got = []
        try:
            for chunk in stream:
                got.append(chunk)
        except Exception as exc:
            print(type(exc).__module__ + "." + type(exc).__qualname__)
    """)
    raised = app.lines()[-1]
    span = app.one()
    assert_failed(span, raised, "")
    assert text_parts(content(span, "gen_ai.output.messages")[0]).startswith("Ech")


def test_stream_stalling_server(openai_app):
    app = openai_app("""
        import openai, time
        client = openai.OpenAI(max_retries=0, timeout=1.0)
        stream = client.chat.completions.create(model="stall-stream", stream=True,
                                                messages=[{"role": "user", "content": "stall"}])
        try:
            for chunk in stream:
                pass
        except Exception as exc:
            print(type(exc).__module__ + "." + type(exc).__qualname__)
    """)
    raised = app.lines()[-1]
    assert "Timeout" in raised
    assert_failed(app.one(), raised, "")
