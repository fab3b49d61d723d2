//! A DashScope stream's chunks, read as they pass (kept by the stream proxy's `ChunkCollector`)
//! and written once, at the end, as the span contract's output messages.
//!
//! Each chunk is a whole `GenerationResponse` (a dict subclass): `status_code`, `output`,
//! `usage`, `request_id`. The answer is in `output.choices[i].message` (`result_format`
//! message: `role`, `content`, `tool_calls`) or in `output.text` (result_format text), with a
//! `finish_reason` that is the string "null" until the last chunk. A chunk carries either a
//! delta or the full answer so far: `incremental` (the caller's `incremental_output`) says which
//! when the caller said it; otherwise a text that extends what came before is taken as
//! full-so-far, so that no text is counted twice. A chunk whose `status_code` is not 200 is an
//! error the service reported in the stream: it is kept for the span's status, not read.

use std::collections::BTreeMap;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::convert::str_of;
use super::messages::{items, text_of, Messages, Reader, ToolCallState};

struct Choice {
    role: String,
    text: String,
    tools: BTreeMap<u64, ToolCallState>,
    finish: Option<String>,
}

impl Default for Choice {
    fn default() -> Self {
        Choice {
            role: "assistant".to_string(),
            text: String::new(),
            tools: BTreeMap::new(),
            finish: None,
        }
    }
}

/// How a piece of text or arguments joins what came before it.
fn join(incremental: Option<bool>, previous: &mut String, piece: &str) {
    match incremental {
        Some(true) => previous.push_str(piece),
        Some(false) => {
            previous.clear();
            previous.push_str(piece);
        }
        None if piece.starts_with(previous.as_str()) => {
            previous.clear();
            previous.push_str(piece);
        }
        None => previous.push_str(piece),
    }
}

fn index_of(v: Option<Bound<'_, PyAny>>, default: usize) -> u64 {
    v.and_then(|i| i.extract::<u64>().ok())
        .unwrap_or(default as u64)
}

/// The text of a str, borrowed (no copy is made of what is only compared or appended).
fn with_text<R>(v: &Bound<'_, PyAny>, f: impl FnOnce(&str) -> R) -> Option<R> {
    v.cast::<PyString>().ok().map(|s| f(&str_of(s)))
}

/// Records a finish reason that says the answer finished ("null" says it has not yet).
fn set_finish(finish: &mut Option<String>, v: Option<Bound<'_, PyAny>>) {
    if let Some(v) = v {
        with_text(&v, |f| {
            if !f.is_empty() && f != "null" && finish.as_deref() != Some(f) {
                *finish = Some(f.to_string());
            }
        });
    }
}

#[derive(Default)]
pub struct DashScopeChunks {
    incremental: Option<bool>,
    choices: BTreeMap<u64, Choice>,
    first: Option<usize>,
    usage: Option<Py<PyAny>>,
    failed: Option<Py<PyAny>>,
    position: usize,
}

/// What a stream's chunks add up to.
pub struct DashScopeAnswer<'py> {
    pub messages: Messages,
    /// Position of the first chunk with content (text or a tool call).
    pub first: Option<usize>,
    /// The usage of the last chunk that had one (cumulative: the last one counts).
    pub usage: Option<Bound<'py, PyAny>>,
    /// The last chunk that reported an error.
    pub failed: Option<Bound<'py, PyAny>>,
}

impl DashScopeChunks {
    pub fn new(incremental: Option<bool>) -> Self {
        DashScopeChunks {
            incremental,
            ..Default::default()
        }
    }

    pub fn add(&mut self, chunk: &Bound<'_, PyAny>) {
        let py = chunk.py();
        let position = self.position;
        self.position += 1;
        let reader = Reader::of(chunk);
        if super::responses::dashscope_failed(&reader) {
            self.failed = Some(chunk.clone().unbind());
            return;
        }
        let content = self.add_output(reader.get(intern!(py, "output")), py);
        if content && self.first.is_none() {
            self.first = Some(position);
        }
        if let Some(usage) = reader.get(intern!(py, "usage")) {
            if usage.is_truthy().unwrap_or(false) {
                self.usage = Some(usage.unbind());
            }
        }
    }

