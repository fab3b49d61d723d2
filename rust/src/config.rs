//! Configuration from environment variables, read once at start-up.
//!
//! Plain Rust: takes a map of variables, returns the settings and one warning per bad value.
//! Every warning names the variable, the value it had and what is used instead; nothing here
//! ever fails.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Where finished spans go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TracesExporter {
    Otlp,
    Console,
    File,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    HttpProtobuf,
    HttpJson,
    Grpc,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
            Protocol::Grpc => "grpc",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

#[derive(Debug, Clone)]
pub struct OtlpSettings {
    pub protocol: Protocol,
    /// The full URL spans are sent to (for HTTP, including `/v1/traces`).
    pub endpoint: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub gzip: bool,
    /// `OTEL_EXPORTER_OTLP_CERTIFICATE`: a PEM bundle of CAs trusted besides the system's.
    pub certificate: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub sdk_disabled: bool,
    pub service_name: Option<String>,
    pub resource_attributes: Vec<(String, String)>,
    pub exporters: Vec<TracesExporter>,
    /// True when nothing chose an exporter: traces go to the console with a hint.
    pub console_by_default: bool,
    pub otlp: OtlpSettings,
    /// `OTEL_METRICS_EXPORTER`: OTLP when true (the default when an endpoint is set).
    pub metrics_exporter: bool,
    pub metrics_otlp: OtlpSettings,
    pub metric_export_interval: Duration,
    pub traces_file: String,
    pub schedule_delay: Duration,
    pub max_queue_size: usize,
    pub max_export_batch_size: usize,
    pub export_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub sampler: Sampler,
    pub disabled_instrumentations: Vec<String>,
    pub capture_content: bool,
    pub content_max_length: usize,
    pub attribute_value_length_limit: Option<usize>,
    pub attribute_count_limit: usize,
    pub event_count_limit: usize,
    pub link_count_limit: usize,
    pub app_type: Option<String>,
    /// `PROFILER_GENAI_SPLITAPP_ENABLE`: a span given a service name (`Span.set_service_name`)
    /// is exported under the process's resource with that `service.name`.
    pub split_app: bool,
    /// `LLMPROBE_REDACT_PATTERNS`: what the exporter replaces in every string before export
    /// (see `crate::redact`); the patterns that did not compile are left out, with a warning.
    pub redact_patterns: Vec<regex::Regex>,
}

pub const DEFAULT_CONTENT_MAX_LENGTH: usize = 4096;

impl Default for Settings {
    fn default() -> Self {
        Settings::from_env(&HashMap::new()).0
    }
}

/// Reads variables, skipping empty values (the OpenTelemetry rule: empty means unset),
/// and collects warnings.
struct Reader<'a> {
    env: &'a HashMap<String, String>,
    warnings: Vec<String>,
}

