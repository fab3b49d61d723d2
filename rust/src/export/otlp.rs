//! OTLP over HTTP (protobuf or JSON) or gRPC, through opentelemetry-otlp, which also retries
//! 429/502/503/504 and gRPC UNAVAILABLE with exponential back-off, honouring Retry-After,
//! within the request timeout.

use std::borrow::Cow;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_otlp::{Compression, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};

use super::resource::MAX_CACHED_SERVICES;
use super::ResourceInfo;
use crate::config::{OtlpSettings, Protocol};
use crate::span::{
    AttrValue, Attributes, SpanRecord, KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER,
};

/// Owned by the exporter thread: `prepare` (there) turns a batch into an [`OtlpJob`], which the
/// exporter's runtime sends.
pub struct OtlpSink {
    how: How,
}

/// http/protobuf, the default, is encoded and sent by llmprobe itself (export/encode.rs and
/// export/http.rs); gRPC and http/json go through opentelemetry-otlp.
enum How {
    Direct {
        encoder: super::encode::TraceEncoder,
        target: Arc<super::http::HttpTarget>,
    },
    Sdk(Box<SdkExporters>),
}

/// opentelemetry-otlp's exporter carries one resource: one exporter for the process's, and
/// with PROFILER_GENAI_SPLITAPP_ENABLE one per service name (made when its first span is
/// exported), all sharing one gRPC channel or HTTP client.
struct SdkExporters {
    cfg: OtlpSettings,
    transport: SdkTransport,
    resource: ResourceInfo,
    process: Arc<opentelemetry_otlp::SpanExporter>,
    by_service: HashMap<Arc<str>, Arc<opentelemetry_otlp::SpanExporter>>,
    endpoint: Arc<str>,
}

enum SdkTransport {
    Grpc {
        channel: tonic::transport::Channel,
        metadata: tonic::metadata::MetadataMap,
    },
    Http(reqwest::Client),
}

/// One batch, ready to be sent.
pub struct OtlpJob {
    spans: u64,
    how: Job,
}

enum Job {
    Direct {
        request: super::encode::TraceRequest,
        target: Arc<super::http::HttpTarget>,
    },
    /// The batch's spans by resource, each with the exporter for it: one request per resource.
    Sdk {
        groups: Vec<(Arc<opentelemetry_otlp::SpanExporter>, Vec<SpanRecord>)>,
        endpoint: Arc<str>,
    },
}

impl OtlpSink {
    pub fn new(cfg: &OtlpSettings, resource: &ResourceInfo) -> Result<Self, String> {
        if cfg.protocol == Protocol::HttpProtobuf {
            return Ok(OtlpSink {
                how: How::Direct {
                    encoder: super::encode::TraceEncoder::new(resource),
                    target: Arc::new(super::http::HttpTarget::new(cfg)?),
                },
            });
        }
        let transport = match cfg.protocol {
            Protocol::Grpc => {
                let mut metadata = tonic::metadata::MetadataMap::new();
                for (k, v) in &cfg.headers {
                    let key =
                        tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes());
                    let val = tonic::metadata::MetadataValue::try_from(v.as_str());
                    match (key, val) {
                        (Ok(key), Ok(val)) => {
                            metadata.insert(key, val);
                        }
                        _ => eprintln!("llmprobe: warning: OTEL_EXPORTER_OTLP_HEADERS has a header {k:?} that gRPC cannot carry; it is left out"),
                    }
                }
                // The channel as opentelemetry-otlp builds it, with our TLS (the system's roots
                // and the configured CA bundle).
                let mut endpoint = tonic::transport::Channel::from_shared(cfg.endpoint.clone())
                    .map_err(|e| e.to_string())?;
                if let Some(tls) = grpc_tls(cfg)? {
                    endpoint = endpoint.tls_config(tls).map_err(|e| e.to_string())?;
                }
                SdkTransport::Grpc {
                    channel: endpoint.timeout(cfg.timeout).connect_lazy(),
                    metadata,
                }
            }
            Protocol::HttpProtobuf | Protocol::HttpJson => SdkTransport::Http(http_client(cfg)?),
        };
        let process = Arc::new(sdk_exporter(cfg, &transport, resource)?);
        Ok(OtlpSink {
            how: How::Sdk(Box::new(SdkExporters {
                cfg: cfg.clone(),
                transport,
                resource: resource.clone(),
                process,
                by_service: HashMap::new(),
                endpoint: cfg.endpoint.as_str().into(),
            })),
        })
    }

    /// `batch` as a job to send: the resources its spans go under resolved here, on the
    /// exporter thread, which owns their cache; the encoding left to the job.
    pub fn prepare(&mut self, batch: Vec<SpanRecord>) -> OtlpJob {
        let spans = batch.len() as u64;
        let how = match &mut self.how {
            How::Direct { encoder, target } => Job::Direct {
                request: encoder.prepare(batch),
                target: target.clone(),
            },
            How::Sdk(sdk) => sdk.prepare(batch),
        };
        OtlpJob { spans, how }
    }
}

