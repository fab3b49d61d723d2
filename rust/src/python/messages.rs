//! Chat messages in the span contract's shape, read straight from the objects a chat API takes
//! and returns (dicts, TypedDicts, pydantic models, any object with the same attribute names)
//! and written as JSON in the same pass, every string cut to the content limit:
//!
//! ```text
//! {"role": "user", "parts": [{"type": "text", "content": "..."}]}
//! {"role": "assistant", "parts": [{"type": "tool_call", "id", "name", "arguments"}], "finish_reason": "tool_calls"}
//! {"role": "tool", "parts": [{"type": "tool_call_response", "id", "response"}]}
//! ```
//!
//! Media are the conventions' `uri`, `blob` and `file` parts (`crate::media`). With content
//! capture off nothing is written; the characters of the text are counted instead (what the
//! span then records). Only lists and tuples are read: a one-shot iterable is the library's to
//! consume, never ours.
//!
//! A streamed answer is read chunk by chunk as it passes (`ChatChunks`, kept by the stream
//! proxy's `ChunkCollector`) and written once, at the end: per
//! choice the text, refusal and tool calls, whose id and name come in their first delta and
//! whose arguments arrive in pieces keyed by the delta's index.

use std::collections::BTreeMap;
use std::ffi::c_void;

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};

use super::convert::{any_text, str_of};
use super::json::JsonWriter;
use crate::content::{truncate_json_value, write_json_str};
use crate::media::{self, Source};
use crate::span::LIMITS;

static MAPPING: PyOnceLock<Py<PyType>> = PyOnceLock::new();

unsafe extern "C" {
    // Exported by every CPython this project supports (in the limited API from 3.10).
    fn PyObject_GenericGetDict(o: *mut ffi::PyObject, context: *mut c_void) -> *mut ffi::PyObject;
}

fn is_mapping(v: &Bound<'_, PyAny>) -> bool {
    let py = v.py();
    let t = MAPPING.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        Ok(py
            .import("collections.abc")?
            .getattr("Mapping")?
            .cast_into::<PyType>()?
            .unbind())
    });
    match t {
        Ok(t) => v.is_instance(t.bind(py)).unwrap_or(false),
        Err(_) => false,
    }
}

/// `obj[key]` of a mapping, `obj.key` of anything else; None when absent or None.
pub(super) fn get<'py>(
    obj: &Bound<'py, PyAny>,
    key: &Bound<'py, PyString>,
) -> Option<Bound<'py, PyAny>> {
    Reader::of(obj).get(key)
}

/// Reads several fields of one object. An SDK model (pydantic) keeps its fields in its
/// instance `__dict__`: reading them there is a dict lookup, where `getattr` on a model goes
/// through its `__getattr__` hook and the type's MRO each time, several times the cost. A
/// field not found there (a property, an extra field) is read with `getattr`.
pub(super) struct Reader<'py> {
    obj: Bound<'py, PyAny>,
    dict: Option<Bound<'py, PyDict>>,
    /// `obj` is itself a dict: `dict` is the mapping, not an instance `__dict__`.
    mapping: bool,
}

impl<'py> Reader<'py> {
    pub(super) fn py(&self) -> Python<'py> {
        self.obj.py()
    }

    pub(super) fn of(obj: &Bound<'py, PyAny>) -> Self {
        if let Ok(d) = obj.cast::<PyDict>() {
            return Reader {
                obj: obj.clone(),
                dict: Some(d.clone()),
                mapping: true,
            };
        }
        // The instance dict itself, without the type's attribute hooks (a `getattr` of
        // `__dict__` on a model costs as much as reading a field through them).
        // SAFETY: a plain call on a live object; it returns a new reference or NULL.
        let raw = unsafe { PyObject_GenericGetDict(obj.as_ptr(), std::ptr::null_mut()) };
        let dict = if raw.is_null() {
            let _ = PyErr::take(obj.py()); // no instance dict (__slots__): getattr it is
            None
        } else {
            // SAFETY: a new reference we own.
            unsafe { Bound::from_owned_ptr(obj.py(), raw) }
                .cast_into::<PyDict>()
                .ok()
        };
        Reader {
            obj: obj.clone(),
            dict,
            mapping: false,
        }
    }

    /// How many keys the object has when it is a dict itself (None for anything else): a
    /// stream chunk's message with only the keys already read has nothing more to look up.
    pub(super) fn keys(&self) -> Option<usize> {
        self.mapping
            .then(|| self.dict.as_ref().map_or(0, |d| d.len()))
    }

    pub(super) fn get(&self, key: &Bound<'py, PyString>) -> Option<Bound<'py, PyAny>> {
        if let Some(d) = &self.dict {
            // The C lookup itself: this runs for every field of every stream chunk, and PyO3's
            // get_item adds a key conversion and an error round trip to each.
            // SAFETY: a live dict and a str key; a borrowed reference, or NULL when absent (or
            // when a foreign key's __eq__ raised: that error is cleared below).
            let raw = unsafe { ffi::PyDict_GetItemWithError(d.as_ptr(), key.as_ptr()) };
            if !raw.is_null() {
                // SAFETY: borrowed from the dict, which `self` keeps alive; owned from here.
                let v = unsafe { Bound::from_borrowed_ptr(self.py(), raw) };
                return (!v.is_none()).then_some(v);
            }
            // SAFETY: reads the thread state's current exception.
            if !unsafe { ffi::PyErr_Occurred() }.is_null() {
                let _ = PyErr::take(self.py());
            }
            if self.mapping {
                return None;
            }
        }
        let v = match self.obj.getattr(key) {
            Ok(v) => Some(v),
            // Attribute access first: the SDKs' models are not mappings, and asking a
            // model whether it is one costs an ABC check every time.
            Err(_) if is_mapping(&self.obj) => self
                .obj
                .call_method1(intern!(self.obj.py(), "get"), (key,))
                .ok(),
            Err(_) => None,
        };
        v.filter(|v| !v.is_none())
    }
}

