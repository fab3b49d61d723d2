//! `LLMPROBE_REDACT_PATTERNS`: regular expressions whose matches are replaced in every string a
//! span carries (attribute values, event and link attributes, the status message) before it is
//! exported, for users who must keep e-mail addresses, ids or tokens out of their traces.
//!
//! Runs on the exporter thread, on the batch about to be encoded: the application's threads never
//! pay for it. A value that is JSON (the captured messages, a node's inputs) is redacted string by
//! string and written again, so that it stays valid JSON; a match the strings alone do not hold
//! (a pattern spanning JSON syntax) replaces the whole value.

use regex::{Regex, RegexSet};

use crate::span::{AttrValue, Attributes, SpanRecord};

/// What a match becomes.
pub const REPLACEMENT: &str = "[REDACTED]";

pub struct Redactor {
    /// Tells with one pass whether a value holds any match (most values hold none).
    any: RegexSet,
    patterns: Vec<Regex>,
}

impl Redactor {
    /// A redactor for `patterns` (compiled already: see `compile`), or None for none.
    pub fn new(patterns: Vec<Regex>) -> Option<Redactor> {
        if patterns.is_empty() {
            return None;
        }
        let any = RegexSet::new(patterns.iter().map(|p| p.as_str())).ok()?;
        Some(Redactor { any, patterns })
    }

    /// Redacts every string of the span in place.
    pub fn span(&self, span: &mut SpanRecord) {
        self.attributes(&mut span.attributes);
        for event in &mut span.events {
            self.attributes(&mut event.attributes);
        }
        for link in &mut span.links {
            self.attributes(&mut link.attributes);
        }
        if let Some(text) = self.text(&span.status_description) {
            span.status_description = text;
        }
    }

