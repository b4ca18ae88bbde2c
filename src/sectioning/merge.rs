//! Merging subtask outputs: joined in declaration order, keyed by id, or deep-merged as
//! JSON with every conflict reported.

use serde_json::{json, Map, Value};

use crate::error::{Code, Error, Result};
use crate::jsontext::json_equal;

/// How scalar conflicts in a JSON merge are resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conflicts {
    /// Keep every distinct value, in declaration order, as an array.
    Collect,
    /// Keep the value of the subtask declared first.
    First,
    /// Keep the value of the subtask declared last.
    Last,
    /// Reject the run with `MERGE_CONFLICT`.
    Error,
}

impl Conflicts {
    /// Parses the option value.
    pub fn parse(s: &str) -> Option<Conflicts> {
        match s {
            "collect" => Some(Conflicts::Collect),
            "first" => Some(Conflicts::First),
            "last" => Some(Conflicts::Last),
            "error" => Some(Conflicts::Error),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Conflicts::Collect => "collect",
            Conflicts::First => "first",
            Conflicts::Last => "last",
            Conflicts::Error => "error",
        }
    }
}

/// One conflicting path.
#[derive(Clone, Debug)]
pub struct Conflict {
    /// JSONPath of the conflict (`$.title`).
    pub path: String,
    /// The competing values, in declaration order, each with the subtasks that
    /// produced it (several when they agreed, or when an object or array was merged
    /// from several outputs before the conflict).
    pub values: Vec<(Vec<String>, Value)>,
    /// How it was resolved.
    pub resolution: Conflicts,
}

impl Conflict {
    /// The conflict as report data: `{ path, values: [{ subtask, subtasks, value }],
    /// resolution }`, where `subtask` is the first of `subtasks`.
    pub fn to_json(&self) -> Value {
        json!({
            "path": self.path,
            "values": self.values.iter().map(|(ids, v)| json!({ "subtask": ids[0], "subtasks": ids, "value": v })).collect::<Vec<_>>(),
            "resolution": self.resolution.as_str(),
        })
    }
}

/// A path segment in JSONPath notation.
fn child_path(path: &str, key: &str) -> String {
    if crate::task::is_id(key) && !key.starts_with(|c: char| c.is_ascii_digit()) {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", Value::String(key.into()))
    }
}

/// A merged value and the subtasks it came from, so conflicts name their subtasks.
enum Slot {
    /// A scalar from one subtask, or identical scalars from several.
    Leaf { value: Value, from: Vec<String> },
    /// A conflict being collected, indexed into the conflict list.
    Conflicted(usize),
    /// An object whose fields merge recursively.
    Object { fields: Vec<(String, Slot)>, from: Vec<String> },
    /// An array, concatenated in declaration order.
    Array { items: Vec<Value>, from: Vec<String> },
}

/// Deep-merges `(subtask id, value)` pairs in declaration order: objects merge key by
/// key, arrays are concatenated, equal scalars agree, and any other pair of values at
/// one path is a conflict resolved by `policy`. The result depends only on the
/// order of `parts`, never on when each output arrived.
pub fn merge_json(parts: &[(String, Value)], policy: Conflicts) -> Result<(Value, Vec<Conflict>)> {
    let mut conflicts: Vec<Conflict> = Vec::new();
    let mut root: Option<Slot> = None;
    for (id, value) in parts {
        root = Some(match root {
            None => slot_of(id, value),
            Some(slot) => merge_into(slot, id, value, "$", &mut conflicts, policy),
        });
    }
    for c in &mut conflicts {
        c.resolution = policy;
    }
    if policy == Conflicts::Error {
        if let Some(first) = conflicts.first() {
            let mut ids: Vec<&str> = Vec::new();
            for (from, _) in &first.values {
                for id in from {
                    if !ids.contains(&id.as_str()) {
                        ids.push(id);
                    }
                }
            }
            let paths: Vec<&str> = conflicts.iter().map(|c| c.path.as_str()).collect();
            return Err(Error::new(
                Code::MergeConflict,
                format!(
                    "the JSON outputs disagree at {} (the first at {}, between subtasks {}); set conflicts to \"first\", \"last\" or \"collect\" to resolve it",
                    paths.join(", "),
                    first.path,
                    ids.iter().map(|id| format!("{id:?}")).collect::<Vec<_>>().join(" and ")
                ),
            )
            .with_detail("conflicts", Value::Array(conflicts.iter().map(Conflict::to_json).collect())));
        }
    }
    let value = root.map_or(Value::Null, |slot| resolve(slot, &conflicts, policy));
    Ok((value, conflicts))
}

fn slot_of(id: &str, value: &Value) -> Slot {
    let from = vec![id.to_string()];
    match value {
        Value::Object(map) => Slot::Object { fields: map.iter().map(|(k, v)| (k.clone(), slot_of(id, v))).collect(), from },
        Value::Array(items) => Slot::Array { items: items.clone(), from },
        other => Slot::Leaf { value: other.clone(), from },
    }
}

fn add_source(from: &mut Vec<String>, id: &str) {
    if !from.iter().any(|f| f == id) {
        from.push(id.to_string());
    }
}