/// The fields of an SDK object (its instance `__dict__`) or of a dict (None for an object
/// without either): what the per-chunk fast paths look fields up in. The instance dict comes
/// first, as an SDK's chunks are objects: a dict subclass with instance attributes gives
/// those, and the fast path then leaves its chunk to the general reader (Reader::of).
#[inline(always)]
pub(super) fn fields_of<'py>(obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyDict>> {
    // SAFETY: a plain call on a live object; a new reference or NULL.
    let raw = unsafe { PyObject_GenericGetDict(obj.as_ptr(), std::ptr::null_mut()) };
    if raw.is_null() {
        return no_instance_dict(obj);
    }
    // SAFETY: a new reference we own.
    unsafe { Bound::from_owned_ptr(obj.py(), raw) }
        .cast_into::<PyDict>()
        .ok()
}

/// fields_of() for an object without an instance `__dict__`: a dict is its own fields.
#[cold]
#[inline(never)]
fn no_instance_dict<'py>(obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyDict>> {
    let _ = PyErr::take(obj.py());
    obj.cast::<PyDict>().ok().cloned()
}

/// `fields[key]`, borrowed: no reference is taken (it lives as long as `fields` does, and no
/// Python code runs while a chunk is read). None when absent or None.
pub(super) fn field<'a, 'py>(
    fields: Borrowed<'a, 'py, PyDict>,
    key: &Bound<'py, PyString>,
) -> Option<Borrowed<'a, 'py, PyAny>> {
    lookup(fields, key).filter(|v| !v.is_none())
}

/// `fields[key]`, borrowed, None included; None only when absent.
fn lookup<'a, 'py>(
    fields: Borrowed<'a, 'py, PyDict>,
    key: &Bound<'py, PyString>,
) -> Option<Borrowed<'a, 'py, PyAny>> {
    // SAFETY: a live dict and a str key; a borrowed reference, or NULL.
    let raw = unsafe { ffi::PyDict_GetItemWithError(fields.as_ptr(), key.as_ptr()) };
    if raw.is_null() {
        // SAFETY: reads the thread state's current exception.
        if !unsafe { ffi::PyErr_Occurred() }.is_null() {
            let _ = PyErr::take(fields.py());
        }
        return None;
    }
    // SAFETY: borrowed from `fields`, which outlives 'a.
    Some(unsafe { Borrowed::from_ptr(fields.py(), raw) })
}

/// Where a field was found in the last dict it was read from: the position `PyDict_Next`
/// reads it at. The chunks of one stream are built alike, their fields stored in the same
/// order, so the next chunk's field is read at that position (its key checked by identity)
/// instead of being hashed and probed for, at a fifth of the cost.
#[derive(Clone, Copy)]
pub(super) struct Slot(ffi::Py_ssize_t);

impl Slot {
    /// Not known yet: looked up, and then found by position.
    const UNKNOWN: ffi::Py_ssize_t = -1;
    /// The dict holds a key equal to the one asked for, not that key object itself (not
    /// interned): it can only be looked up.
    const BY_VALUE: ffi::Py_ssize_t = -2;
}

impl Default for Slot {
    fn default() -> Self {
        Slot(Slot::UNKNOWN)
    }
}

/// `fields[key]` as field() gives it, read at the position `slot` remembers when the key is
/// there, looked up (and its position remembered) otherwise. Inlined, for the per-chunk fast
/// paths: the lookup is out of line.
#[inline(always)]
pub(super) fn field_at<'a, 'py>(
    fields: Borrowed<'a, 'py, PyDict>,
    key: &Bound<'py, PyString>,
    slot: &mut Slot,
) -> Option<Borrowed<'a, 'py, PyAny>> {
    if slot.0 >= 0 {
        let mut pos = slot.0;
        let mut k = std::ptr::null_mut();
        let mut v = std::ptr::null_mut();
        // SAFETY: a live dict; PyDict_Next only reads it, giving borrowed references.
        if unsafe { ffi::PyDict_Next(fields.as_ptr(), &mut pos, &mut k, &mut v) } != 0
            && k == key.as_ptr()
        {
            // SAFETY: borrowed from `fields`, which outlives 'a.
            let v = unsafe { Borrowed::from_ptr(fields.py(), v) };
            return (!v.is_none()).then_some(v);
        }
    }
    field_found(fields, key, slot)
}

