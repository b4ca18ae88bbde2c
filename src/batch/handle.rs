//! The handle of a batch run: which batches were submitted, to which API, and which
//! requests (by `custom_id`) each one holds. It is plain data, so a caller can store
//! it and pass it to `resumeBatch` after a restart.

use serde_json::{json, Value};

use crate::decode;
use crate::error::{Error, Result};

use super::options::Api;

/// The handle format this version writes and reads.
pub const VERSION: u64 = 1;

/// One submitted batch.
#[derive(Clone, Debug, PartialEq)]
pub struct HandleBatch {
    /// The API it went to.
    pub api: Api,
    /// The provider's batch id.
    pub id: String,
    /// The plan phase it belongs to (0 for votes).
    pub phase: usize,
    /// The `custom_id` of each request, in submission order.
    pub custom_ids: Vec<String>,
    /// The uploaded input file (OpenAI only).
    pub input_file_id: Option<String>,
}

/// A handle read back from a caller.
#[derive(Clone, Debug, PartialEq)]
pub struct Handle {
    /// `section` or `vote`.
    pub kind: String,
    /// The batches, in submission order.
    pub batches: Vec<HandleBatch>,
}

impl Handle {
    /// Reads a handle, ignoring the fields that only describe progress (`status`,
    /// `requestCounts`, `unmatched`). `path` names it in errors.
    pub fn from_json(path: &str, value: &Value) -> Result<Handle> {
        let hint = "pass the handle from report.batch, err.report.batch or a batch-submitted event";
        let Value::Object(map) = value else {
            return Err(Error::type_error(path, format!("expected a batch handle object, got {}; {hint}", decode::describe(value))));
        };
        if let Some(version) = map.get("version").filter(|v| !v.is_null()) {
            if version.as_u64() != Some(VERSION) {
                return Err(Error::type_error(
                    &decode::join(path, "version"),
                    format!("this library reads batch handles of version {VERSION}, got {}", decode::describe(version)),
                ));
            }
        }
        let kind = match map.get("kind").and_then(Value::as_str) {
            Some(k @ ("section" | "vote")) => k.to_string(),
            _ => {
                return Err(Error::type_error(
                    &decode::join(path, "kind"),
                    format!("expected \"section\" or \"vote\"; {hint}"),
                ))
            }
        };
        let list_path = decode::join(path, "batches");
        let Some(Value::Array(items)) = map.get("batches") else {
            return Err(Error::type_error(&list_path, format!("expected an array of submitted batches; {hint}")));
        };
        let mut batches = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            batches.push(read_batch(&decode::index(&list_path, i), item)?);
        }
        Ok(Handle { kind, batches })
    }
}

fn read_batch(path: &str, value: &Value) -> Result<HandleBatch> {
    let field = |key: &str| value.get(key).filter(|v| !v.is_null());
    let api = match field("provider").and_then(Value::as_str).and_then(Api::parse) {
        Some(api) => api,
        None => return Err(Error::type_error(&decode::join(path, "provider"), "expected \"openai\" or \"anthropic\"")),
    };
    let id = match field("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => return Err(Error::type_error(&decode::join(path, "id"), "is required; it is the provider's batch id")),
    };
    let phase = match field("phase") {
        None => 0,
        Some(v) => decode::integer(&decode::join(path, "phase"), v, 0, 100_000)? as usize,
    };
    let ids_path = decode::join(path, "customIds");
    let Some(Value::Array(list)) = field("customIds") else {
        return Err(Error::type_error(&ids_path, "is required; it lists the custom_id of every request in the batch"));
    };
    let mut custom_ids = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        custom_ids.push(decode::string(&decode::index(&ids_path, i), item)?.to_string());
    }
    let input_file_id = field("inputFileId").and_then(Value::as_str).map(str::to_string);
    Ok(HandleBatch { api, id, phase, custom_ids, input_file_id })
}

/// The progress of a batch that the handle shows besides its identity.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// The provider's status (`in_progress`, `completed`, `ended`, ...), if seen.
    pub status: Option<String>,
    /// The provider's `request_counts` as it sent them.
    pub request_counts: Value,
    /// The provider's base URL, for readers of the handle.
    pub base_url: String,
    /// The model of the provider.
    pub model: Option<String>,
}

/// Writes one batch of a handle.
pub fn batch_json(batch: &HandleBatch, progress: &Progress) -> Value {
    json!({
        "provider": batch.api.name(),
        "id": batch.id,
        "phase": batch.phase,
        "customIds": batch.custom_ids,
        "inputFileId": batch.input_file_id,
        "baseURL": progress.base_url,
        "model": progress.model,
        "status": progress.status,
        "requestCounts": progress.request_counts,
    })
}

/// Writes a whole handle.
pub fn handle_json(kind: &str, batches: Vec<Value>) -> Value {
    json!({ "version": VERSION, "kind": kind, "batches": batches })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_round_trips_and_ignores_progress() {
        let batch = HandleBatch {
            api: Api::Anthropic,
            id: "msgbatch_1".into(),
            phase: 1,
            custom_ids: vec!["subtask-a".into()],
            input_file_id: None,
        };
        let progress = Progress { status: Some("ended".into()), request_counts: json!({ "succeeded": 1 }), ..Default::default() };
        let json = handle_json("section", vec![batch_json(&batch, &progress)]);
        let back = Handle::from_json("resume", &json).unwrap();
        assert_eq!(back.kind, "section");
        assert_eq!(back.batches, vec![batch]);
    }

    #[test]
    fn bad_handles_are_named() {
        let err = Handle::from_json("h", &json!({ "kind": "vote", "batches": [{ "provider": "x", "id": "b", "customIds": [] }] })).unwrap_err();
        assert!(err.message.starts_with("h.batches[0].provider"), "{}", err.message);
        let err = Handle::from_json("h", &json!({ "kind": "other", "batches": [] })).unwrap_err();
        assert!(err.message.starts_with("h.kind"), "{}", err.message);
        let err = Handle::from_json("h", &json!({ "version": 2, "kind": "vote", "batches": [] })).unwrap_err();
        assert!(err.message.starts_with("h.version"), "{}", err.message);
        let err = Handle::from_json("h", &json!("batch_1")).unwrap_err();
        assert!(err.message.contains("report.batch"), "{}", err.message);
    }
}
