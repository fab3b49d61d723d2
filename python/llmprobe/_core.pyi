"""The Rust core of llmprobe (rust/src/lib.rs). Plain Rust does the work; this is its face.

Attribute values are str, bool, int, float, or a homogeneous list/tuple of those.
Anything else (None, dict, mixed list) is dropped from the span, as the OpenTelemetry SDK does.
Times are nanoseconds since the Unix epoch. Ids are Python ints (128-bit trace, 64-bit span).
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from typing_extensions import Self, TypeAlias

AttrValue: TypeAlias = (
    str | bool | int | float | Sequence[str] | Sequence[bool] | Sequence[int] | Sequence[float]
)

# Span kinds, the values of opentelemetry.trace.SpanKind.
KIND_INTERNAL: int  # 0
KIND_SERVER: int  # 1
KIND_CLIENT: int  # 2
KIND_PRODUCER: int  # 3
KIND_CONSUMER: int  # 4

# Status codes, the values of opentelemetry.trace.StatusCode.
STATUS_UNSET: int  # 0
STATUS_OK: int  # 1
STATUS_ERROR: int  # 2

def configure(env: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Read the configuration from `env` (a copy of os.environ) and keep it for the pipeline.

    Returns (settings, warnings). `warnings` holds one line per bad variable, naming the
    variable, the bad value and what is used instead. `settings` holds what Python needs:
      sdk_disabled: bool                  OTEL_SDK_DISABLED
      disabled_instrumentations: list[str] OTEL_PYTHON_DISABLED_INSTRUMENTATIONS + LLMPROBE_DISABLED_INSTRUMENTATIONS
      app_type: str | None                APSARA_APM_APP_TYPE when valid (app, model, microservice)
      capture_content: bool               OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
      content_max_length: int             OTEL_INSTRUMENTATION_GENAI_MESSAGE_CONTENT_MAX_LENGTH
      traces_exporter: str                otlp | console | file | none (the effective choice)
      service_name: str | None            OTEL_SERVICE_NAME
      split_app: bool                     PROFILER_GENAI_SPLITAPP_ENABLE (see Span.set_service_name)
    Calling it again replaces the configuration (used by tests and by init() after fork).
    """

def start(resource: Mapping[str, AttrValue]) -> None:
    """Start the pipeline with the configuration of the last configure().

    `resource` holds the attributes Python knows (service.name default, llmprobe.app.type,
    telemetry.distro.version, ...). Rust adds process.pid, host.name, service.instance.id and
    telemetry.sdk.*, then OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME override. The exporter
    thread starts on the first ended span. Starting twice is harmless (the second call is ignored).
    """

def force_flush(timeout: float = 2.0) -> bool:
    """Export every span ended so far; True when all were handed to the exporter in time."""

def shutdown(timeout: float | None = None) -> None:
    """Flush within `timeout` seconds (default LLMPROBE_SHUTDOWN_TIMEOUT) and stop the exporter.
    Never blocks longer than the timeout. If spans were dropped, prints one line on stderr
    saying how many and why. Later spans are dropped (and counted)."""

def after_fork_in_child() -> None:
    """In a forked child: forget the parent's queue and exporter (a new exporter starts on
    demand). A span started before the fork and ended in the child (a `with` block both leave,
    a stream open across the fork) is not exported by the child, nor are its call's metrics
    recorded: the parent's are (counted in stats()["spans_of_parent"])."""

def stats() -> dict[str, int]:
    """Counters: spans_started, spans_ended, spans_enqueued, spans_exported, dropped_queue_full,
    dropped_export_failed, dropped_at_shutdown, dropped_not_started, spans_of_parent (ended
    in this forked child but started in its parent, which exports them), export_batches,
    metric_points_dropped."""

def to_json(value: Any, max_length: int | None = None) -> str:
    """Serialise a Python structure (dict, list, tuple, str, int, float, bool, None, pydantic
    models, dataclasses, objects with __dict__; anything else as str()) to JSON, cutting every
    string to `max_length` characters while serialising (never inside a code point), so the
    result is valid JSON and a huge value costs only its first part. Self-references become
    "<recursion>". Default max_length: the configured content limit."""

