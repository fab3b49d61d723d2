//! A span as plain Rust data: what is recorded between start and end, and handed whole to the
//! exporter at end. Nothing here knows about Python.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Sampler;
use crate::content::truncate_chars;

#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    StrArray(Vec<String>),
    BoolArray(Vec<bool>),
    IntArray(Vec<i64>),
    FloatArray(Vec<f64>),
}

pub type Attributes = Vec<(String, AttrValue)>;

#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub time_ns: u64,
    pub attributes: Attributes,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub trace_id: u128,
    pub span_id: u64,
    pub attributes: Attributes,
}

/// Status codes as in the OpenTelemetry API.
pub const STATUS_UNSET: u8 = 0;
pub const STATUS_OK: u8 = 1;
pub const STATUS_ERROR: u8 = 2;

/// Span kinds as in the OpenTelemetry API (`SpanKind` values).
pub const KIND_INTERNAL: u8 = 0;
pub const KIND_SERVER: u8 = 1;
pub const KIND_CLIENT: u8 = 2;
pub const KIND_PRODUCER: u8 = 3;
pub const KIND_CONSUMER: u8 = 4;

#[derive(Debug, Clone)]
pub struct SpanRecord {
    pub trace_id: u128,
    pub span_id: u64,
    /// 0 when the span is a root.
    pub parent_span_id: u64,
    pub parent_is_remote: bool,
    pub name: String,
    pub kind: u8,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attributes: Attributes,
    pub dropped_attributes: u32,
    pub events: Vec<Event>,
    pub dropped_events: u32,
    pub links: Vec<Link>,
    pub dropped_links: u32,
    pub status_code: u8,
    pub status_description: String,
    pub scope: String,
    pub scope_version: String,
    /// The W3C `tracestate` header value, from the parent.
    pub trace_state: String,
    /// The process generation the span started in (see `process_generation`).
    pub generation: u32,
    /// The service the span is reported under instead of the process's (the `service.name` of
    /// its resource), with PROFILER_GENAI_SPLITAPP_ENABLE; shared with the spans under it.
    pub service_name: Option<Arc<str>>,
}

/// Bumped in a forked child: a span started before the fork is the parent's, which exports
/// it; the child, whose copy may end it too (a `with` block both processes leave), does not,
/// so that no span id is exported twice.
static PROCESS_GENERATION: AtomicU32 = AtomicU32::new(0);

/// The generation of the running process.
pub fn process_generation() -> u32 {
    PROCESS_GENERATION.load(Ordering::Relaxed)
}

/// In a forked child: the spans started so far are the parent's.
pub fn new_process_generation() {
    PROCESS_GENERATION.fetch_add(1, Ordering::Relaxed);
}

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Limits read on the hot path: atomics, so that starting a span takes no lock.
pub struct Limits {
    value_length: AtomicUsize, // 0 = no limit
    attribute_count: AtomicUsize,
    event_count: AtomicUsize,
    link_count: AtomicUsize,
    content_length: AtomicUsize,
    sampler_kind: AtomicU8,
    sampler_bound: AtomicU64,
    split_app: AtomicBool,
}

pub static LIMITS: Limits = Limits {
    value_length: AtomicUsize::new(0),
    attribute_count: AtomicUsize::new(128),
    event_count: AtomicUsize::new(128),
    link_count: AtomicUsize::new(128),
    content_length: AtomicUsize::new(crate::config::DEFAULT_CONTENT_MAX_LENGTH),
    sampler_kind: AtomicU8::new(SAMPLER_PARENT_ON),
    sampler_bound: AtomicU64::new(u64::MAX),
    split_app: AtomicBool::new(false),
};

const SAMPLER_ON: u8 = 0;
const SAMPLER_OFF: u8 = 1;
const SAMPLER_RATIO: u8 = 2;
const SAMPLER_PARENT_ON: u8 = 3;
const SAMPLER_PARENT_OFF: u8 = 4;
const SAMPLER_PARENT_RATIO: u8 = 5;

