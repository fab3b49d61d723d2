//! Tool definitions in the GenAI conventions' flat shape, whatever shape the caller gave them in,
//! so that a backend reads `gen_ai.tool.definitions` one way:
//!
//! ```text
//! [{"type": "function", "name": "get_weather", "description": "...", "parameters": {...}}]
//! ```
//!
//! Read: OpenAI chat's and DashScope's `{"type": "function", "function": {name, description,
//! parameters}}`, chat's custom tools `{"type": "custom", "custom": {name, description}}`, the
//! Responses API's flat tools (its built-in tools, `{"type": "web_search"}` and the like, keep
//! their type alone), the legacy `functions=[{name, description, parameters}]` and Anthropic's
//! `{name, description, input_schema}`. A field the definition lacks is left out.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::guard;
use super::json::JsonWriter;
use super::messages::{items, Reader};
use crate::span::LIMITS;

/// The definitions as JSON; None when `tools` is not a non-empty list or tuple.
pub fn write(tools: &Bound<'_, PyAny>) -> Option<String> {
    let tools = items(tools).filter(|t| !t.is_empty())?;
    let py = tools[0].py();
    let mut w = JsonWriter::new(LIMITS.content_length());
    w.out.push('[');
    let mut first = true;
    for tool in &tools {
        if tool.is_none() || tool.is_instance_of::<PyString>() {
            continue;
        }
        if !first {
            w.out.push(',');
        }
        first = false;
        let outer = Reader::of(tool);
        let kind = outer.get(intern!(py, "type"));
        // The definition itself: nested under its type's key, or the tool itself.
        let nested = outer
            .get(intern!(py, "function"))
            .or_else(|| outer.get(intern!(py, "custom")));
        let inner = nested.as_ref().map_or_else(|| Reader::of(tool), Reader::of);
        w.out.push_str("{\"type\":");
        match &kind {
            Some(kind) => w.value(kind),
            None => w.out.push_str("\"function\""),
        }
        let fields = [
            ("name", inner.get(intern!(py, "name"))),
            ("description", inner.get(intern!(py, "description"))),
            (
                "parameters",
                inner
                    .get(intern!(py, "parameters"))
                    .or_else(|| inner.get(intern!(py, "input_schema"))),
            ),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                w.out.push_str(",\"");
                w.out.push_str(key);
                w.out.push_str("\":");
                w.value(&value);
            }
        }
        w.out.push('}');
    }
    w.out.push(']');
    (!first).then_some(w.out)
}

/// `gen_ai.tool.definitions` of `tools` (see the module), or None.
#[pyfunction]
pub fn tool_definitions(tools: &Bound<'_, PyAny>) -> Option<String> {
    guard("tool_definitions", None, || Ok(write(tools)))
}
