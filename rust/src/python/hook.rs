//! `ModelHook`, the wrapper around one model API of an SDK, and `Call`, one model call in flight.
//!
//! A hook is the wrapt wrapper of a synchronous method itself (`__call__`), so that around a
//! model call no Python frame of llmprobe's runs but the instrumentation's `before` (which reads
//! the request; none for an openai chat completion, whose `before` is the core's OpenAiBefore)
//! and, for what the core cannot read (a stream, a raw response), its `after`:
//!
//! 1. a call made while a call of the same owner runs (the SDK calling itself) runs untraced;
//! 2. `before(instance, args, kwargs)` gives `(span name, attributes, metric attributes,
//!    extra)`, or None (not traced);
//! 3. the span starts (the current span is its parent) and becomes current, with the owner;
//!    a framework's model step in the context (`ModelStep`) is told of the call;
//! 4. the call runs exactly once, outside anything that could change its outcome;
//! 5. the caller's context comes back;
//! 6. the answer is read into the span by the core (`answer`: "dashscope", "openai_chat") and
//!    the span ends with its metrics; a result of one of `python_results`' types (a stream),
//!    or any result when there is no `answer`, goes to `after(call, result)`, which may hand
//!    back a replacement (a stream proxy). An exception goes to `error(call, exc)` and is
//!    raised on as it came.
//!
//! Any failure of llmprobe's own (steps 1-3, 5-6) is logged once under the hook's key and
//! the call's result or exception reaches the caller untouched. An asynchronous wrapper
//! (Python: `await` has to be in a coroutine) uses the same steps through `nested()`,
//! `begin()`, `leave()` and `complete()`.

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::chunks::{perf_counter_ns, ChunkCollector};
use super::convert::str_of;
use super::messages::{text_of, Reader};
use super::model_step::ModelStep;
use super::openai_request::{OpenAiBefore, OpenAiRequest};
use super::span::PySpan;
use super::stream::{make_proxy, StreamState};
use super::{guard, responses};
use crate::span::{AttrValue, KIND_CLIENT, STATUS_ERROR};

/// One model call in flight: its span, the context token to give back, when the request left
/// (perf_counter_ns), the metric attributes and what the instrumentation keeps for the end.
#[pyclass(module = "llmprobe._core")]
pub struct Call {
    #[pyo3(get, set)]
    span: Py<PyAny>,
    #[pyo3(get, set)]
    token: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    started: i64,
    #[pyo3(get, set)]
    metric_attributes: Py<PyDict>,
    #[pyo3(get, set)]
    extra: Py<PyAny>,
}

#[pymethods]
impl Call {
    #[new]
    #[pyo3(signature = (span, metric_attributes, extra=None, started=0))]
    fn new(
        py: Python<'_>,
        span: Py<PyAny>,
        metric_attributes: Py<PyDict>,
        extra: Option<Py<PyAny>>,
        started: i64,
    ) -> Self {
        Call {
            span,
            token: None,
            started,
            metric_attributes,
            extra: extra.unwrap_or_else(|| py.None()),
        }
    }
}

/// How a hook reads a (non-stream) answer.
#[derive(Clone, Copy)]
enum Answer {
    /// The instrumentation's `after` does.
    Python,
    /// A DashScope generation response (dashscope_response).
    DashScope,
    /// An OpenAI chat completion (openai_chat_response).
    OpenAiChat,
}

/// What a hook needs of the OpenTelemetry API's context, taken once from the instrumentation
/// (a dict: see `_genai._context_env`).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct ContextEnv {
    get_current: Py<PyAny>,
    attach: Py<PyAny>,
    /// Gives a token back; `detach` when that fails (a token of another context).
    reset: Py<PyAny>,
    detach: Py<PyAny>,
    /// The API's key of the current span; None: `contextualize(span, owner)` makes the context.
    span_key: Option<Py<PyString>>,
    owner_key: Py<PyAny>,
    /// The key under which a framework's model step (`ModelStep`) is in the context.
    model_step_key: Py<PyAny>,
    context_class: Py<PyAny>,
    contextualize: Py<PyAny>,
    log_once: Py<PyAny>,
}

