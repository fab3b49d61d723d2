//! The binding layer: `llmprobe._core`. Thin by design; the work is in the plain Rust modules.

mod chunks;
mod context_scope;
mod convert;
mod dashscope_chunks;
mod event_router;
mod hook;
mod json;
mod langchain;
mod messages;
mod model_step;
mod openai_request;
mod responses;
mod runs;
mod span;
mod stream;
mod tool_definitions;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::config::Settings;
use crate::export::ResourceInfo;
use crate::pipeline;
use crate::span::LIMITS;

static SETTINGS: RwLock<Option<Arc<Settings>>> = RwLock::new(None);

fn settings() -> Arc<Settings> {
    if let Some(s) = SETTINGS.read().ok().and_then(|g| g.clone()) {
        return s;
    }
    Arc::new(Settings::default())
}

/// Runs `f`; a Python error or a Rust panic inside is logged once per place and replaced by
/// `default`, so that nothing llmprobe does can raise into the application.
pub(crate) fn guard<T>(what: &'static str, default: T, f: impl FnOnce() -> PyResult<T>) -> T {
    static LOGGED: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let problem = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => return v,
        Ok(Err(e)) => e.to_string(),
        Err(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into()),
    };
    if let Ok(mut g) = LOGGED.lock() {
        if g.get_or_insert_with(HashSet::new).insert(what) {
            eprintln!(
                "llmprobe: error: internal error in {what} (ignored, reported once): {problem}"
            );
        }
    }
    default
}

#[pyfunction]
fn configure(py: Python<'_>, env: &Bound<'_, PyAny>) -> PyResult<(Py<PyDict>, Vec<String>)> {
    let mut map = HashMap::new();
    let items = match env.cast::<PyDict>() {
        Ok(d) => d.items().into_any(),
        Err(_) => env.call_method0("items")?,
    };
    for item in items.try_iter()? {
        let (k, v): (String, String) = item?.extract()?;
        map.insert(k, v);
    }
    let (s, warnings) = Settings::from_env(&map);
    LIMITS.apply(&s);
    let d = PyDict::new(py);
    d.set_item("sdk_disabled", s.sdk_disabled)?;
    d.set_item(
        "disabled_instrumentations",
        PyList::new(py, &s.disabled_instrumentations)?,
    )?;
    d.set_item("app_type", s.app_type.clone())?;
    d.set_item("capture_content", s.capture_content)?;
    d.set_item("content_max_length", s.content_max_length)?;
    d.set_item("service_name", s.service_name.clone())?;
    d.set_item("split_app", s.split_app)?;
    for (k, v) in s.summary() {
        d.set_item(k, v)?;
    }
    *SETTINGS.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(s));
    Ok((d.unbind(), warnings))
}

#[pyfunction]
fn start(resource: &Bound<'_, PyAny>) -> PyResult<()> {
    let given = convert::attrs_of(Some(resource))?;
    let s = settings();
    let r = ResourceInfo::build(given, &s);
    pipeline::start(s, Arc::new(r));
    Ok(())
}

#[pyfunction]
#[pyo3(signature = (timeout=2.0))]
fn force_flush(py: Python<'_>, timeout: f64) -> bool {
    let t = Duration::from_secs_f64(timeout.max(0.0));
    py.detach(|| pipeline::force_flush(t))
}

#[pyfunction]
#[pyo3(signature = (timeout=None))]
fn shutdown(py: Python<'_>, timeout: Option<f64>) {
    let t = timeout.map(|t| Duration::from_secs_f64(t.max(0.0)));
    py.detach(|| pipeline::shutdown(t));
}

#[pyfunction]
fn after_fork_in_child() {
    pipeline::after_fork_in_child();
}

#[pyfunction]
fn stats(py: Python<'_>) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in pipeline::STATS.snapshot() {
        d.set_item(k, v)?;
    }
    Ok(d.unbind())
}

#[pyfunction]
#[pyo3(signature = (value, max_length=None))]
fn to_json(value: &Bound<'_, PyAny>, max_length: Option<usize>) -> String {
    let mut w = json::JsonWriter::new(max_length.unwrap_or_else(|| LIMITS.content_length()));
    w.value(value);
    w.out
}

