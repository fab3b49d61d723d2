//! OTLP trace requests (`ExportTraceServiceRequest`, protobuf) encoded straight from our span
//! records, in one pass over the batch.
//!
//! Going through opentelemetry-otlp cost ≈ 40k instructions per GenAI span on the exporter
//! thread: a `SpanData` per span, then opentelemetry-proto's structs (every string copied
//! again), then prost, which recomputes each nested message's length at every level. Here each
//! span's length is computed once, in plain arithmetic, and the bytes are written into one
//! buffer of exactly the right size. The field numbers are those of opentelemetry-proto's
//! `trace/v1/trace.proto`, `common/v1/common.proto` and `resource/v1/resource.proto`; what
//! the spans carry (flags, status, scope) is what opentelemetry-proto's own conversion gives.

use std::collections::HashMap;
use std::sync::Arc;

use super::resource::{ResourceInfo, MAX_CACHED_SERVICES};
use crate::span::{
    AttrValue, Event, Link, SpanRecord, KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER,
    STATUS_ERROR, STATUS_OK,
};

const LEN: u32 = 2; // wire type: length-delimited
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const FIXED32: u32 = 5;

/// Span flags: the trace flags (sampled), and that the parent's remoteness is known.
const SAMPLED: u32 = 0x01;
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn tag_len(field: u32) -> usize {
    varint_len((field << 3) as u64)
}

fn put_tag(buf: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(buf, ((field << 3) | wire) as u64);
}

/// Bytes a length-delimited field of `len` bytes takes.
fn len_field(field: u32, len: usize) -> usize {
    tag_len(field) + varint_len(len as u64) + len
}

fn put_len(buf: &mut Vec<u8>, field: u32, len: usize) {
    put_tag(buf, field, LEN);
    put_varint(buf, len as u64);
}

fn put_bytes(buf: &mut Vec<u8>, field: u32, data: &[u8]) {
    put_len(buf, field, data.len());
    buf.extend_from_slice(data);
}

/// A proto3 string field: left out when empty (its default).
fn str_len(field: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        len_field(field, s.len())
    }
}

fn put_str(buf: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        put_bytes(buf, field, s.as_bytes());
    }
}

fn put_fixed64(buf: &mut Vec<u8>, field: u32, v: u64) {
    put_tag(buf, field, FIXED64);
    buf.extend_from_slice(&v.to_le_bytes());
}

fn uint_len(field: u32, v: u64) -> usize {
    if v == 0 {
        0
    } else {
        tag_len(field) + varint_len(v)
    }
}

fn put_uint(buf: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_tag(buf, field, VARINT);
        put_varint(buf, v);
    }
}

// ---- AnyValue and KeyValue (common.proto) ----------------------------------------------------

/// The body of an AnyValue holding a scalar. A oneof member is written even when it holds
/// its type's default (false, 0, ""), or the receiver would see no value at all.
fn scalar_len(v: &ScalarRef<'_>) -> usize {
    match v {
        ScalarRef::Str(s) => len_field(1, s.len()),
        ScalarRef::Bool(_) => 2,
        ScalarRef::Int(i) => 1 + varint_len(*i as u64),
        ScalarRef::Float(_) => 9,
    }
}

fn put_scalar(buf: &mut Vec<u8>, v: &ScalarRef<'_>) {
    match v {
        ScalarRef::Str(s) => put_bytes(buf, 1, s.as_bytes()),
        ScalarRef::Bool(b) => {
            put_tag(buf, 2, VARINT);
            buf.push(*b as u8);
        }
        ScalarRef::Int(i) => {
            put_tag(buf, 3, VARINT);
            put_varint(buf, *i as u64);
        }
        ScalarRef::Float(f) => put_fixed64(buf, 4, f.to_bits()),
    }
}

enum ScalarRef<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Float(f64),
}