def truncate(value: str, max_length: int | None = None) -> str:
    """Cut `value` to `max_length` characters (default: the configured content limit)."""

class Span:
    """A span owned by Rust. Python's bridge class subclasses it (llmprobe._tracer.Span)."""

    def __new__(
        cls,
        name: str,
        kind: int = 0,
        parent: Span | tuple[int, int, bool, bool] | None = None,
        attributes: Mapping[str, AttrValue] | None = None,
        start_time: int | None = None,
        links: Sequence[tuple[int, int, Mapping[str, AttrValue] | None]] | None = None,
        scope: str | None = None,
        scope_version: str | None = None,
        trace_state: str | None = None,
    ) -> Self:
        """Start a span. `parent` is a local Span, or (trace_id, span_id, sampled, is_remote) for a
        parent from elsewhere (a traceparent header), or None for a new trace. The configured
        sampler decides `sampled`; an unsampled span records nothing and is never exported, but
        still has ids for propagation. `scope` and `scope_version` name the instrumentation scope.
        `trace_state` is the W3C tracestate header value of a remote parent; a local parent's is
        inherited."""

    @property
    def trace_id(self) -> int: ...
    @property
    def span_id(self) -> int: ...
    @property
    def parent_span_id(self) -> int | None: ...
    @property
    def sampled(self) -> bool: ...
    @property
    def name(self) -> str: ...
    @property
    def ended(self) -> bool: ...
    @property
    def _kind(self) -> int:
        """The span's kind (KIND_*)."""
    def _set_kind(self, kind: int) -> None:
        """Change the span's kind: a framework's step learns only at its end whether it was the
        model call (CLIENT) or the parent of the SDK's call (INTERNAL)."""
    def is_recording(self) -> bool:
        """True while sampled and not ended."""

    def set_attribute(self, key: str, value: AttrValue) -> None: ...
    def set_attributes(self, attributes: Mapping[str, AttrValue]) -> None:
        """Many attributes in one crossing."""

    def set_content(self, key: str, value: Any) -> None:
        """Set a content attribute: a str is cut to the content limit; anything else is
        serialised with to_json() under the content limit."""

    def set_io(self, inputs: Any, outputs: Any) -> None:
        """``input.value`` / ``output.value`` and their mime types (a str as text/plain, anything
        else as JSON, as set_content writes them), each only when not empty."""

    def add_event(
        self, name: str, attributes: Mapping[str, AttrValue] | None = None, timestamp: int | None = None
    ) -> None: ...
    def add_link(
        self, trace_id: int, span_id: int, attributes: Mapping[str, AttrValue] | None = None
    ) -> None: ...
    def set_status(self, code: int, description: str | None = None) -> None:
        """OK is final; UNSET never overrides; the description is kept only with ERROR."""

    def update_name(self, name: str) -> None: ...
    def set_service_name(self, name: str) -> None:
        """PROFILER_GENAI_SPLITAPP_ENABLE: export this span and those started under it as service `name`."""
    def end(self, end_time: int | None = None) -> None:
        """Hand the span to the exporter queue and return at once. A second end() is ignored.
        A full queue drops the span and counts it."""

def record_genai_metrics(
    attributes: Mapping[str, str],
    duration: float,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    time_to_first_chunk: float | None = None,
    chunks: ChunkCollector | None = None,
) -> None:
    """The GenAI client metrics of one operation, in one crossing: `duration` (s) into
    gen_ai.client.operation.duration; the token counts into gen_ai.client.token.usage with
    gen_ai.token.type=input/output; for streams, time_to_first_chunk (s) and the gaps between
    the stream's chunks into time_per_output_chunk (s). `attributes` are the metric attributes (plain strings:
    gen_ai.operation.name, gen_ai.provider.name, gen_ai.request.model, gen_ai.response.model,
    error.type on failures, server.address, server.port). Returns at once: the values travel to
    the exporter thread, which aggregates them into histograms and exports them over OTLP
    (OTEL_METRICS_EXPORTER; default otlp when an endpoint is set). `chunks`: the stream's
    ChunkCollector (the gaps between its chunks are computed here)."""