#[pyfunction]
#[pyo3(signature = (value, max_length=None))]
fn truncate(value: &Bound<'_, PyString>, max_length: Option<usize>) -> String {
    convert::str_prefix(
        value,
        Some(max_length.unwrap_or_else(|| LIMITS.content_length())),
    )
}

#[pyfunction]
#[pyo3(signature = (attributes, duration, input_tokens=None, output_tokens=None, time_to_first_chunk=None, chunks=None))]
fn record_genai_metrics(
    attributes: &Bound<'_, PyAny>,
    duration: f64,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    time_to_first_chunk: Option<f64>,
    chunks: Option<PyRef<'_, chunks::ChunkCollector>>,
) {
    guard("record_genai_metrics", (), || {
        let mut attrs = Vec::new();
        convert::for_each_attr(attributes, |k, v| {
            // Metric attributes are always plain strings, whatever the caller passed.
            let text = match v {
                crate::span::AttrValue::Str(s) => s,
                crate::span::AttrValue::Int(i) => i.to_string(),
                crate::span::AttrValue::Bool(b) => b.to_string(),
                crate::span::AttrValue::Float(f) => f.to_string(),
                _ => return,
            };
            attrs.push((k, text));
        })?;
        pipeline::submit_metrics(Box::new(crate::metrics::GenAiPoint {
            attributes: attrs,
            duration,
            input_tokens,
            output_tokens,
            time_to_first_chunk,
            time_per_output_chunk: chunks.map(|c| c.gaps()).unwrap_or_default(),
        }));
        Ok(())
    });
}

/// A chat request's messages: (their JSON, or None with capture off; the characters of their
/// text), or None when they are not a list or tuple.
#[pyfunction]
#[pyo3(signature = (messages, capture, dashscope=false))]
fn chat_input(
    messages: &Bound<'_, PyAny>,
    capture: bool,
    dashscope: bool,
) -> Option<(Option<String>, usize)> {
    guard("chat_input", None, || {
        Ok(messages::chat_input(messages, capture, dashscope).map(|m| {
            let chars = m.chars;
            (m.json(), chars)
        }))
    })
}

/// A media part for messages built in Python (the Responses API's, DashScope's embedding
/// inputs), as `crate::media` writes them: from a `url` (a link or a data URL), else from an
/// uploaded file's `file_id`, else from inline `audio` (`{data, format}`); every string cut to
/// the content limit. None without any of them.
#[pyfunction]
#[pyo3(signature = (kind, url=None, file_id=None, audio=None))]
fn media_part<'py>(
    py: Python<'py>,
    kind: &str,
    url: Option<&Bound<'py, PyAny>>,
    file_id: Option<&Bound<'py, PyAny>>,
    audio: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    use crate::media::{modality, Source};
    let url_text = url.map(convert::any_text);
    let id_text = file_id.map(convert::any_text);
    let audio = audio.map(messages::inline_audio);
    let audio_text = audio
        .as_ref()
        .map(|(data, mime_type)| (data.as_ref().map(convert::any_text), mime_type));
    let source = match (&url_text, &id_text, &audio_text) {
        (Some(url), _, _) => Source::of_url(url),
        (None, Some(id), _) => Source::File(id),
        (None, None, Some((data, mime_type))) => Source::Blob {
            mime_type: mime_type.as_deref(),
            content: data.as_deref().unwrap_or(""),
        },
        (None, None, None) => return Ok(None),
    };
    let max = LIMITS.content_length();
    let cut = |s: &str| crate::content::truncate_str(s, max).to_string();
    let (type_name, key) = source.type_and_key();
    let d = PyDict::new(py);
    d.set_item("type", type_name)?;
    d.set_item("modality", modality(kind, source.mime_type()))?;
    if let Some(mime) = source.mime_type() {
        d.set_item("mime_type", cut(mime))?;
    }
    d.set_item(key, cut(source.text()))?;
    Ok(Some(d))
}

/// A provider's finish reason in the conventions' words (see `crate::finish`).
#[pyfunction]
fn finish_reason(reason: &str) -> &str {
    crate::finish::conventions(reason)
}