/// `f` with each scalar of an array value, in order; false when `v` is a scalar itself.
/// (No list of them is built: this runs for every array attribute of every span, twice.)
fn each_scalar(v: &AttrValue, mut f: impl FnMut(ScalarRef<'_>)) -> bool {
    match v {
        AttrValue::StrArray(a) => a.iter().for_each(|s| f(ScalarRef::Str(s))),
        AttrValue::BoolArray(a) => a.iter().for_each(|b| f(ScalarRef::Bool(*b))),
        AttrValue::IntArray(a) => a.iter().for_each(|i| f(ScalarRef::Int(*i))),
        AttrValue::FloatArray(a) => a.iter().for_each(|x| f(ScalarRef::Float(*x))),
        _ => return false,
    }
    true
}

fn scalar_of(v: &AttrValue) -> ScalarRef<'_> {
    match v {
        AttrValue::Str(s) => ScalarRef::Str(s),
        AttrValue::Bool(b) => ScalarRef::Bool(*b),
        AttrValue::Int(i) => ScalarRef::Int(*i),
        AttrValue::Float(f) => ScalarRef::Float(*f),
        _ => unreachable!("arrays are handled by each_scalar"),
    }
}

/// The body of an ArrayValue (its values, each an AnyValue); None for a scalar.
fn array_body_len(v: &AttrValue) -> Option<usize> {
    let mut len = 0;
    each_scalar(v, |x| len += len_field(1, scalar_len(&x))).then_some(len)
}

fn any_len(v: &AttrValue) -> usize {
    match array_body_len(v) {
        Some(body) => len_field(5, body),
        None => scalar_len(&scalar_of(v)),
    }
}

fn put_any(buf: &mut Vec<u8>, v: &AttrValue) {
    match array_body_len(v) {
        Some(body) => {
            put_len(buf, 5, body);
            each_scalar(v, |x| {
                put_len(buf, 1, scalar_len(&x));
                put_scalar(buf, &x);
            });
        }
        None => put_scalar(buf, &scalar_of(v)),
    }
}

/// A KeyValue's body length, given its AnyValue's.
fn kv_len(k: &str, any: usize) -> usize {
    len_field(1, k.len()) + len_field(2, any)
}

fn attrs_len(field: u32, attrs: &[(String, AttrValue)]) -> usize {
    attrs
        .iter()
        .map(|(k, v)| len_field(field, kv_len(k, any_len(v))))
        .sum()
}

fn put_attrs(buf: &mut Vec<u8>, field: u32, attrs: &[(String, AttrValue)]) {
    for (k, v) in attrs {
        let any = any_len(v);
        put_len(buf, field, kv_len(k, any));
        put_bytes(buf, 1, k.as_bytes());
        put_len(buf, 2, any);
        put_any(buf, v);
    }
}

// ---- Span (trace.proto) ----------------------------------------------------------------------

fn proto_kind(kind: u8) -> u64 {
    match kind {
        KIND_SERVER => 2,
        KIND_CLIENT => 3,
        KIND_PRODUCER => 4,
        KIND_CONSUMER => 5,
        _ => 1, // INTERNAL
    }
}

fn status_body_len(s: &SpanRecord) -> usize {
    match s.status_code {
        STATUS_ERROR => str_len(2, &s.status_description) + 2,
        STATUS_OK => 2,
        _ => 0,
    }
}

fn event_len(e: &Event) -> usize {
    9 + str_len(2, &e.name) + attrs_len(3, &e.attributes)
}

fn link_len(l: &Link) -> usize {
    18 + 10 + attrs_len(4, &l.attributes) + 5
}

fn span_len(s: &SpanRecord) -> usize {
    18 + 10 // trace_id, span_id
        + str_len(3, &s.trace_state)
        + if s.parent_span_id != 0 { 10 } else { 0 }
        + str_len(5, &s.name)
        + 2 // kind
        + 9 + 9 // start, end
        + attrs_len(9, &s.attributes)
        + uint_len(10, s.dropped_attributes as u64)
        + s.events.iter().map(|e| len_field(11, event_len(e))).sum::<usize>()
        + uint_len(12, s.dropped_events as u64)
        + s.links.iter().map(|l| len_field(13, link_len(l))).sum::<usize>()
        + uint_len(14, s.dropped_links as u64)
        + len_field(15, status_body_len(s))
        + tag_len(16) + 4 // flags
}

