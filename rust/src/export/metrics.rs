//! OTLP metrics: the aggregated GenAI histograms, encoded as an ExportMetricsServiceRequest and
//! sent over HTTP (export/http.rs: gzip and retries as for spans) or gRPC (tonic), on the
//! exporter's runtime.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, AggregationTemporality, Histogram, HistogramDataPoint, Metric, ResourceMetrics,
    ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::ResourceInfo;
use crate::config::{OtlpSettings, Protocol};
use crate::metrics::{Aggregator, Instrument};
use crate::span::AttrValue;

#[derive(Clone)]
enum Transport {
    Http {
        target: super::http::HttpTarget,
        json: bool,
    },
    Grpc(MetricsServiceClient<tonic::transport::Channel>),
}

#[derive(Clone)]
pub struct MetricsSink {
    transport: Transport,
    cfg: OtlpSettings,
    resource: Resource,
    start_ns: u64,
}

fn any_value(v: &AttrValue) -> AnyValue {
    use any_value::Value;
    let arr = |values: Vec<Value>| {
        Value::ArrayValue(ArrayValue {
            values: values
                .into_iter()
                .map(|v| AnyValue { value: Some(v) })
                .collect(),
        })
    };
    let value = match v {
        AttrValue::Str(s) => Value::StringValue(s.clone()),
        AttrValue::Bool(b) => Value::BoolValue(*b),
        AttrValue::Int(i) => Value::IntValue(*i),
        AttrValue::Float(f) => Value::DoubleValue(*f),
        AttrValue::StrArray(a) => arr(a.iter().cloned().map(Value::StringValue).collect()),
        AttrValue::BoolArray(a) => arr(a.iter().copied().map(Value::BoolValue).collect()),
        AttrValue::IntArray(a) => arr(a.iter().copied().map(Value::IntValue).collect()),
        AttrValue::FloatArray(a) => arr(a.iter().copied().map(Value::DoubleValue).collect()),
    };
    AnyValue { value: Some(value) }
}

fn kv(key: &str, v: AnyValue) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(v),
        ..Default::default()
    }
}

impl MetricsSink {
    pub fn new(cfg: &OtlpSettings, resource: &ResourceInfo) -> Result<Self, String> {
        let transport = match cfg.protocol {
            Protocol::Grpc => {
                let mut endpoint = tonic::transport::Channel::from_shared(cfg.endpoint.clone())
                    .map_err(|e| e.to_string())?;
                if let Some(tls) = super::otlp::grpc_tls(cfg)? {
                    endpoint = endpoint.tls_config(tls).map_err(|e| e.to_string())?;
                }
                let channel = endpoint.timeout(cfg.timeout).connect_lazy();
                let mut client = MetricsServiceClient::new(channel);
                if cfg.gzip {
                    client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
                }
                Transport::Grpc(client)
            }
            Protocol::HttpProtobuf | Protocol::HttpJson => Transport::Http {
                target: super::http::HttpTarget::new(cfg)?,
                json: cfg.protocol == Protocol::HttpJson,
            },
        };
        Ok(MetricsSink {
            transport,
            cfg: cfg.clone(),
            // The process's resource, also with PROFILER_GENAI_SPLITAPP_ENABLE: only spans are
            // reported per app; a series aggregates the calls of every app of the process.
            resource: Resource {
                attributes: resource
                    .attributes
                    .iter()
                    .map(|(k, v)| kv(k, any_value(v)))
                    .collect(),
                ..Default::default()
            },
            start_ns: crate::span::now_ns(),
        })
    }

    /// The request for the current state of every series.
    pub fn request(&self, agg: &Aggregator) -> ExportMetricsServiceRequest {
        let now = crate::span::now_ns();
        let mut metrics = Vec::new();
        for instrument in Instrument::ALL {
            let mut points: Vec<HistogramDataPoint> = agg
                .series
                .iter()
                .flat_map(|(attrs, series)| {
                    series.of(instrument).into_iter().map(move |h| (attrs, h))
                })
                .map(|(attrs, (extra, h))| HistogramDataPoint {
                    attributes: {
                        let mut all: Vec<(&str, &str)> = attrs
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect();
                        all.extend(extra);
                        all.sort();
                        all.into_iter()
                            .map(|(k, v)| kv(k, any_value(&AttrValue::Str(v.to_string()))))
                            .collect()
                    },
                    start_time_unix_nano: self.start_ns,
                    time_unix_nano: now,
                    count: h.count,
                    sum: Some(h.sum),
                    bucket_counts: h.bucket_counts.clone(),
                    explicit_bounds: instrument.bounds().to_vec(),
                    min: (h.count > 0).then_some(h.min),
                    max: (h.count > 0).then_some(h.max),
                    ..Default::default()
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            points
                .sort_by(|a, b| format!("{:?}", a.attributes).cmp(&format!("{:?}", b.attributes)));
            metrics.push(Metric {
                name: instrument.name().into(),
                description: instrument.description().into(),
                unit: instrument.unit().into(),
                data: Some(metric::Data::Histogram(Histogram {
                    data_points: points,
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                })),
                ..Default::default()
            });
        }
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "llmprobe".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    pub async fn export(&self, request: ExportMetricsServiceRequest) -> Result<(), String> {
        let where_to = &self.cfg.endpoint;
        match &self.transport {
            Transport::Http { target, json } => {
                let (body, content_type) = if *json {
                    (
                        serde_json::to_vec(&request).map_err(|e| e.to_string())?,
                        "application/json",
                    )
                } else {
                    (request.encode_to_vec(), "application/x-protobuf")
                };
                target.post(body, content_type).await
            }
            Transport::Grpc(client) => {
                let mut req = tonic::Request::new(request);
                req.set_timeout(self.cfg.timeout.max(Duration::from_millis(1)));
                for (k, v) in &self.cfg.headers {
                    if let (Ok(key), Ok(val)) = (
                        tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes()),
                        tonic::metadata::MetadataValue::try_from(v.as_str()),
                    ) {
                        req.metadata_mut().insert(key, val);
                    }
                }
                client
                    .clone()
                    .export(req)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{where_to}: {e}"))
            }
        }
    }
}