impl SdkExporters {
    fn prepare(&mut self, batch: Vec<SpanRecord>) -> Job {
        let endpoint = self.endpoint.clone();
        if batch.iter().all(|s| s.service_name.is_none()) {
            return Job::Sdk {
                groups: vec![(self.process.clone(), batch)],
                endpoint,
            };
        }
        let mut groups: Vec<(Option<Arc<str>>, Vec<SpanRecord>)> = Vec::new();
        for s in batch {
            match groups.iter_mut().find(|(n, _)| *n == s.service_name) {
                Some((_, spans)) => spans.push(s),
                None => groups.push((s.service_name.clone(), vec![s])),
            }
        }
        let groups = groups
            .into_iter()
            .map(|(name, spans)| (self.exporter_for(name), spans))
            .collect();
        Job::Sdk { groups, endpoint }
    }

    fn exporter_for(&mut self, name: Option<Arc<str>>) -> Arc<opentelemetry_otlp::SpanExporter> {
        let Some(name) = name else {
            return self.process.clone();
        };
        if let Some(e) = self.by_service.get(&name) {
            return e.clone();
        }
        let resource = self.resource.with_service_name(&name);
        match sdk_exporter(&self.cfg, &self.transport, &resource) {
            Ok(e) => {
                if self.by_service.len() >= MAX_CACHED_SERVICES {
                    self.by_service.clear();
                }
                let e = Arc::new(e);
                self.by_service.insert(name, e.clone());
                e
            }
            Err(err) => {
                static REPORTED: AtomicBool = AtomicBool::new(false);
                if !REPORTED.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "llmprobe: error: cannot export the spans of service {name:?} under their own resource ({err}); they go under the process's (reported once)"
                    );
                }
                self.process.clone()
            }
        }
    }
}

/// opentelemetry-otlp's exporter for `resource`, over the shared transport.
fn sdk_exporter(
    cfg: &OtlpSettings,
    transport: &SdkTransport,
    resource: &ResourceInfo,
) -> Result<opentelemetry_otlp::SpanExporter, String> {
    let compression = cfg.gzip.then_some(Compression::Gzip);
    let mut exporter = match transport {
        SdkTransport::Grpc { channel, metadata } => {
            let mut b = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_channel(channel.clone())
                .with_timeout(cfg.timeout)
                .with_metadata(metadata.clone());
            if let Some(c) = compression {
                b = b.with_compression(c);
            }
            b.build()
        }
        SdkTransport::Http(client) => {
            let headers: HashMap<String, String> = cfg.headers.iter().cloned().collect();
            let mut b = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(cfg.endpoint.clone())
                .with_timeout(cfg.timeout)
                .with_headers(headers)
                .with_http_client(client.clone())
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
    Ok(exporter)
}

impl OtlpJob {
    /// Sends the batch: Ok, or how many of its spans were not delivered, and why.
    pub async fn send(self) -> Result<(), (u64, String)> {
        let spans = self.spans;
        match self.how {
            Job::Direct { request, target } => {
                let body = request.encode();
                drop(request); // freed before the wait for the collector's answer
                target
                    .post(body, "application/x-protobuf")
                    .await
                    .map_err(|e| (spans, e))
            }
            Job::Sdk {
                mut groups,
                endpoint,
            } => {
                if groups.len() == 1 {
                    let (exporter, batch) = groups.pop().expect("one group");
                    return export_group(exporter, batch, endpoint)
                        .await
                        .map(drop)
                        .map_err(|e| (spans, e));
                }
                // One request per resource, at once: a slow or failing one does not hold the
                // others (and dropping the set, at the export timeout, cancels them all).
                let mut set = tokio::task::JoinSet::new();
                for (exporter, batch) in groups {
                    set.spawn(export_group(exporter, batch, endpoint.clone()));
                }
                let mut delivered = 0;
                let mut problem = None;
                while let Some(done) = set.join_next().await {
                    match done {
                        Ok(Ok(n)) => delivered += n,
                        Ok(Err(e)) => {
                            problem.get_or_insert(e);
                        }
                        Err(e) => {
                            problem.get_or_insert(format!("{endpoint}: {e}"));
                        }
                    }
                }
                match problem {
                    None => Ok(()),
                    Some(e) => Err((spans.saturating_sub(delivered), e)),
                }
            }
        }
    }
}

/// Exports the spans of one resource; Ok with how many.
async fn export_group(
    exporter: Arc<opentelemetry_otlp::SpanExporter>,
    spans: Vec<SpanRecord>,
    endpoint: Arc<str>,
) -> Result<u64, String> {
    let n = spans.len() as u64;
    let data: Vec<SpanData> = spans.into_iter().map(to_span_data).collect();
    exporter
        .export(data)
        .await
        .map(|()| n)
        .map_err(|e| format!("{endpoint}: {e}"))
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
