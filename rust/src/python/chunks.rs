//! What a stream proxy records per item (`ChunkCollector`), and the iterator a synchronous
//! proxy hands to a `for` loop (`ChunkIter`), which records each item without a Python frame.

use pyo3::prelude::*;
use pyo3::types::PyIterator;

use super::stream::{StreamState, ERROR, EXHAUSTED};
use super::{dashscope_chunks, guard, messages, output_of, responses};

/// How a collector reads the items of its stream.
enum Reading {
    /// Keeps each item: the instrumentation reads them at the end.
    Items(Vec<Py<PyAny>>),
    /// OpenAI chat-completion chunks, read as they pass (see messages::ChatChunks).
    Chat(messages::ChatChunks),
    /// DashScope generation chunks, read as they pass (see dashscope_chunks).
    DashScope(dashscope_chunks::DashScopeChunks),
}

/// What a stream proxy records per item, in one crossing: the item's arrival time and either
/// the item itself (`ChunkCollector()`: the instrumentation reads the items at the end) or,
/// for the chunks of a chat answer (`ChunkCollector("chat")`, `ChunkCollector("dashscope",
/// incremental)`), only what the answer needs, read as the chunk passes, so that no chunk
/// outlives its use. The first item is kept in every case, and the last (for chat chunks: the last
/// one the general reading read, see ChatChunks).
#[pyclass(module = "llmprobe._core")]
pub struct ChunkCollector {
    reading: Reading,
    times: Vec<i64>,
    first: Option<Py<PyAny>>,
    last: Option<Py<PyAny>>,
}

/// What ChunkCollector.write_answer() yields: (position of the first chunk with content,
/// input tokens, output tokens, the response model, the last chunk that reported an error).
type Written<'py> = (
    Option<usize>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<Bound<'py, PyAny>>,
);

impl ChunkCollector {
    fn reading(reading: Reading) -> Self {
        ChunkCollector {
            reading,
            times: Vec::new(),
            first: None,
            last: None,
        }
    }

    /// A collector that keeps the items.
    pub(super) fn keeping_items() -> Self {
        Self::reading(Reading::Items(Vec::new()))
    }

    /// A collector of OpenAI chat-completion chunks, read as they pass (`single`: of a stream
    /// of one choice).
    pub(super) fn chat(single: bool) -> Self {
        Self::reading(Reading::Chat(messages::ChatChunks::new(single)))
    }

    /// A collector of DashScope generation chunks, read as they pass.
    pub(super) fn dashscope(incremental: Option<bool>) -> Self {
        Self::reading(Reading::DashScope(dashscope_chunks::DashScopeChunks::new(
            incremental,
        )))
    }

    /// The gaps between the stream's items, in seconds (time_per_output_chunk).
    pub(super) fn gaps(&self) -> Vec<f64> {
        self.times
            .windows(2)
            .map(|w| (w[1] - w[0]) as f64 / 1e9)
            .collect()
    }
}

