//! A stream's record (`StreamState`): what its proxy recorded and the end of its operation,
//! exactly once; the streams whose proxy is alive, each ended when its proxy is collected or,
//! at the latest, at interpreter exit.
//!
//! The proxies themselves are Python classes (`_stream.SyncStreamProxy`, a `wrapt.ObjectProxy`,
//! so that `isinstance` and every attribute are the stream's own); a model hook that reads a
//! stream's chunks in the core makes the proxy and its state here (`make_proxy`), without a
//! Python frame of llmprobe's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyCFunction, PyString};

use super::chunks::{perf_counter_ns, ChunkCollector};
use super::guard;
use super::hook::{capture_of, end_stream, Call};

/// Why a stream ended (`StreamState.how`), by the code finish() is given.
const HOW: [&str; 5] = ["", "exhausted", "error", "closed", "collected"];
pub(super) const EXHAUSTED: u8 = 1;
pub(super) const ERROR: u8 = 2;
pub(super) const COLLECTED: u8 = 4;

/// What a stream proxy records (its `collector`), and how its operation ends: `on_end(state,
/// error)`, called once, guarded (a failing `on_end` is logged once under `key`). With
/// `core_end`, `on_end` being `_genai.end_stream` without an assembler, a stream that ends
/// without an error is ended here instead, with the same result and no Python frame.
#[pyclass(frozen, module = "llmprobe._core")]
pub struct StreamState {
    key: Py<PyString>,
    on_end: Py<PyAny>,
    call: Py<PyAny>,
    collector: Py<ChunkCollector>,
    core_end: bool,
    ended: AtomicBool,
    how: AtomicU8,
    /// The proxy's entry in LIVE (the address of the weak reference to it), 0 when none.
    watched: AtomicUsize,
}

/// The streams whose proxy is alive, by the address of the weak reference to the proxy: the
/// reference (whose callback ends a collected proxy's stream) and the stream's state.
type Live = HashMap<usize, (Py<PyAny>, Py<StreamState>)>;
static LIVE: Mutex<Option<Live>> = Mutex::new(None);
static EXIT_HOOK: AtomicBool = AtomicBool::new(false);

fn unwatch(key: usize) -> Option<(Py<PyAny>, Py<StreamState>)> {
    if key == 0 {
        return None;
    }
    LIVE.lock().ok()?.as_mut()?.remove(&key)
}

impl StreamState {
    pub(super) fn new(
        key: Py<PyString>,
        on_end: Py<PyAny>,
        call: Py<PyAny>,
        collector: Py<ChunkCollector>,
        core_end: bool,
    ) -> Self {
        StreamState {
            key,
            on_end,
            call,
            collector,
            core_end,
            ended: AtomicBool::new(false),
            how: AtomicU8::new(0),
            watched: AtomicUsize::new(0),
        }
    }

    pub(super) fn chunk_collector(&self) -> &Py<ChunkCollector> {
        &self.collector
    }

    /// Ends the stream's operation, if it was not ended already. Never raises.
    pub(super) fn end(slf: &Bound<'_, Self>, error: Option<&Bound<'_, PyAny>>, how: u8) {
        let py = slf.py();
        let me = slf.get();
        // Set before anything else runs: a close on another thread, or a collection that
        // on_end itself triggers, finds the stream ended.
        if me.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        drop(unwatch(me.watched.swap(0, Ordering::AcqRel)));
        me.how.store(how, Ordering::Release);
        if me.core_end && error.is_none() {
            if let Ok(call) = me.call.bind(py).cast::<Call>() {
                let now = perf_counter_ns(py);
                let capture = guard("end of a stream", true, || capture_of(call));
                if let Ok(collector) = me.collector.bind(py).try_borrow() {
                    end_stream(call, collector, capture, now, None);
                    return;
                }
            }
        }
        if let Err(e) = me.on_end.bind(py).call1((slf, error)) {
            log_once(py, me.key.bind(py), e);
        }
    }

    /// Watches `proxy`: when it is collected, the stream ends ("collected"); a stream still
    /// watched at interpreter exit ends then, before llmprobe's exit flush.
    pub(super) fn watch_proxy(slf: &Bound<'_, Self>, proxy: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        static CALLBACK: PyOnceLock<Py<PyCFunction>> = PyOnceLock::new();
        let callback = CALLBACK.get_or_try_init(py, || {
            wrap_pyfunction!(stream_collected, py).map(Bound::unbind)
        })?;
        let me = slf.get();
        if me.ended.load(Ordering::Acquire) {
            return Ok(()); // nothing left to end
        }
        // SAFETY: a live object and a callable; a new reference, or NULL with an exception set.
        let weak = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                ffi::PyWeakref_NewRef(proxy.as_ptr(), callback.as_ptr()),
            )?
        };
        if !EXIT_HOOK.swap(true, Ordering::AcqRel) {
            // Registered at the first stream, after llmprobe's own exit flush: atexit runs the
            // last registered first.
            let at_exit = wrap_pyfunction!(end_live_streams, py)?;
            py.import("atexit")?.call_method1("register", (at_exit,))?;
        }
        let key = weak.as_ptr() as usize;
        if let Ok(mut live) = LIVE.lock() {
            live.get_or_insert_with(HashMap::new)
                .insert(key, (weak.unbind(), slf.clone().unbind()));
            me.watched.store(key, Ordering::Release);
        }
        Ok(())
    }
}

