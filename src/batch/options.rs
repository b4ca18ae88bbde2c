//! The `batch` option of `section` and `vote`, and the limits of each provider's
//! batch API.

use serde_json::{Map, Value};

use crate::decode::{self, Obj};
use crate::error::{Error, Result};
use crate::provider::Kind;

use super::handle::Handle;

/// The batch API that a provider's requests go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// OpenAI's Batch API: a JSONL file uploaded to `/files`, then `/batches`.
    OpenAi,
    /// Anthropic's Message Batches: `/messages/batches` with the requests inline.
    Anthropic,
}

/// The maximum requests and bytes of one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Requests per batch.
    pub max_requests: usize,
    /// Bytes of the uploaded file (OpenAI) or of the create request's body (Anthropic).
    pub max_bytes: usize,
}

impl Api {
    /// Returns the API of a provider kind, or `None` for custom providers.
    pub fn of(kind: Kind) -> Option<Api> {
        match kind {
            Kind::OpenAi => Some(Api::OpenAi),
            Kind::Anthropic => Some(Api::Anthropic),
            Kind::Custom => None,
        }
    }

    /// Returns the name used in handles and events: `openai` or `anthropic`.
    pub fn name(self) -> &'static str {
        match self {
            Api::OpenAi => "openai",
            Api::Anthropic => "anthropic",
        }
    }

    /// Returns the provider's name in messages.
    pub fn label(self) -> &'static str {
        match self {
            Api::OpenAi => "OpenAI",
            Api::Anthropic => "Anthropic",
        }
    }

    /// Reads an API name from a handle.
    pub fn parse(name: &str) -> Option<Api> {
        match name {
            "openai" => Some(Api::OpenAi),
            "anthropic" => Some(Api::Anthropic),
            _ => None,
        }
    }

    /// Returns the documented limits: OpenAI allows 50,000 requests and a 200 MB file
    /// per batch, Anthropic 100,000 requests and 256 MB. The byte limits are counted
    /// in decimal megabytes, the smaller reading of "MB".
    pub fn limits(self) -> Limits {
        match self {
            Api::OpenAi => Limits { max_requests: 50_000, max_bytes: 200_000_000 },
            Api::Anthropic => Limits { max_requests: 100_000, max_bytes: 256_000_000 },
        }
    }
}

/// Every option of `batch: { ... }`.
const OPTIONS: &[&str] = &[
    "pollIntervalMs",
    "maxPollIntervalMs",
    "split",
    "metadata",
    "maxRequestsPerBatch",
    "maxBytesPerBatch",
    "cancelWaitMs",
    "resume",
];

/// Default wait before the first status check, in milliseconds.
pub const DEFAULT_POLL_INTERVAL_MS: f64 = 5_000.0;
/// Default cap of the wait between status checks, in milliseconds.
pub const DEFAULT_MAX_POLL_INTERVAL_MS: f64 = 60_000.0;
/// Default time to wait, after an abort, for cancelled batches to end so that their
/// finished requests can be collected.
pub const DEFAULT_CANCEL_WAIT_MS: f64 = 60_000.0;
/// Each wait between status checks is this many times the last one, up to the cap.
pub const POLL_GROWTH: f64 = 1.5;

/// The decoded `batch` option.
#[derive(Clone, Debug)]
pub struct BatchOptions {
    /// Wait before the first status check.
    pub poll_interval_ms: f64,
    /// Cap of the wait between status checks.
    pub max_poll_interval_ms: f64,
    /// Whether a plan above a provider's limits is split into several batches (else
    /// it is rejected).
    pub split: bool,
    /// Metadata attached to each OpenAI batch.
    pub metadata: Map<String, Value>,
    /// A lower request limit per batch than the provider's.
    pub max_requests_per_batch: Option<usize>,
    /// A lower byte limit per batch than the provider's.
    pub max_bytes_per_batch: Option<usize>,
    /// After an abort, how long to wait for cancelled batches to end.
    pub cancel_wait_ms: f64,
    /// Batches submitted by an earlier run, to poll instead of submitting again.
    pub resume: Option<Handle>,
}

