//! OTLP over HTTP (protobuf or JSON) or gRPC, through opentelemetry-otlp, which also retries
//! 429/502/503/504 and gRPC UNAVAILABLE with exponential back-off, honouring Retry-After,
//! within the request timeout.

use std::borrow::Cow;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_otlp::{Compression, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};

use super::ResourceInfo;
use crate::config::{OtlpSettings, Protocol};
use crate::span::{
    AttrValue, Attributes, SpanRecord, KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER,
};

#[derive(Clone)]
pub struct OtlpSink {
    how: Arc<How>,
}

/// http/protobuf, the default, is encoded and sent by llmprobe itself (export/encode.rs and
/// export/http.rs); gRPC and http/json go through opentelemetry-otlp.
enum How {
    Direct {
        encoder: super::encode::TraceEncoder,
        target: Box<super::http::HttpTarget>,
    },
    Sdk {
        exporter: Box<opentelemetry_otlp::SpanExporter>,
        endpoint: String,
    },
}

impl OtlpSink {
    pub fn new(cfg: &OtlpSettings, resource: &ResourceInfo) -> Result<Self, String> {
        if cfg.protocol == Protocol::HttpProtobuf {
            return Ok(OtlpSink {
                how: Arc::new(How::Direct {
                    encoder: super::encode::TraceEncoder::new(&resource.attributes),
                    target: Box::new(super::http::HttpTarget::new(cfg)?),
                }),
            });
        }
        let compression = cfg.gzip.then_some(Compression::Gzip);
        let mut exporter = match cfg.protocol {
            Protocol::Grpc => {
                let mut metadata = tonic::metadata::MetadataMap::new();
                for (k, v) in &cfg.headers {
                    let key = tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes());
                    let val = tonic::metadata::MetadataValue::try_from(v.as_str());
                    match (key, val) {
                        (Ok(key), Ok(val)) => {
                            metadata.insert(key, val);
                        }
                        _ => eprintln!("llmprobe: warning: OTEL_EXPORTER_OTLP_HEADERS has a header {k:?} that gRPC cannot carry; it is left out"),
                    }
                }
                let mut b = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(cfg.endpoint.clone())
                    .with_timeout(cfg.timeout)
                    .with_metadata(metadata);
                if let Some(tls) = grpc_tls(cfg)? {
                    b = b.with_tls_config(tls);
                }
                if let Some(c) = compression {
                    b = b.with_compression(c);
                }
                b.build()
            }
            Protocol::HttpProtobuf | Protocol::HttpJson => {
                let headers: HashMap<String, String> = cfg.headers.iter().cloned().collect();
                let mut b = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_endpoint(cfg.endpoint.clone())
                    .with_timeout(cfg.timeout)
                    .with_headers(headers)
                    .with_http_client(http_client(cfg)?)
                    .with_protocol(if cfg.protocol == Protocol::HttpJson {
                        opentelemetry_otlp::Protocol::HttpJson
                    } else {
                        opentelemetry_otlp::Protocol::HttpBinary
                    });
                if let Some(c) = compression {
                    b = b.with_compression(c);
                }
                b.build()
            }
        }
        .map_err(|e| e.to_string())?;
        exporter.set_resource(&resource.to_sdk());
        Ok(OtlpSink {
            how: Arc::new(How::Sdk {
                exporter: Box::new(exporter),
                endpoint: cfg.endpoint.clone(),
            }),
        })
    }

    pub async fn export(&self, batch: Vec<SpanRecord>) -> Result<(), String> {
        match &*self.how {
            How::Direct { encoder, target } => {
                let body = encoder.encode(&batch);
                drop(batch); // freed before the wait for the collector's answer
                target.post(body, "application/x-protobuf").await
            }
            How::Sdk { exporter, endpoint } => {
                let data: Vec<SpanData> = batch.into_iter().map(to_span_data).collect();
                exporter
                    .export(data)
                    .await
                    .map_err(|e| format!("{endpoint}: {e}"))
            }
        }
    }
}

/// The CA bundle of OTEL_EXPORTER_OTLP_CERTIFICATE, checked to hold a certificate.
fn ca_bundle(cfg: &OtlpSettings) -> Result<Option<Vec<u8>>, String> {
    let Some(path) = cfg.certificate.as_deref() else {
        return Ok(None);
    };
    let pem =
        std::fs::read(path).map_err(|e| format!("OTEL_EXPORTER_OTLP_CERTIFICATE={path:?}: {e}"))?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(Some(pem)),
        Ok(_) => Err(format!(
            "OTEL_EXPORTER_OTLP_CERTIFICATE={path:?} holds no PEM certificate"
        )),
        Err(e) => Err(format!("OTEL_EXPORTER_OTLP_CERTIFICATE={path:?}: {e}")),
    }
}