impl<'a> Reader<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.env
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The first of `names` that is set, with its name.
    fn first<'n>(&self, names: &[&'n str]) -> Option<(&'n str, &'a str)> {
        names.iter().find_map(|n| self.get(n).map(|v| (*n, v)))
    }

    fn warn(&mut self, name: &str, value: &str, problem: &str, used: &str) {
        self.note(format!("{name}={value:?} {problem}; using {used}"));
    }

    /// Records a warning once: a variable read for two signals is still reported once.
    fn note(&mut self, line: String) {
        if !self.warnings.contains(&line) {
            self.warnings.push(line);
        }
    }

    fn bool(&mut self, name: &str, default: bool) -> bool {
        match self.get(name) {
            None => default,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    self.warn(name, v, "is not true or false", &default.to_string());
                    default
                }
            },
        }
    }

    /// The value of the first of `names` (most specific first) that is set and valid. A set
    /// but invalid one gets a warning naming what is used instead: the next valid one, or
    /// `default`.
    fn chain<T>(
        &mut self,
        names: &[&str],
        problem: &str,
        parse: impl Fn(&str) -> Option<T>,
        default: T,
        show: impl Fn(&T) -> String,
    ) -> T {
        let mut bad = Vec::new();
        let mut chosen = None;
        for name in names {
            if let Some(v) = self.get(name) {
                match parse(v) {
                    Some(x) => {
                        chosen = Some(x);
                        break;
                    }
                    None => bad.push((*name, v)),
                }
            }
        }
        let value = chosen.unwrap_or(default);
        let used = show(&value);
        for (name, v) in bad {
            self.warn(name, v, problem, &used);
        }
        value
    }

    /// A non-negative whole number no smaller than `min`.
    fn uint(&mut self, names: &[&str], default: u64, min: u64) -> u64 {
        let problem = if min == 0 {
            "is not a whole number".to_string()
        } else {
            format!("is not a whole number of at least {min}")
        };
        self.chain(
            names,
            &problem,
            |v| v.parse::<u64>().ok().filter(|n| *n >= min),
            default,
            |n| n.to_string(),
        )
    }

    fn millis(&mut self, names: &[&str], default_ms: u64) -> Duration {
        Duration::from_millis(self.uint(names, default_ms, 0))
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `k=v,k2=v2` with percent-decoded values (W3C baggage style, as OTEL_RESOURCE_ATTRIBUTES
    /// and OTEL_EXPORTER_OTLP_HEADERS are written). An entry without `=` is left out; a value
    /// that cannot be decoded discards the whole variable, as the specification asks.
    fn pairs(&mut self, names: &[&str]) -> Vec<(String, String)> {
        let Some((name, v)) = self.first(names) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in v.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            match entry.split_once('=') {
                Some((k, val)) if !k.trim().is_empty() => {
                    match (percent_decode(k.trim()), percent_decode(val.trim())) {
                        (Some(k), Some(val)) => out.push((k, val)),
                        _ => {
                            self.note(format!(
                                "{name}={v:?} has a malformed percent-encoding in {entry:?}; the whole value is left out"
                            ));
                            return Vec::new();
                        }
                    }
                }
                _ => self.note(format!(
                    "{name} has an entry {entry:?} that is not key=value; it is left out"
                )),
            }
        }
        out
    }
}

/// Decodes `%XX` escapes; None when an escape is malformed or the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn valid_url(v: &str) -> bool {
    (v.starts_with("http://") || v.starts_with("https://")) && v.len() > "https://".len() - 1
}

impl Settings {
    /// Reads the settings from `env`; returns them with the warnings for bad values.
    pub fn from_env(env: &HashMap<String, String>) -> (Settings, Vec<String>) {
        let mut r = Reader {
            env,
            warnings: Vec::new(),
        };

        let sdk_disabled = r.bool("OTEL_SDK_DISABLED", false);
        let service_name = r.get("OTEL_SERVICE_NAME").map(str::to_string);
        let resource_attributes = r.pairs(&["OTEL_RESOURCE_ATTRIBUTES"]);

        let (otlp, endpoint_set) = otlp_settings(&mut r, Signal::Traces);
        let (metrics_otlp, metrics_endpoint_set) = otlp_settings(&mut r, Signal::Metrics);

        // Exporter choice. Nothing chosen and no endpoint: console, with a hint.
        let mut exporters = Vec::new();
        let mut console_by_default = false;
        match r.get("OTEL_TRACES_EXPORTER") {
            Some(v) => {
                let mut unknown = Vec::new();
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let e = match item {
                        "otlp" => TracesExporter::Otlp,
                        "console" => TracesExporter::Console,
                        "file" => TracesExporter::File,
                        "none" => TracesExporter::None,
                        _ => {
                            unknown.push(item);
                            continue;
                        }
                    };
                    if !exporters.contains(&e) {
                        exporters.push(e);
                    }
                }
                if exporters.is_empty() {
                    r.warn(
                        "OTEL_TRACES_EXPORTER",
                        v,
                        "names no known exporter (otlp, console, file, none)",
                        "otlp",
                    );
                    exporters.push(TracesExporter::Otlp);
                } else {
                    for item in unknown {
                        r.note(format!(
                            "OTEL_TRACES_EXPORTER={v:?} names {item:?}, which is not one of otlp, console, file, none; it is left out"
                        ));
                    }
                }
                if exporters.len() > 1 {
                    exporters.retain(|e| *e != TracesExporter::None);
                }
            }
            None if endpoint_set => exporters.push(TracesExporter::Otlp),
            None => {
                exporters.push(TracesExporter::Console);
                console_by_default = true;
            }
        }
        let metrics_exporter = match r.get("OTEL_METRICS_EXPORTER") {
            None => endpoint_set || metrics_endpoint_set,
            Some("otlp") => true,
            Some("none") => false,
            Some(v) => {
                let used = if endpoint_set || metrics_endpoint_set {
                    "otlp"
                } else {
                    "none"
                };
                r.warn("OTEL_METRICS_EXPORTER", v, "is not otlp or none", used);
                used == "otlp"
            }
        };
        let metric_export_interval = r.millis(&["OTEL_METRIC_EXPORT_INTERVAL"], 60_000);
        let traces_file = r
            .get("LLMPROBE_TRACES_FILE")
            .unwrap_or("llmprobe-traces.jsonl")
            .to_string();

