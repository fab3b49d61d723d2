//! A framework's runs in flight (`RunTable`, `Run`): LangChain's and LlamaIndex's, by their run
//! (span) ids. What runs for
//! every run of every chain, in one crossing each: the start (the parent run, the span under its
//! span or under the caller's, the context that makes it current, a model run's step), the end
//! (the run forgotten, its caller's context given back) and the moves of a run's context into
//! the copy LangChain runs its code in. The rarer paths stay in Python
//! (`python/llmprobe/instrumentation/langchain/_runs.py`): a context given back elsewhere than
//! where it was set, the runs never ended, the starts reported from other tasks.

use std::sync::atomic::{AtomicI64, Ordering};

use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use pyo3::PyTraverseError;

use super::chunks::perf_counter_ns;
use super::model_step::ModelStep;
use super::span::PySpan;

/// One run in flight. Its fields are the handler's to read and, some, to set.
#[pyclass(module = "llmprobe._core")]
pub struct Run {
    /// The run's key in the table (`key_of` its id).
    #[pyo3(get)]
    key: Py<PyAny>,
    /// The contract's span kind so far (CHAIN, LLM, TOOL, AGENT...).
    #[pyo3(get, set)]
    kind: Py<PyAny>,
    /// LangChain's name of the run.
    #[pyo3(get)]
    name: Py<PyAny>,
    #[pyo3(get)]
    parent: Option<Py<Run>>,
    #[pyo3(get)]
    span: Py<PyAny>,
    /// The context made current for the run.
    #[pyo3(get)]
    context: Py<PyAny>,
    /// The context current where it started.
    #[pyo3(get, set)]
    previous: Py<PyAny>,
    /// The token that gives `previous` back; None once given back.
    #[pyo3(get, set)]
    token: Option<Py<PyAny>>,
    /// A model run's step (`ModelStep`); None for the others.
    #[pyo3(get, set)]
    step: Option<Py<PyAny>>,
    /// What the run's end needs from its start (the handler's).
    #[pyo3(get, set)]
    data: Py<PyAny>,
    /// perf_counter_ns() at the start.
    #[pyo3(get)]
    started: i64,
    /// perf_counter_ns() at a stream's first token.
    #[pyo3(get, set)]
    first_token: Option<i64>,
    #[pyo3(get, set)]
    streamed: bool,
}

#[pymethods]
impl Run {
    // A run and its context refer to each other (the context holds the run): the collector has
    // to see through both to free them.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.key)?;
        visit.call(&self.kind)?;
        visit.call(&self.name)?;
        visit.call(&self.parent)?;
        visit.call(&self.span)?;
        visit.call(&self.context)?;
        visit.call(&self.previous)?;
        visit.call(&self.token)?;
        visit.call(&self.step)?;
        visit.call(&self.data)?;
        Ok(())
    }

    fn __clear__(&mut self) {
        // What can refer back to the run (its context, what it keeps for its end).
        Python::attach(|py| {
            self.context = py.None();
            self.previous = py.None();
            self.data = py.None();
            self.token = None;
            self.parent = None;
        });
    }
}

/// What the table needs of the OpenTelemetry context and of the instrumentation (a dict: see
/// `_runs.configure`).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct Env {
    get_current: Py<PyAny>,
    attach: Py<PyAny>,
    reset: Py<PyAny>,
    span_key: Py<PyAny>,
    run_key: Py<PyAny>,
    model_step_key: Py<PyAny>,
    context_class: Py<PyAny>,
    /// The span class and its scope, and the Tracer for a parent from elsewhere.
    span_class: Py<PyAny>,
    scope: Py<PyAny>,
    version: Py<PyAny>,
    tracer: Py<PyAny>,
    /// `leave(run, token)`: gives a run's caller its context back where the fast path cannot.
    leave: Py<PyAny>,
    /// `sweep(now)`: ends the runs that never ended (called every `sweep_every_ns` at most).
    sweep: Py<PyAny>,
}

