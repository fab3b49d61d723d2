//! `OTEL_TRACES_EXPORTER=console`, and the default when nothing is configured: each trace as a
//! compact tree on stderr, printed once its local root span has ended.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use super::ResourceInfo;
use crate::content::truncate_str;
use crate::span::{AttrValue, SpanRecord, STATUS_ERROR};

/// A trace whose root never arrives (it lives in another process) is printed after this long.
const ORPHAN_AFTER: Duration = Duration::from_secs(10);
const MAX_ATTRS_SHOWN: usize = 5;
const MAX_VALUE_CHARS: usize = 48;
/// Shown first, when present.
const PRIORITY: &[&str] = &[
    "gen_ai.request.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "error.type",
    "http.request.method",
    "http.route",
    "http.response.status_code",
];
/// Long content, or already shown another way.
const HIDDEN: &[&str] = &[
    "gen_ai.span.kind",
    "gen_ai.operation.name",
    "input.value",
    "input.mime_type",
    "output.value",
    "output.mime_type",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
    "retrieval.documents",
];

pub struct ConsoleSink {
    service: String,
    hint_pending: bool,
    traces: HashMap<u128, (Instant, Vec<SpanRecord>)>,
}

impl ConsoleSink {
    pub fn new(resource: &ResourceInfo, by_default: bool) -> Self {
        ConsoleSink {
            service: resource
                .get_str("service.name")
                .unwrap_or("unknown_service")
                .to_string(),
            hint_pending: by_default,
            traces: HashMap::new(),
        }
    }

    pub fn write(&mut self, batch: &[SpanRecord]) {
        let now = Instant::now();
        for s in batch {
            self.traces
                .entry(s.trace_id)
                .or_insert_with(|| (now, Vec::new()))
                .1
                .push(s.clone());
        }
        let ready: Vec<u128> = self
            .traces
            .iter()
            .filter(|(_, (seen, spans))| {
                spans.iter().any(is_local_root) || now.duration_since(*seen) > ORPHAN_AFTER
            })
            .map(|(id, _)| *id)
            .collect();
        self.print(ready);
    }

    pub fn flush_all(&mut self) {
        let all: Vec<u128> = self.traces.keys().copied().collect();
        self.print(all);
    }

    fn print(&mut self, ids: Vec<u128>) {
        if ids.is_empty() {
            return;
        }
        let mut out = String::new();
        if self.hint_pending {
            self.hint_pending = false;
            out.push_str(
                "llmprobe: no collector configured, so traces are printed here. To send them to one, set \
                 OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://localhost:4318); to silence this, OTEL_TRACES_EXPORTER=none.\n",
            );
        }
        let mut traces: Vec<(u128, Vec<SpanRecord>)> = ids
            .into_iter()
            .filter_map(|id| self.traces.remove(&id).map(|(_, spans)| (id, spans)))
            .collect();
        traces.sort_by_key(|(_, spans)| spans.iter().map(|s| s.start_ns).min());
        for (id, spans) in traces {
            render_trace(&mut out, id, &self.service, spans);
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
    }
}

fn is_local_root(s: &SpanRecord) -> bool {
    s.parent_span_id == 0 || s.parent_is_remote
}

fn render_trace(out: &mut String, trace_id: u128, service: &str, mut spans: Vec<SpanRecord>) {
    spans.sort_by_key(|s| s.start_ns);
    let ids: std::collections::HashSet<u64> = spans.iter().map(|s| s.span_id).collect();
    let mut children: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        if s.parent_span_id != 0 && ids.contains(&s.parent_span_id) && !s.parent_is_remote {
            children.entry(s.parent_span_id).or_default().push(i);
        } else {
            roots.push(i);
        }
    }
    let _ = writeln!(out, "llmprobe trace {trace_id:032x} · service {service}");
    let tree = Tree {
        spans: &spans,
        children: &children,
        process_service: service,
    };
    let n = roots.len();
    for (k, i) in roots.into_iter().enumerate() {
        render_span(out, &tree, i, "  ", k + 1 == n, true, service);
    }
}

/// A trace's spans, who is whose child, and the process's service name.
struct Tree<'a> {
    spans: &'a [SpanRecord],
    children: &'a HashMap<u64, Vec<usize>>,
    process_service: &'a str,
}

