"""A local stand-in for Dify's plugin daemon (PLUGIN_DAEMON_URL), through which Dify reaches every
model: it lists the langgenius/openai plugin's provider and its model gpt-4o-mini, accepts the API
key, and answers every chat with "Paris is the capital." in four streamed chunks (9 prompt and 4
completion tokens), printing the traceparent each model call carried. When offered the built-in
tool `weekday` (an agent), it first asks for it, once. Used by dify_api_apps.py and
dify_api_workflows.py, in their own process (serve())."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

PROVIDER = "langgenius/openai/openai"
MODEL = "gpt-4o-mini"
API_KEY = "sk-secret"
WORDS = ["Paris ", "is ", "the ", "capital."]
USAGE = {
    "prompt_tokens": 9,
    "prompt_unit_price": 0,
    "prompt_price_unit": 0,
    "prompt_price": 0,
    "completion_tokens": 4,
    "completion_unit_price": 0,
    "completion_price_unit": 0,
    "completion_price": 0,
    "total_tokens": 13,
    "total_price": 0,
    "currency": "USD",
    "latency": 0.1,
}

# The model and the provider as the langgenius/openai plugin declares them (the part Dify reads).
MODEL_SCHEMA = {
    "model": MODEL,
    "label": {"en_US": MODEL},
    "model_type": "llm",
    "features": ["multi-tool-call", "agent-thought", "stream-tool-call", "tool-call"],
    "fetch_from": "predefined-model",
    "model_properties": {"mode": "chat", "context_size": 128000},
    "parameter_rules": [
        {
            "name": "temperature",
            "use_template": "temperature",
            "label": {"en_US": "Temperature"},
            "type": "float",
            "default": 1,
            "min": 0,
            "max": 2,
        },
        {
            "name": "max_tokens",
            "use_template": "max_tokens",
            "label": {"en_US": "Max Tokens"},
            "type": "int",
            "default": 512,
            "min": 1,
            "max": 16384,
        },
    ],
    "pricing": {"input": "0.15", "output": "0.6", "unit": "0.000001", "currency": "USD"},
}
PROVIDER_DECLARATION = {
    "provider": "openai",
    "label": {"en_US": "OpenAI"},
    "supported_model_types": ["llm"],
    "configurate_methods": ["predefined-model"],
    "provider_credential_schema": {
        "credential_form_schemas": [
            {
                "variable": "openai_api_key",
                "label": {"en_US": "API Key"},
                "type": "secret-input",
                "required": True,
            }
        ]
    },
    "models": [MODEL_SCHEMA],
}
CALLED: set[str] = set()  # the daemon's endpoints Dify called, tenant left out


class PluginDaemon(BaseHTTPRequestHandler):
    """The endpoints of Dify's plugin daemon that Dify calls to list, configure and invoke a model."""

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        path = urlsplit(self.path).path
        parts = path.strip("/").split("/")  # plugin/{tenant}/{endpoint...}
        tenant, endpoint = parts[1], "/".join(parts[2:])
        CALLED.add(f"{method} /plugin/{{tenant}}/{endpoint}")
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if endpoint == "management/models":
            self._json({"code": 0, "message": "", "data": [provider(tenant)]})
        elif endpoint in (
            "dispatch/model/validate_provider_credentials",
            "dispatch/model/validate_model_credentials",
        ):
            self._stream([{"result": True, "credentials": None}])
        elif endpoint == "dispatch/model/schema":
            self._stream([{"model_schema": MODEL_SCHEMA}])
        elif endpoint == "dispatch/llm/num_tokens":
            self._stream([{"num_tokens": USAGE["prompt_tokens"]}])
        elif endpoint == "dispatch/llm/invoke":
            print(f"traceparent {path}: {self.headers.get('traceparent')}", flush=True)
            self._stream(chat_chunks(body["data"]))
        else:
            print(f"plugin daemon: no answer for {method} {path}", file=sys.stderr, flush=True)
            self._send(404, json.dumps({"code": -404, "message": "not found"}).encode(), "application/json")

    def _json(self, payload: dict) -> None:
        self._send(200, json.dumps(payload).encode(), "application/json")

    def _stream(self, items: list[dict]) -> None:
        lines = [
            b"data: " + json.dumps({"code": 0, "message": "", "data": item}).encode() + b"\n\n"
            for item in items
        ]
        self._send(200, b"".join(lines), "text/event-stream")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def provider(tenant: str) -> dict:
    return {
        "id": "p-openai",
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:00Z",
        "provider": "openai",
        "tenant_id": tenant,
        "plugin_unique_identifier": "langgenius/openai:0.2.7@0000",
        "plugin_id": "langgenius/openai",
        "declaration": PROVIDER_DECLARATION,
    }


def chat_chunks(request: dict) -> list[dict]:
    """The answer: a call of the tool `weekday` when it is offered and not yet called, else
    "Paris is the capital." in four chunks (in one when not streamed: the daemon sends an unstreamed
    answer whole, and Dify reads only its first chunk), the last with the finish reason and usage."""
    tools = [tool["name"] for tool in request.get("tools") or []]
    called = any(message.get("role") == "tool" for message in request.get("prompt_messages") or [])
    if "weekday" in tools and not called:
        call = {
            "id": "call-1",
            "type": "function",
            "function": {"name": "weekday", "arguments": '{"year": 2025, "month": 7, "day": 14}'},
        }
        message = {"role": "assistant", "content": "", "tool_calls": [call]}
        return [_chunk({"index": 0, "message": message, "finish_reason": "tool_calls", "usage": USAGE})]
    words = WORDS if request.get("stream", True) else ["".join(WORDS)]  # unstreamed: all in one
    chunks = []
    for i, word in enumerate(words):
        delta = {"index": i, "message": {"role": "assistant", "content": word}}
        if i == len(words) - 1:
            delta.update(finish_reason="stop", usage=USAGE)
        chunks.append(_chunk(delta))
    return chunks


def _chunk(delta: dict) -> dict:
    return {"model": MODEL, "prompt_messages": [], "delta": delta}


def serve(handler: type[BaseHTTPRequestHandler] | None = None) -> str:
    """Serve `handler` (the daemon, or a class extending it) on a free local port, in a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler or PluginDaemon)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"
