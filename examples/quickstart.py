"""A tiny retrieval-augmented "assistant", runnable offline, to see llmprobe at work.

    instrument python examples/quickstart.py

It starts a stand-in model server on 127.0.0.1 (an OpenAI-style /v1/chat/completions
endpoint, answered locally), then answers two questions: each is a chain that retrieves
documents and calls the model. The spans are made with the plain OpenTelemetry API, as any
application or library does; llmprobe carries them. With no collector configured the traces
are printed on stderr as trees; set OTEL_EXPORTER_OTLP_ENDPOINT to send them to one instead.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import trace

tracer = trace.get_tracer("quickstart")

DOCUMENTS = [
    {"id": "doc-1", "content": "llmprobe exports spans over OTLP from a Rust thread."},
    {"id": "doc-2", "content": "Set OTEL_EXPORTER_OTLP_ENDPOINT to reach a collector."},
    {"id": "doc-3", "content": "Content capture is on unless turned off."},
]


class ModelServer(BaseHTTPRequestHandler):
    """Answers like an OpenAI-compatible chat endpoint."""

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        question = request["messages"][-1]["content"]
        body = json.dumps(
            {
                "id": "chatcmpl-local-1",
                "object": "chat.completion",
                "model": request["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": f"You asked: {question!r}."},
                    }
                ],
                "usage": {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def retrieve(question: str) -> list[dict]:
    with tracer.start_as_current_span("retrieval docs") as span:
        span.set_attributes(
            {
                "gen_ai.span.kind": "RETRIEVER",
                "gen_ai.operation.name": "retrieval",
                "gen_ai.retrieval.query.text": question,
                "input.value": question,
            }
        )
        words = set(question.lower().split())
        hits = [d for d in DOCUMENTS if words & set(d["content"].lower().split())]
        span.set_attribute("retrieval.documents", json.dumps([{"document": d} for d in hits]))
        return hits


def chat(base_url: str, model: str, messages: list[dict]) -> str:
    with tracer.start_as_current_span(f"chat {model}", kind=trace.SpanKind.CLIENT) as span:
        span.set_attributes(
            {
                "gen_ai.span.kind": "LLM",
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "input.value": json.dumps(messages),
                "input.mime_type": "application/json",
            }
        )
        req = urllib.request.Request(
            f"{base_url}/v1/chat/completions",
            data=json.dumps({"model": model, "messages": messages}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as resp:
            answer = json.load(resp)
        span.set_attributes(
            {
                "gen_ai.response.id": answer["id"],
                "gen_ai.response.model": answer["model"],
                "gen_ai.response.finish_reasons": [c["finish_reason"] for c in answer["choices"]],
                "gen_ai.usage.input_tokens": answer["usage"]["prompt_tokens"],
                "gen_ai.usage.output_tokens": answer["usage"]["completion_tokens"],
                "output.value": answer["choices"][0]["message"]["content"],
            }
        )
        return answer["choices"][0]["message"]["content"]


def ask(base_url: str, question: str) -> str:
    with tracer.start_as_current_span("chain answer") as span:
        span.set_attributes(
            {"gen_ai.span.kind": "CHAIN", "gen_ai.operation.name": "chain", "input.value": question}
        )
        context = "\n".join(d["content"] for d in retrieve(question))
        answer = chat(
            base_url,
            "qwen-plus",
            [
                {"role": "system", "content": f"Answer from these notes:\n{context}"},
                {"role": "user", "content": question},
            ],
        )
        span.set_attribute("output.value", answer)
        return answer


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ModelServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    for question in ["How does llmprobe export spans?", "How do I reach a collector?"]:
        print(ask(base_url, question))
    server.shutdown()


if __name__ == "__main__":
    main()