/// One span's line, then its children's. `above`: the service of the span above (the
/// process's for a root); a span reported under another one (PROFILER_GENAI_SPLITAPP_ENABLE)
/// says which.
fn render_span(
    out: &mut String,
    tree: &Tree<'_>,
    i: usize,
    prefix: &str,
    last: bool,
    top: bool,
    above: &str,
) {
    let s = &tree.spans[i];
    let service = s.service_name.as_deref().unwrap_or(tree.process_service);
    let branch = if top {
        ""
    } else if last {
        "└─ "
    } else {
        "├─ "
    };
    let ms = s.end_ns.saturating_sub(s.start_ns) as f64 / 1e6;
    let kind = ["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]
        .get(s.kind as usize)
        .unwrap_or(&"INTERNAL");
    let _ = write!(out, "{prefix}{branch}{}  {kind}", s.name);
    if let Some(AttrValue::Str(genai)) = attr(s, "gen_ai.span.kind") {
        let _ = write!(out, " {genai}");
    }
    let _ = write!(out, "  {ms:.1} ms");
    if service != above {
        let _ = write!(out, "  [service {service}]");
    }
    if s.status_code == STATUS_ERROR {
        let _ = write!(out, "  ERROR");
        if !s.status_description.is_empty() {
            let _ = write!(
                out,
                ": {}",
                truncate_str(&s.status_description, MAX_VALUE_CHARS)
            );
        }
    }
    // The attributes that say most about a span first; long content last, and only the output.
    let mut shown = 0;
    for key in PRIORITY {
        if let Some(v) = attr(s, key) {
            let _ = write!(out, "  {key}={}", show_value(v));
            shown += 1;
        }
    }
    for (k, v) in &s.attributes {
        if shown >= MAX_ATTRS_SHOWN {
            break;
        }
        if PRIORITY.contains(&k.as_str()) || HIDDEN.contains(&k.as_str()) {
            continue;
        }
        let _ = write!(out, "  {k}={}", show_value(v));
        shown += 1;
    }
    let rest = s
        .attributes
        .iter()
        .filter(|(k, _)| !HIDDEN.contains(&k.as_str()))
        .count()
        .saturating_sub(shown);
    if rest > 0 {
        let _ = write!(out, "  (+{rest} more)");
    }
    if let Some(v) = attr(s, "output.value") {
        let _ = write!(out, "  → {}", show_value(v));
    }
    out.push('\n');
    let child_prefix = if top {
        prefix.to_string()
    } else {
        format!("{prefix}{}", if last { "   " } else { "│  " })
    };
    if let Some(kids) = tree.children.get(&s.span_id) {
        let n = kids.len();
        for (k, &c) in kids.iter().enumerate() {
            render_span(out, tree, c, &child_prefix, k + 1 == n, false, service);
        }
    }
}

fn attr<'a>(s: &'a SpanRecord, key: &str) -> Option<&'a AttrValue> {
    s.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn show_value(v: &AttrValue) -> String {
    let text = match v {
        AttrValue::Str(s) => {
            let one_line = s.replace('\n', "⏎");
            let cut = truncate_str(&one_line, MAX_VALUE_CHARS);
            if cut.len() < one_line.len() {
                format!("{cut:?}…")
            } else {
                format!("{cut:?}")
            }
        }
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::Int(i) => i.to_string(),
        AttrValue::Float(f) => f.to_string(),
        AttrValue::StrArray(v) => format!("{v:?}"),
        AttrValue::BoolArray(v) => format!("{v:?}"),
        AttrValue::IntArray(v) => format!("{v:?}"),
        AttrValue::FloatArray(v) => format!("{v:?}"),
    };
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nested_tree() {
        let mut root = SpanRecord::new(7, 1, 0, false, "handle".into(), 1, 0);
        root.end_ns = 5_000_000;
        let mut child = SpanRecord::new(7, 2, 1, false, "chat gpt-4o".into(), 2, 1_000_000);
        child.end_ns = 3_000_000;
        child.set_attribute(
            "gen_ai.request.model".into(),
            AttrValue::Str("gpt-4o".into()),
        );
        child.set_attribute("output.value".into(), AttrValue::Str("hi".into()));
        child.set_attribute("gen_ai.span.kind".into(), AttrValue::Str("LLM".into()));
        child.set_status(STATUS_ERROR, Some("boom".into()));
        let mut out = String::new();
        render_trace(&mut out, 7, "svc", vec![child, root]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], format!("llmprobe trace {:032x} · service svc", 7));
        assert_eq!(lines[1], "  handle  SERVER  5.0 ms");
        assert_eq!(
            lines[2],
            "  └─ chat gpt-4o  CLIENT LLM  2.0 ms  ERROR: boom  gen_ai.request.model=\"gpt-4o\"  → \"hi\""
        );
    }

    #[test]
    fn shows_a_service_where_it_changes() {
        let app: std::sync::Arc<str> = "support-bot".into();
        let mut root = SpanRecord::new(7, 1, 0, false, "workflow".into(), 0, 0);
        root.end_ns = 5_000_000;
        root.service_name = Some(app.clone());
        let mut child = SpanRecord::new(7, 2, 1, false, "llm".into(), 0, 1_000_000);
        child.end_ns = 3_000_000;
        child.service_name = Some(app);
        let mut other = SpanRecord::new(7, 3, 2, false, "back home".into(), 0, 2_000_000);
        other.end_ns = 2_500_000;
        let mut out = String::new();
        render_trace(&mut out, 7, "dify-api", vec![root, child, other]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            format!("llmprobe trace {:032x} · service dify-api", 7)
        );
        assert_eq!(
            lines[1],
            "  workflow  INTERNAL  5.0 ms  [service support-bot]"
        );
        assert_eq!(lines[2], "  └─ llm  INTERNAL  2.0 ms");
        assert_eq!(
            lines[3],
            "     └─ back home  INTERNAL  0.5 ms  [service dify-api]"
        );
    }
}
