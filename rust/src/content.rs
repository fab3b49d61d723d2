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

/// Whether any of the 8 bytes in `x` must be escaped in a JSON string: a quote, a backslash or
/// a control character (below 0x20). Bytes of multi-byte UTF-8 characters (0x80 and up) never
/// match.
fn any_escape(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    (control | has_zero(x ^ (ONES * b'"' as u64)) | has_zero(x ^ (ONES * b'\\' as u64))) != 0
}

/// Appends `s` to `out` as a JSON string literal, escaped as serde_json escapes it. The text
/// of a span's messages is mostly plain: it is scanned 8 bytes at a time and copied in runs.
pub fn write_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push('"');
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if let Some(block) = bytes.get(i..i + 8) {
            if !any_escape(u64::from_le_bytes(block.try_into().expect("8 bytes"))) {
                i += 8;
                continue;
            }
        }
        let escape = match bytes[i] {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => {
                i += 1;
                continue;
            }
        };
        // Escapes are ASCII: `start` and `i` are always on character boundaries.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let b = bytes[i];
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push_str(escape);
        }
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
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
    fn escapes_as_serde_json_does() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain text that is longer than eight bytes".into(),
            "quote \" and backslash \\ at odd places\"".into(),
            "controls \u{0}\u{1}\u{8}\u{9}\u{a}\u{c}\u{d}\u{1f}\u{7f} end".into(),
            "non-ASCII: é, 中文, emoji 🙂, then \"quoted\"".into(),
        ];
        // Every byte value a str can hold next to plain text, at each offset in a block.
        for c in (0u32..0x80).chain([0xe9, 0x4e2d, 0x1f642]) {
            let c = char::from_u32(c).unwrap();
            for pad in 0..9 {
                samples.push(format!("{}{c}{}", "a".repeat(pad), "b".repeat(9 - pad)));
            }
        }
        for s in samples {
            let mut ours = String::new();
            write_json_str(&mut ours, &s);
            assert_eq!(ours, serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }

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