        let schedule_delay = r.millis(&["OTEL_BSP_SCHEDULE_DELAY"], 5000);
        let max_queue_size = r.uint(&["OTEL_BSP_MAX_QUEUE_SIZE"], 2048, 1) as usize;
        let mut max_export_batch_size =
            r.uint(&["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"], 512, 1) as usize;
        if max_export_batch_size > max_queue_size {
            let v = max_export_batch_size.to_string();
            r.warn(
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                &v,
                "is larger than OTEL_BSP_MAX_QUEUE_SIZE",
                &max_queue_size.to_string(),
            );
            max_export_batch_size = max_queue_size;
        }
        let export_timeout = r.millis(&["OTEL_BSP_EXPORT_TIMEOUT"], 30_000);
        let shutdown_timeout = match r.get("LLMPROBE_SHUTDOWN_TIMEOUT") {
            None => Duration::from_secs(2),
            Some(v) => match v.parse::<f64>() {
                Ok(s) if s.is_finite() && s >= 0.0 => Duration::from_secs_f64(s),
                _ => {
                    r.warn(
                        "LLMPROBE_SHUTDOWN_TIMEOUT",
                        v,
                        "is not a number of seconds",
                        "2",
                    );
                    Duration::from_secs(2)
                }
            },
        };

        let sampler = parse_sampler(&mut r);

        let mut disabled_instrumentations = r.list("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS");
        disabled_instrumentations.extend(r.list("LLMPROBE_DISABLED_INSTRUMENTATIONS"));

