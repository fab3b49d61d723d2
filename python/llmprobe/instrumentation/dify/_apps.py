"""Dify's apps (Dify's api/ only): each run of a chat, completion, agent-chat, advanced-chat or
workflow app is one span, the root of its run's trace under the web request that started it:
``workflow {app name}`` (CHAIN) or, for an agent-chat app, ``invoke_agent {app name}`` (AGENT),
with the app, the user, the conversation (as ``gen_ai.session.id``), the query and the answer.

Dify starts a run in two places, on two threads:

- the app's generator (``ChatAppGenerator.generate(app_model, user, args, invoke_from, ...)``,
  one class per mode) runs on the request's thread: it knows the app (its name) and the user,
  makes the run's queue manager, and starts a worker thread. Dify 1.12's chat and completion
  generators carry only Flask's request context to that worker, not the context variables, so
  the trace context cannot travel by itself;
- the app's runner (``ChatAppRunner.run(...)``, one class per mode) runs the app on the worker.

The queue manager is the one object both hold, so the generator's hook keeps what the runner's
needs (the app, the user, the request's trace context) under the queue manager that is made while
it runs; the runner's hook starts the app's span there, current on the worker while the app runs.
For an advanced-chat or workflow app the span is the workflow span of its graph engine run: the
runner's hook puts the app in the worker's context, and the engine's layer (_layer) names the
workflow span after it, so that one run is one span. The answer of a chat, completion or agent
app is read from the one message-end event its runner publishes to the queue (answer()).
"""

from __future__ import annotations

import contextvars
import weakref
from typing import Any

from opentelemetry import context as _context
from opentelemetry import trace

from llmprobe import _log
from llmprobe.instrumentation import _genai, _wrap

# The app a generator is starting, on the request's thread (its generate() call).
_STARTING: contextvars.ContextVar[Any] = contextvars.ContextVar("llmprobe-dify-app", default=None)
# The app whose run a queue manager carries, from the generator to the runner on the worker.
_BY_QUEUE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# In a workflow-based runner's context: the app, for the engine's layer to name its workflow span.
APP_KEY = _context.create_key("llmprobe-dify-app")

# mode -> (module, generator class, runner class). Each module is patched when it is imported.
MODES = {
    "chat": ("core.app.apps.chat", "ChatAppGenerator", "ChatAppRunner"),
    "completion": ("core.app.apps.completion", "CompletionAppGenerator", "CompletionAppRunner"),
    "agent-chat": ("core.app.apps.agent_chat", "AgentChatAppGenerator", "AgentChatAppRunner"),
    "advanced-chat": ("core.app.apps.advanced_chat", "AdvancedChatAppGenerator", "AdvancedChatAppRunner"),
    "workflow": ("core.app.apps.workflow", "WorkflowAppGenerator", "WorkflowAppRunner"),
}
# Modes whose run is a graph engine's run: the engine's layer makes their span.
_WORKFLOW_MODES = ("advanced-chat", "workflow")
QUEUE_MODULE = "core.app.apps.base_app_queue_manager"


class App:
    """One app run, from its generator's call to its runner's end."""

    __slots__ = ("attributes", "id", "invoke_from", "mode", "name", "parent", "span", "used", "user_id")

    def __init__(
        self, name: str, app_id: str | None, mode: str, user_id: str | None, invoke_from: Any
    ) -> None:
        self.name = name
        self.id = app_id
        self.mode = mode
        self.user_id = user_id
        self.invoke_from = invoke_from
        self.parent = _context.get_current()  # the request's context (its span)
        self.attributes: dict = {}  # what its span carries, known once its runner starts
        self.span: Any = None  # a chat, completion or agent app's span
        self.used = False  # a workflow app's layer has taken it (the first root engine only)

    def app_attributes(self) -> dict:
        attributes = {"gen_ai.framework": "dify", "dify.app.name": self.name, "dify.app.mode": self.mode}
        if self.id:
            attributes["dify.app.id"] = self.id
        if self.user_id:
            attributes["gen_ai.user.id"] = self.user_id
        if self.invoke_from:
            attributes["dify.invoke_from"] = self.invoke_from
        return attributes


