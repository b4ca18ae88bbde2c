//! Reading options that came from JavaScript, with the option's path in every error.
//!
//! The JS wrapper encodes an options object as JSON. Values JSON cannot carry arrive
//! as a marker object whose only key is `"\u0000"`: functions and signals as indexes
//! into a table of host references, providers and limiters as registry ids, and
//! `NaN`, `Infinity`, BigInts and class instances so that they can be rejected by name
//! instead of turning into `null`. `undefined` never arrives: the wrapper drops it, so
//! it means "not set", like `null`.

use std::rc::Rc;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::transport::{HostFunction, SignalSource};

/// The key of a marker object.
pub const MARKER: &str = "\u{0}";

/// Host references (functions and signals) that options point to by index.
pub trait RefTable {
    /// The function at `index`.
    fn function(&self, index: usize) -> Option<Rc<dyn HostFunction>>;
    /// The abort signal at `index`.
    fn signal(&self, index: usize) -> Option<Rc<dyn SignalSource>>;
}

/// A table with no references, for options that cannot hold any.
pub struct NoRefs;

impl RefTable for NoRefs {
    fn function(&self, _: usize) -> Option<Rc<dyn HostFunction>> {
        None
    }
    fn signal(&self, _: usize) -> Option<Rc<dyn SignalSource>> {
        None
    }
}

/// The kind and payload of a marker object, if `value` is one.
pub fn marker(value: &Value) -> Option<(&str, &Value)> {
    let obj = value.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    let list = obj.get(MARKER)?.as_array()?;
    Some((list.first()?.as_str()?, list.get(1).unwrap_or(&Value::Null)))
}

/// Describes a value for an error message: its type and, where short, the value.
pub fn describe(value: &Value) -> String {
    if let Some((kind, payload)) = marker(value) {
        return match kind {
            "num" => format!("the number {}", payload.as_str().unwrap_or("?")),
            "bigint" => format!("the BigInt {}n", payload.as_str().unwrap_or("?")),
            "fn" => "a function".into(),
            "signal" => "an AbortSignal".into(),
            "provider" => "a provider".into(),
            "limiter" => "a limiter".into(),
            "object" => format!("an instance of {}", payload.as_str().unwrap_or("a class")),
            "symbol" => "a symbol".into(),
            "circular" => "a circular reference".into(),
            other => format!("an unsupported value ({other})"),
        };
    }
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        // Numbers from JS arrive as f64, which Rust prints as "5.0"; show "5" as JS does.
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("the number {}", x as i64),
            _ => format!("the number {n}"),
        },
        Value::String(s) if s.is_empty() => "an empty string".into(),
        Value::String(s) if s.chars().count() <= 40 => format!("the string {s:?}"),
        Value::String(_) => "a string".into(),
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

/// Whether `value` counts as "not set": `null` (and `undefined`, which arrives absent).
pub fn is_unset(value: Option<&Value>) -> bool {
    matches!(value, None | Some(Value::Null))
}

/// The `camelCase` form of a `snake_case` or `kebab-case` name.
fn camel_case(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' || c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The edit distance between two short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            row.push((prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

/// The allowed name a mistyped option most likely meant.
pub fn suggest(name: &str, allowed: &[&str]) -> Option<String> {
    let camel = camel_case(name);
    if let Some(hit) = allowed.iter().find(|a| a.eq_ignore_ascii_case(&camel)) {
        return Some(hit.to_string());
    }
    allowed
        .iter()
        .map(|a| (edit_distance(name, a), a))
        .filter(|(d, a)| *d <= 2 && *d < a.len() / 2 + 1)
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a.to_string())
}

/// Joins a path and a key: `subtasks[2]` + `dependsOn`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Joins a path and an index: `subtasks` + 2.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Options that belong to a provider, named in hints when they are passed to a run.
const PROVIDER_ONLY: &[&str] = &["maxTokens", "topP", "model", "apiKey", "baseURL", "stream", "extraBody", "headers"];

