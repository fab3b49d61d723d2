//! Property tests of what the core promises about content, whatever the input: cutting never
//! panics, always gives valid UTF-8 no longer than the limit, and JSON stays valid JSON; the
//! redactor leaves no match behind and keeps JSON valid.

use proptest::prelude::*;
use serde_json::Value;

use crate::content::{truncate_chars, truncate_json_text, truncate_str, write_json_str};
use crate::redact::{compile, Redactor, REPLACEMENT};

/// Any JSON value, with strings of any characters (control characters, quotes, backslashes,
/// astral code points) and some depth.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn three_digits() -> regex::Regex {
    regex::Regex::new("[0-9]{3,}").expect("a valid pattern")
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Every string of the value (keys included), one per line.
fn strings_of(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s}\n"),
        Value::Array(items) => items.iter().map(strings_of).collect(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}\n{}", strings_of(v)))
            .collect(),
        _ => String::new(),
    }
}

fn longest_string(v: &Value) -> usize {
    match v {
        Value::String(s) => chars(s),
        Value::Array(items) => items.iter().map(longest_string).max().unwrap_or(0),
        Value::Object(map) => map.values().map(longest_string).max().unwrap_or(0),
        _ => 0,
    }
}

proptest! {
    #[test]
    fn a_cut_is_a_prefix_of_at_most_the_limit(s in any::<String>(), max in 0usize..64) {
        let cut = truncate_chars(s.clone(), max);
        prop_assert!(s.starts_with(&cut));
        prop_assert_eq!(chars(&cut), chars(&s).min(max));
        prop_assert_eq!(truncate_str(&s, max), cut.as_str());
    }

    #[test]
    fn a_written_json_string_reads_back_as_itself(s in any::<String>()) {
        let mut out = String::new();
        write_json_str(&mut out, &s);
        let back: Value = serde_json::from_str(&out).expect("valid JSON");
        prop_assert_eq!(back, Value::String(s));
    }

    #[test]
    fn cut_json_stays_json_with_every_string_within_the_limit(v in json_value(), max in 1usize..32) {
        let text = v.to_string();
        let cut = truncate_json_text(&text, max);
        match &v {
            Value::Array(_) | Value::Object(_) => {
                let back: Value = serde_json::from_str(&cut).expect("still JSON");
                prop_assert!(longest_string(&back) <= max);
            }
            // A scalar is text: cut as text.
            _ => prop_assert!(chars(&cut) <= max),
        }
    }

    #[test]
    fn cut_text_that_is_not_json_is_a_prefix(s in any::<String>(), max in 0usize..64) {
        let cut = truncate_json_text(&s, max);
        if serde_json::from_str::<Value>(&s).map(|v| !v.is_array() && !v.is_object()).unwrap_or(true) {
            prop_assert!(s.starts_with(&cut));
            prop_assert!(chars(&cut) <= max);
        }
    }

    #[test]
    fn redaction_leaves_no_match_and_keeps_json_json(v in json_value(), digits in "[0-9]{3,8}") {
        let (patterns, problems) = compile("[0-9]{3,}");
        prop_assert!(problems.is_empty());
        let redactor = Redactor::new(patterns).expect("one pattern");
        // Put a match somewhere the value can hold text: as an extra array item.
        let holder = Value::Array(vec![v, Value::String(format!("id {digits}"))]);
        let text = holder.to_string();
        let out = redactor.value(&text).expect("a match was planted");
        let back: Value = serde_json::from_str(&out).expect("still JSON");
        // No string of it holds a match any more (a match outside the strings, in a number,
        // replaces the whole value with one string).
        let left = three_digits().is_match(&strings_of(&back));
        prop_assert!(!left, "a match is left in {}", out);
        prop_assert!(out.contains(REPLACEMENT));
    }

    #[test]
    fn redacting_plain_text_leaves_no_match(s in any::<String>()) {
        let (patterns, _) = compile(r"[0-9]{3,},[\w.+-]+@[\w-]+\.[\w.]+");
        let redactor = Redactor::new(patterns).expect("two patterns");
        let text = format!("x{s}");  // never JSON-looking: plain text
        let out = redactor.value(&text).unwrap_or(text);
        let left = three_digits().is_match(&out);
        prop_assert!(!left, "a match is left in {:?}", out);
    }
}
