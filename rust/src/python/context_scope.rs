//! `ContextScope`: a context manager that makes a prepared OpenTelemetry context current and
//! gives the previous one back, by setting and resetting the API's ContextVar directly.
//!
//! A framework that asks for a context manager around each unit of work (graphon's
//! `node_run_context`, once per node) would otherwise run two Python frames and the API's
//! attach / detach layers for each.

use std::sync::Mutex;

use pyo3::intern;
use pyo3::prelude::*;

#[pyclass(frozen, module = "llmprobe._core")]
pub struct ContextScope {
    /// The ContextVar behind the API's runtime context.
    var: Py<PyAny>,
    /// The context made current on entry.
    context: Py<PyAny>,
    /// Called with the exception when the previous context cannot be given back (a token of
    /// another thread's context); leaving never raises.
    on_error: Py<PyAny>,
    token: Mutex<Option<Py<PyAny>>>,
}

#[pymethods]
impl ContextScope {
    #[new]
    fn new(var: Py<PyAny>, context: Py<PyAny>, on_error: Py<PyAny>) -> Self {
        ContextScope {
            var,
            context,
            on_error,
            token: Mutex::new(None),
        }
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<()> {
        let token = self
            .var
            .call_method1(py, intern!(py, "set"), (self.context.clone_ref(py),))?;
        if let Ok(mut slot) = self.token.lock() {
            *slot = Some(token);
        }
        Ok(())
    }

    #[pyo3(signature = (*_exc_info))]
    fn __exit__(&self, py: Python<'_>, _exc_info: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        let token = self.token.lock().ok().and_then(|mut slot| slot.take());
        if let Some(token) = token {
            if let Err(err) = self.var.call_method1(py, intern!(py, "reset"), (token,)) {
                let _ = self.on_error.call1(py, (err.into_value(py),));
            }
        }
        false
    }
}