/// What an output-messages writer yields: (JSON or None, answer text, finish reasons,
/// characters, whether any message has parts).
pub(crate) type Output = (Option<String>, String, Vec<String>, usize, bool);

pub(crate) fn output_of(mut m: messages::Messages) -> Output {
    let answer = m.answer();
    let reasons = std::mem::take(&mut m.finish_reasons);
    let (chars, has_parts) = (m.chars, m.has_parts);
    (m.json(), answer, reasons, chars, has_parts)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<span::PySpan>()?;
    m.add_class::<chunks::ChunkCollector>()?;
    m.add_class::<chunks::ChunkIter>()?;
    m.add_class::<stream::StreamState>()?;
    m.add_class::<hook::ModelHook>()?;
    m.add_class::<hook::Call>()?;
    m.add_class::<model_step::ModelStep>()?;
    m.add_class::<event_router::EventRouter>()?;
    m.add_class::<context_scope::ContextScope>()?;
    m.add_class::<runs::Run>()?;
    m.add_class::<runs::RunTable>()?;
    m.add_class::<openai_request::OpenAiBefore>()?;
    m.add_class::<openai_request::OpenAiRequest>()?;
    m.add_function(wrap_pyfunction!(hook::end_call, m)?)?;
    m.add_function(wrap_pyfunction!(hook::end_stream, m)?)?;
    m.add_function(wrap_pyfunction!(hook::dashscope_failure, m)?)?;
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    m.add_function(wrap_pyfunction!(start, m)?)?;
    m.add_function(wrap_pyfunction!(force_flush, m)?)?;
    m.add_function(wrap_pyfunction!(shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(after_fork_in_child, m)?)?;
    m.add_function(wrap_pyfunction!(stats, m)?)?;
    m.add_function(wrap_pyfunction!(to_json, m)?)?;
    m.add_function(wrap_pyfunction!(truncate, m)?)?;
    m.add_function(wrap_pyfunction!(record_genai_metrics, m)?)?;
    m.add_function(wrap_pyfunction!(chat_input, m)?)?;
    m.add_function(wrap_pyfunction!(media_part, m)?)?;
    m.add_function(wrap_pyfunction!(finish_reason, m)?)?;
    m.add_function(wrap_pyfunction!(tool_definitions::tool_definitions, m)?)?;
    m.add_function(wrap_pyfunction!(langchain::langchain_classes, m)?)?;
    m.add_function(wrap_pyfunction!(langchain::langchain_json, m)?)?;
    m.add_function(wrap_pyfunction!(langchain::langchain_documents, m)?)?;
    m.add_function(wrap_pyfunction!(langchain::langchain_output, m)?)?;
    m.add_function(wrap_pyfunction!(langchain::content_text, m)?)?;
    m.add_function(wrap_pyfunction!(responses::openai_chat_response, m)?)?;
    m.add_function(wrap_pyfunction!(responses::dashscope_response, m)?)?;
    m.add_function(wrap_pyfunction!(responses::usage, m)?)?;
    use crate::span::*;
    // The package's version (pyproject.toml and Cargo.toml carry the same; a unit test checks):
    // read from here, start-up needs no importlib.metadata.
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("KIND_INTERNAL", KIND_INTERNAL)?;
    m.add("KIND_SERVER", KIND_SERVER)?;
    m.add("KIND_CLIENT", KIND_CLIENT)?;
    m.add("KIND_PRODUCER", KIND_PRODUCER)?;
    m.add("KIND_CONSUMER", KIND_CONSUMER)?;
    m.add("STATUS_UNSET", STATUS_UNSET)?;
    m.add("STATUS_OK", STATUS_OK)?;
    m.add("STATUS_ERROR", STATUS_ERROR)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::guard;

    #[test]
    fn guard_turns_a_panic_into_the_default() {
        let got = guard("test.panic", 7, || -> pyo3::PyResult<i32> {
            panic!("injected")
        });
        assert_eq!(got, 7);
        // The same place panicking again is still contained (and not logged twice).
        assert_eq!(
            guard("test.panic", 8, || -> pyo3::PyResult<i32> {
                panic!("again")
            }),
            8
        );
        assert_eq!(guard("test.ok", 0, || Ok(3)), 3);
    }
}
