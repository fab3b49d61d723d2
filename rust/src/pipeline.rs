//! The hand-off from the calling thread to the exporter thread.
//!
//! `end()` pushes the finished span into a bounded crossbeam channel and returns; a full
//! channel drops the span and counts it. The exporter thread starts on the first span, so a
//! process that makes none (a gunicorn master, a short helper script) never starts one. The
//! caller never waits on anything the exporter holds: the only lock here (`PIPELINE`) is taken
//! by Python-side calls alone, never by the exporter thread.
//!
//! The exporter thread does not block on the channel: it sleeps until its next deadline (the
//! batch delay) and is woken early only when a full batch is waiting or a flush is asked for.
//! A push is then an atomic enqueue with no wake-up of another thread, and the exporter runs
//! once per batch rather than once per span.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use crate::config::Settings;
use crate::export::{self, ResourceInfo};
use crate::metrics::GenAiPoint;
use crate::span::SpanRecord;

pub enum Msg {
    Span(Box<SpanRecord>),
    Metrics(Box<GenAiPoint>),
    /// Export everything queued before this message, wait for the exports, then answer.
    Flush(Sender<()>),
}

/// Counters, reported by `stats()` and in the line printed at exit.
#[derive(Default)]
pub struct Stats {
    pub spans_started: AtomicU64,
    pub spans_ended: AtomicU64,
    pub spans_enqueued: AtomicU64,
    pub spans_exported: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_export_failed: AtomicU64,
    pub dropped_at_shutdown: AtomicU64,
    pub dropped_not_started: AtomicU64,
    /// Ended in a forked child but started in its parent: the parent's to export.
    pub spans_of_parent: AtomicU64,
    pub export_batches: AtomicU64,
    pub metric_points_dropped: AtomicU64,
}

pub static STATS: Stats = Stats {
    spans_started: AtomicU64::new(0),
    spans_ended: AtomicU64::new(0),
    spans_enqueued: AtomicU64::new(0),
    spans_exported: AtomicU64::new(0),
    dropped_queue_full: AtomicU64::new(0),
    dropped_export_failed: AtomicU64::new(0),
    dropped_at_shutdown: AtomicU64::new(0),
    dropped_not_started: AtomicU64::new(0),
    spans_of_parent: AtomicU64::new(0),
    export_batches: AtomicU64::new(0),
    metric_points_dropped: AtomicU64::new(0),
};

impl Stats {
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("spans_started", g(&self.spans_started)),
            ("spans_ended", g(&self.spans_ended)),
            ("spans_enqueued", g(&self.spans_enqueued)),
            ("spans_exported", g(&self.spans_exported)),
            ("dropped_queue_full", g(&self.dropped_queue_full)),
            ("dropped_export_failed", g(&self.dropped_export_failed)),
            ("dropped_at_shutdown", g(&self.dropped_at_shutdown)),
            ("dropped_not_started", g(&self.dropped_not_started)),
            ("spans_of_parent", g(&self.spans_of_parent)),
            ("export_batches", g(&self.export_batches)),
            ("metric_points_dropped", g(&self.metric_points_dropped)),
        ]
    }

    fn reset(&self) {
        for a in [
            &self.spans_started,
            &self.spans_ended,
            &self.spans_enqueued,
            &self.spans_exported,
            &self.dropped_queue_full,
            &self.dropped_export_failed,
            &self.dropped_at_shutdown,
            &self.dropped_not_started,
            &self.spans_of_parent,
            &self.export_batches,
            &self.metric_points_dropped,
        ] {
            a.store(0, Ordering::Relaxed);
        }
    }

    /// Spans handed to the queue whose fate is not known yet.
    fn pending(&self) -> u64 {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        g(&self.spans_enqueued)
            .saturating_sub(g(&self.spans_exported) + g(&self.dropped_export_failed))
    }
}

/// What the exporter thread shares with the rest: the last export error, read at exit.
#[derive(Default)]
pub struct ExportStatus {
    pub last_error: Mutex<Option<String>>,
}