        let capture_content = match r.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT") {
            None => true,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" | "span_only" | "event_only" | "span_and_event" => true,
                "false" | "0" | "no" | "off" | "no_content" => false,
                _ => {
                    r.warn(
                        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
                        v,
                        "is not true, false or one of NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT",
                        "true",
                    );
                    true
                }
            },
        };
        let content_max_length = r.uint(
            &["OTEL_INSTRUMENTATION_GENAI_MESSAGE_CONTENT_MAX_LENGTH"],
            DEFAULT_CONTENT_MAX_LENGTH as u64,
            1,
        ) as usize;
        let attribute_value_length_limit = r.chain(
            &[
                "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
                "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            ],
            "is not a whole number of at least 1",
            |v| v.parse::<usize>().ok().filter(|n| *n >= 1).map(Some),
            None,
            |n| n.map_or("no limit".into(), |n| n.to_string()),
        );
        let attribute_count_limit = r.uint(
            &[
                "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
                "OTEL_ATTRIBUTE_COUNT_LIMIT",
            ],
            128,
            0,
        ) as usize;
        let event_count_limit = r.uint(&["OTEL_SPAN_EVENT_COUNT_LIMIT"], 128, 0) as usize;
        let link_count_limit = r.uint(&["OTEL_SPAN_LINK_COUNT_LIMIT"], 128, 0) as usize;

        let app_type = match r.get("APSARA_APM_APP_TYPE") {
            None => None,
            Some(v @ ("app" | "model" | "microservice")) => Some(v.to_string()),
            Some(v) => {
                r.warn(
                    "APSARA_APM_APP_TYPE",
                    v,
                    "is not one of app, model, microservice",
                    "the type detected from the installed packages",
                );
                None
            }
        };

        let split_app = r.bool("PROFILER_GENAI_SPLITAPP_ENABLE", false);

        let redact_patterns = match r.get("LLMPROBE_REDACT_PATTERNS") {
            None => Vec::new(),
            Some(v) => {
                let (patterns, problems) = crate::redact::compile(v);
                for problem in problems {
                    r.note(format!(
                        "LLMPROBE_REDACT_PATTERNS: {problem}; that pattern is left out, the others apply"
                    ));
                }
                patterns
            }
        };

        let settings = Settings {
            sdk_disabled,
            service_name,
            resource_attributes,
            exporters,
            console_by_default,
            otlp,
            metrics_exporter,
            metrics_otlp,
            metric_export_interval,
            traces_file,
            schedule_delay,
            max_queue_size,
            max_export_batch_size,
            export_timeout,
            shutdown_timeout,
            sampler,
            disabled_instrumentations,
            capture_content,
            content_max_length,
            attribute_value_length_limit,
            attribute_count_limit,
            event_count_limit,
            link_count_limit,
            app_type,
            split_app,
            redact_patterns,
        };
        (settings, r.warnings)
    }

    /// The values Python needs, by name (see `_core.pyi`).
    pub fn summary(&self) -> BTreeMap<&'static str, String> {
        let mut m = BTreeMap::new();
        m.insert(
            "traces_exporter",
            self.exporters
                .iter()
                .map(|e| match e {
                    TracesExporter::Otlp => "otlp",
                    TracesExporter::Console => "console",
                    TracesExporter::File => "file",
                    TracesExporter::None => "none",
                })
                .collect::<Vec<_>>()
                .join(","),
        );
        m.insert("otlp_endpoint", self.otlp.endpoint.clone());
        m.insert("otlp_protocol", self.otlp.protocol.as_str().to_string());
        m
    }
}

/// The signal an OTLP setting is for: its own variables win over the general ones.
#[derive(Clone, Copy)]
enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    /// `OTEL_EXPORTER_OTLP_{TRACES_}NAME` for this signal, then the general one.
    fn vars(self, name: &str) -> [String; 2] {
        let signal = match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
        };
        [
            format!("OTEL_EXPORTER_OTLP_{signal}_{name}"),
            format!("OTEL_EXPORTER_OTLP_{name}"),
        ]
    }

    fn var_refs(vars: &[String; 2]) -> [&str; 2] {
        [vars[0].as_str(), vars[1].as_str()]
    }

    fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
        }
    }
}

