//! `EventRouter`: a framework's event callback that ignores, in Rust, the events nobody reads.
//!
//! An engine that reports every stream chunk and edge through one callback (graphon's layers'
//! `on_event`, several calls per node) would otherwise run a Python frame per event only to find
//! it is none of llmprobe's. The router is set as that callback: it looks the event's class name
//! up in a table and calls the Python handler named there only for the events it lists.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

#[pyclass(frozen, module = "llmprobe._core")]
pub struct EventRouter {
    /// Event class name -> (handler's name in `functions`, the handler's last argument).
    table: Py<PyDict>,
    /// Event class -> its `table` entry, or None for a class no handler reads: looked up by the
    /// class object (a pointer hash) instead of its name (an attribute lookup through a
    /// pydantic metaclass). Shared by the routers of one table (a module's dict).
    classes: Py<PyDict>,
    /// Where a handler is looked up when its event comes (a module's globals), so that a handler
    /// replaced there (the fault-injection tests do) is the one called.
    functions: Py<PyDict>,
    /// First argument of every handler (the tracer).
    tracer: Py<PyAny>,
    /// Called with the exception when a handler raises; the router itself never raises.
    on_error: Py<PyAny>,
    /// The run the events belong to (second argument of every handler); none, no calls. Set
    /// and cleared by the graph's start and end, on another thread than the events'.
    run: Mutex<Option<Py<PyAny>>>,
}

#[pymethods]
impl EventRouter {
    #[new]
    fn new(
        table: Py<PyDict>,
        classes: Py<PyDict>,
        functions: Py<PyDict>,
        tracer: Py<PyAny>,
        on_error: Py<PyAny>,
    ) -> Self {
        EventRouter {
            table,
            classes,
            functions,
            tracer,
            on_error,
            run: Mutex::new(None),
        }
    }

    #[getter]
    fn run(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.run
            .lock()
            .ok()
            .and_then(|run| run.as_ref().map(|r| r.clone_ref(py)))
    }

    #[setter]
    fn set_run(&self, run: Option<Py<PyAny>>) {
        if let Ok(mut slot) = self.run.lock() {
            *slot = run;
        }
    }

    fn __call__(&self, py: Python<'_>, event: &Bound<'_, PyAny>) {
        let Some(run) = self.run(py) else {
            return;
        };
        if let Err(err) = self.route(py, run, event) {
            let exc = err.into_value(py);
            // Reporting must not raise either: a failing reporter is dropped silently.
            let _ = self.on_error.call1(py, (exc,));
        }
    }
}

impl EventRouter {
    fn route(&self, py: Python<'_>, run: Py<PyAny>, event: &Bound<'_, PyAny>) -> PyResult<()> {
        let class = event.get_type();
        let classes = self.classes.bind(py);
        let entry = match classes.get_item(&class)? {
            Some(entry) => entry,
            None => {
                let entry = self.table.bind(py).get_item(class.name()?)?;
                let entry = entry.unwrap_or_else(|| py.None().into_bound(py));
                classes.set_item(&class, &entry)?;
                entry
            }
        };
        if entry.is_none() {
            return Ok(());
        }
        let entry = entry.cast_into::<PyTuple>()?;
        let function_name = entry.get_item(0)?;
        let function_name = function_name.cast::<PyString>()?;
        let Some(handler) = self.functions.bind(py).get_item(function_name)? else {
            return Ok(());
        };
        handler.call1((self.tracer.bind(py), run, event, entry.get_item(1)?))?;
        Ok(())
    }
}
