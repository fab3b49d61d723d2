"""How the core reads a chat stream's chunks as they pass: each field is read where it was in
the previous chunk, so a stream whose chunks change shape (fields in another order, extra
fields, keys that are equal strings but not the same objects) must still give its whole answer.
The chunks here are the OpenAI wire format as plain dicts, fed to the collector a stream proxy
uses; the span is checked at the receiver."""

from __future__ import annotations

import json

from span_query import one


def test_chunks_that_change_shape_give_the_whole_answer(run, receiver, write_script):
    write_script(
        "chunks.py",
        """
        from opentelemetry import trace
        from llmprobe import _core

        def key(name):
            return "".join(list(name))  # equal to the field name, not the interned string

        def chunk(content, order=0, finish=None, role=None):
            delta = {"content": content, "tool_calls": None}
            if role:
                delta["role"] = role
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            if order == 1:  # the same fields, the other way round, and one more
                delta = {"tool_calls": None, "refusal": None, "content": content}
                choice = {"finish_reason": finish, "logprobs": None, "delta": delta, "index": 0}
            if order == 2:  # keys that are equal to the field names, not the same objects
                delta = {key("content"): content, key("tool_calls"): None}
                choice = {key("index"): 0, key("delta"): delta, key("finish_reason"): finish}
            return {"id": "c1", "model": "m", "choices": [choice]}

        collector = _core.ChunkCollector("chat")
        chunks = [chunk("", role="assistant")]
        chunks += [chunk(w, order) for order, words in enumerate(["a b ", "c d ", "e f "]) for w in words.split(" ") if w]
        chunks += [chunk("g", 0), chunk("h", 1), chunk("i", 2), chunk("!", 0, finish="stop")]
        for n, c in enumerate(chunks):
            collector.add(c, n)
        with trace.get_tracer("t").start_as_current_span("stream") as span:
            collector.write_answer(span, True)
    """,
    )
    run(["python", "chunks.py"], receiver=receiver).check()
    attributes = one(receiver.wait_for(1), "stream")["attributes"]
    assert attributes["output.value"] == "abcdefghi!"
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    [message] = json.loads(attributes["gen_ai.output.messages"])
    assert message["role"] == "assistant" and message["finish_reason"] == "stop"