impl BatchOptions {
    /// Reads `batch: true` or `batch: { ... }`. `false` is handled by the caller.
    pub fn decode(value: &Value) -> Result<BatchOptions> {
        let mut out = BatchOptions {
            poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
            max_poll_interval_ms: DEFAULT_MAX_POLL_INTERVAL_MS,
            split: true,
            metadata: Map::new(),
            max_requests_per_batch: None,
            max_bytes_per_batch: None,
            cancel_wait_ms: DEFAULT_CANCEL_WAIT_MS,
            resume: None,
        };
        match value {
            Value::Bool(true) => return Ok(out),
            Value::Object(_) if decode::marker(value).is_none() => {}
            other => {
                return Err(Error::type_error(
                    "batch",
                    format!("expected true, false or {{ pollIntervalMs, maxPollIntervalMs, split, metadata }}, got {}", decode::describe(other)),
                ))
            }
        }

        let o = Obj::new("batch", value, OPTIONS)?;
        const MAX_TIMER_MS: f64 = 2_147_483_647.0;
        if let Some(ms) = o.number("pollIntervalMs", 1.0, MAX_TIMER_MS)? {
            out.poll_interval_ms = ms;
            out.max_poll_interval_ms = out.max_poll_interval_ms.max(ms);
        }
        if let Some(ms) = o.number("maxPollIntervalMs", 1.0, MAX_TIMER_MS)? {
            if ms < out.poll_interval_ms {
                return Err(Error::range_error(
                    &o.at("maxPollIntervalMs"),
                    format!("{ms} is below pollIntervalMs ({}); the wait between status checks grows from pollIntervalMs up to maxPollIntervalMs", out.poll_interval_ms),
                ));
            }
            out.max_poll_interval_ms = ms;
        }

        out.split = o.bool("split")?.unwrap_or(true);
        if let Some(ms) = o.number("cancelWaitMs", 0.0, MAX_TIMER_MS)? {
            out.cancel_wait_ms = ms;
        }
        out.max_requests_per_batch = o.integer("maxRequestsPerBatch", 1, 100_000)?.map(|n| n as usize);
        out.max_bytes_per_batch = o.integer("maxBytesPerBatch", 1024, 256_000_000)?.map(|n| n as usize);

        if let Some(meta) = o.get("metadata") {
            out.metadata = decode_metadata(&o.at("metadata"), meta)?;
        }
        if let Some(handle) = o.get("resume") {
            out.resume = Some(Handle::from_json(&o.at("resume"), handle)?);
        }
        Ok(out)
    }

    /// Returns the limits of one batch of `api`: the provider's, lowered by
    /// `maxRequestsPerBatch` and `maxBytesPerBatch`.
    pub fn limits(&self, api: Api) -> Limits {
        let provider = api.limits();
        Limits {
            max_requests: self.max_requests_per_batch.map_or(provider.max_requests, |n| n.min(provider.max_requests)),
            max_bytes: self.max_bytes_per_batch.map_or(provider.max_bytes, |n| n.min(provider.max_bytes)),
        }
    }
}

/// Reads OpenAI batch metadata: at most 16 pairs, keys up to 64 characters, string
/// values up to 512.
fn decode_metadata(path: &str, value: &Value) -> Result<Map<String, Value>> {
    let map = match value {
        Value::Object(map) if decode::marker(value).is_none() => map,
        other => return Err(Error::type_error(path, format!("expected an object of string values, got {}", decode::describe(other)))),
    };
    if map.len() > 16 {
        return Err(Error::range_error(path, format!("has {} keys; OpenAI allows at most 16 metadata pairs per batch", map.len())));
    }
    let mut out = Map::new();
    for (key, v) in map {
        let at = decode::join(path, key);
        if key.chars().count() > 64 {
            return Err(Error::range_error(&at, "the key is longer than 64 characters, the most OpenAI allows"));
        }
        let text = decode::string(&at, v)?;
        if text.chars().count() > 512 {
            return Err(Error::range_error(&at, "the value is longer than 512 characters, the most OpenAI allows"));
        }
        out.insert(key.clone(), Value::String(text.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn true_gives_the_defaults() {
        let o = BatchOptions::decode(&json!(true)).unwrap();
        assert_eq!(o.poll_interval_ms, DEFAULT_POLL_INTERVAL_MS);
        assert!(o.split);
        assert_eq!(o.limits(Api::OpenAi), Api::OpenAi.limits());
    }

    #[test]
    fn lowered_limits_never_exceed_the_provider() {
        let o = BatchOptions::decode(&json!({ "maxRequestsPerBatch": 100_000, "maxBytesPerBatch": 4096 })).unwrap();
        assert_eq!(o.limits(Api::OpenAi).max_requests, 50_000);
        assert_eq!(o.limits(Api::Anthropic).max_requests, 100_000);
        assert_eq!(o.limits(Api::Anthropic).max_bytes, 4096);
    }

    #[test]
    fn bad_values_are_named() {
        let err = BatchOptions::decode(&json!({ "pollIntervalMs": 100, "maxPollIntervalMs": 50 })).unwrap_err();
        assert!(err.message.starts_with("batch.maxPollIntervalMs"), "{}", err.message);
        let err = BatchOptions::decode(&json!({ "pollInterval": 100 })).unwrap_err();
        assert!(err.message.contains("did you mean `pollIntervalMs`?"), "{}", err.message);
        let err = BatchOptions::decode(&json!({ "metadata": { "k": 1 } })).unwrap_err();
        assert!(err.message.starts_with("batch.metadata.k"), "{}", err.message);
        let err = BatchOptions::decode(&json!("yes")).unwrap_err();
        assert!(err.message.starts_with("batch:"), "{}", err.message);
    }

    #[test]
    fn metadata_is_limited_to_sixteen_pairs() {
        let many: Map<String, Value> = (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
        let err = BatchOptions::decode(&json!({ "metadata": many })).unwrap_err();
        assert!(err.message.contains("at most 16"), "{}", err.message);
    }
}