/// Never changed after it is made (frozen: no borrow flag to check per call, and calls on many
/// threads at once, nested or not, share it freely).
#[pyclass(frozen, module = "llmprobe._core")]
pub struct ModelHook {
    key: Py<PyString>,
    before: Py<PyAny>,
    /// `before` when it is the core's reader of openai chat requests: called without a
    /// Python call.
    openai_before: Option<Py<OpenAiBefore>>,
    after: Py<PyAny>,
    error: Py<PyAny>,
    /// None: no nesting check.
    owner: Py<PyAny>,
    answer: Answer,
    python_results: Py<PyTuple>,
    /// `((stream classes, proxy class), ...)`: a stream of one of these classes (also one of
    /// `python_results`) is read by the core, which makes its proxy, rather than by `after`.
    streams: Vec<(Py<PyAny>, Py<PyAny>)>,
    /// How such a stream ends when it raises (`_genai.end_stream`).
    stream_end: Option<Py<PyAny>>,
    /// The instrumentation's Tracer: its scope and span class, and start_span for a parent the
    /// core does not take as it is (a remote span, another implementation's, one with a trace
    /// state).
    tracer: Py<PyAny>,
    span_class: Py<PyAny>,
    scope: Py<PyAny>,
    version: Py<PyAny>,
    client_kind: Py<PyAny>,
    env: ContextEnv,
}

impl ModelHook {
    fn log(&self, py: Python<'_>, e: PyErr) {
        if let Err(again) = self
            .env
            .log_once
            .call1(py, (self.key.bind(py), e.value(py).clone()))
        {
            again.write_unraisable(py, None);
        }
    }

    /// The context the call starts in, when no call of the same owner runs in it.
    fn outer_context<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let current = self.env.get_current.bind(py).call0()?;
        if !self.owner.is_none(py) {
            if let Ok(values) = current.cast::<PyDict>() {
                if let Some(owner) = values.get_item(self.env.owner_key.bind(py))? {
                    if owner.is(self.owner.bind(py)) {
                        return Ok(None);
                    }
                }
            }
        }
        Ok(Some(current))
    }

    fn start_span<'py>(
        &self,
        py: Python<'py>,
        current: &Bound<'py, PyAny>,
        name: &Bound<'py, PyAny>,
        attributes: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let parent = match (&self.env.span_key, current.cast::<PyDict>()) {
            (Some(key), Ok(values)) => Some(values.get_item(key.bind(py))?),
            _ => None,
        };
        // A core span without a trace state, or no span at all: the core starts the span.
        let core_parent = match &parent {
            Some(None) => Some(py.None().into_bound(py)),
            Some(Some(p)) if PySpan::takes_as_parent(p) => Some(p.clone()),
            _ => None,
        };
        match core_parent {
            Some(parent) => self.span_class.bind(py).call1((
                name,
                KIND_CLIENT,
                parent,
                attributes,
                py.None(),
                py.None(),
                self.scope.bind(py),
                self.version.bind(py),
            )),
            None => self.tracer.bind(py).call_method1(
                intern!(py, "start_span"),
                (name, py.None(), self.client_kind.bind(py), attributes),
            ),
        }
    }

    /// Starts the call's span and makes it current (with the owner): the Call.
    fn begin_in<'py>(
        &self,
        py: Python<'py>,
        current: &Bound<'py, PyAny>,
        started: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Call>> {
        let (name, attributes, metric_attributes, extra): (
            Bound<'py, PyAny>,
            Bound<'py, PyAny>,
            Bound<'py, PyDict>,
            Bound<'py, PyAny>,
        ) = started.extract()?;
        let span = self.start_span(py, current, &name, &attributes)?;
        let context = match (&self.env.span_key, current.cast::<PyDict>()) {
            (Some(key), Ok(values)) => {
                if let Some(step) = values.get_item(self.env.model_step_key.bind(py))? {
                    if let Ok(step) = step.cast::<ModelStep>() {
                        step.get().count_call();
                    }
                }
                let values = values.copy()?;
                values.set_item(key.bind(py), &span)?;
                values.set_item(self.env.owner_key.bind(py), self.owner.bind(py))?;
                self.env.context_class.bind(py).call1((values,))?
            }
            _ => self
                .env
                .contextualize
                .bind(py)
                .call1((&span, self.owner.bind(py)))?,
        };
        // Nothing that can fail comes after the span became current.
        let token = self.env.attach.bind(py).call1((context,))?;
        Bound::new(
            py,
            Call {
                span: span.unbind(),
                token: Some(token.unbind()),
                started: perf_counter_ns(py),
                metric_attributes: metric_attributes.unbind(),
                extra: extra.unbind(),
            },
        )
    }

    fn leave_call(&self, py: Python<'_>, call: &Bound<'_, Call>) {
        let token = match call.try_borrow_mut() {
            Ok(mut c) => c.token.take(),
            Err(_) => None,
        };
        if let Some(token) = token {
            if self.env.reset.bind(py).call1((&token,)).is_err() {
                // A token of another context (as the API's detach: logged there, not raised).
                if let Err(e) = self.env.detach.bind(py).call1((token,)) {
                    self.log(py, e);
                }
            }
        }
    }

    /// Reads the answer into the span and ends it, or hands the result to `after`: the
    /// replacement for the result, if any.
    fn complete_with(
        &self,
        py: Python<'_>,
        call: &Bound<'_, Call>,
        result: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Py<PyAny>>> {
        let answer = match self.answer {
            Answer::Python => None,
            _ if result.is_instance(self.python_results.bind(py).as_any())? => None,
            a => Some(a),
        };
        let Some(answer) = answer else {
            if let Some(proxy) = self.stream_proxy(py, call, result)? {
                return Ok(Some(proxy.unbind()));
            }
            let replacement = self.after.bind(py).call1((call, result))?;
            return Ok((!replacement.is_none()).then(|| replacement.unbind()));
        };
        let capture = capture_of(call)?;
        let span = call.borrow().span.clone_ref(py).into_bound(py);
        let (input, output) = match answer {
            Answer::DashScope => {
                let (failed, input, output) = responses::dashscope_response(&span, result, capture);
                if failed {
                    dashscope_failure(call, result);
                }
                (input, output)
            }
            _ => {
                let (input, output, model) =
                    responses::openai_chat_response(&span, result, capture);
                if let Some(model) = model {
                    call.borrow()
                        .metric_attributes
                        .bind(py)
                        .set_item("gen_ai.response.model", model)?;
                }
                (input, output)
            }
        };
        end_call(call, input, output, None, None, None);
        Ok(None)
    }
}

