//! LangChain's objects written as JSON in the span contract's shapes, in one pass: a message
//! (`BaseMessage`: its `type`, its `content` as text or content blocks, an AI message's
//! `tool_calls`, a tool message's `tool_call_id`) as `{role, parts}`, a document as
//! `{id, content, score, metadata}`, a prompt value as its messages (or its text), wherever they
//! sit in a chain's input or output. The classes are LangChain's own, given once by the
//! instrumentation (`langchain_classes`); the rest is the general JSON writer's.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};

use super::convert::{any_text, str_of};
use super::json::JsonWriter;
use crate::media::Source;
use crate::span::LIMITS;

struct Classes {
    message: Py<PyType>,
    document: Py<PyType>,
    prompt_value: Py<PyType>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

/// LangChain's BaseMessage, Document and PromptValue classes (the first call's are kept).
#[pyfunction]
pub fn langchain_classes(
    py: Python<'_>,
    message: Py<PyType>,
    document: Py<PyType>,
    prompt_value: Py<PyType>,
) {
    let _ = CLASSES.set(
        py,
        Classes {
            message,
            document,
            prompt_value,
        },
    );
}

/// A chain's input or output (or a list of messages) as JSON, LangChain's objects in the
/// contract's shapes, every string cut to the content limit.
#[pyfunction]
pub fn langchain_json(value: &Bound<'_, PyAny>) -> String {
    let mut w = JsonWriter::with_objects(LIMITS.content_length(), write_object);
    w.value(value);
    w.out
}

/// A model run's answer as the contract's output messages: each item a message, or a text (a
/// text completion's), with its finish reason (or None).
#[pyfunction]
pub fn langchain_output(items: &Bound<'_, PyList>, finish_reasons: &Bound<'_, PyList>) -> String {
    let mut w = JsonWriter::with_objects(LIMITS.content_length(), write_object);
    w.out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            w.out.push(',');
        }
        let reason = finish_reasons.get_item(i).ok().filter(|r| !r.is_none());
        if item.is_instance_of::<PyString>() {
            w.out.push_str("{\"role\":\"assistant\",\"parts\":[");
            text_part(&mut w, &item);
            w.out.push(']');
        } else {
            write_message(&mut w, &item);
            w.out.pop(); // its closing brace: the finish reason goes in
        }
        if let Some(reason) = reason {
            w.out.push_str(",\"finish_reason\":");
            w.value(&reason);
        }
        w.out.push('}');
    }
    w.out.push(']');
    w.out
}

/// Documents in rank order as the contract's retrieval JSON: `[{"document": {...}}]`.
#[pyfunction]
pub fn langchain_documents(documents: &Bound<'_, PyAny>) -> String {
    let mut w = JsonWriter::with_objects(LIMITS.content_length(), write_object);
    w.out.push('[');
    if let Ok(items) = documents.try_iter() {
        let mut first = true;
        for item in items.flatten() {
            if !first {
                w.out.push(',');
            }
            first = false;
            w.out.push_str("{\"document\":");
            write_document(&mut w, &item);
            w.out.push('}');
        }
    }
    w.out.push(']');
    w.out
}

fn write_object(w: &mut JsonWriter, v: &Bound<'_, PyAny>) -> bool {
    let py = v.py();
    let Some(classes) = CLASSES.get(py) else {
        return false;
    };
    if v.is_instance(classes.message.bind(py)).unwrap_or(false) {
        w.nested(v, |w| write_message(w, v));
    } else if v.is_instance(classes.document.bind(py)).unwrap_or(false) {
        w.nested(v, |w| write_document(w, v));
    } else if v
        .is_instance(classes.prompt_value.bind(py))
        .unwrap_or(false)
    {
        match v.getattr(intern!(py, "messages")) {
            Ok(messages) => w.value(&messages),
            Err(_) => match v.getattr(intern!(py, "text")) {
                Ok(text) => w.value(&text),
                Err(_) => return false,
            },
        }
    } else {
        return false;
    }
    true
}

fn item<'py>(d: &Bound<'py, PyDict>, key: &str) -> Option<Bound<'py, PyAny>> {
    d.get_item(key).ok().flatten().filter(|v| !v.is_none())
}

fn attr<'py>(v: &Bound<'py, PyAny>, name: &Bound<'py, PyString>) -> Option<Bound<'py, PyAny>> {
    v.getattr(name).ok().filter(|a| !a.is_none())
}

