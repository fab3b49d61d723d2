//! A model's answer read in one crossing: its ids, token usage and output messages written
//! straight into the span (what the instrumentations would otherwise gather field by field in
//! Python), and what the metrics need handed back.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyString};

use super::convert::str_of;
use super::messages::{self, Reader};
use super::span::PySpan;
use super::{guard, output_of, Output};
use crate::content::truncate_chars;
use crate::span::{AttrValue, Attributes, LIMITS};

/// An exact int (what the SDKs give; a bool or a float is not a token count).
fn int_of(v: Option<Bound<'_, PyAny>>) -> Option<i64> {
    v.filter(|v| v.is_exact_instance_of::<PyInt>())
        .and_then(|v| v.extract::<i64>().ok())
}

fn put_str(out: &mut Attributes, key: &str, v: Option<&Bound<'_, PyAny>>) -> Option<String> {
    let s = v?.cast::<PyString>().ok().map(|s| str_of(s).into_owned())?;
    out.push((key.to_string(), AttrValue::Str(s.clone())));
    Some(s)
}

/// Token usage into `out`: prompt/completion tokens (chat and text completions) or
/// input/output tokens (the Responses API, DashScope); (input, output) for the metrics.
pub(super) fn put_usage(
    out: &mut Attributes,
    usage: Option<Bound<'_, PyAny>>,
) -> (Option<i64>, Option<i64>) {
    let Some(usage) = usage else {
        return (None, None);
    };
    let py = usage.py();
    let u = Reader::of(&usage);
    let input = int_of(
        u.get(intern!(py, "prompt_tokens"))
            .or_else(|| u.get(intern!(py, "input_tokens"))),
    );
    let output = int_of(
        u.get(intern!(py, "completion_tokens"))
            .or_else(|| u.get(intern!(py, "output_tokens"))),
    );
    if let Some(n) = input {
        out.push(("gen_ai.usage.input_tokens".into(), AttrValue::Int(n)));
    }
    if let Some(n) = output {
        out.push(("gen_ai.usage.output_tokens".into(), AttrValue::Int(n)));
    }
    if let Some(n) = int_of(u.get(intern!(py, "total_tokens"))) {
        out.push(("gen_ai.usage.total_tokens".into(), AttrValue::Int(n)));
    }
    let truthy = |v: Bound<'_, PyAny>| v.is_truthy().unwrap_or(false);
    let details = u
        .get(intern!(py, "prompt_tokens_details"))
        .filter(|d| truthy(d.clone()))
        .or_else(|| u.get(intern!(py, "input_tokens_details")));
    if let Some(n) = details.and_then(|d| int_of(Reader::of(&d).get(intern!(py, "cached_tokens"))))
    {
        out.push((
            "gen_ai.usage.cache_read.input_tokens".into(),
            AttrValue::Int(n),
        ));
    }
    let details = u
        .get(intern!(py, "completion_tokens_details"))
        .filter(|d| truthy(d.clone()))
        .or_else(|| u.get(intern!(py, "output_tokens_details")));
    let reasoning = details
        .and_then(|d| int_of(Reader::of(&d).get(intern!(py, "reasoning_tokens"))))
        .or_else(|| int_of(u.get(intern!(py, "reasoning_tokens"))));
    if let Some(n) = reasoning {
        out.push((
            "gen_ai.usage.reasoning.output_tokens".into(),
            AttrValue::Int(n),
        ));
    }
    (input, output)
}

