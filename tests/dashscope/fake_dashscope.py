"""A local fake DashScope server speaking the service's HTTP and SSE protocol, on 127.0.0.1.

Paths as the SDK builds them below its base URL (``.../api/v1``):
``services/aigc/text-generation/generation``, ``services/aigc/multimodal-generation/generation``,
``services/embeddings/text-embedding/text-embedding``,
``services/embeddings/multimodal-embedding/multimodal-embedding``,
``services/rerank/text-rerank/text-rerank`` and ``apps/{app_id}/completion`` (the async
classes of the SDK send the same requests, over aiohttp).
A request with the header ``X-DashScope-SSE: enable`` gets a server-sent event stream
(``id:``, ``event:result``, ``:HTTP_STATUS/200``, ``data:{json}``), with deltas when the request's
``parameters.incremental_output`` is true and the full answer so far otherwise.

The model name picks a behaviour: ``qwen-bad`` answers HTTP 400 with ``code``/``message``;
``qwen-midstream-error`` streams one chunk then an ``event:error``; ``qwen-drop`` streams one
chunk in a chunked response and then closes the connection without ending the body (a server
or proxy dying mid-stream). Every request is kept
(path, headers, JSON body) for the tests to assert on what the SDK sent.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PIECES = ["Hello", " from", " Qwen"]
ANSWER = "".join(PIECES)
TOOL_ARGUMENTS = '{"city": "Hangzhou"}'
USAGE = {"input_tokens": 11, "output_tokens": 3, "total_tokens": 14}
MULTIMODAL_DIMENSION = 6  # the vector length when the request names no dimension
TEXT_DIMENSION = 8  # a text embedding's, likewise (and always, for text-embedding-v1 and v2)


def _generation_output(text: str, finish: str, result_format: str | None) -> dict:
    if result_format == "message":
        return {"choices": [{"finish_reason": finish, "message": {"role": "assistant", "content": text}}]}
    return {"text": text, "finish_reason": finish}


class FakeDashScope:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v1"

    def start(self) -> FakeDashScope:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)


def _handler(fake: FakeDashScope):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _json(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            fake.record({"path": self.path, "headers": dict(self.headers), "body": body})
            model = body.get("model")
            request_id = f"req-{len(fake.requests)}"
            if model == "qwen-bad":
                self._json(
                    400,
                    {
                        "code": "InvalidParameter",
                        "message": "Range of top_p should be (0.0, 1.0]",
                        "request_id": request_id,
                    },
                )
                return
            if self.path.endswith("text-embedding/text-embedding"):
                texts = body.get("input", {}).get("texts", [])
                # v3 and later take the dimension asked for; v1 and v2 have one, fixed.
                asked = body.get("parameters", {}).get("dimension")
                fixed = model in ("text-embedding-v1", "text-embedding-v2")
                dimension = asked if asked and not fixed else TEXT_DIMENSION
                embeddings = [{"text_index": i, "embedding": [0.25] * dimension} for i in range(len(texts))]
                self._json(
                    200,
                    {
                        "output": {"embeddings": embeddings},
                        "usage": {"total_tokens": 5},
                        "request_id": request_id,
                    },
                )
                return
            if self.path.endswith("multimodal-embedding/multimodal-embedding"):
                self._multimodal_embedding(request_id, body)
                return
            if self.path.endswith("text-rerank/text-rerank"):
                documents = body["input"]["documents"]
                # Rank by length, longest first: a deterministic order the tests can predict.
                order = sorted(range(len(documents)), key=lambda i: -len(documents[i]))
                top_n = body.get("parameters", {}).get("top_n") or len(documents)
                results = [
                    {"index": i, "relevance_score": round(1.0 - rank / 10, 2)} for rank, i in enumerate(order)
                ]
                if body.get("parameters", {}).get("return_documents"):
                    for result in results:
                        result["document"] = {"text": documents[result["index"]]}
                self._json(
                    200,
                    {
                        "output": {"results": results[:top_n]},
                        "usage": {"total_tokens": 9},
                        "request_id": request_id,
                    },
                )
                return
            if "/apps/" in self.path and self.path.endswith("/completion"):
                session = body["input"].get("session_id") or "sess-new"
                if self.headers.get("X-DashScope-SSE") == "enable":
                    self._sse(
                        [
                            {
                                "output": {"text": text, "finish_reason": finish, "session_id": session},
                                "usage": {
                                    "models": [
                                        {"model_id": "qwen-plus", "input_tokens": 4, "output_tokens": 3}
                                    ]
                                },
                                "request_id": request_id,
                            }
                            for text, finish in (("Hello", "null"), (ANSWER, "stop"))
                        ]
                    )
                    return
                self._json(
                    200,
                    {
                        "output": {"text": ANSWER, "finish_reason": "stop", "session_id": session},
                        "usage": {
                            "models": [{"model_id": "qwen-plus", "input_tokens": 4, "output_tokens": 3}]
                        },
                        "request_id": request_id,
                    },
                )
                return
            if self.path.endswith("multimodal-generation/generation"):
                message = {"role": "assistant", "content": [{"text": ANSWER}]}
                self._json(
                    200,
                    {
                        "output": {"choices": [{"finish_reason": "stop", "message": message}]},
                        "usage": {"input_tokens": 20, "output_tokens": 3, "image_tokens": 16},
                        "request_id": request_id,
                    },
                )
                return
            if not self.path.endswith("text-generation/generation"):
                self._json(404, {"code": "NotFound", "message": self.path, "request_id": request_id})
                return
            parameters = body.get("parameters", {})
            result_format = parameters.get("result_format")
            if model == "qwen-tools":
                self._tools(request_id, parameters)
                return
            if self.headers.get("X-DashScope-SSE") != "enable":
                self._json(
                    200,
                    {
                        "output": _generation_output(ANSWER, "stop", result_format),
                        "usage": USAGE,
                        "request_id": request_id,
                    },
                )
                return
            if model == "qwen-drop":
                self._drop(request_id, parameters, result_format)
                return
            self._stream(request_id, parameters, result_format, model)

        def _multimodal_embedding(self, request_id: str, body: dict) -> None:
            # One vector per content item, tagged with its modality, as the service answers; the
            # usage counts text tokens and images (and seconds of video).
            contents = body["input"]["contents"]
            dimension = body.get("parameters", {}).get("dimension") or MULTIMODAL_DIMENSION
            embeddings = []
            for i, item in enumerate(contents):
                modality = next((k for k in ("text", "image", "video", "audio") if k in item), "text")
                embeddings.append({"index": i, "embedding": [0.5] * dimension, "type": modality})
            usage = {
                "input_tokens": sum(len(item.get("text", "").split()) for item in contents),
                "image_count": sum(1 for item in contents if "image" in item),
                "duration": 0,
            }
            self._json(200, {"output": {"embeddings": embeddings}, "usage": usage, "request_id": request_id})

        def _sse(self, chunks: list) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream;charset=UTF-8")
            self.send_header("Connection", "close")
            self.end_headers()
            for i, chunk in enumerate(chunks):
                self.wfile.write(
                    f"id:{i + 1}\nevent:result\n:HTTP_STATUS/200\ndata:{json.dumps(chunk)}\n\n".encode()
                )
                self.wfile.flush()
            self.close_connection = True

        def _tools(self, request_id: str, parameters: dict) -> None:
            # A tool call: whole, or streamed as deltas (id and name first, the arguments in two
            # pieces) or as the full call so far.
            def message(arguments: str) -> dict:
                call = {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": arguments},
                }
                return {"role": "assistant", "content": "", "tool_calls": [call]}

            def chunk(arguments: str, finish: str) -> dict:
                return {
                    "output": {"choices": [{"finish_reason": finish, "message": message(arguments)}]},
                    "usage": USAGE,
                    "request_id": request_id,
                }

            if self.headers.get("X-DashScope-SSE") != "enable":
                self._json(200, chunk(TOOL_ARGUMENTS, "tool_calls"))
            elif parameters.get("incremental_output"):
                half = len(TOOL_ARGUMENTS) // 2
                first = chunk(TOOL_ARGUMENTS[:half], "null")
                second = chunk(TOOL_ARGUMENTS[half:], "tool_calls")
                del second["output"]["choices"][0]["message"]["tool_calls"][0]["id"]
                second["output"]["choices"][0]["message"]["tool_calls"][0]["function"].pop("name")
                self._sse([first, second])
            else:
                half = len(TOOL_ARGUMENTS) // 2
                self._sse([chunk(TOOL_ARGUMENTS[:half], "null"), chunk(TOOL_ARGUMENTS, "tool_calls")])

        def _drop(self, request_id: str, parameters: dict, result_format: str | None) -> None:
            # The first event as one HTTP chunk, then the socket closed with no terminating
            # zero-length chunk: the client sees the body end before its end.
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream;charset=UTF-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = {
                "output": _generation_output(PIECES[0], "null", result_format),
                "usage": {"input_tokens": 11, "output_tokens": 1, "total_tokens": 12},
                "request_id": request_id,
            }
            event = f"id:1\nevent:result\n:HTTP_STATUS/200\ndata:{json.dumps(chunk)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

        def _stream(self, request_id: str, parameters: dict, result_format: str | None, model: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream;charset=UTF-8")
            self.send_header("Connection", "close")
            self.end_headers()
            incremental = bool(parameters.get("incremental_output"))
            so_far = ""
            for i, piece in enumerate(PIECES):
                so_far += piece
                last = i == len(PIECES) - 1
                text = piece if incremental else so_far
                usage = {"input_tokens": 11, "output_tokens": i + 1, "total_tokens": 12 + i}
                chunk = {
                    "output": _generation_output(text, "stop" if last else "null", result_format),
                    "usage": usage,
                    "request_id": request_id,
                }
                event = f"id:{i + 1}\nevent:result\n:HTTP_STATUS/200\ndata:{json.dumps(chunk)}\n\n"
                self.wfile.write(event.encode())
                self.wfile.flush()
                if model == "qwen-midstream-error":
                    error = {
                        "code": "DataInspectionFailed",
                        "message": "inappropriate content",
                        "request_id": request_id,
                    }
                    self.wfile.write(
                        f"id:2\nevent:error\n:HTTP_STATUS/400\ndata:{json.dumps(error)}\n\n".encode()
                    )
                    break
            self.close_connection = True

    return Handler


if __name__ == "__main__":
    # Serve on a fixed port for running examples/dashscope_app.py by hand, offline:
    #   python tests/dashscope/fake_dashscope.py 8765 &
    #   DASHSCOPE_HTTP_BASE_URL=http://127.0.0.1:8765/api/v1 DASHSCOPE_API_KEY=x instrument python examples/dashscope_app.py
    import sys

    fake = FakeDashScope.__new__(FakeDashScope)
    fake.requests, fake._lock = [], threading.Lock()
    fake._server = ThreadingHTTPServer(
        ("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8765), _handler(fake)
    )
    print(f"fake DashScope at {fake.base_url}", flush=True)
    fake._server.serve_forever()
