"""A local OpenAI-compatible server speaking the real wire protocol, for the openai tests and
the example app: JSON answers, SSE streams (chunked transfer encoding, as api.openai.com sends
them) for chat completions, text completions and the Responses API, embeddings (float and
base64), error answers and stalls.

What it answers is decided by the request, as a real server's answer is:

- the answer text is ``Echo: <the last user text>``, so every answer says which request it
  answers; the response model is the requested model with ``-2024-07-18`` appended;
- a stream carries a usage chunk only when the request asked for it
  (``stream_options.include_usage``), as OpenAI's does;
- a Responses API answer longer than the request's ``max_output_tokens`` (in words) is cut
  there and comes back ``incomplete`` (reason ``max_output_tokens``), as OpenAI's does;
- a request with ``tools`` gets tool calls (two parallel calls; streamed as deltas: id and name
  first, the arguments in pieces) unless its last message is a tool result; one with the legacy
  ``functions`` gets one ``function_call`` (finish reason ``function_call``) when not streamed;
- the model name picks the special cases: ``error-400`` / ``error-429`` / ``error-500`` (an
  OpenAI error body; 429 and 500 with ``retry-after-ms: 1``), ``stall`` (no answer for
  STALL_SECONDS), ``stall-stream`` (two chunks, then silence), ``chunks-N`` (N content chunks),
  ``refuse`` (a refusal instead of content), ``usage-with-finish`` (the usage comes in the
  chunk with the finish reason, not in a chunk of its own), ``finish-in-text`` (the last text
  chunk carries the finish reason "length" and the usage, and nothing follows it), ``truncated-stream`` (the connection closes in the
  middle of the stream).

Every request is recorded (path, headers, parsed body). Run on its own for the example app:
``python tests/openai/fake_openai.py --port 8011``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

CREATED = 1_732_600_000
STALL_SECONDS = 5.0
DEFAULT_CHUNKS = 5
EMBEDDING_DIMENSIONS = 8


def _id(prefix: str, body: Any) -> str:
    digest = hashlib.sha1(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:20]
    return f"{prefix}-{digest}"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _last_user_text(messages: list) -> str:
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _pieces(text: str, n: int) -> list[str]:
    """`text` in n non-empty pieces (fewer when it is shorter), joined back to `text`."""
    n = max(1, min(n, len(text))) if text else 1
    size, extra = divmod(len(text), n)
    out, at = [], 0
    for i in range(n):
        step = size + (1 if i < extra else 0)
        out.append(text[at : at + step])
        at += step
    return out


def _chunk_count(model: str) -> int:
    match = re.fullmatch(r"chunks-(\d+)", model or "")
    return int(match.group(1)) if match else DEFAULT_CHUNKS


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def _usage(prompt: int, completion: int) -> dict:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 2, "audio_tokens": 0},
    }


TOOL_CALLS = [
    {"id": "call_weather_1", "name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'},
    {"id": "call_time_2", "name": "get_time", "arguments": '{"timezone": "Europe/Paris"}'},
]


class FakeOpenAI:
    """The server: start(), .base_url, .requests, stop()."""

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._release = threading.Event()
        self._server = _Server(("127.0.0.1", port), self)
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._requests]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(entry)

    def stall(self, seconds: float) -> None:
        self._release.wait(seconds)

    def start(self) -> FakeOpenAI:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512  # two hundred concurrent clients connect at once

    def __init__(self, address: tuple[str, int], fake: FakeOpenAI) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # a client going away is not news


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # ---- plumbing ----------------------------------------------------------------------------
    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", _id("req", body))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _event(self, payload: Any, event: str | None = None) -> None:
        text = (f"event: {event}\n" if event else "") + f"data: {json.dumps(payload)}\n\n"
        self._chunk(text.encode())

    def _end_sse(self, done: bool = True) -> None:
        # The last event and the end of the chunked body in one write, so that a client that
        # stops reading at [DONE] still finds the body complete and can reuse the connection.
        last = b"data: [DONE]\n\n" if done else b""
        tail = (f"{len(last):x}\r\n".encode() + last + b"\r\n" if last else b"") + b"0\r\n\r\n"
        self.wfile.write(tail)
        self.wfile.flush()

    def _error(self, status: int, message: str, kind: str, code: str | None) -> None:
        headers = {"retry-after-ms": "1"} if status in (429, 500) else {}
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        self._send_json(status, body, headers)

    # ---- requests ----------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path if self.path.startswith("http") else self.path.split("?")[0]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send_json(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
            return
        self.server.fake.record(
            {
                "path": path,
                "target": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
                "raw": raw,
                "time": time.time(),
            }
        )
        model = body.get("model") or ""
        if model == "error-400":
            self._error(
                400, "Invalid value for 'temperature': must be at most 2.", "invalid_request_error", "bad"
            )
            return
        if model == "error-429":
            self._error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded")
            return
        if model == "error-500":
            self._error(500, "The server had an error while processing your request.", "server_error", None)
            return
        if model == "stall":
            self.server.fake.stall(STALL_SECONDS)
        route = {
            "/v1/chat/completions": self._chat,
            "/v1/completions": self._completion,
            "/v1/embeddings": self._embeddings,
            "/v1/responses": self._responses,
        }.get(path.rstrip("/").replace("/compatible-mode", ""))
        if route is None:
            self._send_json(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}})
            return
        route(body, model)

    # ---- chat completions --------------------------------------------------------------------
    def _chat(self, body: dict, model: str) -> None:
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        wants_tools = bool(body.get("tools") or body.get("functions")) and last.get("role") not in (
            "tool",
            "function",
        )
        answer = "Echo: " + _last_user_text(messages)
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
        if schema:  # structured output: an object with every string property set to the echo
            answer = json.dumps(
                {k: answer for k, v in (schema.get("properties") or {}).items() if v.get("type") == "string"}
            )
        if messages and last.get("role") == "tool":
            answer = "The tool said: " + _text_of(last.get("content"))
        n = body.get("n") or 1
        response_model = model + "-2024-07-18"
        chat_id = _id("chatcmpl", body)
        prompt_tokens = sum(_tokens(_text_of(m.get("content"))) for m in messages if isinstance(m, dict))
        if not body.get("stream"):
            choices = []
            for i in range(n):
                message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
                if wants_tools and not body.get("tools"):
                    # Legacy function calling: one function_call, finish reason "function_call".
                    call = TOOL_CALLS[0]
                    message["function_call"] = {"name": call["name"], "arguments": call["arguments"]}
                    finish = "function_call"
                elif wants_tools:
                    message["tool_calls"] = [
                        {
                            "id": t["id"],
                            "type": "function",
                            "function": {"name": t["name"], "arguments": t["arguments"]},
                        }
                        for t in TOOL_CALLS
                    ]
                    finish = "tool_calls"
                elif model == "refuse":
                    message["refusal"] = "I can't help with that."
                    finish = "stop"
                else:
                    message["content"] = answer if n == 1 else f"{answer} (choice {i})"
                    finish = "length" if body.get("max_tokens") == 1 else "stop"
                choices.append({"index": i, "message": message, "logprobs": None, "finish_reason": finish})
            self._send_json(
                200,
                {
                    "id": chat_id,
                    "object": "chat.completion",
                    "created": CREATED,
                    "model": response_model,
                    "choices": choices,
                    "usage": _usage(prompt_tokens, _tokens(answer) * n),
                    "service_tier": "default",
                    "system_fingerprint": "fp_fake",
                },
            )
            return
        base = {
            "id": chat_id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": response_model,
            "system_fingerprint": "fp_fake",
        }
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if include_usage:
            base["usage"] = None
        self._start_sse()
        for i in range(n):
            self._event(
                dict(
                    base,
                    choices=[
                        {
                            "index": i,
                            "delta": {"role": "assistant", "content": ""},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ],
                )
            )
        if wants_tools:
            for position, tool in enumerate(TOOL_CALLS):
                first = {
                    "index": position,
                    "id": tool["id"],
                    "type": "function",
                    "function": {"name": tool["name"], "arguments": ""},
                }
                self._event(
                    dict(
                        base,
                        choices=[
                            {
                                "index": 0,
                                "delta": {"tool_calls": [first]},
                                "logprobs": None,
                                "finish_reason": None,
                            }
                        ],
                    )
                )
                for piece in _pieces(tool["arguments"], 3):
                    delta = {"tool_calls": [{"index": position, "function": {"arguments": piece}}]}
                    self._event(
                        dict(
                            base,
                            choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
                        )
                    )
            finishes = ["tool_calls"] * n
        else:
            key = "refusal" if model == "refuse" else "content"
            text = "I can't help with that." if model == "refuse" else answer
            pieces = _pieces(text, _chunk_count(model))
            for number, piece in enumerate(pieces):
                # finish-in-text: the last text chunk is also the end (its finish reason and the
                # usage), with nothing after it.
                last = model == "finish-in-text" and number == len(pieces) - 1
                for i in range(n):
                    choice = {"index": i, "delta": {key: piece}, "logprobs": None, "finish_reason": None}
                    event = dict(base, choices=[choice])
                    if last:
                        choice["finish_reason"] = "length"
                        event["usage"] = _usage(prompt_tokens, _tokens(answer) * n)
                    self._event(event)
                if last:
                    self._end_sse()
                    return
                if model == "stall-stream" and number == 1:
                    self.server.fake.stall(STALL_SECONDS)
                    return
                if model == "truncated-stream" and number == 1:
                    self.close_connection = True
                    self.wfile.flush()
                    return  # the body ends without its last chunk: the client sees a broken stream
            finishes = ["stop"] * n
        final_usage = _usage(prompt_tokens, _tokens(answer) * n)
        for i in range(n):
            finish = dict(
                base, choices=[{"index": i, "delta": {}, "logprobs": None, "finish_reason": finishes[i]}]
            )
            if model == "usage-with-finish":
                finish["usage"] = final_usage  # as vLLM and DashScope's compatible mode send it
            self._event(finish)
        if include_usage and model != "usage-with-finish":
            self._event(dict(base, choices=[], usage=final_usage))
        self._end_sse()

    # ---- legacy text completions -------------------------------------------------------------
    def _completion(self, body: dict, model: str) -> None:
        prompt = body.get("prompt")
        prompt_text = (
            prompt if isinstance(prompt, str) else " ".join(p for p in prompt or [] if isinstance(p, str))
        )
        answer = " and then it said: " + prompt_text
        response_model = model + "-2024-07-18"
        completion_id = _id("cmpl", body)
        usage = {
            "prompt_tokens": _tokens(prompt_text),
            "completion_tokens": _tokens(answer),
            "total_tokens": _tokens(prompt_text) + _tokens(answer),
        }
        if not body.get("stream"):
            self._send_json(
                200,
                {
                    "id": completion_id,
                    "object": "text_completion",
                    "created": CREATED,
                    "model": response_model,
                    "choices": [{"index": 0, "text": answer, "logprobs": None, "finish_reason": "stop"}],
                    "usage": usage,
                },
            )
            return
        base = {"id": completion_id, "object": "text_completion", "created": CREATED, "model": response_model}
        self._start_sse()
        for piece in _pieces(answer, _chunk_count(model)):
            self._event(
                dict(base, choices=[{"index": 0, "text": piece, "logprobs": None, "finish_reason": None}])
            )
        self._event(dict(base, choices=[{"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}]))
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event(dict(base, choices=[], usage=usage))
        self._end_sse()

    # ---- embeddings --------------------------------------------------------------------------
    def _embeddings(self, body: dict, model: str) -> None:
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        dimensions = body.get("dimensions") or EMBEDDING_DIMENSIONS
        data = []
        for index, text in enumerate(texts):
            seed = hashlib.sha1(str(text).encode()).digest()
            vector = [round((seed[i % len(seed)] - 128) / 128.0, 4) for i in range(dimensions)]
            if body.get("encoding_format") == "base64":
                embedding: Any = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            else:
                embedding = vector
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(_tokens(str(t)) for t in texts)
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": model + "-v1",
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    # ---- the Responses API -------------------------------------------------------------------
    def _responses(self, body: dict, model: str) -> None:
        value = body.get("input")
        if isinstance(value, str):
            user_text = value
        else:
            user_text = ""
            for item in value or []:
                if isinstance(item, dict) and item.get("role") == "user":
                    user_text = (
                        _text_of(item.get("content"))
                        if not isinstance(item.get("content"), list)
                        else "".join(p.get("text", "") for p in item["content"] if isinstance(p, dict))
                    )
        answer = "Echo: " + user_text
        response_id = _id("resp", body)
        message_id = _id("msg", body)
        wants_tools = bool(body.get("tools")) and not any(
            isinstance(i, dict) and i.get("type") == "function_call_output"
            for i in (value if isinstance(value, list) else [])
        )
        # A text answer longer than max_output_tokens words is cut there and "incomplete".
        limit = body.get("max_output_tokens")
        incomplete = not wants_tools and isinstance(limit, int) and _tokens(answer) > limit
        if incomplete:
            answer = " ".join(answer.split()[:limit])
        if wants_tools:
            output = [
                {
                    "type": "function_call",
                    "id": "fc_" + t["id"],
                    "call_id": t["id"],
                    "name": t["name"],
                    "arguments": t["arguments"],
                    "status": "completed",
                }
                for t in TOOL_CALLS
            ]
        else:
            output = [
                {
                    "type": "message",
                    "id": message_id,
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": answer, "annotations": []}],
                }
            ]
        usage = {
            "input_tokens": _tokens(user_text),
            "output_tokens": _tokens(answer),
            "total_tokens": _tokens(user_text) + _tokens(answer),
            "input_tokens_details": {"cached_tokens": 1},
            "output_tokens_details": {"reasoning_tokens": 4},
        }
        response = {
            "id": response_id,
            "object": "response",
            "created_at": CREATED,
            "status": "incomplete" if incomplete else "completed",
            "model": model + "-2024-07-18",
            "output": output,
            "usage": usage,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "instructions": body.get("instructions"),
            "metadata": {},
            "parallel_tool_calls": True,
            "temperature": body.get("temperature", 1.0),
            "tool_choice": "auto",
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "text": {"format": {"type": "text"}},
        }
        if not body.get("stream"):
            self._send_json(200, response)
            return
        sequence = iter(range(1_000_000))

        def send(kind: str, **fields: Any) -> None:
            self._event(dict(fields, type=kind, sequence_number=next(sequence)), event=kind)

        in_progress = dict(response, status="in_progress", output=[], usage=None)
        self._start_sse()
        send("response.created", response=in_progress)
        send("response.in_progress", response=in_progress)
        if wants_tools:
            for index, item in enumerate(output):
                send(
                    "response.output_item.added",
                    output_index=index,
                    item=dict(item, arguments="", status="in_progress"),
                )
                for piece in _pieces(item["arguments"], 3):
                    send(
                        "response.function_call_arguments.delta",
                        item_id=item["id"],
                        output_index=index,
                        delta=piece,
                    )
                send(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    arguments=item["arguments"],
                )
                send("response.output_item.done", output_index=index, item=item)
        else:
            item = output[0]
            send(
                "response.output_item.added",
                output_index=0,
                item=dict(item, status="in_progress", content=[]),
            )
            send(
                "response.content_part.added",
                item_id=message_id,
                output_index=0,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": []},
            )
            for piece in _pieces(answer, _chunk_count(model)):
                send(
                    "response.output_text.delta",
                    item_id=message_id,
                    output_index=0,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
            send(
                "response.output_text.done",
                item_id=message_id,
                output_index=0,
                content_index=0,
                text=answer,
                logprobs=[],
            )
            send(
                "response.content_part.done",
                item_id=message_id,
                output_index=0,
                content_index=0,
                part=item["content"][0],
            )
            send("response.output_item.done", output_index=0, item=item)
        send("response.incomplete" if incomplete else "response.completed", response=response)
        self._end_sse(done=False)


def main() -> None:
    parser = argparse.ArgumentParser(description="A local OpenAI-compatible server (for tests and examples).")
    parser.add_argument("--port", type=int, default=8011)
    args = parser.parse_args()
    server = FakeOpenAI(args.port).start()
    print(f"fake OpenAI API on {server.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