    fn attributes(&self, attributes: &mut Attributes) {
        for (_, value) in attributes.iter_mut() {
            match value {
                AttrValue::Str(s) => {
                    if let Some(text) = self.value(s) {
                        *s = text;
                    }
                }
                AttrValue::StrArray(items) => {
                    for s in items.iter_mut() {
                        if let Some(text) = self.value(s) {
                            *s = text;
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// A value's redacted form, or None when nothing in it matches.
    pub fn value(&self, s: &str) -> Option<String> {
        if !self.any.is_match(s) {
            return None;
        }
        let looks_json = matches!(s.trim_start().as_bytes().first(), Some(b'{' | b'['));
        if looks_json {
            if let Ok(mut json) = serde_json::from_str::<serde_json::Value>(s) {
                self.json(&mut json);
                let written = json.to_string();
                if !self.any.is_match(&written) {
                    return Some(written);
                }
                // A match across the JSON's syntax: nothing of it can be kept, and a JSON string
                // keeps the value valid JSON.
                return Some(format!("\"{REPLACEMENT}\""));
            }
        }
        self.text(s)
    }

    /// Plain text with every match replaced, or None when nothing matches.
    fn text(&self, s: &str) -> Option<String> {
        if !self.any.is_match(s) {
            return None;
        }
        let mut out = s.to_owned();
        for pattern in &self.patterns {
            if pattern.is_match(&out) {
                out = pattern.replace_all(&out, REPLACEMENT).into_owned();
            }
        }
        Some(out)
    }

    fn json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => {
                if let Some(text) = self.text(s) {
                    *s = text;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.json(v)),
            serde_json::Value::Object(map) => {
                // Keys can be content too (a dict of inputs keyed by what the user typed).
                let entries = std::mem::take(map);
                for (key, mut v) in entries {
                    self.json(&mut v);
                    map.insert(self.text(&key).unwrap_or(key), v);
                }
            }
            _ => {}
        }
    }
}

/// Splits the variable's value into patterns: separated by commas, where a comma inside a
/// `{m,n}` repetition or a `[...]` class belongs to its pattern and `\,` is a literal comma.
pub fn split_patterns(value: &str) -> Vec<String> {
    let mut patterns = Vec::new();
    let mut current = String::new();
    let (mut braces, mut in_class) = (0usize, false);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if chars.peek() == Some(&',') {
                    chars.next();
                    current.push(',');
                } else {
                    current.push(c);
                    if let Some(next) = chars.next() {
                        current.push(next);
                    }
                }
                continue;
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '{' if !in_class => braces += 1,
            '}' if !in_class => braces = braces.saturating_sub(1),
            ',' if braces == 0 && !in_class => {
                patterns.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    patterns.push(current);
    patterns
        .into_iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The patterns of the variable's value that compile, and the problem of each one that does not.
pub fn compile(value: &str) -> (Vec<Regex>, Vec<String>) {
    let mut compiled = Vec::new();
    let mut problems = Vec::new();
    for pattern in split_patterns(value) {
        match Regex::new(&pattern) {
            Ok(r) => compiled.push(r),
            Err(e) => {
                let first = e.to_string();
                let first = first.lines().last().unwrap_or("").trim().to_owned();
                problems.push(format!("{pattern:?} is not a regular expression ({first})"));
            }
        }
    }
    (compiled, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(value: &str) -> Redactor {
        let (patterns, problems) = compile(value);
        assert!(problems.is_empty(), "{problems:?}");
        Redactor::new(patterns).expect("patterns")
    }

    const EMAIL: &str = r"[\w.+-]+@[\w-]+\.[\w.]+";

    #[test]
    fn plain_text_matches_are_replaced() {
        let r = redactor(EMAIL);
        assert_eq!(
            r.value("write to ann@example.com or bob@example.org")
                .as_deref(),
            Some("write to [REDACTED] or [REDACTED]")
        );
        assert_eq!(r.value("nothing here"), None);
    }

    #[test]
    fn json_stays_json() {
        let r = redactor(EMAIL);
        let input =
            r#"[{"role":"user","parts":[{"type":"text","content":"mail ann@example.com"}]}]"#;
        let out = r.value(input).expect("redacted");
        let parsed: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(parsed[0]["parts"][0]["content"], "mail [REDACTED]");
        assert_eq!(parsed[0]["role"], "user");
    }

    #[test]
    fn json_keys_are_content_too() {
        let r = redactor(EMAIL);
        let out = r.value(r#"{"ann@example.com":1}"#).expect("redacted");
        assert_eq!(out, r#"{"[REDACTED]":1}"#);
    }

    #[test]
    fn a_match_across_json_syntax_replaces_the_whole_value() {
        let r = redactor(r#""secret":"[^"]*""#);
        let out = r.value(r#"{"secret":"s3cr3t","ok":1}"#).expect("redacted");
        assert_eq!(out, "\"[REDACTED]\"");
        assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok());
    }

    #[test]
    fn text_that_only_looks_like_json_is_text() {
        let r = redactor("ID-[0-9]+");
        assert_eq!(
            r.value("[ID-42 is broken").as_deref(),
            Some("[[REDACTED] is broken")
        );
    }

    #[test]
    fn several_patterns_each_apply() {
        let r = redactor(&format!("{EMAIL}, sk-[A-Za-z0-9]{{8,}}"));
        assert_eq!(
            r.value("ann@example.com used sk-abcdefgh123").as_deref(),
            Some("[REDACTED] used [REDACTED]")
        );
    }

    #[test]
    fn commas_inside_repetitions_classes_and_escapes_stay() {
        assert_eq!(
            split_patterns(r"a{2,3}, [,;]x ,b\,c,,"),
            vec!["a{2,3}", "[,;]x", "b,c"]
        );
    }

    #[test]
    fn a_bad_pattern_is_named_and_the_rest_still_apply() {
        let (patterns, problems) = compile("ok[0-9], (unclosed");
        assert_eq!(patterns.len(), 1);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("(unclosed"), "{problems:?}");
    }

    #[test]
    fn a_span_is_redacted_everywhere_it_holds_text() {
        let r = redactor(EMAIL);
        let mut span = SpanRecord::new(1, 2, 0, false, "chat".into(), 0, 0);
        span.attributes.push((
            "gen_ai.user.id".into(),
            AttrValue::Str("ann@example.com".into()),
        ));
        span.attributes.push((
            "tags".into(),
            AttrValue::StrArray(vec!["x".into(), "bob@example.org".into()]),
        ));
        span.attributes.push(("n".into(), AttrValue::Int(3)));
        span.add_event(
            "exception".into(),
            0,
            vec![(
                "exception.message".into(),
                AttrValue::Str("no user ann@example.com".into()),
            )],
        );
        span.status_description = "bad address ann@example.com".into();
        r.span(&mut span);
        assert_eq!(span.attributes[0].1, AttrValue::Str(REPLACEMENT.into()));
        assert_eq!(
            span.attributes[1].1,
            AttrValue::StrArray(vec!["x".into(), REPLACEMENT.into()])
        );
        assert_eq!(span.attributes[2].1, AttrValue::Int(3));
        assert_eq!(
            span.events[0].attributes[0].1,
            AttrValue::Str("no user [REDACTED]".into())
        );
        assert_eq!(span.status_description, "bad address [REDACTED]");
    }
}