pub struct Pipeline {
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    settings: Arc<Settings>,
    resource: Arc<ResourceInfo>,
    worker_started: AtomicBool,
    start_lock: Mutex<()>,
    /// The exporter thread, to wake it (set once it runs).
    worker: OnceLock<Thread>,
    /// Queued spans that make a batch worth waking the exporter for.
    wake_at: usize,
    shut_down: AtomicBool,
    status: Arc<ExportStatus>,
    /// `OTEL_TRACES_EXPORTER=none`: finished spans go nowhere, so skip the queue and thread.
    discard: bool,
}

static PIPELINE: RwLock<Option<Arc<Pipeline>>> = RwLock::new(None);

fn current() -> Option<Arc<Pipeline>> {
    PIPELINE.read().ok().and_then(|g| g.clone())
}

impl Pipeline {
    fn new(settings: Arc<Settings>, resource: Arc<ResourceInfo>) -> Self {
        let (tx, rx) = bounded(settings.max_queue_size);
        let discard = settings
            .exporters
            .iter()
            .all(|e| *e == crate::config::TracesExporter::None);
        Pipeline {
            wake_at: settings_wake_at(&settings),
            discard,
            tx,
            rx,
            settings,
            resource,
            worker_started: AtomicBool::new(false),
            start_lock: Mutex::new(()),
            worker: OnceLock::new(),

            shut_down: AtomicBool::new(false),
            status: Arc::new(ExportStatus::default()),
        }
    }

    fn ensure_worker(&self) {
        if self.worker_started.load(Ordering::Acquire) {
            return;
        }
        let _g = self.start_lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.worker_started.load(Ordering::Acquire) {
            return;
        }
        let rx = self.rx.clone();
        let settings = self.settings.clone();
        let resource = self.resource.clone();
        let status = self.status.clone();
        let spawned = std::thread::Builder::new()
            .name("llmprobe-export".into())
            .spawn(move || export::run_worker(rx, settings, resource, status));
        match spawned {
            Ok(handle) => {
                let _ = self.worker.set(handle.thread().clone());
            }
            Err(e) => eprintln!("llmprobe: error: could not start the exporter thread: {e}"),
        }
        self.worker_started.store(true, Ordering::Release);
    }

    /// Wakes the exporter thread (cheap when it is awake already: one atomic swap).
    fn wake(&self) {
        if let Some(t) = self.worker.get() {
            t.unpark();
        }
    }