/// Protocol, endpoint, headers, timeout and compression for one signal, and whether an
/// endpoint was set at all.
fn otlp_settings(r: &mut Reader, signal: Signal) -> (OtlpSettings, bool) {
    let protocol_vars = signal.vars("PROTOCOL");
    let protocol = r.chain(
        &Signal::var_refs(&protocol_vars),
        "is not one of http/protobuf, http/json, grpc",
        |v| match v {
            "http/protobuf" => Some(Protocol::HttpProtobuf),
            "http/json" => Some(Protocol::HttpJson),
            "grpc" => Some(Protocol::Grpc),
            _ => None,
        },
        Protocol::HttpProtobuf,
        |p| p.as_str().to_string(),
    );
    let default_base = if protocol == Protocol::Grpc {
        "http://localhost:4317"
    } else {
        "http://localhost:4318"
    };
    let join = |base: &str| {
        if protocol == Protocol::Grpc {
            base.to_string()
        } else {
            format!("{}{}", base.trim_end_matches('/'), signal.path())
        }
    };
    let mut endpoint_set = false;
    let mut endpoint = join(default_base);
    let [specific_endpoint, _] = signal.vars("ENDPOINT");
    let specific_endpoint = specific_endpoint.as_str();
    if let Some(v) = r.get(specific_endpoint) {
        if valid_url(v) {
            endpoint = v.to_string();
            endpoint_set = true;
        } else {
            let used = r
                .get("OTEL_EXPORTER_OTLP_ENDPOINT")
                .filter(|b| valid_url(b))
                .map(join)
                .unwrap_or_else(|| endpoint.clone());
            r.warn(
                specific_endpoint,
                v,
                "is not an http:// or https:// URL",
                &used,
            );
            // The user asked for a collector: export to the fallback, not to the console.
            endpoint = used;
            endpoint_set = true;
        }
    }
    if !endpoint_set {
        if let Some(v) = r.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            if valid_url(v) {
                endpoint = join(v);
                endpoint_set = true;
            } else {
                r.warn(
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    v,
                    "is not an http:// or https:// URL",
                    default_base,
                );
                endpoint_set = true;
            }
        }
    }
    let headers = {
        let [specific, general] = signal.vars("HEADERS");
        let mut h = r.pairs(&[general.as_str()]);
        for (k, v) in r.pairs(&[specific.as_str()]) {
            h.retain(|(hk, _)| !hk.eq_ignore_ascii_case(&k));
            h.push((k, v));
        }
        h
    };
    let timeout = r.millis(&Signal::var_refs(&signal.vars("TIMEOUT")), 10_000);
    let compression_vars = signal.vars("COMPRESSION");
    let gzip = r.chain(
        &Signal::var_refs(&compression_vars),
        "is not gzip or none",
        |v| match v {
            "gzip" => Some(true),
            "none" => Some(false),
            _ => None,
        },
        false,
        |g| if *g { "gzip" } else { "none" }.to_string(),
    );

    let certificate = r
        .first(&Signal::var_refs(&signal.vars("CERTIFICATE")))
        .map(|(_, path)| path.to_string());

    (
        OtlpSettings {
            protocol,
            endpoint,
            headers,
            timeout,
            gzip,
            certificate,
        },
        endpoint_set,
    )
}

