//! `OTEL_TRACES_EXPORTER=file`: one OTLP-JSON `ExportTraceServiceRequest` per line, appended to
//! `LLMPROBE_TRACES_FILE` (the OTLP file exporter's format, readable by the Collector's
//! otlpjsonfile receiver).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;

use super::otlp::to_span_data;
use super::ResourceInfo;
use crate::span::SpanRecord;

pub struct FileSink {
    out: BufWriter<File>,
    resource: ResourceAttributesWithSchema,
}

impl FileSink {
    pub fn new(path: &str, resource: &ResourceInfo) -> std::io::Result<Self> {
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(FileSink {
            out: BufWriter::new(f),
            resource: ResourceAttributesWithSchema::from(&resource.to_sdk()),
        })
    }

    pub fn write(&mut self, batch: &[SpanRecord]) -> Result<(), String> {
        let data = batch.iter().cloned().map(to_span_data).collect();
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(data, &self.resource),
        };
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
