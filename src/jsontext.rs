//! Finding JSON in model output: a bare value, a markdown code fence, or a value
//! embedded in prose. Backticks inside JSON strings or in the prose never start a
//! fence: a fence is a line that begins with three backticks.

use serde_json::Value;

/// Candidate start positions tried when scanning prose for an embedded value.
const MAX_SCAN_STARTS: usize = 256;

/// The first JSON value in `text`, if any.
pub fn find_json(text: &str) -> Option<Value> {
    let trimmed = text.trim();
    match serde_json::from_str::<Value>(trimmed) {
        Ok(v) => return Some(v),
        // Nesting deeper than the parser reads (128 levels) is no JSON here, and
        // an inner fragment of it must not stand in for the whole.
        Err(e) if too_deep(&e) => return None,
        Err(_) => {}
    }
    let fences = fenced_blocks(text);
    // A block tagged `json` wins over an untagged one.
    let ordered = fences.iter().filter(|(lang, _)| lang.eq_ignore_ascii_case("json")).chain(fences.iter().filter(|(lang, _)| !lang.eq_ignore_ascii_case("json")));
    for (_, body) in ordered {
        if let Ok(v) = serde_json::from_str::<Value>(body.trim()) {
            return Some(v);
        }
    }
    embedded_value(text)
}

/// The blocks between fence lines, with their language tags.
pub fn fenced_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String, usize)> = None;
    for line in text.split_inclusive('\n') {
        let stripped = line.trim_start();
        if let Some(rest) = stripped.strip_prefix("```") {
            let fence_len = 3 + rest.chars().take_while(|&c| c == '`').count();
            match &mut open {
                None => {
                    let lang = rest.trim_start_matches('`').trim().to_string();
                    open = Some((lang, String::new(), fence_len));
                }
                Some((_, _, len)) if rest.trim_start_matches('`').trim().is_empty() && fence_len >= *len => {
                    let (lang, body, _) = open.take().expect("a fence is open");
                    blocks.push((lang, body));
                }
                Some((_, body, _)) => body.push_str(line),
            }
            continue;
        }
        if let Some((_, body, _)) = &mut open {
            body.push_str(line);
        }
    }
    // An unclosed fence (the output was cut off) still counts.
    if let Some((lang, body, _)) = open {
        blocks.push((lang, body));
    }
    blocks
}

/// The first object or array that parses, starting at a `{` or `[` in the text.
fn embedded_value(text: &str) -> Option<Value> {
    for (tried, (i, _)) in text.match_indices(['{', '[']).enumerate() {
        if tried >= MAX_SCAN_STARTS {
            break;
        }
        let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) if value.is_object() || (value.is_array() && !value.as_array().is_some_and(|a| a.is_empty())) => {
                return Some(value);
            }
            // Every later start lies inside this too-deep value.
            Some(Err(e)) if too_deep(&e) => return None,
            _ => {}
        }
    }
    None
}

/// Whether parsing stopped at serde_json's nesting limit of 128 levels.
fn too_deep(err: &serde_json::Error) -> bool {
    err.to_string().contains("recursion limit exceeded")
}

/// Whether two JSON values are equal as JSON: numbers compare by value, so `1`, `1.0`
/// and `1e0` are the same number.
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || crate::voting::normalize::canonical_number_json(x) == crate::voting::normalize::canonical_number_json(y)
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        (x, y) => x == y,
    }
}

/// Writes `value` canonically: object keys sorted, no spaces.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&map[*k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Number(n) => out.push_str(&crate::voting::normalize::canonical_number_json(n)),
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fence_after_prose_with_backticks() {
        let text = "Here is `the` result:\n```json\n{\"title\": \"Q3 report\", \"risks\": [\"fx\"]}\n```";
        assert_eq!(find_json(text), Some(json!({ "title": "Q3 report", "risks": ["fx"] })));
    }

    #[test]
    fn bare_json_keeps_backticks_in_strings() {
        let text = "{\"code\": \"use `print` function\", \"risks\": [\"supply\"]}";
        assert_eq!(find_json(text).unwrap()["code"], "use `print` function");
    }

    #[test]
    fn untagged_fence_then_prose() {
        let text = "```\n{\"title\": \"Q3 summary\", \"owner\": \"ops\"}\n```\nLet me know if you need more.";
        assert_eq!(find_json(text), Some(json!({ "title": "Q3 summary", "owner": "ops" })));
    }

    #[test]
    fn embedded_in_prose() {
        assert_eq!(find_json("The answer is {\"a\": 1} as shown."), Some(json!({ "a": 1 })));
        assert_eq!(find_json("no json here"), None);
    }

    #[test]
    fn numbers_equal_by_value() {
        assert!(json_equal(&json!(1), &json!(1.0)));
        assert!(json_equal(&serde_json::from_str::<Value>("1e0").unwrap(), &json!(1)));
        assert!(json_equal(&json!({ "a": [2, 3.0] }), &json!({ "a": [2.0, 3] })));
        assert!(!json_equal(&json!(1), &json!(1.5)));
        assert!(!json_equal(&json!("1"), &json!(1)));
    }

    #[test]
    fn canonical_sorts_keys() {
        assert_eq!(canonical(&json!({ "b": 1, "a": [1.0, { "d": 2, "c": 3 }] })), "{\"a\":[1,{\"c\":3,\"d\":2}],\"b\":1}");
    }
}