/// The conventions' role of a message `type`.
fn role_of(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "human" | "HumanMessageChunk" => "user",
        "ai" | "AIMessageChunk" => "assistant",
        "system" | "SystemMessageChunk" | "developer" => "system",
        "tool" | "ToolMessageChunk" | "function" | "FunctionMessageChunk" => "tool",
        _ => return None,
    })
}

fn write_message(w: &mut JsonWriter, m: &Bound<'_, PyAny>) {
    let py = m.py();
    let kind = attr(m, intern!(py, "type"));
    let kind_text = kind
        .as_ref()
        .and_then(|k| k.cast::<PyString>().ok())
        .map(|k| str_of(k).into_owned())
        .unwrap_or_default();
    w.out.push_str("{\"role\":");
    let role = match role_of(&kind_text) {
        Some(role) => {
            w.out.push('"');
            w.out.push_str(role);
            w.out.push('"');
            role
        }
        None => {
            // A ChatMessage names its role; anything else is known by its type.
            match attr(m, intern!(py, "role")).filter(|r| r.is_instance_of::<PyString>()) {
                Some(r) => w.value(&r),
                None => w.text(&kind_text),
            }
            ""
        }
    };
    w.out.push_str(",\"parts\":[");
    let content = attr(m, intern!(py, "content"));
    if role == "tool" {
        w.out.push_str("{\"type\":\"tool_call_response\",\"id\":");
        // (A pydantic model answers a missing attribute through a Python __getattr__ that
        // raises: only the kinds that have a field are asked for it.)
        let id = match kind_text.as_str() {
            "tool" | "ToolMessageChunk" => attr(m, intern!(py, "tool_call_id")),
            _ => None,
        };
        match id {
            Some(id) => w.value(&id),
            None => w.out.push_str("null"),
        }
        w.out.push_str(",\"response\":");
        w.text(&content.map(|c| content_text(&c)).unwrap_or_default());
        w.out.push('}');
    } else {
        let mut first = true;
        if let Some(content) = &content {
            content_parts(w, content, &mut first);
        }
        let calls = match role {
            "assistant" => attr(m, intern!(py, "tool_calls")),
            _ => None,
        };
        if let Some(calls) = calls {
            if let Ok(calls) = calls.cast::<PyList>() {
                for call in calls.iter() {
                    let Ok(call) = call.cast::<PyDict>() else {
                        continue;
                    };
                    separate(w, &mut first);
                    w.out.push_str("{\"type\":\"tool_call\",\"id\":");
                    field(w, call, "id");
                    w.out.push_str(",\"name\":");
                    field(w, call, "name");
                    w.out.push_str(",\"arguments\":");
                    field(w, call, "args");
                    w.out.push('}');
                }
            }
        }
    }
    w.out.push_str("]}");
}

fn separate(w: &mut JsonWriter, first: &mut bool) {
    if !*first {
        w.out.push(',');
    }
    *first = false;
}

fn field(w: &mut JsonWriter, d: &Bound<'_, PyDict>, key: &str) {
    match item(d, key) {
        Some(v) => w.value(&v),
        None => w.out.push_str("null"),
    }
}

fn text_part(w: &mut JsonWriter, text: &Bound<'_, PyAny>) {
    w.out.push_str("{\"type\":\"text\",\"content\":");
    w.value(text);
    w.out.push('}');
}

/// The content blocks of a message's content given as a list or tuple (none for anything else:
/// a one-shot iterable is never consumed).
fn blocks<'py>(content: &Bound<'py, PyAny>) -> Vec<Bound<'py, PyAny>> {
    if let Ok(l) = content.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = content.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        Vec::new()
    }
}

/// The parts of a message's content: a string, or a list of content blocks.
fn content_parts(w: &mut JsonWriter, content: &Bound<'_, PyAny>, first: &mut bool) {
    if let Ok(s) = content.cast::<PyString>() {
        if s.len().unwrap_or(0) > 0 {
            separate(w, first);
            text_part(w, content);
        }
        return;
    }
    for block in blocks(content) {
        if block.is_instance_of::<PyString>() {
            separate(w, first);
            text_part(w, &block);
        } else if let Ok(d) = block.cast::<PyDict>() {
            block_part(w, d, first);
        }
    }
}