/// A plain options object being read, which knows its path and which keys it allows.
pub struct Obj<'a> {
    /// The object's path (`""` for the top level).
    pub path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    /// Reads `value` as an object whose keys must all be in `allowed`.
    pub fn new(path: &str, value: &'a Value, allowed: &[&str]) -> Result<Obj<'a>> {
        let name = if path.is_empty() { "options" } else { path };
        let map = match value {
            Value::Object(map) if marker(value).is_none() => map,
            other => {
                return Err(Error::type_error(name, format!("expected an object, got {}", describe(other))));
            }
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                let at = join(path, key);
                let hint = match suggest(key, allowed) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => match suggest(key, PROVIDER_ONLY) {
                        Some(s) => format!("`{s}` is a provider option; set it in openai({{ {s} }}) or anthropic({{ {s} }})"),
                        None => format!("the allowed options are {}", allowed.join(", ")),
                    },
                };
                return Err(Error::type_error(&at, format!("unknown option; {hint}")));
            }
        }
        Ok(Obj { path: path.to_string(), map })
    }

    /// The value at `key`, or `None` when it is absent or `null`.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The path of `key`.
    pub fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Whether `key` is set.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// An optional string.
    pub fn str(&self, key: &str) -> Result<Option<&'a str>> {
        self.get(key).map(|v| string(&self.at(key), v)).transpose()
    }

    /// An optional string that must not be empty.
    pub fn nonempty_str(&self, key: &str) -> Result<Option<&'a str>> {
        match self.str(key)? {
            Some(s) if s.trim().is_empty() => {
                Err(Error::range_error(&self.at(key), "must not be empty; pass a non-empty string"))
            }
            other => Ok(other),
        }
    }

    /// A required non-empty string.
    pub fn required_str(&self, key: &str) -> Result<&'a str> {
        self.nonempty_str(key)?
            .ok_or_else(|| Error::type_error(&self.at(key), "is required; pass a non-empty string"))
    }

    /// An optional boolean.
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => {
                Err(Error::type_error(&self.at(key), format!("expected a boolean, got {}", describe(other))))
            }
        }
    }

    /// An optional finite number in `[min, max]`.
    pub fn number(&self, key: &str, min: f64, max: f64) -> Result<Option<f64>> {
        self.get(key).map(|v| number(&self.at(key), v, min, max)).transpose()
    }

    /// An optional integer in `[min, max]`.
    pub fn integer(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>> {
        self.get(key).map(|v| integer(&self.at(key), v, min, max)).transpose()
    }

    /// An optional array.
    pub fn array(&self, key: &str) -> Result<Option<&'a Vec<Value>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => {
                Err(Error::type_error(&self.at(key), format!("expected an array, got {}", describe(other))))
            }
        }
    }

    /// An optional function reference.
    pub fn function(&self, key: &str, refs: &dyn RefTable) -> Result<Option<Rc<dyn HostFunction>>> {
        self.get(key).map(|v| function(&self.at(key), v, refs)).transpose()
    }

    /// The keys that are set, in order.
    pub fn keys(&self) -> impl Iterator<Item = &'a String> {
        self.map.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k)
    }
}

/// A string.
pub fn string<'v>(path: &str, value: &'v Value) -> Result<&'v str> {
    value
        .as_str()
        .ok_or_else(|| Error::type_error(path, format!("expected a string, got {}", describe(value))))
}

/// A finite number in `[min, max]`.
pub fn number(path: &str, value: &Value, min: f64, max: f64) -> Result<f64> {
    let n = match value {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        other => {
            let hint = if marker(other).is_some_and(|(k, _)| k == "num") { "; pass a finite number" } else { "" };
            return Err(Error::type_error(path, format!("expected a number, got {}{hint}", describe(other))));
        }
    };
    if n < min || n > max {
        return Err(Error::range_error(path, format!("{n} is out of range; expected a number from {min} to {max}")));
    }
    Ok(n)
}

