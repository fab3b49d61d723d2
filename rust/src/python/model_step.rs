//! `ModelStep`: a framework's model step (a LangChain chat-model run, a LlamaIndex LLM call, a
//! Dify LLM node), put in the context while the step runs, so that the provider hooks under it
//! can say they made the model call's span.
//!
//! The contract's rule is one LLM span per model request. A framework's step cannot know, when
//! it starts, whether the model is reached through an SDK llmprobe instruments (then the SDK's
//! span is the LLM span and the step is its parent, a CHAIN) or not (then the step is the LLM
//! span). A `ModelHook` that starts a span in a context holding a step counts the call into it
//! (and into the steps that enclose it), and the framework reads the count when its step ends.

use std::sync::atomic::{AtomicU32, Ordering};

use pyo3::prelude::*;

#[pyclass(frozen, module = "llmprobe._core")]
pub struct ModelStep {
    calls: AtomicU32,
    /// The step this one runs inside (a model wrapping another model), also told of each call.
    outer: Option<Py<ModelStep>>,
}

impl ModelStep {
    /// A provider's model call started under this step (and so under the steps around it).
    pub(super) fn count_call(&self) {
        let mut step = self;
        loop {
            step.calls.fetch_add(1, Ordering::Relaxed);
            match &step.outer {
                Some(outer) => step = outer.get(),
                None => return,
            }
        }
    }
}

#[pymethods]
impl ModelStep {
    #[new]
    #[pyo3(signature = (outer=None))]
    pub(super) fn new(outer: Option<Py<ModelStep>>) -> Self {
        ModelStep {
            calls: AtomicU32::new(0),
            outer,
        }
    }

    /// The step itself is the model call's LLM span (no SDK's hook traced it): the steps around
    /// it (a framework's model that wraps another) are told, so that they become its parents.
    fn count_outer(&self) {
        if let Some(outer) = &self.outer {
            outer.get().count_call();
        }
    }

    /// How many provider model calls started under the step so far.
    #[getter]
    fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }
}