/// Output messages (as chat_output writes them) into `out`: the finish reasons, and
/// `gen_ai.output.messages` with `output.value` = the answer's text (the messages' JSON when
/// the answer has no text, only tool calls), or only their size when content is not captured.
pub(super) fn put_output(out: &mut Attributes, output: Output, capture: bool) {
    let (json, answer, reasons, chars, has_parts) = output;
    if !reasons.is_empty() {
        out.push((
            "gen_ai.response.finish_reasons".into(),
            AttrValue::StrArray(reasons),
        ));
    }
    if !capture {
        out.push(("llmprobe.output.size".into(), AttrValue::Int(chars as i64)));
        return;
    }
    let Some(json) = json.filter(|j| j != "[]") else {
        return;
    };
    if !answer.is_empty() {
        let text = truncate_chars(answer, LIMITS.content_length());
        out.push(("output.value".into(), AttrValue::Str(text)));
        out.push((
            "output.mime_type".into(),
            AttrValue::Str("text/plain".into()),
        ));
    } else if has_parts {
        out.push(("output.value".into(), AttrValue::Str(json.clone())));
        out.push((
            "output.mime_type".into(),
            AttrValue::Str("application/json".into()),
        ));
    }
    out.push(("gen_ai.output.messages".into(), AttrValue::Str(json)));
}

/// Writes `attributes` into the span (a sampled-out span records none).
pub(super) fn write(span: &Bound<'_, PyAny>, attributes: Attributes) {
    if let Ok(span) = span.cast::<PySpan>() {
        if let Ok(mut span) = span.try_borrow_mut() {
            span.set_all(attributes);
        }
    }
}

/// An OpenAI answer's (or chunk's) id, model and service tier into `out`; the model.
pub(super) fn put_openai_ids(out: &mut Attributes, r: &Reader<'_>) -> Option<String> {
    let py = r.py();
    put_str(out, "gen_ai.response.id", r.get(intern!(py, "id")).as_ref());
    let model = put_str(
        out,
        "gen_ai.response.model",
        r.get(intern!(py, "model")).as_ref(),
    );
    put_str(
        out,
        "openai.response.service_tier",
        r.get(intern!(py, "service_tier")).as_ref(),
    );
    model
}

/// A DashScope answer's (or chunk's) request id, when it has one, as `gen_ai.response.id`.
pub(super) fn put_request_id(out: &mut Attributes, response: &Bound<'_, PyAny>) {
    let py = response.py();
    if let Some(id) = Reader::of(response).get(intern!(py, "request_id")) {
        if id
            .cast::<PyString>()
            .is_ok_and(|s| s.len().unwrap_or(0) > 0)
        {
            put_str(out, "gen_ai.response.id", Some(&id));
        }
    }
}

/// Whether a DashScope response (or stream chunk) says the call failed: a status code that is
/// not 200 (the SDK returns most API errors instead of raising them).
pub(super) fn dashscope_failed(r: &Reader<'_>) -> bool {
    r.get(intern!(r.py(), "status_code"))
        .is_some_and(|status| status.extract::<i64>().ok() != Some(200))
}

/// DashScope's usage into `out`: put_usage(), the total as input + output when the service
/// gave none, and an application's usage summed over the models it called.
pub(super) fn put_dashscope_usage(
    out: &mut Attributes,
    usage: Option<Bound<'_, PyAny>>,
) -> (Option<i64>, Option<i64>) {
    let Some(usage) = usage else {
        return (None, None);
    };
    let py = usage.py();
    let models = Reader::of(&usage)
        .get(intern!(py, "models"))
        .and_then(|m| messages::items(&m))
        .filter(|m| !m.is_empty());
    let (input, output) = match models {
        Some(models) => {
            let sum = |key: &Bound<'_, PyString>| -> i64 {
                models
                    .iter()
                    .filter_map(|m| int_of(Reader::of(m).get(key)))
                    .sum()
            };
            let (i, o) = (
                sum(intern!(py, "input_tokens")),
                sum(intern!(py, "output_tokens")),
            );
            out.push(("gen_ai.usage.input_tokens".into(), AttrValue::Int(i)));
            out.push(("gen_ai.usage.output_tokens".into(), AttrValue::Int(o)));
            (Some(i), Some(o))
        }
        None => put_usage(out, Some(usage)),
    };
    let has_total = out.iter().any(|(k, _)| k == "gen_ai.usage.total_tokens");
    if let (false, Some(i), Some(o)) = (has_total, input, output) {
        out.push(("gen_ai.usage.total_tokens".into(), AttrValue::Int(i + o)));
    }
    (input, output)
}