#[pymethods]
impl ChunkCollector {
    #[new]
    #[pyo3(signature = (chunks=None, incremental=None))]
    fn new(chunks: Option<&str>, incremental: Option<bool>) -> PyResult<Self> {
        match chunks {
            None => Ok(Self::keeping_items()),
            Some("chat") => Ok(Self::chat(false)),
            Some("dashscope") => Ok(Self::dashscope(incremental)),
            Some(other) => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown chunks {other:?}: None, 'chat' or 'dashscope'"
            ))),
        }
    }

    /// One item and its perf_counter_ns() arrival time.
    pub(super) fn add(&mut self, item: &Bound<'_, PyAny>, time_ns: i64) {
        self.times.push(time_ns);
        if self.first.is_none() {
            self.first = Some(item.clone().unbind());
        }
        // Chat chunks: the reader keeps the last chunk it needs (not each one: see ChatChunks).
        if !matches!(self.reading, Reading::Chat(_)) {
            self.last = Some(item.clone().unbind());
        }
        guard("ChunkCollector.add", (), || {
            match &mut self.reading {
                Reading::Items(items) => items.push(item.clone().unbind()),
                Reading::Chat(chat) => chat.add(item),
                Reading::DashScope(chunks) => chunks.add(item),
            }
            Ok(())
        });
    }

    /// The items kept (none when they were read as they passed), in order.
    #[getter]
    fn items(&self, py: Python<'_>) -> Vec<Py<PyAny>> {
        match &self.reading {
            Reading::Items(items) => items.iter().map(|i| i.clone_ref(py)).collect(),
            _ => Vec::new(),
        }
    }

    /// The arrival time of item `i`, None when there is no such item.
    pub(super) fn time_at(&self, i: usize) -> Option<i64> {
        self.times.get(i).copied()
    }

    #[getter]
    fn first(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.first.as_ref().map(|i| i.clone_ref(py))
    }

    /// The last item (for chat chunks: the last that was not a plain piece of text).
    #[getter]
    fn last(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let last = match &self.reading {
            Reading::Chat(chat) => chat.last(),
            _ => self.last.as_ref(),
        };
        last.map(|i| i.clone_ref(py))
    }

    /// For chunks read as they passed, written into `span` in one crossing: the response ids
    /// (OpenAI: the first chunk's id, model and service tier, or the last chunk's when its model
    /// differs; DashScope: the last chunk's request id), the usage, the finish reasons and
    /// output messages. Returns (the position of the first chunk with content, input tokens,
    /// output tokens, the response model, the last chunk that reported an error).
    pub(super) fn write_answer<'py>(
        &self,
        py: Python<'py>,
        span: &Bound<'py, PyAny>,
        capture: bool,
    ) -> Written<'py> {
        guard("ChunkCollector.write_answer", Default::default(), || {
            let mut out = crate::span::Attributes::new();
            let written = match &self.reading {
                Reading::Items(_) => return Ok(Default::default()),
                Reading::Chat(chat) => {
                    let mut model = None;
                    if let Some(first) = &self.first {
                        model = responses::put_openai_ids(
                            &mut out,
                            &messages::Reader::of(first.bind(py)),
                        );
                    }
                    if let Some(last) = chat.last() {
                        let last = messages::Reader::of(last.bind(py));
                        let last_model = last.get(pyo3::intern!(py, "model"));
                        let last_model = last_model.as_ref().and_then(messages::text_of);
                        if last_model.is_some() && last_model != model {
                            let mut ids = crate::span::Attributes::new();
                            model = responses::put_openai_ids(&mut ids, &last);
                            out.retain(|(k, _)| !ids.iter().any(|(i, _)| i == k));
                            out.extend(ids);
                        }
                    }
                    let a = chat.finish(py, capture);
                    let (input, output) = responses::put_usage(&mut out, a.usage);
                    responses::put_output(&mut out, output_of(a.messages), capture);
                    (a.first, input, output, model, None)
                }
                Reading::DashScope(chunks) => {
                    if let Some(last) = &self.last {
                        responses::put_request_id(&mut out, last.bind(py));
                    }
                    let a = chunks.finish(py, capture);
                    let (input, output) = responses::put_dashscope_usage(&mut out, a.usage);
                    responses::put_output(&mut out, output_of(a.messages), capture);
                    (a.first, input, output, None, a.failed)
                }
            };
            responses::write(span, out);
            Ok(written)
        })
    }
}

/// Now on the clock of Python's `time.perf_counter_ns()`, which the instrumentations time a
/// call's start and end with: CLOCK_MONOTONIC on Linux, read here without a Python call.
pub(super) fn perf_counter_ns(py: Python<'_>) -> i64 {
    #[cfg(target_os = "linux")]
    {
        let _ = py;
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a plain system call writing into a timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
        t.tv_sec * 1_000_000_000 + t.tv_nsec
    }
    #[cfg(not(target_os = "linux"))]
    {
        py.import("time")
            .and_then(|t| t.call_method0("perf_counter_ns"))
            .and_then(|v| v.extract::<i64>())
            .unwrap_or(0)
    }
}

/// The iterator of a synchronous stream proxy: each item of `inner` goes to the stream's
/// collector with its arrival time and is handed on as it came; when `inner` ends or raises,
/// the stream's state ends it ("exhausted" or "error") and the end or the exception reaches the
/// caller unchanged. `owner` (the proxy) is kept alive while the loop runs: `for c in
/// call(...)` holds no other reference to it, and its collection would end the stream's span
/// before the first item. Frozen: no borrow flag is checked per item.
#[pyclass(frozen, module = "llmprobe._core")]
pub struct ChunkIter {
    inner: Py<PyIterator>,
    collector: Py<ChunkCollector>,
    state: Py<StreamState>,
    _owner: Py<PyAny>,
}

#[pymethods]
impl ChunkIter {
    #[new]
    fn new(inner: Bound<'_, PyIterator>, state: Bound<'_, StreamState>, owner: Py<PyAny>) -> Self {
        ChunkIter {
            inner: inner.unbind(),
            collector: state.get().chunk_collector().clone_ref(state.py()),
            state: state.unbind(),
            _owner: owner,
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// What `close()` on the stream's own iterator does (a generator's: it stops there), when
    /// that iterator has one. The stream's span ends as it would have: when the stream is
    /// closed, exhausted or collected.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.inner.bind(py);
        if inner.hasattr(pyo3::intern!(py, "close"))? {
            inner.call_method0(pyo3::intern!(py, "close"))?;
        }
        Ok(())
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.inner)?;
        visit.call(&self.collector)?;
        visit.call(&self.state)?;
        visit.call(&self._owner)
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match self.inner.bind(py).clone().next() {
            Some(Ok(item)) => {
                let now = perf_counter_ns(py);
                if let Ok(mut collector) = self.collector.bind(py).try_borrow_mut() {
                    collector.add(&item, now);
                }
                Ok(Some(item.unbind()))
            }
            Some(Err(e)) => {
                StreamState::end(self.state.bind(py), Some(e.value(py).as_any()), ERROR);
                Err(e)
            }
            None => {
                StreamState::end(self.state.bind(py), None, EXHAUSTED);
                Ok(None)
            }
        }
    }
}
