//! The resource: who sends the spans. With PROFILER_GENAI_SPLITAPP_ENABLE a span given a
//! service name goes under a variant of it: the same attributes, that `service.name`.

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;

use crate::config::Settings;
use crate::span::{AttrValue, Attributes};

/// The most service names whose variant resource an exporter keeps ready (encoded, or as the
/// exporter's own form); past it the cache starts over, so that names made up per request
/// cannot grow it without end.
pub const MAX_CACHED_SERVICES: usize = 1024;

#[derive(Debug, Clone)]
pub struct ResourceInfo {
    pub attributes: Attributes,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

fn instance_id() -> String {
    format!("{:032x}", crate::ids::trace_id())
}

impl ResourceInfo {
    /// Defaults < what Python detected (`given`) < OTEL_RESOURCE_ATTRIBUTES < OTEL_SERVICE_NAME.
    pub fn build(given: Attributes, settings: &Settings) -> Self {
        let mut r = ResourceInfo {
            attributes: vec![
                (
                    "service.name".into(),
                    AttrValue::Str("unknown_service".into()),
                ),
                (
                    "telemetry.sdk.language".into(),
                    AttrValue::Str("python".into()),
                ),
                // The SDK here is llmprobe's own core.
                (
                    "telemetry.sdk.version".into(),
                    AttrValue::Str(env!("CARGO_PKG_VERSION").into()),
                ),
                (
                    "telemetry.sdk.name".into(),
                    AttrValue::Str("opentelemetry".into()),
                ),
                (
                    "telemetry.distro.name".into(),
                    AttrValue::Str("llmprobe".into()),
                ),
                ("host.name".into(), AttrValue::Str(hostname())),
            ],
        };
        r.set_process_identity();
        for (k, v) in given {
            r.set(k, v);
        }
        for (k, v) in &settings.resource_attributes {
            r.set(k.clone(), AttrValue::Str(v.clone()));
        }
        if let Some(name) = &settings.service_name {
            r.set("service.name".into(), AttrValue::Str(name.clone()));
        }
        r
    }

    fn set(&mut self, key: String, value: AttrValue) {
        match self.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.attributes.push((key, value)),
        }
    }

    fn set_process_identity(&mut self) {
        self.set(
            "process.pid".into(),
            AttrValue::Int(std::process::id() as i64),
        );
        self.set("service.instance.id".into(), AttrValue::Str(instance_id()));
    }

    /// The same resource for a forked child: its own pid and instance id.
    pub fn for_this_process(&self) -> Self {
        let mut r = self.clone();
        r.set_process_identity();
        r
    }

    /// The resource of the spans of service `name`: this one with `service.name` replaced.
    pub fn with_service_name(&self, name: &str) -> Self {
        let mut r = self.clone();
        r.set("service.name".into(), AttrValue::Str(name.into()));
        r
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find_map(|(k, v)| match v {
            AttrValue::Str(s) if k == key => Some(s.as_str()),
            _ => None,
        })
    }

    pub fn to_sdk(&self) -> Resource {
        Resource::builder_empty()
            .with_attributes(
                self.attributes
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), super::otlp::to_otel_value(v.clone()))),
            )
            .build()
    }

    #[cfg(test)]
    pub fn for_tests() -> Self {
        let (s, _) = Settings::from_env(&Default::default());
        Self::build(Vec::new(), &s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn precedence() {
        let env: HashMap<String, String> = [
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=fromattrs,team=ml"),
            ("OTEL_SERVICE_NAME", "fromvar"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (s, _) = Settings::from_env(&env);
        let r = ResourceInfo::build(
            vec![("service.name".into(), AttrValue::Str("app".into()))],
            &s,
        );
        assert_eq!(r.get_str("service.name"), Some("fromvar"));
        assert_eq!(r.get_str("team"), Some("ml"));
        assert_eq!(r.get_str("telemetry.distro.name"), Some("llmprobe"));
        let app = r.with_service_name("support-bot");
        assert_eq!(app.get_str("service.name"), Some("support-bot"));
        assert_eq!(app.attributes.len(), r.attributes.len());
        assert_eq!(app.attributes[1..], r.attributes[1..]);
        let child = r.for_this_process();
        assert_ne!(
            child.get_str("service.instance.id"),
            r.get_str("service.instance.id")
        );
    }
}
