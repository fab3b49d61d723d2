//! `llmprobe._core.Span`: a span owned by Rust, subclassed in Python by the OpenTelemetry
//! bridge. Every method is guarded: a failure inside llmprobe is logged and swallowed, never
//! raised into the application.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use super::convert::{any_text, attrs_of, for_each_attr, str_of, str_prefix, to_attr};
use super::guard;
use super::json::JsonWriter;
use crate::span::{Link, SpanRecord, LIMITS};
use crate::{ids, pipeline, span};

#[pyclass(subclass, module = "llmprobe._core", name = "Span")]
pub struct PySpan {
    /// None once ended, and for spans the sampler dropped.
    record: Option<Box<SpanRecord>>,
    trace_id: u128,
    span_id: u64,
    parent_span_id: u64,
    sampled: bool,
    name: String,
    /// Kept here as well as in the record: children inherit it after this span ended.
    trace_state: Option<String>,
    /// The span kind (span::KIND_*), also for a sampled-out span.
    kind: u8,
    /// The service name set on this span or inherited from its local parent (see
    /// set_service_name); kept here as well as in the record, as the trace state is.
    service_name: Option<Arc<str>>,
}

/// A parent's trace id, span id, sampled flag and whether it is remote.
type ParentIds = (u128, u64, bool, bool);

/// What a span takes from its parent: the ids, and a local parent's trace state and service
/// name.
type Parent = (Option<ParentIds>, Option<String>, Option<Arc<str>>);

/// The parent's (trace id, span id, sampled, remote), from a local span or a tuple, and a
/// local parent's trace state and service name.
fn parent_of(parent: &Bound<'_, PyAny>) -> Parent {
    if parent.is_none() {
        return (None, None, None);
    }
    if let Ok(p) = parent.cast::<PySpan>() {
        let p = p.borrow();
        return (
            Some((p.trace_id, p.span_id, p.sampled, false)),
            p.trace_state.clone(),
            p.service_name.clone(),
        );
    }
    if let Ok(t) = parent.cast::<PyTuple>() {
        if let Ok((trace_id, span_id, sampled, remote)) = t.extract::<(u128, u64, bool, bool)>() {
            if trace_id != 0 && span_id != 0 {
                return (Some((trace_id, span_id, sampled, remote)), None, None);
            }
        }
    }
    (None, None, None)
}

/// Captured content as an attribute's text, cut to the content limit, and its mime type: a str
/// as itself (text/plain), anything else as JSON with each string cut (application/json).
fn content_of(value: &Bound<'_, PyAny>) -> (String, &'static str) {
    let max = LIMITS.content_length();
    match value.cast::<PyString>() {
        Ok(s) => (str_prefix(s, Some(max)), "text/plain"),
        Err(_) => {
            let mut w = JsonWriter::new(max);
            w.value(value);
            (w.out, "application/json")
        }
    }
}