impl Limits {
    pub fn apply(&self, s: &crate::config::Settings) {
        self.value_length.store(
            s.attribute_value_length_limit.unwrap_or(0),
            Ordering::Relaxed,
        );
        self.attribute_count
            .store(s.attribute_count_limit, Ordering::Relaxed);
        self.event_count
            .store(s.event_count_limit, Ordering::Relaxed);
        self.link_count.store(s.link_count_limit, Ordering::Relaxed);
        self.content_length
            .store(s.content_max_length, Ordering::Relaxed);
        let (kind, ratio) = match s.sampler {
            Sampler::AlwaysOn => (SAMPLER_ON, 1.0),
            Sampler::AlwaysOff => (SAMPLER_OFF, 0.0),
            Sampler::TraceIdRatio(r) => (SAMPLER_RATIO, r),
            Sampler::ParentBasedAlwaysOn => (SAMPLER_PARENT_ON, 1.0),
            Sampler::ParentBasedAlwaysOff => (SAMPLER_PARENT_OFF, 0.0),
            Sampler::ParentBasedTraceIdRatio(r) => (SAMPLER_PARENT_RATIO, r),
        };
        self.sampler_kind.store(kind, Ordering::Relaxed);
        self.sampler_bound
            .store(ratio_bound(ratio), Ordering::Relaxed);
        self.split_app.store(s.split_app, Ordering::Relaxed);
    }

    /// PROFILER_GENAI_SPLITAPP_ENABLE: whether spans may be given their own service name.
    pub fn split_app(&self) -> bool {
        self.split_app.load(Ordering::Relaxed)
    }

    pub fn value_length(&self) -> Option<usize> {
        match self.value_length.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
    }

    pub fn content_length(&self) -> usize {
        self.content_length.load(Ordering::Relaxed)
    }

    /// The sampling decision for a new span. `parent` is `Some(sampled)` when there is one.
    pub fn sample(&self, trace_id: u128, parent: Option<bool>) -> bool {
        let kind = self.sampler_kind.load(Ordering::Relaxed);
        let by_ratio = || {
            // The lower 64 bits of the trace id, as the OpenTelemetry SDKs compare them.
            (trace_id as u64) < self.sampler_bound.load(Ordering::Relaxed)
                || self.sampler_bound.load(Ordering::Relaxed) == u64::MAX
        };
        match (kind, parent) {
            (SAMPLER_ON, _) => true,
            (SAMPLER_OFF, _) => false,
            (SAMPLER_RATIO, _) => by_ratio(),
            (_, Some(parent_sampled)) => parent_sampled,
            (SAMPLER_PARENT_OFF, None) => false,
            (SAMPLER_PARENT_RATIO, None) => by_ratio(),
            _ => true,
        }
    }
}

fn ratio_bound(ratio: f64) -> u64 {
    if ratio >= 1.0 {
        u64::MAX
    } else if ratio <= 0.0 {
        0
    } else {
        (ratio * (u64::MAX as f64)) as u64
    }
}

impl SpanRecord {
    pub fn new(
        trace_id: u128,
        span_id: u64,
        parent_span_id: u64,
        parent_is_remote: bool,
        name: String,
        kind: u8,
        start_ns: u64,
    ) -> Self {
        SpanRecord {
            trace_id,
            span_id,
            parent_span_id,
            parent_is_remote,
            name,
            kind,
            start_ns,
            end_ns: 0,
            attributes: Vec::new(),
            dropped_attributes: 0,
            events: Vec::new(),
            dropped_events: 0,
            links: Vec::new(),
            dropped_links: 0,
            status_code: STATUS_UNSET,
            status_description: String::new(),
            scope: String::new(),
            scope_version: String::new(),
            trace_state: String::new(),
            generation: process_generation(),
            service_name: None,
        }
    }

    /// Sets an attribute, replacing an earlier value of the same key; past the count limit a
    /// new key is dropped and counted. String values are cut to the value length limit.
    pub fn set_attribute(&mut self, key: String, value: AttrValue) {
        set_in(
            &mut self.attributes,
            &mut self.dropped_attributes,
            key,
            value,
        );
    }

