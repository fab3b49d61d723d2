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
use pyo3::types::{PyDict, PyString};

use super::convert::str_of;
use super::messages::{
    each_item, field, items, items_len, only_item, text_of, Messages, Reader, ToolCallState,
};

#[derive(Default)]
struct Choice {
    /// None until a chunk names it (an answer's role is "assistant" when none did).
    role: Option<String>,
    text: String,
    tools: BTreeMap<u64, ToolCallState>,
    finish: Option<String>,
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

/// One choice's message of a chunk into `choice`; true when it carried content. The role is
/// read until one is seen (every chunk repeats it).
fn add_message(
    choice: &mut Choice,
    incremental: Option<bool>,
    message: &Reader<'_>,
    py: Python<'_>,
) -> bool {
    let mut content = false;
    if choice.role.is_none() {
        if let Some(role) = message.get(intern!(py, "role")) {
            with_text(&role, |r| {
                if !r.is_empty() {
                    choice.role = Some(r.to_string());
                }
            });
        }
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
    // A message of role and content only (most chunks) has no tool calls to look up.
    let more = message.keys().is_none_or(|n| n > 2);
    if let Some(calls) = more
        .then(|| message.get(intern!(py, "tool_calls")))
        .flatten()
    {
        each_item(&calls, |position, call| {
            content = true;
            let call = Reader::of(call);
            let key = index_of(call.get(intern!(py, "index")), position);
            let entry = choice.tools.entry(key).or_default();
            if let Some(id) = call.get(intern!(py, "id")).as_ref().and_then(text_of) {
                if !id.is_empty() {
                    entry.id = Some(id);
                }
            }
            let Some(function) = call.get(intern!(py, "function")) else {
                return;
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
        });
    }
    content
}

#[derive(Default)]
pub struct DashScopeChunks {
    incremental: Option<bool>,
    choices: BTreeMap<u64, Choice>,
    first: Option<usize>,
    /// The last chunk that had an output: its usage is the stream's.
    answered: Option<Py<PyAny>>,
    failed: Option<Py<PyAny>>,
    position: usize,
}

/// What a stream's chunks add up to.
pub struct DashScopeAnswer<'py> {
    pub messages: Messages,
    /// Position of the first chunk with content (text or a tool call).
    pub first: Option<usize>,
    /// The usage of the last chunk with an output (cumulative: the last one counts).
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

    /// One chunk, read as it passes: only what changes from chunk to chunk (the answer's
    /// pieces and finish reasons). The usage, cumulative, is read once, at the end, from the
    /// last chunk that had an output; a chunk without output is checked for an error.
    pub fn add(&mut self, chunk: &Bound<'_, PyAny>) {
        let py = chunk.py();
        let position = self.position;
        self.position += 1;
        if self.add_plain(chunk, position) {
            return;
        }
        let reader = Reader::of(chunk);
        let Some(output) = reader.get(intern!(py, "output")) else {
            if super::responses::dashscope_failed(&reader) {
                self.failed = Some(chunk.clone().unbind());
            }
            return;
        };
        self.answered = Some(chunk.clone().unbind());
        if self.add_output(&Reader::of(&output), py) && self.first.is_none() {
            self.first = Some(position);
        }
    }

    /// Most chunks of a chat stream: one choice (whose role is known) with a message of role
    /// and text only. Such a chunk is read here with borrowed lookups, about half the cost of
    /// the general reading below; false leaves the chunk, untouched, to it. Its finish reason
    /// ("null" until the last chunk) is left to finish(), which reads the last chunk's.
    fn add_plain(&mut self, chunk: &Bound<'_, PyAny>, position: usize) -> bool {
        let py = chunk.py();
        if self.choices.len() != 1 {
            return false;
        }
        let incremental = self.incremental;
        let Some(choice) = self.choices.get_mut(&0).filter(|c| c.role.is_some()) else {
            return false;
        };
        let Ok(fields) = chunk.cast::<PyDict>() else {
            return false;
        };
        let item = field(fields.as_borrowed(), intern!(py, "output"))
            .and_then(|o| field(o.cast::<PyDict>().ok()?, intern!(py, "choices")))
            .and_then(only_item);
        let Some(item) = item.and_then(|i| i.cast::<PyDict>().ok()) else {
            return false;
        };
        // Its finish reason is not looked at: the last chunk's is read at the end (finish()).
        let message = field(item, intern!(py, "message")).and_then(|m| m.cast::<PyDict>().ok());
        let Some(message) = message.filter(|m| m.len() <= 2) else {
            return false;
        };
        let Some(text) = field(message, intern!(py, "content")) else {
            return false;
        };
        let Some(added) = with_text(&text, |t| {
            join(incremental, &mut choice.text, t);
            !t.is_empty()
        }) else {
            return false;
        };
        if added && self.first.is_none() {
            self.first = Some(position);
        }
        self.answered = Some(chunk.clone().unbind());
        true
    }

    /// One chunk's output; true when it carried content.
    fn add_output(&mut self, output: &Reader<'_>, py: Python<'_>) -> bool {
        let incremental = self.incremental;
        let mut content = false;
        let mut listed = false;
        if let Some(choices) = output.get(intern!(py, "choices")) {
            let several = items_len(&choices) > 1;
            each_item(&choices, |position, item| {
                listed = true;
                let item = Reader::of(item);
                // One choice per chunk is choice 0 (DashScope numbers choices by position).
                let index = match several {
                    true => index_of(item.get(intern!(py, "index")), position),
                    false => 0,
                };
                let choice = self.choices.entry(index).or_default();
                if let Some(message) = item.get(intern!(py, "message")) {
                    content |= add_message(choice, incremental, &Reader::of(&message), py);
                }
                set_finish(&mut choice.finish, item.get(intern!(py, "finish_reason")));
            });
        }
        if listed {
            return content;
        }
        let choice = self.choices.entry(0).or_default();
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

    /// The finish reason of the last chunk with an output, when the stream had one choice and
    /// its last chunk was read by add_plain (which does not look at finish reasons).
    fn last_finish(&self, py: Python<'_>) -> Option<String> {
        if self.choices.len() != 1 || self.choices.get(&0)?.finish.is_some() {
            return None;
        }
        let output = Reader::of(self.answered.as_ref()?.bind(py)).get(intern!(py, "output"))?;
        let choices = Reader::of(&output).get(intern!(py, "choices"))?;
        let mut finish = None;
        each_item(&choices, |_, item| {
            set_finish(
                &mut finish,
                Reader::of(item).get(intern!(py, "finish_reason")),
            )
        });
        finish
    }

    /// The answer, assembled once.
    pub fn finish<'py>(&self, py: Python<'py>, capture: bool) -> DashScopeAnswer<'py> {
        let mut m = Messages::new(capture, true);
        let last_finish = self.last_finish(py);
        for choice in self.choices.values() {
            m.begin(choice.role.as_deref().unwrap_or("assistant"));
            if !choice.text.is_empty() {
                m.text_part_str(&choice.text);
            }
            m.assembled_tool_calls(&choice.tools);
            m.end(choice.finish.as_deref().or(last_finish.as_deref()));
        }
        DashScopeAnswer {
            messages: m,
            first: self.first,
            usage: self.answered.as_ref().and_then(|c| {
                Reader::of(c.bind(py))
                    .get(intern!(py, "usage"))
                    .filter(|u| u.is_truthy().unwrap_or(false))
            }),
            failed: self.failed.as_ref().map(|f| f.bind(py).clone()),
        }
    }
}
