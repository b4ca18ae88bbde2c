//! Batch request lines: their `custom_id`s, their encoding in each API's input
//! format, and their grouping into batches within each provider's limits.

use std::rc::Rc;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::provider::{anthropic, openai, CallRequest, Provider};

use super::options::{Api, Limits};

/// The endpoint every OpenAI batch line goes to.
pub const OPENAI_ENDPOINT: &str = "/v1/chat/completions";

/// Longest `custom_id` Anthropic accepts (`[a-zA-Z0-9_-]{1,64}`); OpenAI accepts the same.
pub const MAX_CUSTOM_ID_LEN: usize = 64;

/// Returns the `custom_id` of a subtask: `subtask-<id>`, the key of the durable-engine plan.
/// An id too long for that becomes `subtask<index>-<start of the id>`, which stays
/// unique because no `subtask-` id starts with a digit after `subtask`.
pub fn subtask_custom_id(index: usize, id: &str) -> String {
    let plain = format!("subtask-{id}");
    if plain.len() <= MAX_CUSTOM_ID_LEN {
        return plain;
    }
    let prefix = format!("subtask{index}-");
    let room = MAX_CUSTOM_ID_LEN - prefix.len();
    // Subtask ids are ASCII (`[A-Za-z0-9_-]+`), so byte slicing is safe.
    format!("{prefix}{}", &id[..room.min(id.len())])
}

/// Returns the `custom_id` of a vote sample: `sample-<index>`.
pub fn sample_custom_id(index: usize) -> String {
    format!("sample-{index}")
}

/// One request of a batch.
#[derive(Clone)]
pub struct BatchRequest {
    /// Its `custom_id`.
    pub custom_id: String,
    /// The provider it goes to.
    pub provider: Rc<Provider>,
    /// The request body, as the provider's chat endpoint takes it.
    pub body: Value,
    /// The input token estimate, for `budget.tokens`.
    pub input_estimate: u64,
}

impl BatchRequest {
    /// Builds a request with the provider's own body builder. Streaming options are
    /// removed, because a batch line cannot stream and OpenAI rejects a file whose
    /// lines set `stream`.
    pub fn new(custom_id: String, provider: Rc<Provider>, request: &CallRequest) -> Result<BatchRequest> {
        let api = Api::of(provider.kind).ok_or_else(|| {
            Error::type_error("batch", "custom providers have no batch API; use an openai or anthropic provider, or run without batch")
        })?;
        let mut body = match api {
            Api::OpenAi => openai::request_body(&provider, request),
            Api::Anthropic => anthropic::request_body(&provider, request),
        };
        if let Value::Object(map) = &mut body {
            map.remove("stream");
            map.remove("stream_options");
        }
        Ok(BatchRequest { custom_id, input_estimate: request.estimate_input_tokens(), provider, body })
    }

    /// Encodes the request in the API's input format, as one line of JSON.
    pub fn encode(&self, api: Api) -> String {
        let line = match api {
            Api::OpenAi => json!({ "custom_id": self.custom_id, "method": "POST", "url": OPENAI_ENDPOINT, "body": self.body }),
            Api::Anthropic => json!({ "custom_id": self.custom_id, "params": self.body }),
        };
        line.to_string()
    }
}

/// Requests bound for one batch.
pub struct Chunk {
    /// The API.
    pub api: Api,
    /// The provider every request goes to.
    pub provider: Rc<Provider>,
    /// The requests, in submission order.
    pub requests: Vec<BatchRequest>,
    /// Each request encoded, in the same order.
    pub lines: Vec<String>,
}

