"""A FastAPI question-answering service built with LlamaIndex over the small ``data/`` folder next
to this file: a query engine (retrieve, then synthesize an answer), the same engine streamed, and
a function-calling agent with two tools. What a user of llmprobe writes, with nothing of llmprobe
in it. Run it under ``instrument`` and every request gives one trace: the FastAPI request span,
LlamaIndex's query (or agent) under it, its retrieval and synthesis, and under each LlamaIndex
model step the one LLM or embeddings span of its request (the openai SDK's, with its tokens).

Offline (no API key, nothing leaves the machine): without OPENAI_BASE_URL the app starts the fake
OpenAI-compatible server of the tests (tests/openai/fake_openai.py) and talks to it::

    pip install llama-index-core llama-index-llms-openai llama-index-embeddings-openai \\
        fastapi uvicorn opentelemetry-instrumentation-fastapi
    instrument python examples/llamaindex_app.py          # serves on http://127.0.0.1:8000
    curl 'http://127.0.0.1:8000/ask?q=What+is+a+span'
    curl -N 'http://127.0.0.1:8000/stream?q=What+does+an+LLM+span+record'
    curl 'http://127.0.0.1:8000/agent?q=Weather+and+time+in+Paris'

    instrument python examples/llamaindex_app.py --demo   # the three requests above, then exit

With nothing else configured the traces print on stderr; set OTEL_EXPORTER_OTLP_ENDPOINT to send
them to a collector. Against the real API: OPENAI_API_KEY=sk-... with OPENAI_BASE_URL unset and
``--real``; OPENAI_MODEL picks the model (default gpt-4o-mini). The agent needs
llama-index-core 0.12 or later.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

import offline
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
DATA = Path(__file__).resolve().parent / "data"

app = FastAPI(title="ask the docs, with LlamaIndex")
_index = None
_agent = None


def get_weather(city: str, unit: str = "celsius") -> str:
    """The current weather of a city."""
    return f"18 degrees {unit} and sunny in {city}"


def get_time(timezone: str) -> str:
    """The current time in a timezone."""
    return f"It is 14:05 in {timezone}"


def _llm():
    from llama_index.llms.openai import OpenAI

    return OpenAI(model=MODEL, temperature=0.2, api_base=os.environ.get("OPENAI_BASE_URL"))


def index():
    """The documents of data/, embedded once, in memory."""
    global _index
    if _index is None:
        from llama_index.core import Settings, SimpleDirectoryReader, VectorStoreIndex
        from llama_index.embeddings.openai import OpenAIEmbedding

        Settings.llm = _llm()
        Settings.embed_model = OpenAIEmbedding(api_base=os.environ.get("OPENAI_BASE_URL"))
        _index = VectorStoreIndex.from_documents(SimpleDirectoryReader(str(DATA)).load_data())
    return _index


def agent():
    global _agent
    if _agent is None:
        from llama_index.core.agent.workflow import FunctionAgent
        from llama_index.core.tools import FunctionTool

        tools = [FunctionTool.from_defaults(get_weather), FunctionTool.from_defaults(get_time)]
        _agent = FunctionAgent(name="assistant", description="Weather and time.", tools=tools, llm=_llm())
    return _agent


@app.get("/ask")
def ask(q: str) -> dict:
    response = index().as_query_engine(similarity_top_k=2).query(q)
    return {
        "answer": response.response,
        "sources": sorted(n.node.metadata.get("file_name", "") for n in response.source_nodes),
    }


@app.get("/stream")
def stream(q: str) -> StreamingResponse:
    response = index().as_query_engine(streaming=True, similarity_top_k=2).query(q)
    return StreamingResponse(response.response_gen, media_type="text/plain")


@app.get("/agent")
async def run_agent(q: str) -> dict:
    return {"answer": str(await agent().run(q))}


def _has_agents() -> bool:
    try:
        return importlib.util.find_spec("llama_index.core.agent.workflow") is not None
    except ModuleNotFoundError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", action="store_true", help="make three requests, then exit")
    parser.add_argument("--real", action="store_true", help="talk to the real OpenAI API")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if not args.real and not os.environ.get("OPENAI_BASE_URL"):
        offline.start_fake_openai()
    if args.demo:
        paths = ("/ask?q=What+is+a+span", "/stream?q=What+does+an+LLM+span+record")
        if _has_agents():
            paths += ("/agent?q=Weather+and+time+in+Paris",)
        offline.demo(app, args.port, paths)
    else:
        uvicorn.run(app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
