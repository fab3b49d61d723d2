//! The request side of an openai SDK call: `OpenAiBefore` reads a chat completion's request
//! (the `before` of its ModelHook, called by the hook without a Python frame) and gives the
//! other operations' `before`s (in Python) what they share with it: the server and provider of
//! the client, the numeric parameters, the output type. `OpenAiRequest` is what the end of a
//! call needs from its request.

use std::collections::HashMap;
use std::sync::Mutex;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};

use super::convert::str_of;
use super::messages::{self, field, get};
use super::tool_definitions;

/// What the end of an openai call needs from its request (`call.extra`).
#[pyclass(frozen, module = "llmprobe._core")]
pub struct OpenAiRequest {
    /// "chat", "text_completion", "responses" or "embeddings".
    #[pyo3(get)]
    kind: Py<PyString>,
    #[pyo3(get)]
    pub(super) capture: bool,
    #[pyo3(get)]
    stream: bool,
    /// The embedding dimensions asked for (an int), or None.
    #[pyo3(get)]
    dimensions: Py<PyAny>,
    /// How many choices were asked for (n): a chat stream of one has only choice 0's chunks.
    #[pyo3(get)]
    pub(super) choices: i64,
}

#[pymethods]
impl OpenAiRequest {
    #[new]
    #[pyo3(signature = (kind, capture, stream, dimensions=None, choices=1))]
    fn new(
        py: Python<'_>,
        kind: Py<PyString>,
        capture: bool,
        stream: bool,
        dimensions: Option<Py<PyAny>>,
        choices: i64,
    ) -> Self {
        OpenAiRequest {
            kind,
            capture,
            stream,
            dimensions: dimensions.unwrap_or_else(|| py.None()),
            choices,
        }
    }
}

/// One client's server, as the spans and the metrics name it.
struct Server {
    /// The client's base URL object, kept so that its address (the key) is not reused.
    url: Py<PyAny>,
    provider: Py<PyString>,
    host: Py<PyString>,
    port: i64,
    port_text: Py<PyString>,
}

/// (provider, host, port, port as text) of a server.
type ServerNames<'py> = (
    Bound<'py, PyString>,
    Bound<'py, PyString>,
    i64,
    Bound<'py, PyString>,
);

/// A cache of more clients than this starts over rather than grows (many short-lived
/// clients, each with its own URL object).
const MAX_SERVERS: usize = 256;

/// (keyword argument, span attribute) pairs, read from the instrumentation's tables.
type Parameters = Vec<(Py<PyString>, Py<PyString>)>;

/// Reads openai requests. Made once by `instrument()`, with the settings and the tables of
/// the instrumentation; never changed after, but for its cache of clients' servers.
#[pyclass(frozen, module = "llmprobe._core")]
pub struct OpenAiBefore {
    capture: bool,
    chat_parameters: Parameters,
    responses_parameters: Parameters,
    extra_body_parameters: Parameters,
    /// (end of an API host name, provider name).
    providers: Vec<(String, Py<PyString>)>,
    default_provider: Py<PyString>,
    azure_provider: Py<PyString>,
    /// The address of a client's base URL object -> its server. Held only to look up or add
    /// (no Python runs under it).
    servers: Mutex<HashMap<usize, Server>>,
}

fn parameters(table: &Bound<'_, PyAny>) -> PyResult<Parameters> {
    table.extract::<Parameters>()
}

/// `value` when it is exactly an int or a float (not a bool, not the SDK's NOT_GIVEN).
fn number<'py>(value: Option<Bound<'py, PyAny>>) -> Option<Bound<'py, PyAny>> {
    value.filter(|v| v.is_exact_instance_of::<PyInt>() || v.is_exact_instance_of::<PyFloat>())
}

/// `kwargs[key]`, None when absent or None (the C lookup of `messages::field`: the request's
/// keys are looked up by the dozen on every call).
fn item<'py>(kwargs: &Bound<'py, PyDict>, key: &Bound<'py, PyString>) -> Option<Bound<'py, PyAny>> {
    field(kwargs.as_borrowed(), key).map(|v| v.to_owned())
}

