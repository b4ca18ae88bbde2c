//! Writing JSON text straight into a string, for the parts of a report that can be
//! very long (one entry per vote sample): building a `serde_json::Value` per entry
//! first costs about a dozen allocations each.

use serde_json::Value;

/// Appends `text` as a JSON string literal.
pub fn string(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{byte:04x}"));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// Appends an optional string, `null` when absent.
pub fn opt_string(out: &mut String, text: Option<&str>) {
    match text {
        Some(t) => string(out, t),
        None => out.push_str("null"),
    }
}

/// Appends a number the way `serde_json` writes it (`null` when not finite).
pub fn number(out: &mut String, n: f64) {
    match serde_json::Number::from_f64(n) {
        Some(num) => out.push_str(&num.to_string()),
        None => out.push_str("null"),
    }
}

/// Appends an integer.
pub fn integer(out: &mut String, n: usize) {
    out.push_str(&n.to_string());
}

/// Appends a `serde_json` value.
pub fn value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::String(s) => string(out, s),
        other => out.push_str(&other.to_string()),
    }
}

/// Appends `"key":`, with a comma before it unless it is the first field.
pub fn key(out: &mut String, key: &str, first: bool) {
    if !first {
        out.push(',');
    }
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
}

/// Serializes `head` (an object) with `field` appended as raw JSON text.
pub fn with_raw_field(head: &Value, field: &str, raw: &str) -> String {
    let mut text = head.to_string();
    debug_assert!(text.ends_with('}'));
    text.pop();
    if text.len() > 1 {
        text.push(',');
    }
    text.push('"');
    text.push_str(field);
    text.push_str("\":");
    text.push_str(raw);
    text.push('}');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_match_serde_json() {
        for s in ["plain", "q\"uote", "back\\slash", "line\nbreak\r\t", "\u{1}\u{1f}\u{8}\u{c}", "caf\u{e9} \u{1F600}", ""] {
            let mut out = String::new();
            string(&mut out, s);
            assert_eq!(out, Value::String(s.into()).to_string(), "{s:?}");
        }
    }

    #[test]
    fn raw_field_is_appended() {
        assert_eq!(with_raw_field(&json!({ "a": 1 }), "s", "[1]"), "{\"a\":1,\"s\":[1]}");
        assert_eq!(with_raw_field(&json!({}), "s", "[]"), "{\"s\":[]}");
    }
}