/// field_at()'s lookup: the key looked up, and its position remembered when it is there.
#[cold]
#[inline(never)]
fn field_found<'a, 'py>(
    fields: Borrowed<'a, 'py, PyDict>,
    key: &Bound<'py, PyString>,
    slot: &mut Slot,
) -> Option<Borrowed<'a, 'py, PyAny>> {
    if slot.0 == Slot::BY_VALUE {
        return field(fields, key);
    }
    slot.0 = Slot::UNKNOWN;
    let found = lookup(fields, key)?; // absent: looked up again next time
    slot.0 = Slot::BY_VALUE;
    let (mut pos, mut k, mut v) = (0, std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: a live dict; PyDict_Next only reads it, giving borrowed references.
    while unsafe { ffi::PyDict_Next(fields.as_ptr(), &mut pos, &mut k, &mut v) } != 0 {
        if k == key.as_ptr() {
            slot.0 = pos - 1;
            break;
        }
    }
    (!found.is_none()).then_some(found)
}

/// The only item of a one-item list, borrowed (None for anything else).
pub(super) fn only_item<'a, 'py>(v: Borrowed<'a, 'py, PyAny>) -> Option<Borrowed<'a, 'py, PyAny>> {
    let list = v.cast::<PyList>().ok()?;
    if list.len() != 1 {
        return None;
    }
    // SAFETY: index 0 of a one-item list: a borrowed reference the list keeps alive.
    let raw = unsafe { ffi::PyList_GetItem(list.as_ptr(), 0) };
    // SAFETY: non-null (checked by from_ptr_or_opt), borrowed from the list.
    unsafe { Borrowed::from_ptr_or_opt(v.py(), raw) }
}

/// `f(position, item)` for each item of a list or tuple, without collecting them (a stream
/// chunk's choices and tool calls); false for anything else (it may be one-shot).
pub(super) fn each_item<'py>(
    v: &Bound<'py, PyAny>,
    mut f: impl FnMut(usize, &Bound<'py, PyAny>),
) -> bool {
    if let Ok(l) = v.cast::<PyList>() {
        l.iter().enumerate().for_each(|(i, x)| f(i, &x));
        return true;
    }
    if let Ok(t) = v.cast::<PyTuple>() {
        t.iter().enumerate().for_each(|(i, x)| f(i, &x));
        return true;
    }
    false
}

/// The number of items of a list or tuple (0 for anything else).
pub(super) fn items_len(v: &Bound<'_, PyAny>) -> usize {
    if let Ok(l) = v.cast::<PyList>() {
        return l.len();
    }
    v.cast::<PyTuple>().map_or(0, |t| t.len())
}

/// The items of a list or tuple (None for anything else: it may be one-shot).
pub(super) fn items<'py>(v: &Bound<'py, PyAny>) -> Option<Vec<Bound<'py, PyAny>>> {
    if let Ok(l) = v.cast::<PyList>() {
        return Some(l.iter().collect());
    }
    if let Ok(t) = v.cast::<PyTuple>() {
        return Some(t.iter().collect());
    }
    None
}

fn truthy(v: &Option<Bound<'_, PyAny>>) -> bool {
    v.as_ref().is_some_and(|v| v.is_truthy().unwrap_or(false))
}

pub(super) fn text_of(v: &Bound<'_, PyAny>) -> Option<String> {
    v.cast::<PyString>().ok().map(|s| str_of(s).into_owned())
}

/// Inline audio (OpenAI's `{data, format}`): its base64 data (the object, read in place by the
/// caller: audio is large) and its format's mime type.
pub(super) fn inline_audio<'py>(
    audio: &Bound<'py, PyAny>,
) -> (Option<Bound<'py, PyAny>>, Option<String>) {
    let py = audio.py();
    let format = get(audio, intern!(py, "format"));
    let mime_type = format.map(|f| media::audio_mime_type(&any_text(&f)));
    (get(audio, intern!(py, "data")), mime_type)
}

/// Messages being written (capture on) or counted (capture off).
pub struct Messages {
    w: JsonWriter,
    capture: bool,
    /// Characters of the text, counted when capture is off.
    pub chars: usize,
    first_message: bool,
    first_part: bool,
    /// Output only: the text parts of each message, joined (the answer's text).
    answer: Option<Vec<String>>,
    current_text: String,
    current_has_text: bool,
    pub finish_reasons: Vec<String>,
    pub has_parts: bool,
    /// DashScope's messages: untyped content parts, no empty text next to tool calls, and a
    /// finish reason "null" that says the answer has not finished.
    dashscope: bool,
}

impl Messages {
    pub fn new(capture: bool, answer: bool) -> Self {
        let mut w = JsonWriter::new(LIMITS.content_length());
        w.out.push('[');
        Messages {
            w,
            capture,
            chars: 0,
            first_message: true,
            first_part: true,
            answer: answer.then(Vec::new),
            current_text: String::new(),
            current_has_text: false,
            finish_reasons: Vec::new(),
            has_parts: false,
            dashscope: false,
        }
    }