def text_of(value: Any) -> str | None:
    """A non-empty string, or an enum's string value (Dify's InvokeFrom, a variable segment's)."""
    value = getattr(value, "value", value)
    return value if isinstance(value, str) and value else None


def _user_id(user: Any) -> str | None:
    # An API caller's end user is known to its caller by the `user` it passed (Dify keeps it as the
    # end user's session id, and gives it to workflows as sys.user_id); an account by its id.
    return text_of(getattr(user, "session_id", None)) or text_of(getattr(user, "id", None))


def _starting(mode: str, args: tuple, kwargs: dict) -> App | None:
    app_model = kwargs.get("app_model", args[0] if args else None)
    user = kwargs.get("user", args[1] if len(args) > 1 else None)
    invoke_from = kwargs.get("invoke_from", args[3] if len(args) > 3 else None)
    name = text_of(getattr(app_model, "name", None)) or text_of(getattr(app_model, "id", None))
    if name is None:
        return None
    return App(name, text_of(getattr(app_model, "id", None)), mode, _user_id(user), text_of(invoke_from))


def generator_wrapper(mode: str):
    """The hook of a generator's generate(): the app it starts, known while it runs."""

    def wrapper(wrapped, instance, args, kwargs):
        app = _wrap.guarded("dify app", _starting, mode, args, kwargs)
        if app is None:
            return wrapped(*args, **kwargs)
        token = _STARTING.set(app)
        try:
            return wrapped(*args, **kwargs)
        finally:
            _STARTING.reset(token)

    return wrapper


def queue_wrapper(wrapped, instance, args, kwargs):
    """The hook of AppQueueManager.__init__: the queue manager of the app being started."""
    wrapped(*args, **kwargs)
    app = _STARTING.get()
    if app is not None:
        _wrap.guarded("dify app", _BY_QUEUE.__setitem__, instance, app)


def _find(instance: Any, args: tuple, kwargs: dict, name: str, position: int) -> Any:
    if name in kwargs:
        return kwargs[name]
    if len(args) > position:
        return args[position]
    for attribute in (name, "_" + name):
        value = getattr(instance, attribute, None)
        if value is not None:
            return value
    return None


class _RunState:
    __slots__ = ("span", "token")

    def __init__(self, span: Any, token: Any) -> None:
        self.span, self.token = span, token


def runner_hooks(mode: str, tracer: Any) -> tuple:
    """The hooks of a runner's run() (for _wrap.hooks): the app's span, or, for a workflow-based
    app, its context. (Lambdas over module functions, which fault injection can replace.)"""
    return (
        lambda instance, args, kwargs: _begin_run(mode, tracer, instance, args, kwargs),
        lambda state, result: _end_run(state),
        lambda state, error: _fail_run(state, error),
    )


