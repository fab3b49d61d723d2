"""The tools an agent-chat app's agent calls (Dify's api/): each call a TOOL span
``execute_tool {tool}`` under the agent's span, current while the tool runs (so an HTTP request
the tool makes nests under it).

Dify's agents call every tool through ``ToolEngine.agent_invoke(tool, tool_parameters, ...)``,
which returns ``(text, files, meta)`` and reports a failed tool in ``meta.error`` instead of
raising. (A workflow's tool node calls ``ToolEngine.generic_invoke``: its span is the node's
TOOL span, _layer's.)
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as _context
from opentelemetry import trace

from llmprobe.instrumentation import _genai

MODULE = "core.tools.tool_engine"
TARGET = "ToolEngine.agent_invoke"


def _begin(tracer: Any, args: tuple, kwargs: dict) -> tuple:
    tool = kwargs.get("tool", args[0] if args else None)
    parameters = kwargs.get("tool_parameters", args[1] if len(args) > 1 else None)
    identity = getattr(getattr(tool, "entity", None), "identity", None)
    name = str(getattr(identity, "name", None) or type(tool).__name__)
    attributes = {
        "gen_ai.span.kind": "TOOL",
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.framework": "dify",
        "gen_ai.tool.name": name,
    }
    description = getattr(getattr(getattr(tool, "entity", None), "description", None), "llm", None)
    if isinstance(description, str) and description:
        attributes["gen_ai.tool.description"] = description
    provider = getattr(identity, "provider", None)
    if isinstance(provider, str) and provider:
        attributes["dify.tool.provider"] = provider
    if _genai.capture and parameters is not None:
        if isinstance(parameters, str):
            arguments = _genai.content_text(parameters)
        else:
            arguments = _genai.content_json(parameters)
        attributes["gen_ai.tool.call.arguments"] = attributes["input.value"] = arguments
        attributes["input.mime_type"] = "text/plain" if isinstance(parameters, str) else "application/json"
    span = tracer.start_span("execute_tool " + name, attributes=attributes)
    return span, _context.attach(trace.set_span_in_context(span))


def _end(state: tuple, result: Any) -> None:
    span, token = state
    _context.detach(token)
    text, meta = (result[0], result[2]) if isinstance(result, tuple) and len(result) == 3 else (None, None)
    if _genai.capture and isinstance(text, str) and text:
        text = _genai.content_text(text)
        span.set_attribute("gen_ai.tool.call.result", text)
        span.set_attribute("output.value", text)
        span.set_attribute("output.mime_type", "text/plain")
    error = getattr(meta, "error", None)
    if error:  # Dify reports a failed tool in the result, not by raising
        span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
        span.set_attribute("error.type", "ToolInvokeError")
    span.end()


def _fail(state: tuple, error: BaseException) -> None:
    span, token = state
    _context.detach(token)
    if isinstance(error, Exception):
        span.record_failure(error, True, True)
    span.end()
