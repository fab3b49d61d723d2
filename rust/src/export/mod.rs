//! The exporter thread: batches spans by size and delay and hands each batch to the sinks the
//! configuration chose (OTLP, console, file). OTLP exports run on a small tokio runtime, a few at
//! a time, so that one slow request does not stop the thread from draining the queue.

mod console;
mod encode;
mod file;
mod http;
mod metrics;
mod otlp;
mod resource;

pub use resource::ResourceInfo;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};

use crate::config::{Settings, TracesExporter};
use crate::pipeline::{ExportStatus, Msg, STATS};
use crate::span::SpanRecord;

/// OTLP requests in flight at once.
const MAX_IN_FLIGHT: usize = 4;

enum Sink {
    Otlp(otlp::OtlpSink),
    Console(console::ConsoleSink),
    File(file::FileSink),
}

struct Worker {
    sinks: Vec<Sink>,
    metrics: Option<metrics::MetricsSink>,
    aggregator: crate::metrics::Aggregator,
    runtime: tokio::runtime::Runtime,
    permits: Arc<tokio::sync::Semaphore>,
    status: Arc<ExportStatus>,
    export_timeout: Duration,
    /// LLMPROBE_REDACT_PATTERNS, applied to each batch before any sink sees it.
    redactor: Option<crate::redact::Redactor>,
}

impl Worker {
    /// Hands one batch to every sink.
    fn export(&mut self, mut batch: Vec<SpanRecord>) {
        if batch.is_empty() {
            return;
        }
        if let Some(redactor) = &self.redactor {
            batch.iter_mut().for_each(|span| redactor.span(span));
        }
        STATS.export_batches.fetch_add(1, Ordering::Relaxed);
        let n = batch.len() as u64;
        let mut otlp_sink = None;
        let mut local_ok = true;
        for sink in &mut self.sinks {
            match sink {
                Sink::Console(c) => c.write(&batch),
                Sink::File(f) => {
                    if let Err(e) = f.write(&batch) {
                        local_ok = false;
                        record_error(&self.status, e);
                    }
                }
                Sink::Otlp(o) => otlp_sink = Some(o),
            }
        }
        let Some(o) = otlp_sink else {
            let counter = if local_ok {
                &STATS.spans_exported
            } else {
                &STATS.dropped_export_failed
            };
            counter.fetch_add(n, Ordering::Relaxed);
            return;
        };
        // Wait for a free slot: while all are busy, the queue fills and new spans are dropped.
        let permit = self
            .runtime
            .block_on(self.permits.clone().acquire_owned())
            .expect("the semaphore is never closed");
        let job = {
            let _enter = self.runtime.enter(); // a new service's exporter is built in the runtime
            o.prepare(batch)
        };
        let status = self.status.clone();
        let timeout = self.export_timeout;
        self.runtime.spawn(async move {
            let result = tokio::time::timeout(timeout, job.send()).await;
            match result {
                Ok(Ok(())) => {
                    STATS.spans_exported.fetch_add(n, Ordering::Relaxed);
                }
                Ok(Err((failed, e))) => {
                    let failed = failed.min(n);
                    STATS
                        .spans_exported
                        .fetch_add(n - failed, Ordering::Relaxed);
                    STATS
                        .dropped_export_failed
                        .fetch_add(failed, Ordering::Relaxed);
                    record_error(&status, e);
                }
                Err(_) => {
                    STATS.dropped_export_failed.fetch_add(n, Ordering::Relaxed);
                    record_error(
                        &status,
                        format!(
                            "no answer within OTEL_BSP_EXPORT_TIMEOUT={}ms",
                            timeout.as_millis()
                        ),
                    );
                }
            }
            drop(permit);
        });
    }

    /// Sends the metrics' current state, if anything was recorded since the last time.
    fn export_metrics(&mut self) {
        let Some(sink) = self.metrics.clone() else {
            return;
        };
        if !self.aggregator.dirty {
            return;
        }
        self.aggregator.dirty = false;
        let request = sink.request(&self.aggregator);
        let permit = self
            .runtime
            .block_on(self.permits.clone().acquire_owned())
            .expect("the semaphore is never closed");
        let status = self.status.clone();
        let timeout = self.export_timeout;
        self.runtime.spawn(async move {
            match tokio::time::timeout(timeout, sink.export(request)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => record_error(&status, format!("metrics: {e}")),
                Err(_) => record_error(&status, "metrics: no answer in time".into()),
            }
            drop(permit);
        });
    }

    /// Waits until every export started so far has finished.
    fn wait_idle(&self) {
        let all = MAX_IN_FLIGHT as u32;
        let permits = self.permits.clone();
        let _ = self
            .runtime
            .block_on(async move { permits.acquire_many(all).await.map(drop) });
    }

    fn finish_local(&mut self) {
        for sink in &mut self.sinks {
            match sink {
                Sink::Console(c) => c.flush_all(),
                Sink::File(f) => {
                    let _ = f.flush();
                }
                Sink::Otlp(_) => {}
            }
        }
    }
}

fn record_error(status: &ExportStatus, e: String) {
    if let Ok(mut g) = status.last_error.lock() {
        *g = Some(e);
    }
}