fn is_sequence(v: &Bound<'_, PyAny>) -> bool {
    v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>()
}

impl OpenAiBefore {
    /// The numeric parameters of `table` (and those an OpenAI-compatible server takes in
    /// `extra_body`) that the request gives as plain numbers.
    fn put_numbers(
        &self,
        attributes: &Bound<'_, PyDict>,
        kwargs: &Bound<'_, PyDict>,
        table: &Parameters,
    ) -> PyResult<()> {
        let py = attributes.py();
        for (name, key) in table {
            if let Some(v) = number(item(kwargs, name.bind(py))) {
                attributes.set_item(key.bind(py), v)?;
            }
        }
        if let Some(extra) = item(kwargs, intern!(py, "extra_body")) {
            if let Ok(extra) = extra.cast_exact::<PyDict>() {
                for (name, key) in &self.extra_body_parameters {
                    if let Some(v) = number(item(extra, name.bind(py))) {
                        attributes.set_item(key.bind(py), v)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The server of the client that makes the call (`instance._client`), parsed once per
    /// client: (provider, host, port, port as text).
    fn server<'py>(&self, instance: &Bound<'py, PyAny>) -> PyResult<ServerNames<'py>> {
        let py = instance.py();
        let client = instance.getattr(intern!(py, "_client"))?;
        // What the base_url property returns, without the property's Python call.
        let url = match client.getattr(intern!(py, "_base_url")) {
            Ok(u) if u.is_truthy()? => u,
            _ => client.getattr(intern!(py, "base_url"))?,
        };
        let address = url.as_ptr() as usize;
        if let Ok(servers) = self.servers.lock() {
            if let Some(s) = servers.get(&address).filter(|s| s.url.is(&url)) {
                return Ok((
                    s.provider.bind(py).clone(),
                    s.host.bind(py).clone(),
                    s.port,
                    s.port_text.bind(py).clone(),
                ));
            }
        }
        let host = url.getattr(intern!(py, "host"))?;
        let host = if host.is_truthy()? {
            host.str()?
        } else {
            PyString::new(py, "")
        };
        let port = url.getattr(intern!(py, "port"))?;
        let port = if port.is_truthy()? {
            port.extract::<i64>()?
        } else if url.getattr(intern!(py, "scheme"))?.eq("https")? {
            443
        } else {
            80
        };
        let provider = self.provider(&str_of(&host), &client)?;
        let port_text = PyString::new(py, &port.to_string());
        let server = Server {
            url: url.clone().unbind(),
            provider: provider.clone().unbind(),
            host: host.clone().unbind(),
            port,
            port_text: port_text.clone().unbind(),
        };
        let dropped = match self.servers.lock() {
            Ok(mut servers) => {
                let dropped = if servers.len() >= MAX_SERVERS {
                    std::mem::take(&mut *servers)
                } else {
                    HashMap::new()
                };
                servers.insert(address, server);
                dropped
            }
            Err(_) => HashMap::new(),
        };
        drop(dropped); // the old URLs are let go of outside the lock
        Ok((provider, host, port, port_text))
    }

    fn provider<'py>(
        &self,
        host: &str,
        client: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyString>> {
        let py = client.py();
        let host = host.to_lowercase();
        for (suffix, name) in &self.providers {
            if host == *suffix
                || (host.ends_with(suffix.as_str())
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.')
            {
                return Ok(name.bind(py).clone());
            }
        }
        let class_name = client.get_type().name()?;
        if str_of(&class_name.str()?).contains("Azure") {
            return Ok(self.azure_provider.bind(py).clone());
        }
        Ok(self.default_provider.bind(py).clone())
    }

    /// A chat completion's request: the span to start, as `begin()` gives it.
    pub(super) fn chat<'py>(
        &self,
        instance: &Bound<'py, PyAny>,
        kwargs: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let py = instance.py();
        let capture = self.capture;
        let stream = match item(kwargs, intern!(py, "stream")) {
            Some(s) => s.is_truthy()?,
            None => false,
        };
        let attributes = PyDict::new(py);
        attributes.set_item(intern!(py, "gen_ai.request.stream"), stream)?;
        self.sampling(&attributes, kwargs)?;
        if let Some(format) = item(kwargs, intern!(py, "response_format")) {
            if let Some(kind) = Self::output_type(&format) {
                attributes.set_item(intern!(py, "gen_ai.output.type"), kind)?;
            }
        }
        if let Some(tier) = item(kwargs, intern!(py, "service_tier")) {
            if tier.is_instance_of::<PyString>() {
                attributes.set_item(intern!(py, "openai.request.service_tier"), tier)?;
            }
        }
        if let Some(list) = item(kwargs, intern!(py, "messages")) {
            if let Some(m) = messages::chat_input(&list, capture, false) {
                if capture {
                    let text = m.json();
                    attributes.set_item(intern!(py, "gen_ai.input.messages"), &text)?;
                    attributes.set_item(intern!(py, "input.value"), text)?;
                    attributes.set_item(intern!(py, "input.mime_type"), "application/json")?;
                } else {
                    attributes.set_item(intern!(py, "llmprobe.input.size"), m.chars)?;
                }
            }
        }
        if capture {
            // The tools, or the legacy functions (write takes only a non-empty list or tuple).
            let definitions = |key| item(kwargs, key).and_then(|t| tool_definitions::write(&t));
            let definitions =
                definitions(intern!(py, "tools")).or_else(|| definitions(intern!(py, "functions")));
            if let Some(definitions) = definitions {
                attributes.set_item(intern!(py, "gen_ai.tool.definitions"), definitions)?;
            }
        }
        let choices = match item(kwargs, intern!(py, "n")) {
            Some(n) if n.is_exact_instance_of::<PyInt>() => n.extract::<i64>().unwrap_or(1),
            _ => 1,
        };
        let request = Bound::new(
            py,
            OpenAiRequest {
                kind: intern!(py, "chat").clone().unbind(),
                capture,
                stream,
                dimensions: py.None(),
                choices,
            },
        )?;
        let chat = intern!(py, "chat");
        self.begin(
            instance,
            kwargs,
            request.into_any(),
            chat,
            intern!(py, "LLM"),
            &attributes,
        )
    }
}

#[pymethods]
impl OpenAiBefore {
    /// `providers`: ((end of an API host name, provider name), ...); `chat_parameters`,
    /// `responses_parameters` and `extra_body_parameters`: ((keyword argument, span
    /// attribute), ...).
    #[new]
    fn new(
        py: Python<'_>,
        capture: bool,
        providers: Vec<(String, Py<PyString>)>,
        chat_parameters: &Bound<'_, PyAny>,
        responses_parameters: &Bound<'_, PyAny>,
        extra_body_parameters: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        Ok(OpenAiBefore {
            capture,
            chat_parameters: parameters(chat_parameters)?,
            responses_parameters: parameters(responses_parameters)?,
            extra_body_parameters: parameters(extra_body_parameters)?,
            providers: providers
                .into_iter()
                .map(|(suffix, name)| (suffix.to_lowercase(), name))
                .collect(),
            default_provider: PyString::new(py, "openai").unbind(),
            azure_provider: PyString::new(py, "azure.ai.openai").unbind(),
            servers: Mutex::new(HashMap::new()),
        })
    }

    /// A chat completion's `before(instance, args, kwargs)` (a ModelHook calls `chat` itself).
    #[pyo3(signature = (instance, args, kwargs))]
    fn __call__<'py>(
        &self,
        instance: &Bound<'py, PyAny>,
        args: &Bound<'py, PyAny>,
        kwargs: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let _ = args; // the SDK's methods take keyword arguments only
        self.chat(instance, kwargs)
    }

    /// What every call has (model, server, provider) added to `attributes`, with
    /// `gen_ai.operation.name` and `gen_ai.span.kind`: the span to start, (name, attributes,
    /// metric attributes, request), as `_genai.request` gives it.
    fn begin<'py>(
        &self,
        instance: &Bound<'py, PyAny>,
        kwargs: &Bound<'py, PyDict>,
        request: Bound<'py, PyAny>,
        operation: &Bound<'py, PyString>,
        span_kind: &Bound<'py, PyString>,
        attributes: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let py = instance.py();
        let (provider, host, port, port_text) = self.server(instance)?;
        let model = match item(kwargs, intern!(py, "model")) {
            None => None,
            Some(m) => Some(match m.cast_into_exact::<PyString>() {
                Ok(s) => s,
                Err(e) => {
                    let m = e.into_inner();
                    match m.cast::<PyString>() {
                        // A str subclass (a str enum's member): its text.
                        Ok(s) => PyString::new(py, &str_of(s)),
                        // Another enum's member, say.
                        Err(_) => m.getattr(intern!(py, "value")).unwrap_or(m).str()?,
                    }
                }
            }),
        };
        let provider_key = intern!(py, "gen_ai.provider.name");
        let address_key = intern!(py, "server.address");
        let port_key = intern!(py, "server.port");
        let operation_key = intern!(py, "gen_ai.operation.name");
        let model_key = intern!(py, "gen_ai.request.model");
        attributes.set_item(provider_key, &provider)?;
        attributes.set_item(address_key, &host)?;
        attributes.set_item(port_key, port)?;
        let metric_attributes = PyDict::new(py);
        metric_attributes.set_item(provider_key, &provider)?;
        metric_attributes.set_item(address_key, &host)?;
        metric_attributes.set_item(port_key, port_text)?;
        metric_attributes.set_item(operation_key, operation)?;
        if let Some(model) = &model {
            attributes.set_item(model_key, model)?;
            metric_attributes.set_item(model_key, model)?;
        }
        attributes.set_item(operation_key, operation)?;
        attributes.set_item(intern!(py, "gen_ai.span.kind"), span_kind)?;
        let name = match model.filter(|m| !str_of(m).is_empty()) {
            Some(m) => PyString::new(py, &format!("{} {}", str_of(operation), str_of(&m))),
            None => operation.clone(),
        };
        PyTuple::new(
            py,
            [
                name.into_any(),
                attributes.clone().into_any(),
                metric_attributes.into_any(),
                request,
            ],
        )
    }

    /// The numeric parameters of a Responses API request, and those of `extra_body`.
    fn responses_numbers(
        &self,
        attributes: &Bound<'_, PyDict>,
        kwargs: &Bound<'_, PyDict>,
    ) -> PyResult<()> {
        self.put_numbers(attributes, kwargs, &self.responses_parameters)
    }

    /// The numeric parameters and stop sequences of a chat or text completion.
    fn sampling(&self, attributes: &Bound<'_, PyDict>, kwargs: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = attributes.py();
        self.put_numbers(attributes, kwargs, &self.chat_parameters)?;
        let Some(stop) = item(kwargs, intern!(py, "stop")) else {
            return Ok(());
        };
        let key = intern!(py, "gen_ai.request.stop_sequences");
        if stop.is_instance_of::<PyString>() {
            attributes.set_item(key, PyList::new(py, [stop])?)?;
        } else if is_sequence(&stop) {
            let all: Vec<Bound<'_, PyAny>> = stop.try_iter()?.collect::<PyResult<_>>()?;
            if all.iter().all(|s| s.is_instance_of::<PyString>()) {
                attributes.set_item(key, PyList::new(py, all)?)?;
            }
        }
        Ok(())
    }

    /// The `gen_ai.output.type` a response format asks for ("json", "text"), or None.
    #[staticmethod]
    fn output_type(format: &Bound<'_, PyAny>) -> Option<&'static str> {
        if format.is_instance_of::<PyType>() {
            return Some("json"); // a pydantic model given to parse()
        }
        let kind = match format.cast::<PyString>() {
            Ok(s) => s.clone(),
            Err(_) => get(format, intern!(format.py(), "type"))?
                .cast_into::<PyString>()
                .ok()?,
        };
        match &*str_of(&kind) {
            "json_object" | "json_schema" => Some("json"),
            "text" => Some("text"),
            _ => None,
        }
    }
}