#[pyclass(frozen, module = "llmprobe._core")]
pub struct RunTable {
    /// `key_of(run_id)` -> Run, in start order.
    runs: Py<PyDict>,
    env: Env,
    last_sweep: AtomicI64,
    sweep_every: AtomicI64,
}

/// A run's key in the table: LangChain's run ids are UUIDs (keyed by their int, which hashes
/// faster), LlamaIndex's are strings (keyed as they are).
fn key_of<'py>(run_id: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if run_id.is_instance_of::<PyString>() {
        return Ok(run_id.clone());
    }
    run_id.getattr(intern!(run_id.py(), "int"))
}

impl RunTable {
    fn find<'py>(
        &self,
        py: Python<'py>,
        run_id: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, Run>>> {
        if run_id.is_none() {
            return Ok(None);
        }
        Ok(match self.runs.bind(py).get_item(key_of(run_id)?)? {
            Some(run) => Some(run.cast_into::<Run>()?),
            None => None,
        })
    }

    fn run_in<'py>(
        &self,
        py: Python<'py>,
        context: &Bound<'py, PyDict>,
    ) -> PyResult<Option<Bound<'py, Run>>> {
        Ok(context
            .get_item(self.env.run_key.bind(py))?
            .and_then(|r| r.cast_into::<Run>().ok()))
    }

    /// The span of a run, under `parent_span`, or under the span current in `current`.
    fn start_span<'py>(
        &self,
        py: Python<'py>,
        span_name: &Bound<'py, PyAny>,
        attributes: &Bound<'py, PyAny>,
        span_kind: u8,
        current: &Bound<'py, PyDict>,
        parent_span: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let parent_span = match parent_span {
            Some(p) => p,
            None => current
                .get_item(self.env.span_key.bind(py))?
                .unwrap_or_else(|| py.None().into_bound(py)),
        };
        if PySpan::takes_as_parent(&parent_span) {
            return self.env.span_class.bind(py).call1((
                span_name,
                span_kind,
                &parent_span,
                attributes,
                py.None(),
                py.None(),
                self.env.scope.bind(py),
                self.env.version.bind(py),
            ));
        }
        // Any other parent (remote, non-recording, with a trace state): the Tracer takes it.
        let values = PyDict::new(py);
        values.set_item(self.env.span_key.bind(py), &parent_span)?;
        let context = self.env.context_class.bind(py).call1((values,))?;
        self.env.tracer.bind(py).call_method1(
            intern!(py, "start_span"),
            (span_name, context, span_kind, attributes),
        )
    }

    /// The ModelStep of a model run started in `current` (see _runs.model_step_in).
    fn model_step_in<'py>(
        &self,
        py: Python<'py>,
        current: &Bound<'py, PyDict>,
        parent: Option<&Bound<'py, Run>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let enclosing = current.get_item(self.env.model_step_key.bind(py))?;
        let Some(enclosing) = enclosing.filter(|e| !e.is_none()) else {
            return Ok(Bound::new(py, ModelStep::new(None))?.into_any());
        };
        if let Some(owner) = self.run_in(py, current)? {
            let o = owner.borrow();
            let same_step = o.step.as_ref().is_some_and(|s| s.bind(py).is(&enclosing));
            let same_parent = match (&o.parent, parent) {
                (None, None) => true,
                (Some(a), Some(b)) => a.bind(py).is(b),
                _ => false,
            };
            if same_step && same_parent && self.runs.bind(py).contains(o.key.bind(py))? {
                return Ok(enclosing);
            }
        }
        let outer = enclosing.cast_into::<ModelStep>().ok().map(|s| s.unbind());
        Ok(Bound::new(py, ModelStep::new(outer))?.into_any())
    }

    /// Gives the run's caller its context back here if the run's context is current here and its
    /// token was made here.
    fn leave_here_(&self, py: Python<'_>, run: &Bound<'_, Run>) -> PyResult<()> {
        let token = match &run.borrow().token {
            Some(t) => t.clone_ref(py),
            None => return Ok(()),
        };
        let current = self.env.get_current.bind(py).call0()?;
        if !current.is(run.borrow().context.bind(py)) {
            return Ok(());
        }
        if self.env.reset.bind(py).call1((&token,)).is_ok() {
            run.borrow_mut().token = None;
        }
        Ok(())
    }
}