    /// Adds an attribute whose key is known not to be set yet (the keys of the mapping a span
    /// starts with): no search for an earlier value.
    pub fn push_new_attribute(&mut self, key: String, value: AttrValue) {
        if self.attributes.len() < LIMITS.attribute_count.load(Ordering::Relaxed) {
            self.attributes.push((key, limit_value(value)));
        } else {
            self.dropped_attributes += 1;
        }
    }

    pub fn add_event(&mut self, name: String, time_ns: u64, attributes: Attributes) {
        if self.events.len() >= LIMITS.event_count.load(Ordering::Relaxed) {
            self.dropped_events += 1;
            return;
        }
        self.events.push(Event {
            name,
            time_ns,
            attributes,
        });
    }

    pub fn add_link(&mut self, link: Link) {
        if self.links.len() >= LIMITS.link_count.load(Ordering::Relaxed) {
            self.dropped_links += 1;
            return;
        }
        self.links.push(link);
    }

    /// OK is final; UNSET never overrides; a description is kept only with ERROR.
    pub fn set_status(&mut self, code: u8, description: Option<String>) {
        if self.status_code == STATUS_OK || code == STATUS_UNSET || code > STATUS_ERROR {
            return;
        }
        self.status_code = code;
        self.status_description = if code == STATUS_ERROR {
            description.unwrap_or_default()
        } else {
            String::new()
        };
    }
}

/// Applies the value length limit to a value about to be stored.
pub fn limit_value(value: AttrValue) -> AttrValue {
    let Some(max) = LIMITS.value_length() else {
        return value;
    };
    match value {
        AttrValue::Str(s) => AttrValue::Str(truncate_chars(s, max)),
        AttrValue::StrArray(v) => {
            AttrValue::StrArray(v.into_iter().map(|s| truncate_chars(s, max)).collect())
        }
        other => other,
    }
}

/// Sets `key` in an attribute list (span, event or link), honouring the limits.
pub fn set_in(attrs: &mut Attributes, dropped: &mut u32, key: String, value: AttrValue) {
    let value = limit_value(value);
    if let Some(slot) = attrs.iter_mut().find(|(k, _)| *k == key) {
        slot.1 = value;
    } else if attrs.len() < LIMITS.attribute_count.load(Ordering::Relaxed) {
        attrs.push((key, value));
    } else {
        *dropped += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_rules() {
        let mut s = SpanRecord::new(1, 1, 0, false, "x".into(), 0, 1);
        s.set_status(STATUS_ERROR, Some("boom".into()));
        assert_eq!((s.status_code, s.status_description.as_str()), (2, "boom"));
        s.set_status(STATUS_UNSET, None);
        assert_eq!(s.status_code, STATUS_ERROR);
        s.set_status(STATUS_OK, Some("ignored".into()));
        assert_eq!((s.status_code, s.status_description.as_str()), (1, ""));
        s.set_status(STATUS_ERROR, Some("late".into()));
        assert_eq!(s.status_code, STATUS_OK);
    }

    #[test]
    fn attributes_replace_by_key() {
        let mut s = SpanRecord::new(1, 1, 0, false, "x".into(), 0, 1);
        s.set_attribute("a".into(), AttrValue::Int(1));
        s.set_attribute("b".into(), AttrValue::Bool(true));
        s.set_attribute("a".into(), AttrValue::Int(2));
        assert_eq!(
            s.attributes,
            vec![
                ("a".to_string(), AttrValue::Int(2)),
                ("b".to_string(), AttrValue::Bool(true))
            ]
        );
    }

    #[test]
    fn ratio_sampling_is_about_right() {
        let bound = ratio_bound(0.25);
        let n = 100_000u64;
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut hits = 0;
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x < bound {
                hits += 1;
            }
        }
        let frac = hits as f64 / n as f64;
        assert!((0.23..0.27).contains(&frac), "{frac}");
    }
}