/// The HTTP client for OTLP/HTTP: the system's roots, plus the configured CA bundle.
pub fn http_client(cfg: &OtlpSettings) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder().timeout(cfg.timeout);
    if !cfg.endpoint.starts_with("https://") {
        // Plain HTTP verifies no certificate: skip loading the system's root store, which
        // costs about 10 ms of CPU per client at start-up.
        b = b.tls_certs_only(Vec::new());
    } else if let Some(pem) = ca_bundle(cfg)? {
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())?;
        b = b.tls_certs_merge(certs);
    }
    b.build().map_err(|e| format!("HTTP client: {e}"))
}

/// TLS for OTLP/gRPC to an https:// endpoint. Without it opentelemetry-otlp trusts no root.
pub fn grpc_tls(cfg: &OtlpSettings) -> Result<Option<tonic::transport::ClientTlsConfig>, String> {
    if !cfg.endpoint.starts_with("https://") {
        return Ok(None);
    }
    let mut tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
    if let Some(pem) = ca_bundle(cfg)? {
        tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
    }
    Ok(Some(tls))
}

fn time(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

pub fn to_otel_value(v: AttrValue) -> Value {
    match v {
        AttrValue::Str(s) => Value::String(s.into()),
        AttrValue::Bool(b) => Value::Bool(b),
        AttrValue::Int(i) => Value::I64(i),
        AttrValue::Float(f) => Value::F64(f),
        AttrValue::StrArray(v) => Value::Array(Array::String(
            v.into_iter().map(StringValue::from).collect(),
        )),
        AttrValue::BoolArray(v) => Value::Array(Array::Bool(v)),
        AttrValue::IntArray(v) => Value::Array(Array::I64(v)),
        AttrValue::FloatArray(v) => Value::Array(Array::F64(v)),
    }
}

fn to_key_values(attrs: Attributes) -> Vec<KeyValue> {
    attrs
        .into_iter()
        .map(|(k, v)| KeyValue::new(k, to_otel_value(v)))
        .collect()
}

/// Our record as the OpenTelemetry SDK's span data, which opentelemetry-otlp encodes.
pub fn to_span_data(s: SpanRecord) -> SpanData {
    let trace_state = if s.trace_state.is_empty() {
        TraceState::default()
    } else {
        TraceState::from_str(&s.trace_state).unwrap_or_default()
    };
    let span_context = SpanContext::new(
        TraceId::from(s.trace_id),
        SpanId::from(s.span_id),
        TraceFlags::SAMPLED,
        false,
        trace_state,
    );
    let mut events = SpanEvents::default();
    events.dropped_count = s.dropped_events;
    events.events = s
        .events
        .into_iter()
        .map(|e| {
            opentelemetry::trace::Event::new(
                e.name,
                time(e.time_ns),
                to_key_values(e.attributes),
                0,
            )
        })
        .collect();
    let mut links = SpanLinks::default();
    links.dropped_count = s.dropped_links;
    links.links = s
        .links
        .into_iter()
        .map(|l| {
            let ctx = SpanContext::new(
                TraceId::from(l.trace_id),
                SpanId::from(l.span_id),
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            );
            opentelemetry::trace::Link::new(ctx, to_key_values(l.attributes), 0)
        })
        .collect();
    let status = match s.status_code {
        crate::span::STATUS_OK => Status::Ok,
        crate::span::STATUS_ERROR => Status::error(s.status_description),
        _ => Status::Unset,
    };
    let scope_name = if s.scope.is_empty() {
        "llmprobe".to_string()
    } else {
        s.scope
    };
    SpanData {
        span_context,
        parent_span_id: SpanId::from(s.parent_span_id),
        parent_span_is_remote: s.parent_is_remote,
        span_kind: match s.kind {
            KIND_SERVER => SpanKind::Server,
            KIND_CLIENT => SpanKind::Client,
            KIND_PRODUCER => SpanKind::Producer,
            KIND_CONSUMER => SpanKind::Consumer,
            _ => SpanKind::Internal,
        },
        name: Cow::Owned(s.name),
        start_time: time(s.start_ns),
        end_time: time(s.end_ns),
        attributes: to_key_values(s.attributes),
        dropped_attributes_count: s.dropped_attributes,
        events,
        links,
        status,
        instrumentation_scope: if s.scope_version.is_empty() {
            InstrumentationScope::builder(scope_name).build()
        } else {
            InstrumentationScope::builder(scope_name)
                .with_version(s.scope_version)
                .build()
        },
    }
}