    /// Read messages as DashScope writes them (see `dashscope`).
    pub fn dashscope(mut self, dashscope: bool) -> Self {
        self.dashscope = dashscope;
        self
    }

    /// The JSON (None with capture off).
    pub fn json(mut self) -> Option<String> {
        self.w.out.push(']');
        self.capture.then_some(self.w.out)
    }

    /// The answer's text: each message's text parts joined, one line between messages.
    pub fn answer(&self) -> String {
        self.answer
            .as_ref()
            .map(|a| a.join("\n"))
            .unwrap_or_default()
    }

    pub(super) fn begin(&mut self, role: &str) {
        if self.capture {
            if !self.first_message {
                self.w.out.push(',');
            }
            self.w.out.push_str("{\"role\":");
            write_json_str(&mut self.w.out, role);
            self.w.out.push_str(",\"parts\":[");
        }
        self.first_message = false;
        self.first_part = true;
        self.current_text.clear();
        self.current_has_text = false;
    }

    pub(super) fn end(&mut self, finish_reason: Option<&str>) {
        let finish_reason = finish_reason.map(crate::finish::conventions);
        if self.capture {
            self.w.out.push(']');
            if let Some(f) = finish_reason {
                self.w.out.push_str(",\"finish_reason\":");
                write_json_str(&mut self.w.out, f);
            }
            self.w.out.push('}');
        }
        if let Some(f) = finish_reason {
            if !f.is_empty() {
                self.finish_reasons.push(f.to_string());
            }
        }
        if self.current_has_text {
            let text = std::mem::take(&mut self.current_text);
            if let Some(a) = self.answer.as_mut() {
                a.push(text);
            }
        }
    }

    /// Opens a part: `{"type":"<kind>"`; the caller adds fields and closes it.
    fn part(&mut self, kind: &str) {
        self.has_parts = true;
        if !self.capture {
            return;
        }
        if !self.first_part {
            self.w.out.push(',');
        }
        self.first_part = false;
        self.w.out.push_str("{\"type\":");
        write_json_str(&mut self.w.out, kind);
    }

    fn close_part(&mut self) {
        if self.capture {
            self.w.out.push('}');
        }
    }

    /// A field of the open part: any value, counted as text when `counted`.
    fn field(&mut self, name: &str, v: Option<&Bound<'_, PyAny>>, counted: bool) {
        if self.capture {
            self.w.out.push_str(",\"");
            self.w.out.push_str(name);
            self.w.out.push_str("\":");
            match v {
                Some(v) => self.w.value(v),
                None => self.w.out.push_str("null"),
            }
        } else if counted {
            if let Some(v) = v {
                self.chars += match v.cast::<PyString>() {
                    Ok(s) => s.len().unwrap_or(0),
                    Err(_) => v.str().map(|s| s.len().unwrap_or(0)).unwrap_or(0),
                };
            }
        }
    }

    /// A field of the open part from Rust text.
    fn text_field(&mut self, name: &str, text: &str) {
        if self.capture {
            self.w.out.push_str(",\"");
            self.w.out.push_str(name);
            self.w.out.push_str("\":");
            self.w.text(text);
        } else {
            self.chars += text.chars().count();
        }
    }

    fn text_part(&mut self, content: Option<&Bound<'_, PyAny>>) {
        if self.answer.is_some() {
            if let Some(s) = content.and_then(|c| c.cast::<PyString>().ok()) {
                self.current_text.push_str(&str_of(s));
                self.current_has_text = true;
            }
        }
        self.part("text");
        self.field("content", content, true);
        self.close_part();
    }

    pub(super) fn text_part_str(&mut self, text: &str) {
        if self.answer.is_some() {
            self.current_text.push_str(text);
            self.current_has_text = true;
        }
        self.part("text");
        self.text_field("content", text);
        self.close_part();
    }

    fn tool_call(
        &mut self,
        id: Option<&Bound<'_, PyAny>>,
        name: Option<&Bound<'_, PyAny>>,
        arguments: Option<&Bound<'_, PyAny>>,
    ) {
        self.part("tool_call");
        self.field("id", id, false);
        self.field("name", name, false);
        match arguments.and_then(|a| a.cast::<PyString>().ok()) {
            Some(s) => self.arguments(&str_of(s)),
            None => self.field("arguments", arguments, true),
        }
        self.close_part();
    }