/// The largest integer a JavaScript number holds exactly, 2^53 - 1.
pub const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// An integer in `[min, max]`; rejects numbers above 2^53 - 1, which JavaScript has
/// already rounded.
pub fn integer(path: &str, value: &Value, min: i64, max: i64) -> Result<i64> {
    if let Some((kind, payload)) = marker(value) {
        if kind == "bigint" {
            // A BigInt is a value of the wrong type, as `new Array(3n)` is in JavaScript.
            return Err(Error::type_error(
                path,
                format!(
                    "the BigInt {}n is not supported; pass a number no larger than Number.MAX_SAFE_INTEGER",
                    payload.as_str().unwrap_or("?")
                ),
            ));
        }
    }
    let n = number(path, value, f64::NEG_INFINITY, f64::INFINITY)?;
    if n.fract() != 0.0 {
        return Err(Error::type_error(path, format!("expected an integer, got {n}")));
    }
    if n.abs() > MAX_SAFE_INTEGER as f64 {
        return Err(Error::range_error(
            path,
            format!(
                "{n} is larger than Number.MAX_SAFE_INTEGER, so JavaScript may have rounded it already; pass a smaller integer"
            ),
        ));
    }
    let n = n as i64;
    if n < min || n > max {
        return Err(Error::range_error(path, format!("{n} is out of range; expected an integer from {min} to {max}")));
    }
    Ok(n)
}

/// A function reference.
pub fn function(path: &str, value: &Value, refs: &dyn RefTable) -> Result<Rc<dyn HostFunction>> {
    match marker(value) {
        Some(("fn", payload)) => payload
            .as_u64()
            .and_then(|i| refs.function(i as usize))
            .ok_or_else(|| Error::type_error(path, "the function reference is invalid")),
        _ => Err(Error::type_error(path, format!("expected a function, got {}", describe(value)))),
    }
}

/// A plain JSON value with no markers in it (for `extraBody`, `headers`).
pub fn plain_json(path: &str, value: &Value) -> Result<Value> {
    if marker(value).is_some() {
        return Err(Error::type_error(path, format!("expected plain JSON data, got {}", describe(value))));
    }
    match value {
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(plain_json(&index(path, i), item)?);
            }
            Ok(Value::Array(out))
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k.clone(), plain_json(&join(path, k), v)?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_snake_case_key_suggests_camel_case() {
        let v = json!({ "max_tokens": 5 });
        let err = Obj::new("", &v, &["maxTokens", "model"]).err().unwrap();
        assert_eq!(err.code.as_str(), "INVALID_OPTIONS");
        assert!(err.message.contains("max_tokens"), "{}", err.message);
        assert!(err.message.contains("did you mean `maxTokens`?"), "{}", err.message);
    }

    #[test]
    fn provider_option_on_a_run_points_to_the_provider() {
        let v = json!({ "max_tokens": 5 });
        let err = Obj::new("", &v, &["prompt", "concurrency"]).err().unwrap();
        assert!(err.message.contains("`maxTokens` is a provider option"), "{}", err.message);
    }

    #[test]
    fn typo_suggests_the_near_name() {
        assert_eq!(suggest("concurency", &["concurrency", "signal"]).as_deref(), Some("concurrency"));
        assert_eq!(suggest("zzz", &["concurrency", "signal"]), None);
    }

    #[test]
    fn nan_marker_is_rejected_by_name() {
        let v = json!({ "topP": { "\u{0}": ["num", "NaN"] } });
        let obj = Obj::new("", &v, &["topP"]).unwrap();
        let err = obj.number("topP", 0.0, 1.0).err().unwrap();
        assert!(err.message.starts_with("topP:"), "{}", err.message);
        assert!(err.message.contains("NaN"), "{}", err.message);
    }

    #[test]
    fn null_means_not_set() {
        let v = json!({ "seed": null });
        let obj = Obj::new("", &v, &["seed"]).unwrap();
        assert_eq!(obj.integer("seed", 0, MAX_SAFE_INTEGER).unwrap(), None);
    }

    #[test]
    fn unsafe_integer_is_rejected() {
        let v = json!({ "seed": 9007199254740992u64 });
        let obj = Obj::new("", &v, &["seed"]).unwrap();
        let err = obj.integer("seed", 0, i64::MAX).err().unwrap();
        assert!(err.message.contains("MAX_SAFE_INTEGER"), "{}", err.message);
    }

    #[test]
    fn range_errors_name_the_range() {
        let v = json!({ "concurrency": 0 });
        let obj = Obj::new("", &v, &["concurrency"]).unwrap();
        let err = obj.integer("concurrency", 1, 1000).err().unwrap();
        assert_eq!(err.class, crate::error::JsClass::RangeError);
        assert!(err.message.contains("from 1 to 1000"), "{}", err.message);
    }
}
