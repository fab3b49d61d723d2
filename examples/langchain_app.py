"""A FastAPI service built with LangChain: a prompt | chat model | parser chain, the same chain
streamed, and a small tool-calling agent. What a user of llmprobe writes, with nothing of
llmprobe in it. Run it under ``instrument`` and every request gives one trace: the FastAPI
request span, the chain's or the agent's spans under it, and under each LangChain model run the
one LLM span of its request (the openai SDK's, with its tokens).

Offline (no API key, nothing leaves the machine): without OPENAI_BASE_URL the app starts the fake
OpenAI-compatible server of the tests (tests/openai/fake_openai.py) and talks to it::

    pip install langchain-core langchain-openai langgraph fastapi uvicorn opentelemetry-instrumentation-fastapi
    instrument python examples/langchain_app.py          # serves on http://127.0.0.1:8000
    curl 'http://127.0.0.1:8000/ask?q=What+is+a+span'
    curl -N 'http://127.0.0.1:8000/stream?q=Tell+me+a+story'
    curl 'http://127.0.0.1:8000/agent?q=Weather+and+time+in+Paris'

    instrument python examples/langchain_app.py --demo   # the three requests above, then exit

With nothing else configured the traces print on stderr; set OTEL_EXPORTER_OTLP_ENDPOINT to send
them to a collector. Against the real API: OPENAI_API_KEY=sk-... with OPENAI_BASE_URL unset and
``--real``; OPENAI_MODEL picks the model (default gpt-4o-mini).
"""

from __future__ import annotations

import argparse
import os

import offline
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")

app = FastAPI(title="ask, with LangChain")
_chain = None
_agent = None


@tool
def get_weather(city: str, unit: str = "celsius") -> str:
    """The current weather of a city."""
    return f"18 degrees {unit} and sunny in {city}"


@tool
def get_time(timezone: str) -> str:
    """The current time in a timezone."""
    return f"It is 14:05 in {timezone}"


def _model():
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=MODEL, temperature=0.2)


def chain():
    global _chain
    if _chain is None:
        prompt = ChatPromptTemplate.from_messages(
            [("system", "Answer in one sentence."), ("human", "{question}")]
        )
        _chain = prompt | _model() | StrOutputParser()
    return _chain


def agent():
    global _agent
    if _agent is None:
        tools = [get_weather, get_time]
        try:
            from langchain.agents import create_agent  # langchain 1.x
        except ImportError:
            from langgraph.prebuilt import create_react_agent

            _agent = create_react_agent(_model(), tools)
        else:
            _agent = create_agent(_model(), tools, name="assistant")
    return _agent


@app.get("/ask")
async def ask(q: str) -> dict:
    """One question, one answer, through the chain."""
    return {"answer": await chain().ainvoke({"question": q})}


@app.get("/stream")
async def stream(q: str) -> StreamingResponse:
    """The chain's answer as it is generated."""
    return StreamingResponse(chain().astream({"question": q}), media_type="text/plain")


@app.get("/agent")
async def ask_agent(q: str, session: str = "demo-session") -> dict:
    """The agent calls the tools the model asks for, then answers."""
    result = await agent().ainvoke(
        {"messages": [("user", q)]}, config={"configurable": {"thread_id": session}}
    )
    return {"answer": result["messages"][-1].content, "messages": len(result["messages"])}


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
            app,
            args.port,
            ("/ask?q=What+is+a+span", "/stream?q=Tell+me+a+story", "/agent?q=Weather+and+time+in+Paris"),
        )
    else:
        uvicorn.run(app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