    /// Tool-call arguments as the structure they encode (the conventions record an object), or
    /// as the text they are when it is not JSON (a model may stream invalid JSON).
    fn arguments(&mut self, text: &str) {
        if self.capture && text.starts_with(['{', '[']) {
            if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text) {
                truncate_json_value(&mut v, LIMITS.content_length());
                self.w.out.push_str(",\"arguments\":");
                self.w.out.push_str(&v.to_string());
                return;
            }
        }
        self.text_field("arguments", text);
    }

    /// One chat-completions message, request or answer side.
    fn message(&mut self, message: &Bound<'_, PyAny>, answer: bool, finish: Option<String>) {
        let py = message.py();
        let message = Reader::of(message);
        let role = message.get(intern!(py, "role"));
        let role_text = match &role {
            Some(r) => any_text(r).into_owned(),
            None if answer => "assistant".to_string(),
            None => "None".to_string(),
        };
        self.begin(&role_text);
        let content = message.get(intern!(py, "content"));
        if role_text == "tool" || role_text == "function" {
            let id_key = if role_text == "tool" {
                intern!(py, "tool_call_id")
            } else {
                intern!(py, "name")
            };
            let id = message.get(id_key);
            self.part("tool_call_response");
            self.field("id", id.as_ref(), false);
            self.tool_response(content.as_ref());
            self.close_part();
        } else {
            self.content_parts(content.as_ref());
            let refusal = message.get(intern!(py, "refusal"));
            if truthy(&refusal) {
                self.part("refusal");
                self.field("content", refusal.as_ref(), true);
                self.close_part();
            }
            let calls = message.get(intern!(py, "tool_calls"));
            if truthy(&calls) {
                self.tool_calls(calls.as_ref().expect("truthy"));
            }
            let function_call = message.get(intern!(py, "function_call"));
            if truthy(&function_call) {
                let f = function_call.expect("truthy");
                self.tool_call(
                    None,
                    get(&f, intern!(py, "name")).as_ref(),
                    get(&f, intern!(py, "arguments")).as_ref(),
                );
            }
        }
        self.end(finish.as_deref());
    }

    /// A tool result: its text when given as text parts, else the value as given.
    fn tool_response(&mut self, content: Option<&Bound<'_, PyAny>>) {
        if let Some(parts) = content.and_then(items) {
            let py = parts.first().map(|p| p.py());
            let texts: Option<Vec<String>> = py.map_or(Some(Vec::new()), |py| {
                parts
                    .iter()
                    .map(|p| get(p, intern!(py, "text")).and_then(|t| text_of(&t)))
                    .collect()
            });
            if let Some(texts) = texts {
                self.text_field("response", &texts.concat());
                return;
            }
        }
        self.field("response", content, true);
    }

    fn content_parts(&mut self, content: Option<&Bound<'_, PyAny>>) {
        let Some(content) = content else { return };
        if let Ok(s) = content.cast::<PyString>() {
            // DashScope sends an empty content next to tool calls: not a part of the message.
            if !(self.dashscope && s.len().unwrap_or(0) == 0) {
                self.text_part(Some(content));
            }
            return;
        }
        let Some(parts) = items(content) else { return };
        let py = content.py();
        for item in &parts {
            if item.cast::<PyString>().is_ok() {
                self.text_part(Some(item));
                continue;
            }
            let Some(kind) = get(item, intern!(py, "type")) else {
                if self.dashscope {
                    self.dashscope_part(item);
                }
                continue;
            };
            let kind_text = any_text(&kind).into_owned();
            match kind_text.as_str() {
                "text" | "input_text" | "output_text" => {
                    self.text_part(get(item, intern!(py, "text")).as_ref());
                }
                "image_url" => {
                    let url = get(item, intern!(py, "image_url"))
                        .and_then(|i| get(&i, intern!(py, "url")));
                    self.media_url("image", url.as_ref());
                }
                "input_image" => match get(item, intern!(py, "image_url")) {
                    Some(url) => self.media_url("image", Some(&url)),
                    None => self.media_file("image", get(item, intern!(py, "file_id")).as_ref()),
                },
                "refusal" => {
                    self.part("refusal");
                    self.field("content", get(item, intern!(py, "refusal")).as_ref(), true);
                    self.close_part();
                }
                "input_audio" => {
                    if let Some(audio) = get(item, intern!(py, "input_audio")) {
                        let (data, mime_type) = inline_audio(&audio);
                        let blob = Source::Blob {
                            mime_type: mime_type.as_deref(),
                            content: &data.as_ref().map(any_text).unwrap_or_default(),
                        };
                        self.media("audio", &blob);
                    }
                }
                "file" | "input_file" => {
                    // Chat's {file: {file_id | file_data}}, the Responses API's flat
                    // {file_id | file_url | file_data}.
                    let file = if kind_text == "file" {
                        get(item, intern!(py, "file"))
                    } else {
                        Some(item.clone())
                    };
                    let field = |key| file.as_ref().and_then(|f| get(f, key));
                    if let Some(data) = field(intern!(py, "file_data")) {
                        self.media_url("file", Some(&data));
                    } else if let Some(url) = field(intern!(py, "file_url")) {
                        self.media_url("file", Some(&url));
                    } else {
                        self.media_file("file", field(intern!(py, "file_id")).as_ref());
                    }
                }
                other => {
                    let other = other.to_string();
                    self.part(&other);
                    self.close_part();
                }
            }
        }
    }

    /// A DashScope content part, which carries no type: `{"text"}`, `{"image"}`, `{"audio"}`
    /// or `{"video"}` (a URL, a local path or a data URL, cut like every other string). A video
    /// given as a list of frames is one video part per frame, so that every part keeps the
    /// contract's `{type, url}` shape with a string URL.
    fn dashscope_part(&mut self, item: &Bound<'_, PyAny>) {
        let py = item.py();
        let item = Reader::of(item);
        if let Some(text) = item.get(intern!(py, "text")) {
            if text.cast::<PyString>().is_ok() {
                self.text_part(Some(&text));
                return;
            }
        }
        let kinds = [
            ("image", intern!(py, "image")),
            ("audio", intern!(py, "audio")),
            ("video", intern!(py, "video")),
        ];
        for (kind, key) in kinds {
            let Some(url) = item.get(key) else { continue };
            let urls = items(&url).unwrap_or_else(|| vec![url]);
            for url in &urls {
                self.media_url(kind, Some(url));
            }
            return;
        }
    }

    /// A media part (see `crate::media`): written, or its text counted with capture off.
    fn media(&mut self, kind: &str, source: &Source<'_>) {
        self.has_parts = true;
        if !self.capture {
            self.chars += source.text().chars().count();
            return;
        }
        if !self.first_part {
            self.w.out.push(',');
        }
        self.first_part = false;
        self.w.media(kind, source);
    }

    /// Media given by a URL (a link, or a data URL: inline data); none when there is no URL.
    fn media_url(&mut self, kind: &str, url: Option<&Bound<'_, PyAny>>) {
        if let Some(url) = url {
            self.media(kind, &Source::of_url(&any_text(url)));
        }
    }

    /// Media uploaded before, given by its file id.
    fn media_file(&mut self, kind: &str, file_id: Option<&Bound<'_, PyAny>>) {
        if let Some(id) = file_id {
            self.media(kind, &Source::File(&any_text(id)));
        }
    }

    fn tool_calls(&mut self, calls: &Bound<'_, PyAny>) {
        let Some(calls) = items(calls) else { return };
        let py = calls.first().map(|c| c.py());
        let Some(py) = py else { return };
        for call in &calls {
            let id = get(call, intern!(py, "id"));
            match get(call, intern!(py, "function")) {
                Some(f) => self.tool_call(
                    id.as_ref(),
                    get(&f, intern!(py, "name")).as_ref(),
                    get(&f, intern!(py, "arguments")).as_ref(),
                ),
                None => {
                    // A custom tool call: {type: custom, custom: {name, input}}.
                    let custom = get(call, intern!(py, "custom"));
                    let name = custom.as_ref().and_then(|c| get(c, intern!(py, "name")));
                    let input = custom.as_ref().and_then(|c| get(c, intern!(py, "input")));
                    self.tool_call(id.as_ref(), name.as_ref(), input.as_ref());
                }
            }
        }
    }
}

