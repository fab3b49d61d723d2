//! llmprobe's Rust core. Plain Rust modules do the work (config, span, content, metrics,
//! pipeline, export); `python` is the thin PyO3 layer that exposes them as `llmprobe._core`.

pub mod config;
pub mod content;
pub mod export;
pub mod finish;
pub mod ids;
pub mod media;
pub mod metrics;
pub mod pipeline;
pub mod redact;
pub mod span;

mod python;

#[cfg(test)]
mod properties;

// Spans are allocated on the application's threads and freed on the exporter thread; glibc's
// allocator serialises such cross-thread frees on its arena locks, mimalloc does not.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