impl ModelHook {
    /// The proxy of a stream the core reads (see `streams`), with its state; None for a result
    /// that is not such a stream. When the proxy cannot be made, the span ends now (there will
    /// be no later end) and the error is the caller's to log.
    fn stream_proxy<'py>(
        &self,
        py: Python<'py>,
        call: &Bound<'py, Call>,
        result: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(stream_end) = &self.stream_end else {
            return Ok(None);
        };
        let Some((_, proxy_class)) = self
            .streams
            .iter()
            .find(|(classes, _)| result.is_instance(classes.bind(py)).unwrap_or(false))
        else {
            return Ok(None);
        };
        let made = (|| {
            let extra = call.borrow().extra.clone_ref(py).into_bound(py);
            let collector = match self.answer {
                Answer::DashScope => {
                    let incremental = extra.getattr(intern!(py, "incremental"))?;
                    ChunkCollector::dashscope(incremental.extract::<bool>().ok())
                }
                _ => ChunkCollector::chat(extra.cast::<OpenAiRequest>()?.get().choices == 1),
            };
            let state = StreamState::new(
                self.key.clone_ref(py),
                stream_end.clone_ref(py),
                call.clone().into_any().unbind(),
                Py::new(py, collector)?,
                true,
            );
            make_proxy(proxy_class.bind(py), result, state)
        })();
        match made {
            Ok(proxy) => Ok(Some(proxy)),
            Err(e) => {
                end_call(call, None, None, None, None, None);
                Err(e)
            }
        }
    }
}

/// Whether the call's content is captured (its `extra.capture`).
pub(super) fn capture_of(call: &Bound<'_, Call>) -> PyResult<bool> {
    let py = call.py();
    let extra = call.borrow().extra.clone_ref(py).into_bound(py);
    if let Ok(request) = extra.cast::<OpenAiRequest>() {
        return Ok(request.get().capture);
    }
    extra.getattr(intern!(py, "capture"))?.is_truthy()
}