/// A request's messages; None when they are not a list or tuple.
pub fn chat_input(messages: &Bound<'_, PyAny>, capture: bool, dashscope: bool) -> Option<Messages> {
    let list = items(messages)?;
    let mut m = Messages::new(capture, false).dashscope(dashscope);
    for message in &list {
        m.message(message, false, None);
    }
    Some(m)
}

fn finish_of(v: Option<Bound<'_, PyAny>>) -> Option<String> {
    v.map(|f| any_text(&f).into_owned())
}

/// An answer's choices, one output message each (with its finish reason).
pub fn chat_output(choices: &Bound<'_, PyAny>, capture: bool, dashscope: bool) -> Messages {
    let mut m = Messages::new(capture, true).dashscope(dashscope);
    let py = choices.py();
    for choice in items(choices).unwrap_or_default() {
        let finish = finish_of(get(&choice, intern!(py, "finish_reason")))
            .filter(|f| !(dashscope && f == "null"));
        match get(&choice, intern!(py, "message")) {
            Some(message) => m.message(&message, true, finish),
            None => {
                m.begin("assistant");
                m.end(finish.as_deref());
            }
        }
    }
    m
}

/// A one-message answer given as text (DashScope's result_format text).
pub fn text_answer(text: &str, finish: Option<&str>, capture: bool) -> Messages {
    let mut m = Messages::new(capture, true).dashscope(true);
    m.begin("assistant");
    if !text.is_empty() {
        m.text_part_str(text);
    }
    m.end(finish);
    m
}

#[derive(Default)]
pub(super) struct ToolCallState {
    pub(super) id: Option<String>,
    pub(super) name: Option<String>,
    pub(super) arguments: String,
}

#[derive(Default)]
struct ChoiceState {
    role: Option<String>,
    text: String,
    has_text: bool,
    refusal: String,
    /// By the delta's index; the legacy function_call delta is key u64::MAX.
    tools: BTreeMap<u64, ToolCallState>,
    finish: Option<String>,
}

/// What a stream's chunks add up to.
pub struct StreamAnswer<'py> {
    pub messages: Messages,
    /// Position of the first chunk with content (text, refusal, a tool call).
    pub first: Option<usize>,
    /// The usage of the last chunk that had one.
    pub usage: Option<Bound<'py, PyAny>>,
}