fn build_worker(
    settings: &Settings,
    resource: &ResourceInfo,
    status: Arc<ExportStatus>,
) -> Option<Worker> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("llmprobe-export-io")
        .enable_all()
        .build()
        .map_err(|e| eprintln!("llmprobe: error: could not start the exporter runtime: {e}"))
        .ok()?;
    let mut sinks = Vec::new();
    for e in &settings.exporters {
        match e {
            TracesExporter::Otlp => {
                // tonic wants to be built inside a runtime.
                let _enter = runtime.enter();
                match otlp::OtlpSink::new(&settings.otlp, resource) {
                    Ok(s) => sinks.push(Sink::Otlp(s)),
                    Err(err) => eprintln!(
                        "llmprobe: error: cannot export to {}: {err}; spans will not be sent there",
                        settings.otlp.endpoint
                    ),
                }
            }
            TracesExporter::Console => sinks.push(Sink::Console(console::ConsoleSink::new(
                resource,
                settings.console_by_default,
            ))),
            TracesExporter::File => match file::FileSink::new(&settings.traces_file, resource) {
                Ok(f) => sinks.push(Sink::File(f)),
                Err(err) => eprintln!(
                    "llmprobe: error: cannot write traces to LLMPROBE_TRACES_FILE={:?}: {err}",
                    settings.traces_file
                ),
            },
            TracesExporter::None => {}
        }
    }
    let metrics = if settings.metrics_exporter {
        let _enter = runtime.enter();
        match metrics::MetricsSink::new(&settings.metrics_otlp, resource) {
            Ok(m) => Some(m),
            Err(err) => {
                eprintln!(
                    "llmprobe: error: cannot export metrics to {}: {err}",
                    settings.metrics_otlp.endpoint
                );
                None
            }
        }
    } else {
        None
    };
    Some(Worker {
        sinks,
        metrics,
        aggregator: Default::default(),
        runtime,
        permits: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
        status,
        export_timeout: settings.export_timeout,
        redactor: crate::redact::Redactor::new(settings.redact_patterns.clone()),
    })
}

/// The exporter thread's body. A panic inside is caught and logged; the thread then goes on
/// draining the queue (counting what it cannot export) so the application never notices.
pub fn run_worker(
    rx: Receiver<Msg>,
    settings: Arc<Settings>,
    resource: Arc<ResourceInfo>,
    status: Arc<ExportStatus>,
) {
    let mut worker = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        build_worker(&settings, &resource, status.clone())
    })) {
        Ok(Some(w)) => Some(w),
        _ => None,
    };
    let batch_size = settings.max_export_batch_size;
    let delay = settings.schedule_delay;
    let mut batch: Vec<SpanRecord> = Vec::with_capacity(batch_size);
    let mut deadline = Instant::now() + delay;
    let metric_interval = settings.metric_export_interval;
    let mut metrics_deadline = Instant::now() + metric_interval;
    loop {
        // Sleep until the next deadline; a full batch or a flush wakes us early (see pipeline).
        // A wake-up that came while we were busy makes this return at once, so none is lost.
        let wait = deadline
            .min(metrics_deadline)
            .saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::park_timeout(wait);
        }
        let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            loop {
                let msg = match rx.try_recv() {
                    Ok(m) => m,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return true,
                };
                let Some(w) = worker.as_mut() else {
                    // No exporter could be built: count what arrives as failed, answer flushes.
                    match msg {
                        Msg::Span(_) => {
                            STATS.dropped_export_failed.fetch_add(1, Ordering::Relaxed);
                        }
                        Msg::Flush(reply) => {
                            let _ = reply.send(());
                        }
                        Msg::Metrics(_) => {}
                    }
                    continue;
                };
                match msg {
                    Msg::Span(s) => {
                        batch.push(*s);
                        if batch.len() >= batch_size {
                            w.export(std::mem::replace(
                                &mut batch,
                                Vec::with_capacity(batch_size),
                            ));
                            deadline = Instant::now() + delay;
                        }
                    }
                    Msg::Metrics(point) => w.aggregator.add(*point),
                    Msg::Flush(reply) => {
                        // Everything queued before the marker is already in `batch` or exported.
                        while !batch.is_empty() {
                            let take = batch.len().min(batch_size);
                            let rest = batch.split_off(take);
                            w.export(std::mem::replace(&mut batch, rest));
                        }
                        w.export_metrics();
                        w.wait_idle();
                        w.finish_local();
                        let _ = reply.send(());
                        deadline = Instant::now() + delay;
                    }
                }
            }
            let Some(w) = worker.as_mut() else {
                return false;
            };
            // Due work: the delay ran out with spans waiting, or the metrics interval did.
            let now = Instant::now();
            if now >= deadline {
                w.export(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(batch_size),
                ));
                w.finish_local();
                deadline = now + delay;
            }
            if now >= metrics_deadline {
                w.export_metrics();
                metrics_deadline = now + metric_interval;
            }
            false
        }));
        match step {
            Ok(true) => return,
            Ok(false) => {}
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                eprintln!(
                    "llmprobe: error: the exporter hit an internal error and goes on: {what}"
                );
                STATS
                    .dropped_export_failed
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.clear();
                deadline = Instant::now() + delay;
            }
        }
    }
}