impl Chunk {
    /// Builds the file uploaded to OpenAI: one line per request.
    pub fn jsonl(&self) -> String {
        let mut out = String::with_capacity(self.lines.iter().map(|l| l.len() + 1).sum());
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// Builds the body of Anthropic's create request: `{"requests":[...]}`.
    pub fn anthropic_body(&self) -> String {
        let mut out = String::with_capacity(ANTHROPIC_WRAPPER_BYTES + self.lines.iter().map(|l| l.len() + 1).sum::<usize>());
        out.push_str("{\"requests\":[");
        out.push_str(&self.lines.join(","));
        out.push_str("]}");
        out
    }

    /// Lists the `custom_id`s in order.
    pub fn custom_ids(&self) -> Vec<String> {
        self.requests.iter().map(|r| r.custom_id.clone()).collect()
    }
}

/// Bytes of `{"requests":[` and `]}` around Anthropic's inline requests.
const ANTHROPIC_WRAPPER_BYTES: usize = 15;

/// Counts the bytes one more line adds to a batch of `api` that already has `count` lines.
fn added_bytes(api: Api, line: &str, count: usize) -> usize {
    match api {
        Api::OpenAi => line.len() + 1,
        Api::Anthropic => line.len() + usize::from(count > 0),
    }
}

fn base_bytes(api: Api) -> usize {
    match api {
        Api::OpenAi => 0,
        Api::Anthropic => ANTHROPIC_WRAPPER_BYTES,
    }
}

/// Groups requests by provider (one model per batch, as OpenAI requires) and cuts
/// each group into batches within `limits`. Without `split`, a group above the
/// limits is an error that names the limit. A single request above the byte limit
/// is an error either way.
pub fn chunk(requests: Vec<BatchRequest>, limits: &dyn Fn(Api) -> Limits, split: bool) -> Result<Vec<Chunk>> {
    let mut groups: Vec<(Rc<Provider>, Vec<BatchRequest>)> = Vec::new();
    for r in requests {
        match groups.iter_mut().find(|(p, _)| Rc::ptr_eq(p, &r.provider) || p.id == r.provider.id) {
            Some((_, list)) => list.push(r),
            None => groups.push((r.provider.clone(), vec![r])),
        }
    }
    let mut chunks = Vec::new();
    for (provider, list) in groups {
        let api = Api::of(provider.kind).expect("checked when the request was built");
        let limit = limits(api);
        let total = list.len();
        let mut current = Chunk { api, provider: provider.clone(), requests: Vec::new(), lines: Vec::new() };
        let mut bytes = base_bytes(api);
        for r in list {
            let line = r.encode(api);
            let alone = base_bytes(api) + added_bytes(api, &line, 0);
            if alone > limit.max_bytes {
                return Err(Error::range_error(
                    "batch",
                    format!(
                        "request {:?} alone is {alone} bytes, above the limit of {} bytes per {} batch; shorten its prompt",
                        r.custom_id,
                        limit.max_bytes,
                        api.label()
                    ),
                ));
            }
            let add = added_bytes(api, &line, current.lines.len());
            let full = current.requests.len() >= limit.max_requests || bytes + add > limit.max_bytes;
            if full {
                if !split {
                    let what = if current.requests.len() >= limit.max_requests {
                        format!("{total} requests, above the limit of {} requests per {} batch", limit.max_requests, api.label())
                    } else {
                        format!("more than {} bytes of requests, the limit per {} batch", limit.max_bytes, api.label())
                    };
                    return Err(Error::range_error(
                        "batch.split",
                        format!(
                            "is false, but provider {:?} has {what}; pass batch: {{ split: true }} to submit several batches, or send fewer requests",
                            provider.name
                        ),
                    )
                    .with_detail("limit", json!(if current.requests.len() >= limit.max_requests { "requests" } else { "bytes" })));
                }
                chunks.push(std::mem::replace(&mut current, Chunk { api, provider: provider.clone(), requests: Vec::new(), lines: Vec::new() }));
                bytes = base_bytes(api);
            }
            bytes += added_bytes(api, &line, current.lines.len());
            current.lines.push(line);
            current.requests.push(r);
        }
        if !current.requests.is_empty() {
            chunks.push(current);
        }
    }
    Ok(chunks)
}

/// Builds a `multipart/form-data` body with the field `purpose=batch` and the JSONL
/// as the file `batch.jsonl`. Returns the content type (with its boundary) and the body.
pub fn multipart(jsonl: &str, random: &dyn Fn() -> f64) -> (String, String) {
    // The boundary must not occur in the content; a random one almost never does,
    // and the loop makes sure.
    let boundary = loop {
        let candidate = format!("----ptx-batch-{:012x}{:012x}", (random() * 2f64.powi(48)) as u64, (random() * 2f64.powi(48)) as u64);
        if !jsonl.contains(&candidate) {
            break candidate;
        }
    };
    let mut body = String::with_capacity(jsonl.len() + 400);
    body.push_str(&format!("--{boundary}\r\n"));
    body.push_str("Content-Disposition: form-data; name=\"purpose\"\r\n\r\n");
    body.push_str("batch\r\n");
    body.push_str(&format!("--{boundary}\r\n"));
    body.push_str("Content-Disposition: form-data; name=\"file\"; filename=\"batch.jsonl\"\r\n");
    body.push_str("Content-Type: application/jsonl\r\n\r\n");
    body.push_str(jsonl);
    body.push_str(&format!("\r\n--{boundary}--\r\n"));
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_ids_fit_anthropic_pattern() {
        assert_eq!(subtask_custom_id(0, "schema"), "subtask-schema");
        assert_eq!(sample_custom_id(12), "sample-12");
        let long = "x".repeat(100);
        let id = subtask_custom_id(7, &long);
        assert_eq!(id.len(), MAX_CUSTOM_ID_LEN);
        assert!(id.starts_with("subtask7-"));
        let fits = |s: &str| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        assert!(fits(&id));
        assert!(fits(&subtask_custom_id(3, &"a-b_C9".repeat(10))));
        assert_ne!(subtask_custom_id(1, &long), subtask_custom_id(2, &long));
    }

    #[test]
    fn multipart_has_purpose_and_file() {
        let (content_type, body) = multipart("{\"a\":1}\n", &|| 0.25);
        let boundary = content_type.strip_prefix("multipart/form-data; boundary=").unwrap();
        assert!(body.starts_with(&format!("--{boundary}\r\n")));
        assert!(body.contains("name=\"purpose\"\r\n\r\nbatch\r\n"));
        assert!(body.contains("filename=\"batch.jsonl\""));
        assert!(body.ends_with(&format!("\r\n--{boundary}--\r\n")));
    }
}