fn put_span(buf: &mut Vec<u8>, s: &SpanRecord) {
    put_bytes(buf, 1, &s.trace_id.to_be_bytes());
    put_bytes(buf, 2, &s.span_id.to_be_bytes());
    put_str(buf, 3, &s.trace_state);
    if s.parent_span_id != 0 {
        put_bytes(buf, 4, &s.parent_span_id.to_be_bytes());
    }
    put_str(buf, 5, &s.name);
    put_tag(buf, 6, VARINT);
    put_varint(buf, proto_kind(s.kind));
    put_fixed64(buf, 7, s.start_ns);
    put_fixed64(buf, 8, s.end_ns);
    put_attrs(buf, 9, &s.attributes);
    put_uint(buf, 10, s.dropped_attributes as u64);
    for e in &s.events {
        put_len(buf, 11, event_len(e));
        put_fixed64(buf, 1, e.time_ns);
        put_str(buf, 2, &e.name);
        put_attrs(buf, 3, &e.attributes);
    }
    put_uint(buf, 12, s.dropped_events as u64);
    for l in &s.links {
        put_len(buf, 13, link_len(l));
        put_bytes(buf, 1, &l.trace_id.to_be_bytes());
        put_bytes(buf, 2, &l.span_id.to_be_bytes());
        put_attrs(buf, 4, &l.attributes);
        put_tag(buf, 6, FIXED32);
        buf.extend_from_slice(&(SAMPLED | HAS_IS_REMOTE | IS_REMOTE).to_le_bytes());
    }
    put_uint(buf, 14, s.dropped_links as u64);
    put_len(buf, 15, status_body_len(s));
    match s.status_code {
        STATUS_ERROR => {
            put_str(buf, 2, &s.status_description);
            put_uint(buf, 3, 2);
        }
        STATUS_OK => put_uint(buf, 3, 1),
        _ => {}
    }
    let remote = if s.parent_is_remote { IS_REMOTE } else { 0 };
    put_tag(buf, 16, FIXED32);
    buf.extend_from_slice(&(SAMPLED | HAS_IS_REMOTE | remote).to_le_bytes());
}

// ---- the request -----------------------------------------------------------------------------

/// A `Resource` message's body.
fn resource_body(attributes: &[(String, AttrValue)]) -> Arc<[u8]> {
    let mut body = Vec::with_capacity(attrs_len(1, attributes));
    put_attrs(&mut body, 1, attributes);
    body.into()
}

/// Encodes trace requests for the process's resource and, with PROFILER_GENAI_SPLITAPP_ENABLE,
/// its variants per service name. Owned by the exporter thread, which alone fills the cache.
pub struct TraceEncoder {
    resource: ResourceInfo,
    /// The process resource's `Resource` body, encoded once.
    process: Arc<[u8]>,
    /// Per service name, the body of the process resource with that `service.name`, encoded
    /// the first time a span of that service is exported.
    by_service: HashMap<Arc<str>, Arc<[u8]>>,
}

impl TraceEncoder {
    pub fn new(resource: &ResourceInfo) -> Self {
        TraceEncoder {
            process: resource_body(&resource.attributes),
            resource: resource.clone(),
            by_service: HashMap::new(),
        }
    }

    /// `batch` with the encoded resources its spans go under, ready to be encoded wherever the
    /// request is sent from.
    pub fn prepare(&mut self, batch: Vec<SpanRecord>) -> TraceRequest {
        let mut resources: Vec<EncodedResource> = Vec::with_capacity(1);
        for s in &batch {
            let name = s.service_name.as_ref();
            if !resources.iter().any(|(n, _)| n.as_ref() == name) {
                resources.push((name.cloned(), self.body_for(name)));
            }
        }
        TraceRequest {
            spans: batch,
            resources,
        }
    }

    fn body_for(&mut self, name: Option<&Arc<str>>) -> Arc<[u8]> {
        let Some(name) = name else {
            return self.process.clone();
        };
        if let Some(body) = self.by_service.get(name) {
            return body.clone();
        }
        if self.by_service.len() >= MAX_CACHED_SERVICES {
            self.by_service.clear();
        }
        let body = resource_body(&self.resource.with_service_name(name).attributes);
        self.by_service.insert(name.clone(), body.clone());
        body
    }
}

/// A resource's service name (None: the process's) and its encoded `Resource` body.
type EncodedResource = (Option<Arc<str>>, Arc<[u8]>);

/// One `ExportTraceServiceRequest` to encode: the spans, and the encoded resources they go
/// under (the process's for a span without a service name), first seen first.
pub struct TraceRequest {
    spans: Vec<SpanRecord>,
    resources: Vec<EncodedResource>,
}

/// The spans of one scope under one resource.
struct ScopeGroup<'a> {
    resource: usize,
    name: &'a str,
    version: &'a str,
    spans: Vec<usize>,
    /// The ScopeSpans body's length.
    len: usize,
}