fn add_tool_delta(
    tools: &mut BTreeMap<u64, ToolCallState>,
    key: u64,
    call_id: Option<Bound<'_, PyAny>>,
    function: Option<Bound<'_, PyAny>>,
) {
    let entry = tools.entry(key).or_default();
    if let Some(id) = call_id.as_ref().and_then(text_of) {
        if !id.is_empty() {
            entry.id = Some(id);
        }
    }
    if let Some(f) = function {
        let py = f.py();
        if let Some(name) = get(&f, intern!(py, "name")).as_ref().and_then(text_of) {
            if !name.is_empty() {
                entry.name = Some(name);
            }
        }
        if let Some(args) = get(&f, intern!(py, "arguments")) {
            if let Ok(s) = args.cast::<PyString>() {
                entry.arguments.push_str(&str_of(s));
            }
        }
    }
}

/// A streamed chat answer being read, chunk by chunk, as the chunks arrive: only what the
/// answer needs is kept (text pieces, tool-call pieces, the last usage), not the chunks, so a
/// stream leaves nothing behind for the garbage collector to walk.
#[derive(Default)]
pub struct ChatChunks {
    states: BTreeMap<u64, ChoiceState>,
    first: Option<usize>,
    usage: Option<Py<PyAny>>,
    position: usize,
    /// Where add_plain() found each field in the last chunk.
    slots: PlainSlots,
    /// The last chunk the general reading read (the finish and usage chunks come there): its
    /// model is the stream's when it differs from the first chunk's. No plain chunk is kept:
    /// holding on to each chunk until the next one arrives changes when the interpreter frees
    /// its objects, which cost more than reading it (see add_plain).
    last: Option<Py<PyAny>>,
    /// The stream has one choice (n=1 asked for): every chunk's is choice 0, and its index is
    /// not read.
    single: bool,
}

/// The positions of the fields a plain chunk is read from (see Slot).
#[derive(Default)]
struct PlainSlots {
    choices: Slot,
    index: Slot,
    finish: Slot,
    delta: Slot,
    content: Slot,
    tool_calls: Slot,
}

/// Whether a choice's index is 0: the small int every CPython keeps one object of, compared by
/// identity, or any other int equal to it.
fn is_zero(index: Borrowed<'_, '_, PyAny>) -> bool {
    static ZERO: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = index.py();
    let zero = ZERO.get_or_init(py, || 0u64.into_pyobject(py).unwrap().into_any().unbind());
    index.as_ptr() == zero.as_ptr() || index.extract::<u64>().ok() == Some(0)
}

impl ChatChunks {
    pub fn new(single: bool) -> Self {
        ChatChunks {
            single,
            ..Default::default()
        }
    }

    /// The last chunk the general reading read.
    pub fn last(&self) -> Option<&Py<PyAny>> {
        self.last.as_ref()
    }

    /// One chunk, read as it passes. Only what changes from chunk to chunk is looked up on
    /// every chunk (the choices' deltas and finish reasons): a chunk is a few fields deep and
    /// each field is a dict lookup, which is most of what a stream costs per chunk.
    pub fn add(&mut self, chunk: &Bound<'_, PyAny>) {
        let py = chunk.py();
        let position = self.position;
        self.position += 1;
        if self.add_plain(chunk, position) {
            return;
        }
        self.last = Some(chunk.clone().unbind());
        let chunk = Reader::of(chunk);
        let mut last = true; // no choices, or one that finished: where usage comes
        if let Some(choices) = chunk.get(intern!(py, "choices")) {
            let mut finished = false;
            each_item(&choices, |_, choice| {
                last = false;
                let (content, finish) = self.add_choice(&Reader::of(choice), py);
                finished |= finish;
                if content && self.first.is_none() {
                    self.first = Some(position);
                }
            });
            last |= finished;
        }
        // OpenAI sends the usage in a chunk of its own, without choices, after the last one;
        // other servers send it with the finish reason (or in every chunk: the last counts).
        if last {
            if let Some(u) = chunk.get(intern!(py, "usage")) {
                self.usage = Some(u.unbind());
            }
        }
    }