def chat_input(messages: Any, capture: bool, dashscope: bool = False) -> tuple[str | None, int] | None:
    """A chat request's messages (dicts, TypedDicts, pydantic models, objects) in the span
    contract's shape, read and written as JSON in one pass, every string cut to the content
    limit: (the JSON, or None when `capture` is off; the characters of their text). None when
    `messages` is not a list or tuple (a one-shot iterable is never consumed). `dashscope`:
    DashScope's messages (untyped content parts {"text"} / {"image"} / {"audio"} / {"video"},
    no empty text next to tool calls)."""

def media_part(kind: str, url: Any = None, file_id: Any = None, audio: Any = None) -> dict | None:
    """A media part in the GenAI conventions' shape, for messages built in Python: from `url` a
    {"type": "uri", "modality", "uri"} part, or for a data URL a {"type": "blob", "modality",
    "mime_type", "content"} part; else from `file_id` a {"type": "file", "modality", "file_id"}
    part; else from inline `audio` ({data, format}) a blob. The modality is the mime type's
    family (image, audio, video) when it names one, else `kind`; the URL, content or file id is
    cut to the content limit. None without any of them."""

def finish_reason(reason: str) -> str:
    """A provider's finish reason in the GenAI conventions' words (stop, length, tool_calls,
    content_filter; Anthropic's end_turn, Gemini's MAX_TOKENS, OpenAI's legacy function_call
    ...); one without a known equivalent as given."""

def tool_definitions(tools: Any) -> str | None:
    """`gen_ai.tool.definitions`: tool definitions in whatever shape the caller gave them
    (OpenAI chat's and DashScope's {type, function: {...}}, custom tools, the Responses API's
    flat tools, legacy functions, Anthropic's {name, input_schema}) as the conventions' flat
    [{type, name, description, parameters}] JSON. None when `tools` is not a non-empty list or
    tuple."""

def openai_chat_response(
    span: Span, response: Any, capture: bool
) -> tuple[int | None, int | None, str | None]:
    """An OpenAI chat completion (an SDK object, or its JSON as a dict) written into `span` in
    one crossing: gen_ai.response.id / model, openai.response.service_tier, the usage, the
    finish reasons and output messages (only their size with capture off). Returns (input
    tokens, output tokens, the response model) for the metrics, also for a sampled-out span."""

def dashscope_response(span: Span, response: Any, capture: bool) -> tuple[bool, int | None, int | None]:
    """A DashScope generation answer written into `span` in one crossing: the request id as
    gen_ai.response.id, the usage, the answer (its choices, or its text). Returns (whether its
    status code says it failed: then nothing past the request id is read; input tokens,
    output tokens)."""

class ChunkCollector:
    """What a stream proxy records per item, in one crossing. ``ChunkCollector()`` keeps each
    item; ``ChunkCollector("chat")`` reads OpenAI chat-completion chunks as they pass, and
    ``ChunkCollector("dashscope", incremental)`` DashScope generation chunks (``incremental``:
    the caller's incremental_output, None when not given), keeping only what the answer needs
    (text and tool-call pieces, the last usage, the last error chunk), so no chunk outlives its
    use. All keep each item's arrival time and the first and last items."""

    def __init__(self, chunks: str | None = None, incremental: bool | None = None) -> None: ...
    def add(self, item: Any, time_ns: int) -> None:
        """One item and its perf_counter_ns() arrival time."""
    @property
    def items(self) -> list[Any]:
        """The items kept, in order (none when they were read as they passed)."""
    def time_at(self, i: int) -> int | None:
        """The arrival time of item `i`; None when there is none."""
    @property
    def first(self) -> Any: ...
    @property
    def last(self) -> Any: ...
    def write_answer(
        self, span: Span, capture: bool
    ) -> tuple[int | None, int | None, int | None, str | None, Any]:
        """For chunks read as they passed, written into `span` in one crossing: the response
        ids (OpenAI: the first chunk's id, model and service tier, or the last chunk's when its
        model differs; DashScope: the last chunk's request id), the usage, the finish reasons
        and output messages. Returns (the position of the first chunk with content, input
        tokens, output tokens, the response model or None, the last chunk that reported an
        error or None)."""