/// One content block (OpenAI-style or LangChain's standard blocks) as a part.
fn block_part(w: &mut JsonWriter, d: &Bound<'_, PyDict>, first: &mut bool) {
    let Some(kind) = item(d, "type") else {
        return;
    };
    let kind_text = any_text(&kind).into_owned();
    match kind_text.as_str() {
        // The message's tool_calls say these (once).
        "tool_call" | "tool_use" => {}
        "text" => {
            separate(w, first);
            w.out.push_str("{\"type\":\"text\",\"content\":");
            field(w, d, "text");
            w.out.push('}');
        }
        "image_url" => {
            // OpenAI's shape: {image_url: {url}} (or the URL itself).
            let url = item(d, "image_url").map(|image| match image.cast::<PyDict>() {
                Ok(image) => item(image, "url"),
                Err(_) => Some(image),
            });
            if let Some(url) = url.flatten() {
                separate(w, first);
                w.media("image", &Source::of_url(&any_text(&url)));
            }
        }
        "image" | "audio" | "video" | "file" => {
            // LangChain's standard blocks: {url} | {base64 (or data), mime_type} | {file_id (or
            // id)}, the older {source_type: "url" | "base64" | "id", ...} spelling included.
            let mime = item(d, "mime_type").map(|m| any_text(&m).into_owned());
            if let Some(url) = item(d, "url") {
                separate(w, first);
                w.media(&kind_text, &Source::of_url(&any_text(&url)));
            } else if let Some(data) = item(d, "base64").or_else(|| item(d, "data")) {
                separate(w, first);
                let content = any_text(&data);
                let blob = Source::Blob {
                    mime_type: mime.as_deref(),
                    content: &content,
                };
                w.media(&kind_text, &blob);
            } else if let Some(id) = item(d, "file_id").or_else(|| item(d, "id")) {
                separate(w, first);
                w.media(&kind_text, &Source::File(&any_text(&id)));
            }
        }
        "reasoning" => {
            separate(w, first);
            w.out.push_str("{\"type\":\"reasoning\",\"content\":");
            match item(d, "reasoning").or_else(|| item(d, "text")) {
                Some(r) => w.value(&r),
                None => w.out.push_str("null"),
            }
            w.out.push('}');
        }
        other => {
            separate(w, first);
            w.out.push_str("{\"type\":");
            w.text(other);
            w.out.push('}');
        }
    }
}

/// A message content's text: the string, or its text blocks joined ("" for anything else).
#[pyfunction]
#[pyo3(name = "langchain_text")]
pub fn content_text(content: &Bound<'_, PyAny>) -> String {
    if let Ok(s) = content.cast::<PyString>() {
        return str_of(s).into_owned();
    }
    let mut out = String::new();
    for block in blocks(content) {
        if let Ok(s) = block.cast::<PyString>() {
            out.push_str(&str_of(s));
        } else if let Ok(d) = block.cast::<PyDict>() {
            let is_text = item(d, "type")
                .and_then(|k| k.cast::<PyString>().ok().map(|k| str_of(k) == "text"))
                .unwrap_or(false);
            if let (true, Some(text)) = (is_text, item(d, "text")) {
                if let Ok(text) = text.cast::<PyString>() {
                    out.push_str(&str_of(text));
                }
            }
        }
    }
    out
}

fn write_document(w: &mut JsonWriter, doc: &Bound<'_, PyAny>) {
    let py = doc.py();
    let metadata = attr(doc, intern!(py, "metadata"));
    let metadata = metadata.as_ref().and_then(|m| m.cast::<PyDict>().ok());
    w.out.push_str("{\"content\":");
    match attr(doc, intern!(py, "page_content")) {
        Some(content) => w.value(&content),
        None => w.out.push_str("null"),
    }
    let id = attr(doc, intern!(py, "id")).or_else(|| metadata.and_then(|m| item(m, "id")));
    if let Some(id) = id {
        w.out.push_str(",\"id\":");
        w.value(&id);
    }
    if let Some(metadata) = metadata {
        let score = item(metadata, "relevance_score").or_else(|| item(metadata, "score"));
        if let Some(score) = score
            .filter(|s| s.extract::<f64>().is_ok() && !s.is_instance_of::<pyo3::types::PyBool>())
        {
            w.out.push_str(",\"score\":");
            w.value(&score);
        }
        if !metadata.is_empty() {
            w.out.push_str(",\"metadata\":");
            w.value(metadata.as_any());
        }
    }
    w.out.push('}');
}