    fn push(&self, span: Box<SpanRecord>) {
        if self.discard {
            return;
        }
        if self.shut_down.load(Ordering::Relaxed) {
            STATS.dropped_at_shutdown.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.ensure_worker();
        match self.tx.try_send(Msg::Span(span)) {
            Ok(()) => {
                STATS.spans_enqueued.fetch_add(1, Ordering::Relaxed);
                if self.tx.len() >= self.wake_at {
                    self.wake();
                }
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                STATS.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn push_metrics(&self, point: Box<GenAiPoint>) {
        if !self.settings.metrics_exporter || self.shut_down.load(Ordering::Relaxed) {
            return;
        }
        self.ensure_worker();
        if self.tx.try_send(Msg::Metrics(point)).is_err() {
            STATS.metric_points_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends a flush marker and waits for its answer, both within `deadline`.
    fn flush_until(&self, deadline: Instant) -> bool {
        if !self.worker_started.load(Ordering::Acquire) {
            return true; // no span was ever queued
        }
        let (reply_tx, reply_rx) = bounded(1);
        let left = deadline.saturating_duration_since(Instant::now());
        self.wake(); // a full queue drains while we wait to enqueue the marker
        if self.tx.send_timeout(Msg::Flush(reply_tx), left).is_err() {
            return false;
        }
        self.wake();
        let left = deadline.saturating_duration_since(Instant::now());
        reply_rx.recv_timeout(left).is_ok()
    }
}

/// Queued messages at which a push wakes the exporter: a full batch, or less when the queue
/// is smaller than a batch (the exporter must be woken before the queue is full).
fn settings_wake_at(settings: &Settings) -> usize {
    settings
        .max_export_batch_size
        .min(settings.max_queue_size / 2)
        .max(1)
}

/// Starts the pipeline; a second start while one runs is ignored.
pub fn start(settings: Arc<Settings>, resource: Arc<ResourceInfo>) {
    let mut g = PIPELINE.write().unwrap_or_else(|e| e.into_inner());
    if g.as_ref()
        .is_some_and(|p| !p.shut_down.load(Ordering::Relaxed))
    {
        return;
    }
    *g = Some(Arc::new(Pipeline::new(settings, resource)));
}

/// Hands a finished span to the exporter.
pub fn submit(span: Box<SpanRecord>) {
    if span.generation != crate::span::process_generation() {
        STATS.spans_of_parent.fetch_add(1, Ordering::Relaxed);
        return;
    }
    STATS.spans_ended.fetch_add(1, Ordering::Relaxed);
    match current() {
        Some(p) => p.push(span),
        None => {
            STATS.dropped_not_started.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Hands one operation's metric measurements to the exporter thread.
pub fn submit_metrics(point: Box<GenAiPoint>) {
    if let Some(p) = current() {
        p.push_metrics(point);
    }
}

pub fn force_flush(timeout: Duration) -> bool {
    match current() {
        Some(p) => p.flush_until(Instant::now() + timeout),
        None => true,
    }
}

/// Flushes within `timeout` (default: the configured shutdown timeout), stops taking spans,
/// and reports drops in one stderr line.
pub fn shutdown(timeout: Option<Duration>) {
    let Some(p) = current() else { return };
    if p.shut_down.swap(true, Ordering::SeqCst) {
        return;
    }
    let timeout = timeout.unwrap_or(p.settings.shutdown_timeout);
    if !p.flush_until(Instant::now() + timeout) {
        STATS
            .dropped_at_shutdown
            .fetch_add(STATS.pending(), Ordering::Relaxed);
    }
    if let Some(line) = drop_report(&p) {
        eprintln!("{line}");
    }
}

/// The exit line: how many spans were lost and why; None when none were.
fn drop_report(p: &Pipeline) -> Option<String> {
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut reasons = Vec::new();
    let full = g(&STATS.dropped_queue_full);
    if full > 0 {
        reasons.push(format!(
            "{full} because the export queue was full (OTEL_BSP_MAX_QUEUE_SIZE={})",
            p.settings.max_queue_size
        ));
    }
    let failed = g(&STATS.dropped_export_failed);
    if failed > 0 {
        let err = p
            .status
            .last_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_else(|| "unknown error".into());
        reasons.push(format!("{failed} because the export failed ({err})"));
    }
    let late = g(&STATS.dropped_at_shutdown);
    if late > 0 {
        reasons.push(format!(
            "{late} still unsent when the exit timeout ran out (LLMPROBE_SHUTDOWN_TIMEOUT={}s)",
            p.settings.shutdown_timeout.as_secs_f64()
        ));
    }
    if reasons.is_empty() {
        return None;
    }
    let total = full + failed + late;
    Some(format!(
        "llmprobe: {total} span{} dropped: {}",
        if total == 1 { " was" } else { "s were" },
        reasons.join("; ")
    ))
}

/// In a forked child: the parent's queue and exporter thread are not ours. Start afresh, with
/// the child's pid in the resource; the new exporter thread starts on the first span. The
/// spans started before the fork are the parent's: the child does not export them (submit).
pub fn after_fork_in_child() {
    // The lock is free here: it is only taken by calls made with the GIL held, and the forking
    // thread held the GIL.
    let mut g = PIPELINE.write().unwrap_or_else(|e| e.into_inner());
    if let Some(old) = g.take() {
        let resource = Arc::new(old.resource.for_this_process());
        let fresh = Pipeline::new(old.settings.clone(), resource);
        // The old pipeline's thread does not exist in this process; leave its state alone.
        std::mem::forget(old);
        *g = Some(Arc::new(fresh));
    }
    STATS.reset();
    crate::ids::reseed();
    crate::span::new_process_generation();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_report_names_each_reason() {
        let (s, _) = Settings::from_env(&Default::default());
        let p = Pipeline::new(Arc::new(s), Arc::new(ResourceInfo::for_tests()));
        assert!(drop_report(&p).is_none());
        STATS.dropped_queue_full.store(3, Ordering::Relaxed);
        let line = drop_report(&p).unwrap();
        assert!(line.contains("3 spans were dropped"), "{line}");
        assert!(line.contains("OTEL_BSP_MAX_QUEUE_SIZE=2048"), "{line}");
        STATS.dropped_queue_full.store(0, Ordering::Relaxed);
    }
}