/// What the metrics need from an answer: (input tokens, output tokens, the response model).
type ForMetrics = (Option<i64>, Option<i64>, Option<String>);

/// An OpenAI chat completion (an SDK object, or its JSON as a dict): id, model, service tier,
/// usage and answer, into `span`.
#[pyfunction]
pub fn openai_chat_response(
    span: &Bound<'_, PyAny>,
    response: &Bound<'_, PyAny>,
    capture: bool,
) -> ForMetrics {
    guard("openai_chat_response", (None, None, None), || {
        let py = response.py();
        let r = Reader::of(response);
        let mut out = Attributes::new();
        let model = put_openai_ids(&mut out, &r);
        let (input, output) = put_usage(&mut out, r.get(intern!(py, "usage")));
        if let Some(choices) = r.get(intern!(py, "choices")) {
            put_output(
                &mut out,
                output_of(messages::chat_output(&choices, capture, false)),
                capture,
            );
        }
        write(span, out);
        Ok((input, output, model))
    })
}

/// A DashScope generation answer (`GenerationResponse`, `MultiModalConversationResponse`):
/// request id, usage and answer (its choices, or its text with result_format text), into
/// `span`. (whether the response says the call failed: its status code is not 200, and it
/// is then read no further; input tokens, output tokens.)
#[pyfunction]
pub fn dashscope_response(
    span: &Bound<'_, PyAny>,
    response: &Bound<'_, PyAny>,
    capture: bool,
) -> (bool, Option<i64>, Option<i64>) {
    guard("dashscope_response", (false, None, None), || {
        let py = response.py();
        let r = Reader::of(response);
        let mut out = Attributes::new();
        put_request_id(&mut out, response);
        if dashscope_failed(&r) {
            write(span, out);
            return Ok((true, None, None));
        }
        let (input, output) = put_dashscope_usage(&mut out, r.get(intern!(py, "usage")));
        if let Some(answer) = r.get(intern!(py, "output")) {
            let answer = Reader::of(&answer);
            let choices = answer
                .get(intern!(py, "choices"))
                .filter(|c| c.len().is_ok_and(|n| n > 0));
            let messages = match choices {
                Some(choices) => Some(messages::chat_output(&choices, capture, true)),
                None => answer.get(intern!(py, "text")).and_then(|text| {
                    let text = text.cast::<PyString>().ok()?;
                    let finish = answer
                        .get(intern!(py, "finish_reason"))
                        .and_then(|f| f.cast::<PyString>().ok().map(|f| str_of(f).into_owned()))
                        .filter(|f| f != "null");
                    Some(messages::text_answer(
                        &str_of(text),
                        finish.as_deref(),
                        capture,
                    ))
                }),
            };
            if let Some(m) = messages {
                put_output(&mut out, output_of(m), capture);
            }
        }
        write(span, out);
        Ok((false, input, output))
    })
}

/// Token usage (an SDK object or a dict) into the Python dict `attributes`, as the answers
/// above record it (`dashscope`: DashScope's, with its total and an application's per-model
/// sums); (input tokens, output tokens) for the metrics.
#[pyfunction]
#[pyo3(signature = (attributes, usage, dashscope=false))]
pub fn usage(
    attributes: &Bound<'_, PyDict>,
    usage: Option<Bound<'_, PyAny>>,
    dashscope: bool,
) -> (Option<i64>, Option<i64>) {
    guard("usage", (None, None), || {
        let usage = usage.filter(|u| !u.is_none());
        let mut out = Attributes::new();
        let counts = if dashscope {
            put_dashscope_usage(&mut out, usage)
        } else {
            put_usage(&mut out, usage)
        };
        for (k, v) in out {
            if let AttrValue::Int(n) = v {
                attributes.set_item(k, n)?;
            }
        }
        Ok(counts)
    })
}