fn parse_sampler(r: &mut Reader) -> Sampler {
    let default = Sampler::ParentBasedAlwaysOn;
    let Some(name) = r.get("OTEL_TRACES_SAMPLER") else {
        return default;
    };
    let mut ratio = || match r.get("OTEL_TRACES_SAMPLER_ARG") {
        None => 1.0,
        Some(v) => match v.parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => x,
            _ => {
                r.warn(
                    "OTEL_TRACES_SAMPLER_ARG",
                    v,
                    "is not a ratio between 0 and 1",
                    "1.0",
                );
                1.0
            }
        },
    };
    match name {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatio(ratio()),
        "parentbased_always_on" => Sampler::ParentBasedAlwaysOn,
        "parentbased_always_off" => Sampler::ParentBasedAlwaysOff,
        "parentbased_traceidratio" => Sampler::ParentBasedTraceIdRatio(ratio()),
        _ => {
            r.warn(
                "OTEL_TRACES_SAMPLER",
                name,
                "is not one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio",
                "parentbased_always_on",
            );
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_print_to_console() {
        let (s, w) = Settings::from_env(&env(&[]));
        assert!(w.is_empty());
        assert_eq!(s.exporters, vec![TracesExporter::Console]);
        assert!(s.console_by_default);
        assert_eq!(s.max_queue_size, 2048);
        assert_eq!(s.max_export_batch_size, 512);
        assert_eq!(s.content_max_length, 4096);
        assert_eq!(s.shutdown_timeout, Duration::from_secs(2));
        assert!(!s.split_app);
    }

    #[test]
    fn split_app() {
        let (s, w) = Settings::from_env(&env(&[("PROFILER_GENAI_SPLITAPP_ENABLE", "true")]));
        assert!(s.split_app && w.is_empty());
        let (s, w) = Settings::from_env(&env(&[("PROFILER_GENAI_SPLITAPP_ENABLE", "maybe")]));
        assert!(!s.split_app);
        assert_eq!(
            w,
            vec!["PROFILER_GENAI_SPLITAPP_ENABLE=\"maybe\" is not true or false; using false"]
        );
    }

    #[test]
    fn endpoint_chooses_otlp_and_appends_path() {
        let (s, _) = Settings::from_env(&env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]));
        assert_eq!(s.exporters, vec![TracesExporter::Otlp]);
        assert_eq!(s.otlp.endpoint, "http://c:4318/v1/traces");
        let (s, _) = Settings::from_env(&env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://d:9/x"),
        ]));
        assert_eq!(s.otlp.endpoint, "http://d:9/x");
        let (s, _) = Settings::from_env(&env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]));
        assert_eq!(s.otlp.endpoint, "http://c:4317");
    }

    #[test]
    fn bad_values_warn_once_each_and_fall_back() {
        let (s, w) = Settings::from_env(&env(&[
            ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "-3"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
            ("APSARA_APM_APP_TYPE", "robot"),
            ("LLMPROBE_SHUTDOWN_TIMEOUT", "x"),
        ]));
        assert_eq!(w.len(), 6, "{w:?}");
        assert!(w
            .iter()
            .any(|l| l.starts_with("OTEL_BSP_SCHEDULE_DELAY=\"soon\"")));
        assert!(w
            .iter()
            .any(|l| l.contains("APSARA_APM_APP_TYPE=\"robot\"")));
        assert_eq!(s.schedule_delay, Duration::from_millis(5000));
        assert_eq!(s.max_queue_size, 2048);
        assert_eq!(s.sampler, Sampler::ParentBasedAlwaysOn);
        assert_eq!(s.otlp.protocol, Protocol::HttpProtobuf);
        assert_eq!(s.app_type, None);
    }

    #[test]
    fn headers_and_resource_are_percent_decoded() {
        let (s, w) = Settings::from_env(&env(&[
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "Authorization=Bearer%20abc,x-k=1",
            ),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-k=2"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod,broken",
            ),
        ]));
        assert_eq!(
            s.otlp.headers,
            vec![
                ("Authorization".to_string(), "Bearer abc".to_string()),
                ("x-k".to_string(), "2".to_string())
            ]
        );
        assert_eq!(
            s.resource_attributes,
            vec![("deployment.environment".to_string(), "prod".to_string())]
        );
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn sampler_ratio() {
        let (s, w) = Settings::from_env(&env(&[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ]));
        assert!(w.is_empty());
        assert_eq!(s.sampler, Sampler::ParentBasedTraceIdRatio(0.25));
        let (s, w) = Settings::from_env(&env(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ]));
        assert_eq!(w.len(), 1);
        assert_eq!(s.sampler, Sampler::TraceIdRatio(1.0));
    }

    #[test]
    fn batch_larger_than_queue_is_capped() {
        let (s, w) = Settings::from_env(&env(&[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "200"),
        ]));
        assert_eq!(s.max_export_batch_size, 100);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn exporter_list() {
        let (s, w) = Settings::from_env(&env(&[("OTEL_TRACES_EXPORTER", "console,bogus,file")]));
        assert_eq!(
            s.exporters,
            vec![TracesExporter::Console, TracesExporter::File]
        );
        assert_eq!(w.len(), 1);
        assert!(!s.console_by_default);
    }
}