class StreamState:
    """What a stream proxy records (its `collector`: kept items when none is given) and how its
    operation ends: ``on_end(state, error)``, once, guarded (a failure is logged once under
    `key`). With `core_end` (`on_end` being _genai.end_stream without an assembler), a stream
    that ends without an error is ended by the core itself (end_stream)."""

    def __init__(
        self,
        key: str,
        on_end: Callable[[StreamState, BaseException | None], None],
        call: Any,
        collector: ChunkCollector | None = None,
        core_end: bool = False,
    ) -> None: ...
    def add(self, item: Any, time_ns: int) -> None:
        """The collector's add."""
    def finish(self, error: BaseException | None, how: str) -> None:
        """Ends the stream's operation ("exhausted", "error", "closed", "collected": why), if it
        was not ended already. Never raises."""
    def watch(self, proxy: Any) -> None:
        """Ends the stream ("collected") when `proxy` is garbage collected, or at interpreter
        exit (before llmprobe's exit flush), if nothing ended it before."""
    @property
    def collector(self) -> ChunkCollector: ...
    @property
    def items(self) -> list[Any]: ...
    @property
    def call(self) -> Any: ...
    @property
    def key(self) -> str: ...
    @property
    def on_end(self) -> Callable[[StreamState, BaseException | None], None]: ...
    @property
    def how(self) -> str:
        """Why the stream ended; "" while it runs."""

class ChunkIter:
    """The iterator a synchronous stream proxy hands a ``for`` loop: each item of `iterator` goes
    to the state's collector with its arrival time; the end of `iterator` (exhausted, or
    raising) ends the state. `owner` (the proxy) is kept alive while the loop runs."""

    def __init__(self, iterator: Any, state: StreamState, owner: Any) -> None: ...
    def __iter__(self) -> ChunkIter: ...
    def __next__(self) -> Any: ...
    def close(self) -> None: ...

def usage(attributes: dict[str, Any], usage: Any, dashscope: bool = False) -> tuple[int | None, int | None]:
    """Token usage (an SDK object or a dict) into `attributes`: gen_ai.usage.input_tokens,
    output_tokens, total_tokens, cache_read.input_tokens, reasoning.output_tokens, from
    prompt/completion or input/output tokens (`dashscope`: with the total as their sum when
    none is given, and an application's usage summed over its models). Returns (input
    tokens, output tokens)."""

class Call:
    """One model call in flight (made by ModelHook.begin)."""

    span: Span
    token: Any  # the context token to give back; None once given back
    started: int  # perf_counter_ns() when the request left
    metric_attributes: dict[str, Any]
    extra: Any  # what the instrumentation keeps for the end (its request data)

    def __init__(
        self, span: Span, metric_attributes: dict[str, Any], extra: Any = None, started: int = 0
    ) -> None: ...

class EventRouter:
    """A framework's event callback (graphon's ``Layer.on_event``): calls
    ``functions[table[type(event).__name__][0]](tracer, run, event, table[...][1])`` for the event
    classes `table` names, nothing for the others, and only while `run` is set. `classes` caches
    each class's entry. A handler's exception goes to `on_error`; the router never raises."""

    run: Any
    def __init__(
        self,
        table: dict,
        classes: dict,
        functions: dict,
        tracer: Any,
        on_error: Callable[[BaseException], Any],
    ) -> None: ...
    def __call__(self, event: Any) -> None: ...

class ContextScope:
    """A context manager: `context` set in the ContextVar `var` on entry, the previous value
    given back on exit (`on_error` gets the exception when that fails; exit never raises)."""

    def __init__(self, var: Any, context: Any, on_error: Callable[[BaseException], Any]) -> None: ...
    def __enter__(self) -> None: ...
    def __exit__(self, *exc_info: object) -> bool: ...

class ModelStep:
    """A framework's model step (a LangChain chat-model run, ...) in the context, under
    _genai.MODEL_STEP_KEY: a ModelHook that starts a span in a context holding one counts the
    call into it, and into its `outer` steps (a model that wraps another), so that the
    framework's step can tell at its end whether an SDK's span is the LLM span (then the step
    is its parent, a CHAIN) or the step itself is."""

    def __init__(self, outer: ModelStep | None = None) -> None: ...
    def count_outer(self) -> None:
        """The step itself is the model call's LLM span: the steps around it are told (a
        framework's model wrapping another becomes its parent)."""
    @property
    def calls(self) -> int:
        """The provider model calls started under the step so far."""