fn log_once(py: Python<'_>, key: &Bound<'_, PyString>, e: PyErr) {
    static LOG_ONCE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let logged = LOG_ONCE
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("llmprobe._log")?.getattr("log_once")?.unbind())
        })
        .and_then(|log| log.bind(py).call1((key, e.value(py).clone())));
    if let Err(again) = logged {
        again.write_unraisable(py, None);
    }
}

/// The weak reference's callback: the proxy is gone.
#[pyfunction]
fn stream_collected(weak: &Bound<'_, PyAny>) {
    let py = weak.py();
    if let Some((_weak, state)) = unwatch(weak.as_ptr() as usize) {
        let state = state.into_bound(py);
        state.get().watched.store(0, Ordering::Release);
        StreamState::end(&state, None, COLLECTED);
    }
}

/// Ends the streams still open (at interpreter exit).
#[pyfunction]
fn end_live_streams(py: Python<'_>) {
    let live: Vec<_> = match LIVE.lock() {
        Ok(mut live) => live
            .as_mut()
            .map(|l| l.drain().collect())
            .unwrap_or_default(),
        Err(_) => return,
    };
    for (_, (_, state)) in live {
        let state = state.into_bound(py);
        state.get().watched.store(0, Ordering::Release);
        StreamState::end(&state, None, COLLECTED);
    }
}

#[pymethods]
impl StreamState {
    #[new]
    #[pyo3(signature = (key, on_end, call, collector=None, core_end=false))]
    fn py_new(
        py: Python<'_>,
        key: Py<PyString>,
        on_end: Py<PyAny>,
        call: Py<PyAny>,
        collector: Option<Py<ChunkCollector>>,
        core_end: bool,
    ) -> PyResult<Self> {
        let collector = match collector {
            Some(c) => c,
            None => Py::new(py, ChunkCollector::keeping_items())?,
        };
        Ok(StreamState::new(key, on_end, call, collector, core_end))
    }

    /// One item and its perf_counter_ns() arrival time (the collector's add).
    fn add(&self, py: Python<'_>, item: &Bound<'_, PyAny>, time_ns: i64) {
        if let Ok(mut c) = self.collector.bind(py).try_borrow_mut() {
            c.add(item, time_ns);
        }
    }

    /// Ends the stream's operation ("exhausted", "error", "closed", "collected": why), if it was
    /// not ended already. Never raises.
    #[pyo3(signature = (error, how))]
    fn finish(slf: &Bound<'_, Self>, error: Option<&Bound<'_, PyAny>>, how: &str) {
        let code = HOW.iter().position(|h| *h == how).unwrap_or(0) as u8;
        StreamState::end(slf, error, code);
    }

    /// Watches the stream's proxy (see watch_proxy).
    fn watch(slf: &Bound<'_, Self>, proxy: &Bound<'_, PyAny>) -> PyResult<()> {
        StreamState::watch_proxy(slf, proxy)
    }

    #[getter]
    fn collector(&self, py: Python<'_>) -> Py<ChunkCollector> {
        self.collector.clone_ref(py)
    }

    /// The items the stream gave (none when the collector reads them as they pass).
    #[getter]
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.collector.bind(py).getattr(intern!(py, "items"))
    }

    #[getter]
    fn call(&self, py: Python<'_>) -> Py<PyAny> {
        self.call.clone_ref(py)
    }

    #[getter]
    fn key(&self, py: Python<'_>) -> Py<PyString> {
        self.key.clone_ref(py)
    }

    #[getter]
    fn on_end(&self, py: Python<'_>) -> Py<PyAny> {
        self.on_end.clone_ref(py)
    }

    /// Why the stream ended: "exhausted", "error", "closed", "collected"; "" while it runs.
    #[getter]
    fn how(&self) -> &'static str {
        HOW[self.how.load(Ordering::Acquire) as usize % HOW.len()]
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.on_end)?;
        visit.call(&self.call)?;
        visit.call(&self.collector)
    }
}

/// A proxy of `proxy_class` (a `_stream` proxy, whose own `__init__` is wrapt's) around
/// `stream`, recording into `state` and watched by it: what a hook hands back for a stream
/// the core reads.
pub(super) fn make_proxy<'py>(
    proxy_class: &Bound<'py, PyAny>,
    stream: &Bound<'py, PyAny>,
    state: StreamState,
) -> PyResult<Bound<'py, PyAny>> {
    let py = stream.py();
    let state = Bound::new(py, state)?;
    let proxy = proxy_class.call1((stream,))?;
    proxy.setattr(intern!(py, "_self_state"), &state)?;
    StreamState::watch_proxy(&state, &proxy)?;
    Ok(proxy)
}