#[pymethods]
impl PySpan {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (name, kind=0, parent=None, attributes=None, start_time=None, links=None, scope=None, scope_version=None, trace_state=None))]
    fn new(
        name: &Bound<'_, PyAny>,
        kind: u8,
        parent: Option<&Bound<'_, PyAny>>,
        attributes: Option<&Bound<'_, PyAny>>,
        start_time: Option<u64>,
        links: Option<&Bound<'_, PyAny>>,
        scope: Option<&Bound<'_, PyString>>,
        scope_version: Option<&Bound<'_, PyString>>,
        trace_state: Option<&Bound<'_, PyString>>,
    ) -> PySpan {
        let name = any_text(name).into_owned();
        let (parent, inherited_state, service_name) = parent
            .map(|p| guard("Span()", (None, None, None), || Ok(parent_of(p))))
            .unwrap_or((None, None, None));
        let trace_state = trace_state
            .map(|t| str_of(t).into_owned())
            .filter(|t| !t.is_empty())
            .or(inherited_state);
        let trace_id = parent.map(|p| p.0).unwrap_or_else(ids::trace_id);
        let span_id = ids::span_id();
        let sampled = LIMITS.sample(trace_id, parent.map(|p| p.2));
        let parent_span_id = parent.map(|p| p.1).unwrap_or(0);
        pipeline::STATS
            .spans_started
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let record = if sampled {
            guard("Span()", None, || {
                let mut r = SpanRecord::new(
                    trace_id,
                    span_id,
                    parent_span_id,
                    parent.map(|p| p.3).unwrap_or(false),
                    name.clone(),
                    kind.min(span::KIND_CONSUMER),
                    start_time.unwrap_or_else(span::now_ns),
                );
                if let Some(a) = attributes {
                    // A mapping's keys are distinct and the span has none yet.
                    for_each_attr(a, |k, v| r.push_new_attribute(k, v))?;
                }
                if let Some(links) = links {
                    if !links.is_none() {
                        for item in links.try_iter()? {
                            let item = item?;
                            let (t, s, a): (u128, u64, Option<Bound<'_, PyAny>>) =
                                item.extract()?;
                            r.add_link(Link {
                                trace_id: t,
                                span_id: s,
                                attributes: attrs_of(a.as_ref())?,
                            });
                        }
                    }
                }
                if let Some(scope) = scope {
                    r.scope = str_of(scope).into_owned();
                }
                if let Some(v) = scope_version {
                    r.scope_version = str_of(v).into_owned();
                }
                if let Some(t) = &trace_state {
                    r.trace_state = t.clone();
                }
                r.service_name = service_name.clone();
                Ok(Some(Box::new(r)))
            })
        } else {
            None
        };
        PySpan {
            record,
            trace_id,
            span_id,
            parent_span_id,
            sampled,
            name,
            trace_state,
            kind: kind.min(span::KIND_CONSUMER),
            service_name,
        }
    }

    /// The span kind (the bridge's `kind` property reads it).
    #[getter]
    fn _kind(&self) -> u8 {
        self.kind
    }

    /// Changes the span kind (KIND_*): a framework's step learns only at its end whether it
    /// was the model call itself (CLIENT) or the parent of the SDK's call (INTERNAL).
    fn _set_kind(&mut self, kind: u8) {
        self.kind = kind.min(span::KIND_CONSUMER);
        if let Some(r) = self.record.as_mut() {
            r.kind = self.kind;
        }
    }

    #[getter]
    fn trace_id(&self) -> u128 {
        self.trace_id
    }

    #[getter]
    fn span_id(&self) -> u64 {
        self.span_id
    }

    #[getter]
    fn parent_span_id(&self) -> Option<u64> {
        (self.parent_span_id != 0).then_some(self.parent_span_id)
    }

    #[getter]
    fn sampled(&self) -> bool {
        self.sampled
    }

    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    #[getter]
    fn ended(&self) -> bool {
        self.sampled && self.record.is_none()
    }

    fn is_recording(&self) -> bool {
        self.record.is_some()
    }

    fn set_attribute(&mut self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) {
        let Some(r) = self.record.as_mut() else {
            return;
        };
        if let (Ok(k), Some(v)) = (key.cast::<PyString>(), to_attr(value)) {
            r.set_attribute(str_of(k).into_owned(), v);
        }
    }

    fn set_attributes(&mut self, attributes: &Bound<'_, PyAny>) {
        let Some(r) = self.record.as_mut() else {
            return;
        };
        guard("Span.set_attributes", (), || {
            for_each_attr(attributes, |k, v| r.set_attribute(k, v))
        });
    }

    /// A content attribute: text cut to the content limit; a structure written as JSON with
    /// each string cut.
    fn set_content(&mut self, key: &Bound<'_, PyString>, value: &Bound<'_, PyAny>) {
        let Some(r) = self.record.as_mut() else {
            return;
        };
        let (text, _) = content_of(value);
        r.set_attribute(str_of(key).into_owned(), span::AttrValue::Str(text));
    }

    /// A step's inputs and outputs as `input.value` / `output.value` with their mime types
    /// (text as text/plain, anything else as JSON), each only when it is not empty: what a
    /// framework's node or chain span carries, in one call.
    fn set_io(&mut self, inputs: &Bound<'_, PyAny>, outputs: &Bound<'_, PyAny>) {
        let Some(r) = self.record.as_mut() else {
            return;
        };
        for (value, key, mime_key) in [
            (inputs, "input.value", "input.mime_type"),
            (outputs, "output.value", "output.mime_type"),
        ] {
            if value.is_truthy().unwrap_or(false) {
                let (text, mime) = content_of(value);
                r.set_attribute(key.to_owned(), span::AttrValue::Str(text));
                r.set_attribute(mime_key.to_owned(), span::AttrValue::Str(mime.to_owned()));
            }
        }
    }

    #[pyo3(signature = (name, attributes=None, timestamp=None))]
    fn add_event(
        &mut self,
        name: &Bound<'_, PyString>,
        attributes: Option<&Bound<'_, PyAny>>,
        timestamp: Option<u64>,
    ) {
        let Some(r) = self.record.as_mut() else {
            return;
        };
        guard("Span.add_event", (), || {
            let attrs = attrs_of(attributes)?;
            r.add_event(
                str_of(name).into_owned(),
                timestamp.unwrap_or_else(span::now_ns),
                attrs,
            );
            Ok(())
        });
    }

    #[pyo3(signature = (trace_id, span_id, attributes=None))]
    fn add_link(&mut self, trace_id: u128, span_id: u64, attributes: Option<&Bound<'_, PyAny>>) {
        let Some(r) = self.record.as_mut() else {
            return;
        };
        guard("Span.add_link", (), || {
            r.add_link(Link {
                trace_id,
                span_id,
                attributes: attrs_of(attributes)?,
            });
            Ok(())
        });
    }

    #[pyo3(signature = (code, description=None))]
    fn set_status(&mut self, code: u8, description: Option<&Bound<'_, PyAny>>) {
        let Some(r) = self.record.as_mut() else {
            return;
        };
        let description = description
            .filter(|d| !d.is_none())
            .map(|d| any_text(d).into_owned());
        r.set_status(code, description);
    }

    fn update_name(&mut self, name: &Bound<'_, PyString>) {
        let Some(r) = self.record.as_mut() else {
            return;
        };
        let name = str_of(name).into_owned();
        r.name = name.clone();
        self.name = name;
    }

    /// With PROFILER_GENAI_SPLITAPP_ENABLE, reports this span, and the spans started under it
    /// from now on, under the service `name`: the process's resource with that `service.name`.
    /// An empty name gives the process's service back. A no-op when the setting is off, or once
    /// the span has ended.
    fn set_service_name(&mut self, name: &Bound<'_, PyAny>) {
        if !LIMITS.split_app() || self.ended() {
            return;
        }
        guard("Span.set_service_name", (), || {
            let name = str_of(name.cast::<PyString>()?);
            if self.service_name.as_deref() == (!name.is_empty()).then_some(&*name) {
                return Ok(());
            }
            let service = (!name.is_empty()).then(|| Arc::<str>::from(&*name));
            if let Some(r) = self.record.as_mut() {
                r.service_name = service.clone();
            }
            self.service_name = service;
            Ok(())
        });
    }

    #[pyo3(signature = (end_time=None))]
    pub(super) fn end(&mut self, end_time: Option<u64>) {
        let Some(mut r) = self.record.take() else {
            return;
        };
        r.end_ns = end_time.unwrap_or_else(span::now_ns).max(r.start_ns);
        pipeline::submit(r);
    }
}