fn merge_into(slot: Slot, id: &str, value: &Value, path: &str, conflicts: &mut Vec<Conflict>, policy: Conflicts) -> Slot {
    match (slot, value) {
        (Slot::Object { mut fields, mut from }, Value::Object(map)) => {
            for (k, v) in map {
                match fields.iter().position(|(name, _)| name == k) {
                    Some(i) => {
                        let (name, old) = fields.remove(i);
                        let merged = merge_into(old, id, v, &child_path(path, k), conflicts, policy);
                        fields.insert(i, (name, merged));
                    }
                    None => fields.push((k.clone(), slot_of(id, v))),
                }
            }
            add_source(&mut from, id);
            Slot::Object { fields, from }
        }
        (Slot::Array { mut items, mut from }, Value::Array(more)) => {
            items.extend(more.iter().cloned());
            add_source(&mut from, id);
            Slot::Array { items, from }
        }
        (Slot::Leaf { value: old, mut from }, new) if json_equal(&old, new) => {
            add_source(&mut from, id);
            Slot::Leaf { value: old, from }
        }
        (Slot::Conflicted(i), new) => {
            conflicts[i].values.push((vec![id.to_string()], new.clone()));
            Slot::Conflicted(i)
        }
        (old, new) => {
            let earlier = match old {
                Slot::Leaf { value, from } => (from, value),
                // The merged object as the final output would show it, so a collected
                // inner conflict keeps every value.
                Slot::Object { fields, from } => (from, resolve(Slot::Object { fields, from: Vec::new() }, conflicts, policy)),
                Slot::Array { items, from } => (from, Value::Array(items)),
                Slot::Conflicted(_) => unreachable!("handled above"),
            };
            conflicts.push(Conflict {
                path: path.to_string(),
                values: vec![earlier, (vec![id.to_string()], new.clone())],
                resolution: Conflicts::Collect,
            });
            Slot::Conflicted(conflicts.len() - 1)
        }
    }
}

fn resolve(slot: Slot, conflicts: &[Conflict], policy: Conflicts) -> Value {
    match slot {
        Slot::Leaf { value, .. } => value,
        Slot::Array { items, .. } => Value::Array(items),
        Slot::Object { fields, .. } => {
            let mut map = Map::new();
            for (k, s) in fields {
                map.insert(k, resolve(s, conflicts, policy));
            }
            Value::Object(map)
        }
        Slot::Conflicted(i) => {
            let values = &conflicts[i].values;
            match policy {
                Conflicts::First | Conflicts::Error => values[0].1.clone(),
                Conflicts::Last => values[values.len() - 1].1.clone(),
                Conflicts::Collect => {
                    let mut distinct: Vec<Value> = Vec::new();
                    for (_, v) in values {
                        if !distinct.iter().any(|d| json_equal(d, v)) {
                            distinct.push(v.clone());
                        }
                    }
                    Value::Array(distinct)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> Vec<(String, Value)> {
        vec![
            ("w0".into(), json!({ "title": "Q3 report", "risks": ["fx"] })),
            ("w1".into(), json!({ "code": "use `print` function", "risks": ["supply"] })),
            ("w2".into(), json!({ "title": "Q3 summary", "owner": "ops" })),
        ]
    }

    #[test]
    fn arrays_concatenate_in_declaration_order() {
        let (v, c) = merge_json(&parts(), Conflicts::First).unwrap();
        assert_eq!(v["risks"], json!(["fx", "supply"]));
        assert_eq!(v["title"], "Q3 report");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].path, "$.title");
    }

    #[test]
    fn collect_keeps_both_values() {
        let (v, _) = merge_json(&parts(), Conflicts::Collect).unwrap();
        assert_eq!(v["title"], json!(["Q3 report", "Q3 summary"]));
    }

    #[test]
    fn last_takes_last_declared() {
        let (v, _) = merge_json(&parts(), Conflicts::Last).unwrap();
        assert_eq!(v["title"], "Q3 summary");
    }

    #[test]
    fn error_names_key_and_subtasks() {
        let err = merge_json(&parts(), Conflicts::Error).unwrap_err();
        assert_eq!(err.code, Code::MergeConflict);
        assert!(err.message.contains("$.title"), "{}", err.message);
        assert!(err.message.contains("\"w0\" and \"w2\""), "{}", err.message);
    }

    #[test]
    fn equal_values_do_not_conflict() {
        let p = vec![("a".into(), json!({ "x": 1, "n": { "y": 2 } })), ("b".into(), json!({ "x": 1, "n": { "z": 3 } }))];
        let (v, c) = merge_json(&p, Conflicts::Error).unwrap();
        assert!(c.is_empty());
        assert_eq!(v, json!({ "x": 1, "n": { "y": 2, "z": 3 } }));
    }

    #[test]
    fn three_way_conflict_collects_each_source() {
        let p = vec![("a".into(), json!({ "x": 1 })), ("b".into(), json!({ "x": 2 })), ("c".into(), json!({ "x": 3 }))];
        let (v, c) = merge_json(&p, Conflicts::Collect).unwrap();
        assert_eq!(v["x"], json!([1, 2, 3]));
        assert_eq!(c[0].values.len(), 3);
    }
}