#[pymethods]
impl ModelHook {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (key, before, after, error, owner, tracer, client_kind, env, answer=None, python_results=None, streams=None, stream_end=None))]
    fn new(
        py: Python<'_>,
        key: Py<PyString>,
        before: Py<PyAny>,
        after: Py<PyAny>,
        error: Py<PyAny>,
        owner: Py<PyAny>,
        tracer: Py<PyAny>,
        client_kind: Py<PyAny>,
        env: ContextEnv,
        answer: Option<&str>,
        python_results: Option<Py<PyTuple>>,
        streams: Option<Vec<(Py<PyAny>, Py<PyAny>)>>,
        stream_end: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let answer = match answer {
            None => Answer::Python,
            Some("dashscope") => Answer::DashScope,
            Some("openai_chat") => Answer::OpenAiChat,
            Some(other) => {
                return Err(PyValueError::new_err(format!(
                    "unknown answer {other:?}: None, 'dashscope' or 'openai_chat'"
                )))
            }
        };
        let span_class = tracer
            .bind(py)
            .getattr(intern!(py, "_span_class"))?
            .unbind();
        let scope = tracer.bind(py).getattr(intern!(py, "_scope"))?.unbind();
        let version = tracer.bind(py).getattr(intern!(py, "_version"))?.unbind();
        let openai_before = before
            .bind(py)
            .cast::<OpenAiBefore>()
            .ok()
            .map(|b| b.clone().unbind());
        Ok(ModelHook {
            key,
            before,
            openai_before,
            after,
            error,
            owner,
            answer,
            python_results: python_results.unwrap_or_else(|| PyTuple::empty(py).unbind()),
            streams: streams.unwrap_or_default(),
            stream_end,
            tracer,
            span_class,
            scope,
            version,
            client_kind,
            env,
        })
    }

    /// The wrapt wrapper: see the module's documentation.
    #[pyo3(signature = (wrapped, instance, args, kwargs=None))]
    fn __call__(
        &self,
        py: Python<'_>,
        wrapped: &Bound<'_, PyAny>,
        instance: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let began = (|| -> PyResult<Option<Bound<'_, Call>>> {
            let Some(current) = self.outer_context(py)? else {
                return Ok(None);
            };
            let kw = match kwargs {
                Some(k) => k.clone(),
                None => PyDict::new(py),
            };
            let started = match &self.openai_before {
                Some(reader) => reader.get().chat(instance, &kw)?.into_any(),
                None => self.before.bind(py).call1((instance, args, kw))?,
            };
            if started.is_none() {
                return Ok(None);
            }
            self.begin_in(py, &current, &started).map(Some)
        })();
        let call = match began {
            Ok(call) => call,
            Err(e) => {
                self.log(py, e);
                None
            }
        };
        let Some(call) = call else {
            return Ok(wrapped.call(args, kwargs)?.unbind());
        };
        let result = wrapped.call(args, kwargs);
        self.leave_call(py, &call);
        match result {
            Err(e) => {
                if let Err(again) = self.error.bind(py).call1((&call, e.value(py))) {
                    self.log(py, again);
                }
                Err(e)
            }
            Ok(result) => match self.complete_with(py, &call, &result) {
                Ok(Some(replacement)) => Ok(replacement),
                Ok(None) => Ok(result.unbind()),
                Err(e) => {
                    self.log(py, e);
                    Ok(result.unbind())
                }
            },
        }
    }

    /// Whether a call of this hook's owner is running in the current context (the SDK calling
    /// itself): the call is then not traced again.
    fn nested(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.outer_context(py)?.is_none())
    }

    /// Starts the span of `started` (what `before` gave) and makes it current: the Call.
    fn begin<'py>(
        &self,
        py: Python<'py>,
        started: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Call>> {
        let current = self.env.get_current.bind(py).call0()?;
        self.begin_in(py, &current, started)
    }

    /// Gives the caller its context back (once).
    fn leave(&self, py: Python<'_>, call: &Bound<'_, Call>) {
        self.leave_call(py, call)
    }

    /// The end of a call that returned `result`: what the caller gets (the result, or the
    /// replacement `after` gave). Never raises.
    fn complete(&self, py: Python<'_>, call: &Bound<'_, Call>, result: Py<PyAny>) -> Py<PyAny> {
        match self.complete_with(py, call, result.bind(py)) {
            Ok(Some(replacement)) => replacement,
            Ok(None) => result,
            Err(e) => {
                self.log(py, e);
                result
            }
        }
    }
}