def _begin_run(mode: str, tracer: Any, instance: Any, args: tuple, kwargs: dict) -> _RunState | None:
    queue_manager = _find(instance, args, kwargs, "queue_manager", 1)
    app = _BY_QUEUE.get(queue_manager) if queue_manager is not None else None
    entity = _find(instance, args, kwargs, "application_generate_entity", 0)
    if app is None:  # a run no generator announced (a debugger's single step, say)
        config = getattr(entity, "app_config", None)
        app_id = text_of(getattr(config, "app_id", None))
        if app_id is None:
            return None
        app = App(app_id, app_id, mode, text_of(getattr(entity, "user_id", None)), None)
        app.parent = None
    attributes = app.app_attributes()
    conversation = _find(instance, args, kwargs, "conversation", 2)
    message = _find(instance, args, kwargs, "message", 3 if mode != "completion" else 2)
    conversation_id = text_of(getattr(conversation, "id", None)) or text_of(
        getattr(message, "conversation_id", None)
    )
    if conversation_id:
        attributes["gen_ai.conversation.id"] = conversation_id
        attributes["gen_ai.session.id"] = conversation_id
    message_id = text_of(getattr(message, "id", None))
    if message_id:
        attributes["dify.message.id"] = message_id
    if _genai.capture:
        _put_input(attributes, entity)
    parent = app.parent if app.parent is not None else _context.get_current()
    app.attributes = attributes
    if mode in _WORKFLOW_MODES:  # the layer's workflow span is the app's
        return _RunState(None, _context.attach(_context.set_value(APP_KEY, app, parent)))
    if mode == "agent-chat":
        attributes["gen_ai.span.kind"] = "AGENT"
        attributes["gen_ai.operation.name"] = "invoke_agent"
        attributes["gen_ai.agent.name"] = app.name
        name = "invoke_agent " + app.name
    else:
        attributes["gen_ai.span.kind"] = "CHAIN"
        attributes["gen_ai.operation.name"] = "invoke_workflow"
        name = "workflow " + app.name
    span = tracer.start_span(name, context=parent, attributes=attributes)
    # PROFILER_GENAI_SPLITAPP_ENABLE: the app's spans are its own service (a no-op when off).
    span.set_service_name(app.name)
    app.span = span
    return _RunState(span, _context.attach(trace.set_span_in_context(span, parent)))


def _end_run(state: _RunState | None) -> None:
    if state is None:
        return
    _context.detach(state.token)
    if state.span is not None:
        state.span.end()


def _fail_run(state: _RunState | None, error: BaseException) -> None:
    if state is None:
        return
    if state.span is not None and isinstance(error, Exception):
        state.span.record_failure(error, True, True)
    _end_run(state)


def _put_input(attributes: dict, entity: Any) -> None:
    """The run's input: the user's query (a chat's message), else the app's inputs (a workflow's)."""
    query = getattr(entity, "query", None)
    if isinstance(query, str) and query:
        attributes["input.value"] = _genai.content_text(query)
        attributes["input.mime_type"] = "text/plain"
        return
    inputs = getattr(entity, "inputs", None)
    if inputs:
        attributes["input.value"] = _genai.content_json(inputs)
        attributes["input.mime_type"] = "application/json"


def workflow_app() -> App | None:
    """The app whose run the calling engine is (once: a workflow-based runner's first root engine)."""
    app = _context.get_value(APP_KEY)
    if app is None or app.used:
        return None
    app.used = True
    return app


def publish_replacement(handlers: dict):
    """AppQueueManager.publish, replaced: `handlers` (event class -> handler(queue manager, event))
    see the few events llmprobe reads (the answer of the message-end event, answer(); the documents
    of a retrieval, _retrieval). A plain function (the runner publishes every chunk of a stream
    through it): one dict lookup per event."""

    def make(original):
        def publish(self, event, *args, **kwargs):
            handler = handlers.get(type(event))
            if handler is not None:
                _wrap.guarded("dify app event", handler, self, event)
            return original(self, event, *args, **kwargs)

        return publish

    return make


def answer(queue_manager: Any, event: Any) -> None:
    """The message-end event: the answer of the chat, completion or agent app it ends."""
    app = _BY_QUEUE.get(queue_manager)
    span = getattr(app, "span", None)
    if span is None or not _genai.capture:
        return
    message = getattr(getattr(event, "llm_result", None), "message", None)
    content = getattr(message, "content", None)
    if isinstance(content, list):  # content parts: their text
        content = "".join(
            str(getattr(part, "data", ""))
            for part in content
            if text_of(getattr(part, "type", None)) == "text"
        )
    if isinstance(content, str) and content:
        span.set_attribute("output.value", _genai.content_text(content))
        span.set_attribute("output.mime_type", "text/plain")


def log_unsupported(what: str, exc: BaseException) -> None:
    _log.warn(f"Dify's {what} is not where llmprobe looks for it ({exc}): it is not traced")