impl TraceRequest {
    /// The request: one ResourceSpans per resource, its spans grouped by scope (first seen
    /// first).
    pub fn encode(&self) -> Vec<u8> {
        let batch = &self.spans;
        let lens: Vec<usize> = batch.iter().map(span_len).collect();
        let mut groups: Vec<ScopeGroup<'_>> = Vec::new();
        for (i, s) in batch.iter().enumerate() {
            let resource = match self.resources.as_slice() {
                [_] => 0,
                all => all
                    .iter()
                    .position(|(n, _)| *n == s.service_name)
                    .unwrap_or(0),
            };
            let name = if s.scope.is_empty() {
                "llmprobe"
            } else {
                s.scope.as_str()
            };
            let version = s.scope_version.as_str();
            let at = match groups
                .iter()
                .position(|g| g.resource == resource && g.name == name && g.version == version)
            {
                Some(at) => at,
                None => {
                    groups.push(ScopeGroup {
                        resource,
                        name,
                        version,
                        spans: Vec::new(),
                        len: 0,
                    });
                    groups.len() - 1
                }
            };
            groups[at].spans.push(i);
        }
        for g in &mut groups {
            let scope_len = str_len(1, g.name) + str_len(2, g.version);
            g.len = len_field(1, scope_len)
                + g.spans
                    .iter()
                    .map(|&i| len_field(2, lens[i]))
                    .sum::<usize>();
        }
        let resource_spans_lens: Vec<usize> = self
            .resources
            .iter()
            .enumerate()
            .map(|(r, (_, body))| {
                len_field(1, body.len())
                    + groups
                        .iter()
                        .filter(|g| g.resource == r)
                        .map(|g| len_field(2, g.len))
                        .sum::<usize>()
            })
            .collect();
        let total = resource_spans_lens
            .iter()
            .map(|&len| len_field(1, len))
            .sum();
        let mut buf = Vec::with_capacity(total);
        for (r, (_, body)) in self.resources.iter().enumerate() {
            put_len(&mut buf, 1, resource_spans_lens[r]);
            put_bytes(&mut buf, 1, body);
            for g in groups.iter().filter(|g| g.resource == r) {
                put_len(&mut buf, 2, g.len);
                put_len(&mut buf, 1, str_len(1, g.name) + str_len(2, g.version));
                put_str(&mut buf, 1, g.name);
                put_str(&mut buf, 2, g.version);
                for &i in &g.spans {
                    put_len(&mut buf, 2, lens[i]);
                    put_span(&mut buf, &batch[i]);
                }
            }
        }
        debug_assert_eq!(
            buf.len(),
            total,
            "the computed length is the written length"
        );
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use prost::Message;

    fn encoder(attributes: &[(&str, &str)]) -> TraceEncoder {
        TraceEncoder::new(&ResourceInfo {
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), AttrValue::Str(v.to_string())))
                .collect(),
        })
    }

    fn decode(enc: &mut TraceEncoder, batch: Vec<SpanRecord>) -> ExportTraceServiceRequest {
        let bytes = enc.prepare(batch).encode();
        ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap()
    }

    fn record(scope: &str) -> SpanRecord {
        let mut s = SpanRecord::new(
            0x0102030405060708090a0b0c0d0e0f10,
            0x1112131415161718,
            0x2122232425262728,
            true,
            "chat gpt-4o".into(),
            KIND_CLIENT,
            1_700_000_000_000_000_000,
        );
        s.end_ns = s.start_ns + 1_000;
        s.scope = scope.into();
        s.scope_version = "1.2".into();
        s.trace_state = "k=v".into();
        s.attributes = vec![
            ("s".into(), AttrValue::Str("é".repeat(200))),
            ("empty".into(), AttrValue::Str(String::new())),
            ("b".into(), AttrValue::Bool(false)),
            ("i".into(), AttrValue::Int(-3)),
            ("z".into(), AttrValue::Int(0)),
            ("f".into(), AttrValue::Float(0.5)),
            (
                "sa".into(),
                AttrValue::StrArray(vec!["a".into(), String::new()]),
            ),
            ("ia".into(), AttrValue::IntArray(vec![1, -1])),
            ("fa".into(), AttrValue::FloatArray(vec![])),
        ];
        s.dropped_attributes = 2;
        s.events.push(Event {
            name: "exception".into(),
            time_ns: s.start_ns + 10,
            attributes: vec![("exception.type".into(), AttrValue::Str("E".into()))],
        });
        s.links.push(Link {
            trace_id: 7,
            span_id: 8,
            attributes: vec![],
        });
        s.status_code = STATUS_ERROR;
        s.status_description = "boom".into();
        s
    }

    #[test]
    fn decodes_as_the_otlp_request_it_means() {
        let mut enc = encoder(&[("service.name", "svc")]);
        let req = decode(&mut enc, vec![record("a"), record("b"), record("a")]);
        assert_eq!(req.resource_spans.len(), 1);
        let rs = &req.resource_spans[0];
        let res = rs.resource.as_ref().unwrap();
        assert_eq!(res.attributes[0].key, "service.name");
        assert_eq!(rs.scope_spans.len(), 2);
        assert_eq!(rs.scope_spans[0].scope.as_ref().unwrap().name, "a");
        assert_eq!(rs.scope_spans[0].scope.as_ref().unwrap().version, "1.2");
        assert_eq!(rs.scope_spans[0].spans.len(), 2);
        let s = &rs.scope_spans[1].spans[0];
        assert_eq!(
            s.trace_id,
            0x0102030405060708090a0b0c0d0e0f10u128.to_be_bytes()
        );
        assert_eq!(s.span_id, 0x1112131415161718u64.to_be_bytes());
        assert_eq!(s.parent_span_id, 0x2122232425262728u64.to_be_bytes());
        assert_eq!(s.trace_state, "k=v");
        assert_eq!(s.name, "chat gpt-4o");
        assert_eq!(s.kind, 3);
        assert_eq!(s.end_time_unix_nano - s.start_time_unix_nano, 1_000);
        assert_eq!(s.flags, SAMPLED | HAS_IS_REMOTE | IS_REMOTE);
        assert_eq!(s.dropped_attributes_count, 2);
        let value = |k: &str| {
            s.attributes
                .iter()
                .find(|kv| kv.key == k)
                .and_then(|kv| kv.value.clone())
                .and_then(|v| v.value)
        };
        assert_eq!(value("s"), Some(Value::StringValue("é".repeat(200))));
        assert_eq!(value("empty"), Some(Value::StringValue(String::new())));
        assert_eq!(value("b"), Some(Value::BoolValue(false)));
        assert_eq!(value("i"), Some(Value::IntValue(-3)));
        assert_eq!(value("z"), Some(Value::IntValue(0)));
        assert_eq!(value("f"), Some(Value::DoubleValue(0.5)));
        match value("sa") {
            Some(Value::ArrayValue(a)) => {
                let items: Vec<_> = a.values.into_iter().map(|v| v.value).collect();
                assert_eq!(
                    items,
                    vec![
                        Some(Value::StringValue("a".into())),
                        Some(Value::StringValue(String::new()))
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        match value("fa") {
            Some(Value::ArrayValue(a)) => assert!(a.values.is_empty()),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.events.len(), 1);
        assert_eq!(s.events[0].name, "exception");
        assert_eq!(s.links[0].trace_id, 7u128.to_be_bytes());
        assert_eq!(s.links[0].flags, SAMPLED | HAS_IS_REMOTE | IS_REMOTE);
        let status = s.status.as_ref().unwrap();
        assert_eq!((status.code, status.message.as_str()), (2, "boom"));
    }

    #[test]
    fn a_root_span_with_unset_status() {
        let mut s = record("");
        s.parent_span_id = 0;
        s.parent_is_remote = false;
        s.status_code = 0;
        s.events.clear();
        s.links.clear();
        let req = decode(&mut encoder(&[]), vec![s]);
        let ss = &req.resource_spans[0].scope_spans[0];
        assert_eq!(ss.scope.as_ref().unwrap().name, "llmprobe");
        let span = &ss.spans[0];
        assert!(span.parent_span_id.is_empty());
        assert_eq!(span.flags, SAMPLED | HAS_IS_REMOTE);
        assert_eq!(span.status.as_ref().unwrap().code, 0);
    }

    fn named(span_id: u64, scope: &str, service: Option<&str>) -> SpanRecord {
        let mut s = record(scope);
        s.span_id = span_id;
        s.service_name = service.map(Arc::from);
        s
    }

    fn str_attrs(attributes: &[KeyValue]) -> Vec<(String, String)> {
        attributes
            .iter()
            .map(
                |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Value::StringValue(s)) => (kv.key.clone(), s.clone()),
                    other => (kv.key.clone(), format!("{other:?}")),
                },
            )
            .collect()
    }

    #[test]
    fn one_resource_per_service_name() {
        let process = [
            ("service.name", "dify-api"),
            ("host.name", "h1"),
            ("deployment.environment", "prod"),
        ];
        let mut enc = encoder(&process);
        let batch = vec![
            named(1, "a", None),
            named(2, "a", Some("app-a")),
            named(3, "b", Some("app-b")),
            named(4, "b", None),
            named(5, "b", Some("app-a")),
            named(6, "a", Some("app-a")),
        ];
        // Twice: the second time the variant resources come from the encoder's cache.
        for _ in 0..2 {
            let req = decode(&mut enc, batch.clone());
            assert_eq!(req.resource_spans.len(), 3);
            let mut seen: Vec<u64> = Vec::new();
            let mut services = Vec::new();
            for rs in &req.resource_spans {
                let attrs = str_attrs(&rs.resource.as_ref().unwrap().attributes);
                let service = attrs[0].1.clone();
                assert_eq!(attrs[0].0, "service.name");
                // Everything but service.name is the process's, in the same order.
                assert_eq!(attrs.len(), process.len());
                for ((k, v), (pk, pv)) in attrs.iter().zip(process.iter()).skip(1) {
                    assert_eq!((k.as_str(), v.as_str()), (*pk, *pv));
                }
                let ids: Vec<u64> = rs
                    .scope_spans
                    .iter()
                    .flat_map(|ss| &ss.spans)
                    .map(|s| u64::from_be_bytes(s.span_id.as_slice().try_into().unwrap()))
                    .collect();
                let expected: Vec<u64> = batch
                    .iter()
                    .filter(|s| s.service_name.as_deref().unwrap_or("dify-api") == service.as_str())
                    .map(|s| s.span_id)
                    .collect();
                let mut sorted = ids.clone();
                sorted.sort();
                assert_eq!(sorted, expected, "{service}");
                // Scopes are grouped within each resource.
                let scopes: Vec<&str> = rs
                    .scope_spans
                    .iter()
                    .map(|ss| ss.scope.as_ref().unwrap().name.as_str())
                    .collect();
                let mut distinct = scopes.clone();
                distinct.dedup();
                assert_eq!(scopes, distinct);
                seen.extend(ids);
                services.push(service);
            }
            // First seen first; every span in exactly one.
            assert_eq!(services, ["dify-api", "app-a", "app-b"]);
            seen.sort();
            assert_eq!(seen, [1, 2, 3, 4, 5, 6]);
        }
        assert_eq!(enc.by_service.len(), 2);
    }

    #[test]
    fn service_name_added_when_the_process_resource_has_none() {
        let mut enc = encoder(&[("host.name", "h1")]);
        let req = decode(
            &mut enc,
            vec![named(1, "a", Some("app-a")), named(2, "a", None)],
        );
        assert_eq!(req.resource_spans.len(), 2);
        assert_eq!(
            str_attrs(&req.resource_spans[0].resource.as_ref().unwrap().attributes),
            [
                ("host.name".to_string(), "h1".to_string()),
                ("service.name".to_string(), "app-a".to_string())
            ]
        );
        assert_eq!(
            str_attrs(&req.resource_spans[1].resource.as_ref().unwrap().attributes),
            [("host.name".to_string(), "h1".to_string())]
        );
    }

    #[test]
    fn the_cache_of_variant_resources_is_bounded() {
        let mut enc = encoder(&[("service.name", "p")]);
        for i in 0..MAX_CACHED_SERVICES + 10 {
            let name = format!("app-{i}");
            let req = decode(&mut enc, vec![named(1, "a", Some(&name))]);
            let attrs = str_attrs(&req.resource_spans[0].resource.as_ref().unwrap().attributes);
            assert_eq!(attrs[0].1, name);
        }
        assert!(enc.by_service.len() <= MAX_CACHED_SERVICES);
    }

    #[test]
    fn varint_lengths() {
        for v in [0u64, 1, 127, 128, 16383, 16384, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v), "{v}");
        }
    }
}
