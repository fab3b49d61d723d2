//! Content handling: cutting text by characters (never inside a UTF-8 code point) and keeping
//! JSON valid when it is cut (each string inside is cut, not the JSON text).

use serde_json::Value;

/// Byte index of the end of the first `max` characters of `s`, if `s` is longer.
fn cut_point(s: &str, max: usize) -> Option<usize> {
    if s.len() <= max {
        return None; // fewer bytes than the limit: fewer characters too
    }
    s.char_indices().nth(max).map(|(i, _)| i)
}

/// `s` cut to at most `max` characters.
pub fn truncate_chars(mut s: String, max: usize) -> String {
    if let Some(i) = cut_point(&s, max) {
        s.truncate(i);
    }
    s
}

/// A borrowed `s` cut to at most `max` characters.
pub fn truncate_str(s: &str, max: usize) -> &str {
    match cut_point(s, max) {
        Some(i) => &s[..i],
        None => s,
    }
}

/// Appends `s` to `out` as a JSON string literal.
pub fn write_json_str(out: &mut String, s: &str) {
    // serde_json's escaping, written straight into our buffer.
    // SAFETY: serde_json appends only valid UTF-8 (the escaped copy of a &str).
    let buf = unsafe { out.as_mut_vec() };
    serde_json::to_writer(buf, s).expect("writing a str to a Vec cannot fail");
}

/// Cuts every string inside a JSON value to `max` characters.
pub fn truncate_json_value(v: &mut Value, max: usize) {
    match v {
        Value::String(s) => {
            if let Some(i) = cut_point(s, max) {
                s.truncate(i);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|x| truncate_json_value(x, max)),
        Value::Object(map) => map.values_mut().for_each(|x| truncate_json_value(x, max)),
        _ => {}
    }
}

/// Text that may hold JSON: if it parses, each string inside is cut and the result stays valid
/// JSON; otherwise the text itself is cut.
pub fn truncate_json_text(text: &str, max: usize) -> String {
    if text.chars().take(max + 1).count() <= max {
        return text.to_string();
    }
    match serde_json::from_str::<Value>(text) {
        Ok(mut v @ (Value::Array(_) | Value::Object(_))) => {
            truncate_json_value(&mut v, max);
            v.to_string()
        }
        _ => truncate_str(text, max).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_in_characters_not_bytes() {
        assert_eq!(truncate_chars("héllo wörld".into(), 4), "héll");
        assert_eq!(truncate_chars("日本語テキスト".into(), 3), "日本語");
        assert_eq!(truncate_chars("ab".into(), 5), "ab");
        assert_eq!(truncate_str("😀😀😀", 2), "😀😀");
        assert_eq!(truncate_chars("abc".into(), 0), "");
    }

    #[test]
    fn json_stays_valid_when_cut() {
        let text =
            r#"[{"role":"user","content":"ñññññññññññ"},{"role":"assistant","content":"short"}]"#;
        let cut = truncate_json_text(text, 5);
        let v: Value = serde_json::from_str(&cut).unwrap();
        assert_eq!(v[0]["content"], "ñññññ");
        assert_eq!(v[1]["content"], "short");
        assert_eq!(v[0]["role"], "user");
    }

    #[test]
    fn non_json_text_is_cut_plainly() {
        assert_eq!(truncate_json_text("not json at all", 3), "not");
        assert_eq!(truncate_json_text("\"a quoted string\"", 4), "\"a q");
    }

    #[test]
    fn escapes_json_strings() {
        let mut out = String::from("x");
        write_json_str(&mut out, "a\"b\n\u{1}é");
        assert_eq!(out, "x\"a\\\"b\\n\\u0001é\"");
    }
}