impl PySpan {
    /// Whether the span started in this process, not in the parent of a fork (whose span it
    /// is: the child neither exports it nor records its call's metrics). A sampled-out span
    /// keeps no record, and counts as this process's.
    pub(super) fn started_here(&self) -> bool {
        self.record
            .as_ref()
            .is_none_or(|r| r.generation == span::process_generation())
    }

    /// Whether the span carries a W3C trace state (its children inherit it).
    pub(super) fn has_trace_state(&self) -> bool {
        self.trace_state.is_some()
    }

    /// Whether a span can be started under `parent` by the core directly: no parent (None), or
    /// a core span without a trace state. Any other parent (remote, another implementation's,
    /// one whose trace state the bridge keeps) goes through the Tracer's start_span.
    pub(super) fn takes_as_parent(parent: &Bound<'_, PyAny>) -> bool {
        parent.is_none()
            || parent
                .cast::<PySpan>()
                .is_ok_and(|s| s.try_borrow().is_ok_and(|s| !s.has_trace_state()))
    }

    /// set_status() from Rust.
    pub(super) fn set_status_text(&mut self, code: u8, description: Option<String>) {
        if let Some(r) = self.record.as_mut() {
            r.set_status(code, description);
        }
    }

    /// Attributes gathered in Rust (an answer read in one crossing); a span that ended or was
    /// sampled out records none.
    pub(super) fn set_all(&mut self, attributes: span::Attributes) {
        if let Some(r) = self.record.as_mut() {
            for (k, v) in attributes {
                r.set_attribute(k, v);
            }
        }
    }
}