#[pymethods]
impl RunTable {
    #[new]
    #[pyo3(signature = (env, sweep_every_ns=60_000_000_000))]
    fn new(py: Python<'_>, env: Env, sweep_every_ns: i64) -> Self {
        RunTable {
            runs: PyDict::new(py).unbind(),
            env,
            last_sweep: AtomicI64::new(perf_counter_ns(py)),
            sweep_every: AtomicI64::new(sweep_every_ns),
        }
    }

    /// How often, at most, a run's start looks for runs that never ended (ns).
    #[getter]
    fn sweep_every_ns(&self) -> i64 {
        self.sweep_every.load(Ordering::Relaxed)
    }

    #[setter]
    fn set_sweep_every_ns(&self, value: i64) {
        self.sweep_every.store(value, Ordering::Relaxed);
    }

    /// The runs in flight: key -> Run (the table itself, not a copy).
    #[getter]
    fn runs(&self, py: Python<'_>) -> Py<PyDict> {
        self.runs.clone_ref(py)
    }

    /// The run of `run_id` (a UUID, or None), if it is in flight.
    fn get<'py>(
        &self,
        py: Python<'py>,
        run_id: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, Run>>> {
        self.find(py, run_id)
    }

    /// Start a run's span, under its parent run's, else under the span current here (not under
    /// a sibling root run whose start left its context here: a batch starts all its runs, then
    /// runs them), and make it current. `model_step`: the run is a model call.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (run_id, parent_run_id, kind, name, span_name, attributes, span_kind=0, model_step=false))]
    fn start<'py>(
        &self,
        py: Python<'py>,
        run_id: &Bound<'py, PyAny>,
        parent_run_id: &Bound<'py, PyAny>,
        kind: &Bound<'py, PyAny>,
        name: &Bound<'py, PyAny>,
        span_name: &Bound<'py, PyAny>,
        attributes: &Bound<'py, PyAny>,
        span_kind: u8,
        model_step: bool,
    ) -> PyResult<Bound<'py, Run>> {
        let parent = self.find(py, parent_run_id)?;
        let current = self.env.get_current.bind(py).call0()?;
        let current_values = current.cast::<PyDict>()?.clone();
        let mut base = current_values.clone();
        if parent.is_none() {
            while let Some(owner) = self.run_in(py, &base)? {
                let o = owner.borrow();
                if o.parent.is_some() || !base.is(o.context.bind(py)) {
                    break;
                }
                let previous = o.previous.bind(py).cast::<PyDict>()?.clone();
                drop(o);
                base = previous;
            }
        }
        let parent_span = parent
            .as_ref()
            .map(|p| p.borrow().span.clone_ref(py).into_bound(py));
        let span = self.start_span(py, span_name, attributes, span_kind, &base, parent_span)?;
        let step = if model_step {
            Some(
                self.model_step_in(py, &current_values, parent.as_ref())?
                    .unbind(),
            )
        } else {
            None
        };
        let context = self.env.context_class.bind(py).call1((&base,))?;
        let context_values = context.cast::<PyDict>()?;
        context_values.set_item(self.env.span_key.bind(py), &span)?;
        if let Some(step) = &step {
            context_values.set_item(self.env.model_step_key.bind(py), step.bind(py))?;
        }
        let key = key_of(run_id)?;
        let run = Bound::new(
            py,
            Run {
                key: key.clone().unbind(),
                kind: kind.clone().unbind(),
                name: name.clone().unbind(),
                parent: parent.map(|p| p.unbind()),
                span: span.unbind(),
                context: context.clone().unbind(),
                previous: current.unbind(),
                token: None,
                step,
                data: py.None(),
                started: perf_counter_ns(py),
                first_token: None,
                streamed: false,
            },
        )?;
        context_values.set_item(self.env.run_key.bind(py), &run)?;
        let token = self.env.attach.bind(py).call1((&context,))?;
        let started = run.borrow().started;
        run.borrow_mut().token = Some(token.unbind());
        self.runs.bind(py).set_item(key, &run)?;
        let last = self.last_sweep.load(Ordering::Relaxed);
        if started - last > self.sweep_every.load(Ordering::Relaxed)
            && self
                .last_sweep
                .compare_exchange(last, started, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.env.sweep.bind(py).call1((started,))?;
        }
        Ok(run)
    }

    /// Forget the run and give its caller its context back: the run, None when it is not one in
    /// flight (it ended already, or started before llmprobe).
    fn finish<'py>(
        &self,
        py: Python<'py>,
        run_id: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, Run>>> {
        if run_id.is_none() {
            return Ok(None);
        }
        let runs = self.runs.bind(py);
        let key = key_of(run_id)?;
        let Some(run) = runs.get_item(&key)? else {
            return Ok(None);
        };
        runs.del_item(&key)?;
        let run = run.cast_into::<Run>()?;
        let token = run.borrow_mut().token.take();
        if let Some(token) = token {
            let current = self.env.get_current.bind(py).call0()?;
            let here = current.is(run.borrow().context.bind(py));
            if !(here && self.env.reset.bind(py).call1((&token,)).is_ok()) {
                self.env.leave.bind(py).call1((&run, token))?;
            }
        }
        Ok(Some(run))
    }

    /// `context` is a copy of the current context in which LangChain will run the code of the
    /// run that `config`'s callbacks name as their parent: the run's span is made current there
    /// (where the copy does not have it already), and its caller's context given back here.
    fn enter_copy(
        &self,
        py: Python<'_>,
        context: &Bound<'_, PyAny>,
        config: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let Ok(config) = config.cast::<PyDict>() else {
            return Ok(());
        };
        let Some(callbacks) = config.get_item(intern!(py, "callbacks"))? else {
            return Ok(());
        };
        let Ok(parent_run_id) = callbacks.getattr(intern!(py, "parent_run_id")) else {
            return Ok(());
        };
        let Some(run) = self.find(py, &parent_run_id)? else {
            return Ok(());
        };
        let current = self.env.get_current.bind(py).call0()?;
        if current.is(run.borrow().context.bind(py)) {
            self.leave_here_(py, &run)
        } else {
            let run_context = run.borrow().context.clone_ref(py);
            context.call_method1(intern!(py, "run"), (self.env.attach.bind(py), run_context))?;
            Ok(())
        }
    }

    /// Give the run's caller its context back now, if the run's context is current here and its
    /// token was made here (see _runs.leave_here).
    fn leave_here(&self, py: Python<'_>, run: &Bound<'_, Run>) -> PyResult<()> {
        self.leave_here_(py, run)
    }

    /// A span of the instrumentation's scope under the span current in `current` (an
    /// embeddings call's, ...).
    #[pyo3(signature = (span_name, attributes, span_kind, current))]
    fn span<'py>(
        &self,
        py: Python<'py>,
        span_name: &Bound<'py, PyAny>,
        attributes: &Bound<'py, PyAny>,
        span_kind: u8,
        current: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.start_span(py, span_name, attributes, span_kind, current, None)
    }

    /// The ModelStep of a model operation started in `current` (an embeddings call, ...).
    fn model_step<'py>(
        &self,
        py: Python<'py>,
        current: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.model_step_in(py, current, None)
    }
}