/// Ends a call's span and records its metrics (`ended_ns`: perf_counter_ns() when the answer
/// was complete, now when not given; `chunks`: a stream's ChunkCollector, whose gaps go to
/// time_per_output_chunk). Never raises.
#[pyfunction]
#[pyo3(signature = (call, input_tokens=None, output_tokens=None, time_to_first_chunk=None, ended_ns=None, chunks=None))]
pub fn end_call(
    call: &Bound<'_, Call>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    time_to_first_chunk: Option<f64>,
    ended_ns: Option<i64>,
    chunks: Option<PyRef<'_, ChunkCollector>>,
) {
    let py = call.py();
    let ended = ended_ns.unwrap_or_else(|| perf_counter_ns(py));
    let (span, metric_attributes, started) = match call.try_borrow() {
        Ok(c) => (
            c.span.clone_ref(py).into_bound(py),
            c.metric_attributes.clone_ref(py).into_bound(py),
            c.started,
        ),
        Err(_) => return,
    };
    let here = guard("end of a model call", true, || {
        match span.cast::<PySpan>() {
            Ok(s) => {
                let mut s = s.try_borrow_mut()?;
                let here = s.started_here();
                s.end(None);
                Ok(here)
            }
            Err(_) => {
                span.call_method0(intern!(py, "end"))?;
                Ok(true)
            }
        }
    });
    if !here {
        return; // a call of the parent of this forked child: the parent's to count
    }
    super::record_genai_metrics(
        metric_attributes.as_any(),
        (ended - started) as f64 / 1e9,
        input_tokens,
        output_tokens,
        time_to_first_chunk,
        chunks,
    );
}

/// The end of a streamed call: the answer, ids and usage written into the span, unless the
/// instrumentation `assembled` them itself ((first chunk with content, input tokens, output
/// tokens)); otherwise `collector` read the chunks as they passed ("chat" or "dashscope") and
/// write_answer writes them, with a failure the stream reported and the response model for the
/// metrics. Then, either way, the time to the first token and to the first chunk, and end_call,
/// `ended_ns` being when the stream ended. Never raises.
#[pyfunction]
#[pyo3(signature = (call, collector, capture, ended_ns, assembled=None))]
pub fn end_stream(
    call: &Bound<'_, Call>,
    collector: PyRef<'_, ChunkCollector>,
    capture: bool,
    ended_ns: i64,
    assembled: Option<(Option<usize>, Option<i64>, Option<i64>)>,
) {
    let py = call.py();
    let Ok((span, started)) = call
        .try_borrow()
        .map(|c| (c.span.clone_ref(py).into_bound(py), c.started))
    else {
        return;
    };
    let (first, input, output) = match assembled {
        Some(given) => given,
        None => {
            let (first, input, output, model, failed) = collector.write_answer(py, &span, capture);
            if let Some(failed) = failed {
                dashscope_failure(call, &failed);
            }
            if let Some(model) = model {
                guard("end of a stream", (), || {
                    call.borrow()
                        .metric_attributes
                        .bind(py)
                        .set_item("gen_ai.response.model", model)?;
                    Ok(())
                });
            }
            (first, input, output)
        }
    };
    if let Some(t) = first.and_then(|i| collector.time_at(i)) {
        let ttft = (
            "gen_ai.response.time_to_first_token".to_string(),
            AttrValue::Int(t - started),
        );
        responses::write(&span, vec![ttft]);
    }
    let ttfc = collector.time_at(0).map(|t0| (t0 - started) as f64 / 1e9);
    end_call(call, input, output, ttfc, Some(ended_ns), Some(collector));
}

/// A DashScope response that says the call failed (its status code is not 200): `error.type`
/// = its code (its status when it has none) on the span and the metrics, the HTTP status, and
/// status ERROR with its message. Never raises.
#[pyfunction]
pub fn dashscope_failure(call: &Bound<'_, Call>, response: &Bound<'_, PyAny>) {
    guard("dashscope_failure", (), || {
        let py = call.py();
        let r = Reader::of(response);
        let status = r.get(intern!(py, "status_code"));
        let error_type = r
            .get(intern!(py, "code"))
            .as_ref()
            .and_then(text_of)
            .filter(|c| !c.is_empty())
            .map_or_else(
                || match &status {
                    Some(s) => s.str().map(|s| str_of(&s).into_owned()),
                    None => Ok("None".to_string()),
                },
                Ok,
            )?;
        let message = r
            .get(intern!(py, "message"))
            .as_ref()
            .and_then(text_of)
            .filter(|m| !m.is_empty());
        let c = call.borrow();
        c.metric_attributes
            .bind(py)
            .set_item("error.type", &error_type)?;
        let mut out = vec![("error.type".to_string(), AttrValue::Str(error_type.clone()))];
        if let Some(code) = status.and_then(|s| s.extract::<i64>().ok()) {
            out.push(("http.response.status_code".into(), AttrValue::Int(code)));
        }
        let span = c.span.bind(py);
        responses::write(span, out);
        if let Ok(s) = span.cast::<PySpan>() {
            s.try_borrow_mut()?
                .set_status_text(STATUS_ERROR, Some(message.unwrap_or(error_type)));
        }
        Ok(())
    })
}