def langchain_classes(message: type, document: type, prompt_value: type) -> None:
    """LangChain's BaseMessage, Document and PromptValue classes, for the langchain_* writers
    (the first call's are kept)."""

def langchain_json(value: Any) -> str:
    """A chain's input or output (or a list of messages) as JSON, every string cut to the content
    limit, LangChain's objects in the contract's shapes: a message as ``{role, parts}`` (text,
    content blocks as uri/blob/file/reasoning parts, an AI message's tool calls, a tool message's
    ``tool_call_response``), a document as ``{content, id, score, metadata}``, a prompt value as
    its messages (or its text). Anything else as to_json() writes it."""

def langchain_output(items: list[Any], finish_reasons: list[str | None]) -> str:
    """A model run's answer as the contract's output messages: each item a LangChain message or
    a text (a text completion's), with its finish reason (or None)."""

def langchain_text(content: Any) -> str:
    """A LangChain message content's text: the string, or its text blocks joined ("" for
    anything else)."""

def langchain_documents(documents: Any) -> str:
    """LangChain documents in rank order as ``[{"document": {content, id, score, metadata}}]``."""

class Run:
    """A LangChain run in flight (made by RunTable.start)."""

    key: int | str  # run_id.int (LangChain), the span id (LlamaIndex)
    kind: str  # the contract's span kind so far
    name: str
    parent: Run | None
    span: Span
    context: Any  # the OpenTelemetry context made current for the run
    previous: Any  # the context current where it started
    token: Any  # gives `previous` back; None once given back
    step: ModelStep | None  # a model run's
    data: Any  # what the run's end needs (the handler's)
    started: int  # perf_counter_ns()
    first_token: int | None
    streamed: bool

class RunTable:
    """The runs in flight, by run_id.int (LangChain) or span id (LlamaIndex) (see rust/src/python/runs.rs and
    instrumentation/langchain/_runs.py). `env`: the context's functions and keys, the span class,
    scope, version and tracer, and the Python slow paths `leave(run, token)` and `sweep(now)`."""

    def __init__(self, env: dict[str, Any], sweep_every_ns: int = 60_000_000_000) -> None: ...
    @property
    def runs(self) -> dict[int, Run]: ...
    sweep_every_ns: int
    def get(self, run_id: Any) -> Run | None: ...
    def start(
        self,
        run_id: Any,
        parent_run_id: Any,
        kind: str,
        name: str,
        span_name: str,
        attributes: dict[str, Any],
        span_kind: int = 0,
        model_step: bool = False,
    ) -> Run:
        """Start the run's span (under its parent run's, else the span current here, not a
        sibling root run's) and make it current (with the run, and a model run's ModelStep)."""
    def finish(self, run_id: Any) -> Run | None:
        """Forget the run and give its caller's context back; None when it is not in flight."""
    def enter_copy(self, context: Any, config: Any) -> None:
        """`context` is the copy LangChain runs the code of `config`'s parent run in: the run's
        context is made current there, and its caller's given back here."""
    def leave_here(self, run: Run) -> None:
        """Give the run's caller its context back now, if the run's context is current here and
        its token was made here."""
    def span(self, span_name: str, attributes: dict[str, Any], span_kind: int, current: Any) -> Span:
        """A span of the table's scope under the span current in `current`."""
    def model_step(self, current: Any) -> ModelStep:
        """The ModelStep of a model operation started in `current`."""

class OpenAiRequest:
    """What the end of an openai call needs from its request (`call.extra`)."""

    kind: str  # "chat", "text_completion", "responses", "embeddings"
    capture: bool
    stream: bool
    dimensions: int | None
    choices: int  # n: a chat stream of one has only choice 0's chunks

    def __init__(
        self, kind: str, capture: bool, stream: bool, dimensions: int | None = None, choices: int = 1
    ) -> None: ...