    /// One chunk's output; true when it carried content.
    fn add_output(&mut self, output: Option<Bound<'_, PyAny>>, py: Python<'_>) -> bool {
        let output = output.map(|o| Reader::of(&o));
        let choices = output
            .as_ref()
            .and_then(|o| o.get(intern!(py, "choices")))
            .and_then(|c| items(&c))
            .filter(|c| !c.is_empty());
        if let Some(choices) = choices {
            let mut content = false;
            for (position, item) in choices.iter().enumerate() {
                let item = Reader::of(item);
                let index = index_of(item.get(intern!(py, "index")), position);
                if let Some(message) = item.get(intern!(py, "message")) {
                    content |= self.add_message(index, &Reader::of(&message), py);
                }
                let choice = self.choices.entry(index).or_default();
                set_finish(&mut choice.finish, item.get(intern!(py, "finish_reason")));
            }
            return content;
        }
        let incremental = self.incremental;
        let choice = self.choices.entry(0).or_default();
        let Some(output) = output else { return false };
        let mut content = false;
        if let Some(text) = output.get(intern!(py, "text")) {
            with_text(&text, |t| {
                if !t.is_empty() {
                    join(incremental, &mut choice.text, t);
                    content = true;
                }
            });
        }
        set_finish(&mut choice.finish, output.get(intern!(py, "finish_reason")));
        content
    }

    fn add_message(&mut self, index: u64, message: &Reader<'_>, py: Python<'_>) -> bool {
        let incremental = self.incremental;
        let choice = self.choices.entry(index).or_default();
        let mut content = false;
        if let Some(role) = message.get(intern!(py, "role")) {
            with_text(&role, |r| {
                if !r.is_empty() && choice.role != r {
                    choice.role = r.to_string();
                }
            });
        }
        if let Some(c) = message.get(intern!(py, "content")) {
            let mut add = |text: &str| {
                if !text.is_empty() {
                    join(incremental, &mut choice.text, text);
                    content = true;
                }
            };
            match items(&c) {
                // A multimodal answer: [{"text": ...}, ...].
                Some(parts) => {
                    let text = parts
                        .iter()
                        .filter_map(|p| Reader::of(p).get(intern!(py, "text")))
                        .filter_map(|t| with_text(&t, str::to_string))
                        .collect::<String>();
                    add(&text);
                }
                None => {
                    with_text(&c, add);
                }
            }
        }
        let calls = message
            .get(intern!(py, "tool_calls"))
            .and_then(|c| items(&c))
            .filter(|c| !c.is_empty());
        if let Some(calls) = calls {
            content = true;
            for (position, call) in calls.iter().enumerate() {
                let call = Reader::of(call);
                let key = index_of(call.get(intern!(py, "index")), position);
                let entry = choice.tools.entry(key).or_default();
                if let Some(id) = call.get(intern!(py, "id")).as_ref().and_then(text_of) {
                    if !id.is_empty() {
                        entry.id = Some(id);
                    }
                }
                let Some(function) = call.get(intern!(py, "function")) else {
                    continue;
                };
                let function = Reader::of(&function);
                if let Some(name) = function.get(intern!(py, "name")).as_ref().and_then(text_of) {
                    if !name.is_empty() {
                        // Deltas may split a name too; a full-so-far chunk repeats it whole.
                        match (incremental, entry.name.as_mut()) {
                            (Some(true), Some(previous)) => previous.push_str(&name),
                            _ => entry.name = Some(name),
                        }
                    }
                }
                let arguments = function.get(intern!(py, "arguments"));
                if let Some(arguments) = arguments.as_ref().and_then(text_of) {
                    if !arguments.is_empty() {
                        join(incremental, &mut entry.arguments, &arguments);
                    }
                }
            }
        }
        content
    }

    /// The answer, assembled once.
    pub fn finish<'py>(&self, py: Python<'py>, capture: bool) -> DashScopeAnswer<'py> {
        let mut m = Messages::new(capture, true);
        for choice in self.choices.values() {
            m.begin(&choice.role);
            if !choice.text.is_empty() {
                m.text_part_str(&choice.text);
            }
            m.assembled_tool_calls(&choice.tools);
            m.end(choice.finish.as_deref());
        }
        DashScopeAnswer {
            messages: m,
            first: self.first,
            usage: self.usage.as_ref().map(|u| u.bind(py).clone()),
            failed: self.failed.as_ref().map(|f| f.bind(py).clone()),
        }
    }
}