    /// Most chunks of a chat stream: one choice, number 0 (whose role is known), with text and
    /// no tool call, not finished. Such a chunk is read here with borrowed lookups, each at the
    /// position its field had in the previous chunk, a fraction of the cost of the general
    /// reading; false leaves the chunk, untouched, to it.
    fn add_plain(&mut self, chunk: &Bound<'_, PyAny>, position: usize) -> bool {
        let py = chunk.py();
        if self.states.len() != 1 {
            return false;
        }
        let Some(state) = self.states.get_mut(&0).filter(|s| s.role.is_some()) else {
            return false;
        };
        let at = &mut self.slots;
        let Some(fields) = fields_of(chunk) else {
            return false;
        };
        let choices = field_at(
            fields.as_borrowed(),
            intern!(py, "choices"),
            &mut at.choices,
        );
        let Some(choice) = choices.and_then(only_item).and_then(|c| fields_of(&c)) else {
            return false;
        };
        let choice = choice.as_borrowed();
        if !self.single
            && !field_at(choice, intern!(py, "index"), &mut at.index).is_none_or(is_zero)
        {
            return false;
        }
        if field_at(choice, intern!(py, "finish_reason"), &mut at.finish).is_some() {
            return false;
        }
        let delta = field_at(choice, intern!(py, "delta"), &mut at.delta);
        let Some(delta) = delta.and_then(|d| fields_of(&d)) else {
            return false;
        };
        let delta = delta.as_borrowed();
        let text = field_at(delta, intern!(py, "content"), &mut at.content);
        let Some(text) = text.and_then(|t| t.cast::<PyString>().ok()) else {
            return false;
        };
        if field_at(delta, intern!(py, "tool_calls"), &mut at.tool_calls).is_some() {
            return false;
        }
        let text = str_of(&text);
        if text.is_empty() {
            return false;
        }
        state.text.push_str(&text);
        state.has_text = true;
        if self.first.is_none() {
            self.first = Some(position);
        }
        true
    }

    /// One choice of a chunk: (whether its delta carried content, whether it finished).
    fn add_choice(&mut self, choice: &Reader<'_>, py: Python<'_>) -> (bool, bool) {
        let index = choice
            .get(intern!(py, "index"))
            .and_then(|i| i.extract::<u64>().ok())
            .unwrap_or(0);
        let state = self.states.entry(index).or_default();
        let mut finished = false;
        if let Some(finish) = choice.get(intern!(py, "finish_reason")) {
            if finish.is_truthy().unwrap_or(false) {
                state.finish = finish_of(Some(finish));
                finished = true;
            }
        }
        let Some(delta) = choice.get(intern!(py, "delta")) else {
            return (false, finished);
        };
        let delta = Reader::of(&delta);
        let mut content = false;
        if let Some(text) = delta.get(intern!(py, "content")) {
            if let Ok(s) = text.cast::<PyString>() {
                let s = str_of(s);
                if !s.is_empty() {
                    state.text.push_str(&s);
                    state.has_text = true;
                    content = true;
                }
            }
        }
        if state.role.is_none() {
            state.role = delta
                .get(intern!(py, "role"))
                .map(|r| any_text(&r).into_owned());
        }
        // A refusal or a legacy function call comes in a delta without text.
        if !content {
            if let Some(refusal) = delta.get(intern!(py, "refusal")).as_ref().and_then(text_of) {
                if !refusal.is_empty() {
                    state.refusal.push_str(&refusal);
                    content = true;
                }
            }
            if let Some(f) = delta.get(intern!(py, "function_call")) {
                content = true;
                add_tool_delta(&mut state.tools, u64::MAX, None, Some(f));
            }
        }
        if let Some(calls) = delta.get(intern!(py, "tool_calls")) {
            each_item(&calls, |_, call| {
                content = true;
                let key = get(call, intern!(py, "index"))
                    .and_then(|i| i.extract::<u64>().ok())
                    .unwrap_or(state.tools.len() as u64);
                add_tool_delta(
                    &mut state.tools,
                    key,
                    get(call, intern!(py, "id")),
                    get(call, intern!(py, "function")),
                );
            });
        }
        (content, finished)
    }

    /// The answer, assembled once: the output messages, the position of the first chunk with
    /// content, and the last usage seen.
    pub fn finish<'py>(&self, py: Python<'py>, capture: bool) -> StreamAnswer<'py> {
        let mut m = Messages::new(capture, true);
        for state in self.states.values() {
            m.begin(state.role.as_deref().unwrap_or("assistant"));
            if state.has_text {
                m.text_part_str(&state.text);
            }
            if !state.refusal.is_empty() {
                m.part("refusal");
                m.text_field("content", &state.refusal);
                m.close_part();
            }
            m.assembled_tool_calls(&state.tools);
            m.end(state.finish.as_deref());
        }
        StreamAnswer {
            messages: m,
            first: self.first,
            usage: self.usage.as_ref().map(|u| u.bind(py).clone()),
        }
    }
}

impl Messages {
    /// The tool calls a stream's pieces added up to, in their index order.
    pub(super) fn assembled_tool_calls(&mut self, tools: &BTreeMap<u64, ToolCallState>) {
        for call in tools.values() {
            self.part("tool_call");
            match &call.id {
                Some(id) => self.text_field_raw("id", id),
                None => self.null_field("id"),
            }
            match &call.name {
                Some(name) => self.text_field_raw("name", name),
                None => self.null_field("name"),
            }
            self.arguments(&call.arguments);
            self.close_part();
        }
    }

    /// A structural text field (an id, a name): written whole, never counted.
    fn text_field_raw(&mut self, name: &str, text: &str) {
        if self.capture {
            self.w.out.push_str(",\"");
            self.w.out.push_str(name);
            self.w.out.push_str("\":");
            self.w.text(text);
        }
    }

    fn null_field(&mut self, name: &str) {
        if self.capture {
            self.w.out.push_str(",\"");
            self.w.out.push_str(name);
            self.w.out.push_str("\":null");
        }
    }
}