class OpenAiBefore:
    """Reads openai requests (rust/src/python/openai_request.rs). Called, it is a chat
    completion's `before`; its methods give the other operations' `before`s what they share.
    The server of each client (provider by the end of the host name in `providers`, host,
    port) is parsed once per base URL object."""

    def __init__(
        self,
        capture: bool,
        providers: tuple[tuple[str, str], ...],
        chat_parameters: tuple[tuple[str, str], ...],
        responses_parameters: tuple[tuple[str, str], ...],
        extra_body_parameters: tuple[tuple[str, str], ...],
    ) -> None: ...
    def __call__(self, instance: Any, args: tuple, kwargs: dict) -> tuple:
        """A chat completion's (span name, attributes, metric attributes, OpenAiRequest)."""
    def begin(
        self,
        instance: Any,
        kwargs: dict,
        request: OpenAiRequest,
        operation: str,
        span_kind: str,
        attributes: dict,
    ) -> tuple:
        """Model, server and provider, operation and span kind added to `attributes`: (span
        name, attributes, metric attributes, request)."""
    def responses_numbers(self, attributes: dict, kwargs: dict) -> None:
        """The plain-number parameters of a Responses API request, and of `extra_body`, into
        `attributes`."""
    def sampling(self, attributes: dict, kwargs: dict) -> None:
        """The numeric parameters and stop sequences of a chat or text completion."""
    @staticmethod
    def output_type(format: Any) -> str | None:
        """The `gen_ai.output.type` a response format asks for ("json", "text"), or None."""

class ModelHook:
    """The wrapt wrapper around one model API (see rust/src/python/hook.rs and _genai.hooks):
    `before(instance, args, kwargs)` gives (span name, attributes, metric attributes, extra) or
    None; the hook starts the span (of `tracer`'s scope and _span_class, kind CLIENT),
    makes it current with `owner`, calls the wrapped method once, restores the context, and
    reads the answer itself (`answer`: "dashscope", "openai_chat") or hands the result to
    `after(call, result)` (always for instances of `python_results`: streams, but for those of
    `streams`, ``((classes, proxy class), ...)``, whose proxy the core makes, reading the chunks
    by `answer` and ending with `stream_end` on an error). An exception goes to
    `error(call, exc)` and is raised on. `env`: the context functions (_genai._context_env).
    A `before` that is an OpenAiBefore is called by the core directly (its `chat`)."""

    def __init__(
        self,
        key: str,
        before: Callable[..., Any],
        after: Callable[[Call, Any], Any],
        error: Callable[[Call, BaseException], None],
        owner: Any,
        tracer: Any,
        client_kind: Any,
        env: dict[str, Any],
        answer: str | None = None,
        python_results: tuple[type, ...] | None = None,
        streams: tuple[tuple[tuple[type, ...], type], ...] | None = None,
        stream_end: Callable[[StreamState, BaseException | None], None] | None = None,
    ) -> None: ...
    def __call__(
        self, wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict | None = None
    ) -> Any: ...
    def nested(self) -> bool:
        """Whether a call of the hook's owner runs in the current context (then untraced)."""
    def begin(self, started: tuple) -> Call:
        """Start the span `before` described and make it current."""
    def leave(self, call: Call) -> None:
        """Give the caller its context back (once)."""
    def complete(self, call: Call, result: Any) -> Any:
        """The end of a call that returned `result`: what the caller gets. Never raises."""

def end_call(
    call: Call,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    time_to_first_chunk: float | None = None,
    ended_ns: int | None = None,
    chunks: ChunkCollector | None = None,
) -> None:
    """End the call's span and record its metrics (record_genai_metrics), `ended_ns` (perf_counter_ns)
    or now being the end. Never raises."""

def end_stream(
    call: Call,
    collector: ChunkCollector,
    capture: bool,
    ended_ns: int,
    assembled: tuple[int | None, int | None, int | None] | None = None,
) -> None:
    """The end of a streamed call: the answer written into the span (by the collector's
    write_answer, unless the instrumentation `assembled` it: (first chunk with content, input
    tokens, output tokens)), the time to the first token and to the first chunk, then end_call.
    Never raises."""

def dashscope_failure(call: Call, response: Any) -> None:
    """A DashScope response whose status code is not 200: error.type (its code, or its status),
    http.response.status_code and status ERROR with its message on the span; error.type on the
    call's metric attributes. Never raises."""
