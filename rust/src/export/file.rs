//! `OTEL_TRACES_EXPORTER=file`: one OTLP-JSON `ExportTraceServiceRequest` per line, appended to
//! `LLMPROBE_TRACES_FILE` (the OTLP file exporter's format, readable by the Collector's
//! otlpjsonfile receiver).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::SpanData;

use super::otlp::to_span_data;
use super::resource::MAX_CACHED_SERVICES;
use super::ResourceInfo;
use crate::span::SpanRecord;

pub struct FileSink {
    out: BufWriter<File>,
    info: ResourceInfo,
    resource: ResourceAttributesWithSchema,
    /// With PROFILER_GENAI_SPLITAPP_ENABLE: per service name, the process's resource with that
    /// `service.name`.
    by_service: HashMap<Arc<str>, ResourceAttributesWithSchema>,
}

impl FileSink {
    pub fn new(path: &str, resource: &ResourceInfo) -> std::io::Result<Self> {
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(FileSink {
            out: BufWriter::new(f),
            info: resource.clone(),
            resource: ResourceAttributesWithSchema::from(&resource.to_sdk()),
            by_service: HashMap::new(),
        })
    }

    pub fn write(&mut self, batch: &[SpanRecord]) -> Result<(), String> {
        // The spans by resource (first seen first): one ResourceSpans each.
        let mut groups: Vec<(Option<&Arc<str>>, Vec<SpanData>)> = Vec::new();
        for s in batch {
            let name = s.service_name.as_ref();
            let data = to_span_data(s.clone());
            match groups.iter_mut().find(|(n, _)| *n == name) {
                Some((_, spans)) => spans.push(data),
                None => groups.push((name, vec![data])),
            }
        }
        let names = || groups.iter().filter_map(|(name, _)| *name);
        let missing = names()
            .filter(|name| !self.by_service.contains_key(*name))
            .count();
        if missing > 0 && self.by_service.len() + missing > MAX_CACHED_SERVICES {
            self.by_service.clear();
        }
        for name in names() {
            if !self.by_service.contains_key(name) {
                let resource = self.info.with_service_name(name).to_sdk();
                self.by_service
                    .insert(name.clone(), ResourceAttributesWithSchema::from(&resource));
            }
        }
        let mut resource_spans = Vec::new();
        for (name, data) in groups {
            let resource = match name {
                None => &self.resource,
                Some(name) => &self.by_service[name],
            };
            resource_spans.extend(group_spans_by_resource_and_scope(data, resource));
        }
        let request = ExportTraceServiceRequest { resource_spans };
        let line = serde_json::to_string(&request).map_err(|e| e.to_string())?;
        self.out
            .write_all(line.as_bytes())
            .and_then(|_| self.out.write_all(b"\n"))
            .map_err(|e| format!("LLMPROBE_TRACES_FILE: {e}"))
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
