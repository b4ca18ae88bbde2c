//! The HTTP calls of both batch APIs: upload and create, status, cancel and results.
//! Each call uses the provider's base URL, key, headers and `fetch`, the run's
//! `timeoutMs` per attempt, and its retry policy for failures that are safe to retry.

use std::rc::Rc;

use futures_util::future::{select, Either};
use serde_json::{json, Map, Value};

use crate::error::{Error, ProviderFailure, Result};
use crate::provider::{http, network_error, Provider};
use crate::report::round_ms;
use crate::schedule::Run;
use crate::transport::{HttpRequest, HttpResponse};

use super::options::Api;
use super::request::{multipart, Chunk, OPENAI_ENDPOINT};

/// A batch's state as the provider last reported it.
#[derive(Clone, Debug, Default)]
pub struct BatchState {
    /// The provider's batch id.
    pub id: String,
    /// The provider's status word: OpenAI's `validating`, `in_progress`,
    /// `finalizing`, `completed`, `failed`, `expired`, `cancelling`, `cancelled`, or
    /// Anthropic's `in_progress`, `canceling`, `ended`.
    pub status: String,
    /// Whether processing has ended, so results can be read.
    pub ended: bool,
    /// The provider's `request_counts`, as sent.
    pub counts: Value,
    /// OpenAI's output file.
    pub output_file_id: Option<String>,
    /// OpenAI's error file.
    pub error_file_id: Option<String>,
    /// OpenAI's `errors.data` of a batch that failed validation.
    pub errors: Vec<Value>,
}

/// Checks whether an OpenAI batch status is final.
fn openai_ended(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "expired" | "cancelled")
}

/// Reads a batch object of either API.
pub fn parse_state(api: Api, provider: &Provider, body: &Value) -> Result<BatchState> {
    let text = |key: &str| body.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    let Some(id) = text("id") else {
        return Err(crate::provider::bad_response(provider, "the batch object has no id", false, Some(&body.to_string())));
    };
    let counts = body.get("request_counts").cloned().unwrap_or(Value::Null);
    match api {
        Api::OpenAi => {
            let status = text("status").unwrap_or_default();
            let errors = body
                .get("errors")
                .and_then(|e| e.get("data"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            Ok(BatchState {
                id,
                ended: openai_ended(&status),
                status,
                counts,
                output_file_id: text("output_file_id"),
                error_file_id: text("error_file_id"),
                errors,
            })
        }
        Api::Anthropic => {
            let status = text("processing_status").unwrap_or_default();
            Ok(BatchState { id, ended: status == "ended", status, counts, ..Default::default() })
        }
    }
}

/// Percent-encodes an id for use as one URL path segment.
fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        // A dot is encoded too, so an id of `..` cannot climb the path.
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The headers of a control call: the key, the API version and the caller's headers.
fn headers(api: Api, provider: &Provider, content_type: Option<&str>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(t) = content_type {
        out.push(("content-type".to_string(), t.to_string()));
    }
    match api {
        Api::OpenAi => {
            if let Some(key) = &provider.api_key {
                out.push(("authorization".into(), format!("Bearer {key}")));
            }
        }
        Api::Anthropic => {
            out.push(("anthropic-version".into(), provider.version.clone()));
            if let Some(key) = &provider.api_key {
                out.push(("x-api-key".into(), key.clone()));
            }
            if provider.browser {
                out.push(("anthropic-dangerous-direct-browser-access".into(), "true".into()));
            }
        }
    }
    out.extend(provider.headers.iter().cloned());
    out
}

/// Whether a failed call may be sent again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Reads and cancels, which change nothing when repeated.
    Idempotent,
    /// Creating a batch: retried only after a response with a retryable status,
    /// because after a network failure or a timeout the batch may exist.
    OnlyAfterStatus,
}

/// Makes one attempt and returns its status and its body, read within the size limit.
async fn attempt(run: &Rc<Run>, provider: &Provider, request: HttpRequest, what: &str) -> Result<(u16, Vec<u8>)> {
    let call = async {
        let mut response = run.host.fetch(request, provider.fetch.as_ref()).await.map_err(|e| network_error(provider, &e))?;
        let status = response.status();
        let epoch = run.host.epoch_ms();
        if !(200..300).contains(&status) {
            return Err(crate::provider::openai::read_error(provider, response.as_mut(), status, epoch).await);
        }
        let body = http::read_body(response.as_mut(), provider.max_response_bytes)
            .await
            .map_err(|e| crate::provider::openai::body_error(provider, e))?;
        Ok((status, body))
    };
    let call = std::pin::pin!(call);
    match select(call, run.host.sleep(run.retry.timeout_ms)).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => Err(timeout_error(provider, what, run.retry.timeout_ms)),
    }
}

fn timeout_error(provider: &Provider, what: &str, ms: f64) -> Error {
    Error::provider(
        format!("{} {what} timed out after {ms} ms (timeoutMs)", provider.kind.name()),
        ProviderFailure {
            retryable: true,
            provider_type: Some("timeout".into()),
            provider: Some(provider.kind.name()),
            ..Default::default()
        },
    )
}

/// Sends a control call with the run's retries and returns its JSON body.
async fn send(run: &Rc<Run>, provider: &Provider, request: HttpRequest, what: &str, retry: Retry) -> Result<Value> {
    let mut retries = 0u32;
    loop {
        let err = match attempt(run, provider, request.clone(), what).await {
            Ok((_, body)) => {
                let text = String::from_utf8_lossy(&body);
                return serde_json::from_str(&text).map_err(|_| crate::provider::bad_response(provider, &format!("the {what} response is not JSON"), true, Some(&text)));
            }
            Err(err) => err,
        };
        let answered = err.provider.as_ref().and_then(|p| p.status).is_some();
        let may_retry = err.is_retryable() && (retry == Retry::Idempotent || answered);
        if !may_retry || retries >= run.retry.max_retries {
            return Err(err.with_detail("attempts", json!(retries + 1)));
        }
        let retry_after = err.provider.as_ref().and_then(|p| p.retry_after_ms);
        let delay = run.retry.delay_ms(retries, retry_after, run.host.random(), &err)?;
        run.events.emit("retry", json!({ "call": what, "attempt": retries + 1, "delayMs": round_ms(delay), "reason": err.message }));
        run.host.sleep(delay).await;
        retries += 1;
    }
}

/// A submitted batch.
pub struct Submitted {
    /// The batch as the create call returned it.
    pub state: BatchState,
    /// The uploaded file (OpenAI only).
    pub input_file_id: Option<String>,
}

/// Uploads and creates one batch. OpenAI gets the JSONL as a `purpose=batch` file,
/// then a batch for `/v1/chat/completions` with a 24 h window; Anthropic gets the
/// requests inline.
pub async fn submit(run: &Rc<Run>, chunk: &Chunk, metadata: &Map<String, Value>) -> Result<Submitted> {
    let provider = &chunk.provider;
    match chunk.api {
        Api::OpenAi => {
            let random = || run.host.random();
            let (content_type, body) = multipart(&chunk.jsonl(), &random);
            let upload = HttpRequest { url: provider.endpoint("/files"), method: "POST", headers: headers(Api::OpenAi, provider, Some(&content_type)), body };
            let file = send(run, provider, upload, "batch file upload", Retry::Idempotent).await?;
            let file_id = file.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| {
                crate::provider::bad_response(provider, "the file upload response has no id", false, Some(&file.to_string()))
            })?;
            let mut create = json!({ "input_file_id": file_id, "endpoint": OPENAI_ENDPOINT, "completion_window": "24h" });
            if !metadata.is_empty() {
                create["metadata"] = Value::Object(metadata.clone());
            }
            let request = HttpRequest {
                url: provider.endpoint("/batches"),
                method: "POST",
                headers: headers(Api::OpenAi, provider, Some("application/json")),
                body: create.to_string(),
            };
            let batch = send(run, provider, request, "batch create", Retry::OnlyAfterStatus).await?;
            Ok(Submitted { state: parse_state(Api::OpenAi, provider, &batch)?, input_file_id: Some(file_id.to_string()) })
        }
        Api::Anthropic => {
            let request = HttpRequest {
                url: provider.endpoint("/messages/batches"),
                method: "POST",
                headers: headers(Api::Anthropic, provider, Some("application/json")),
                body: chunk.anthropic_body(),
            };
            let batch = send(run, provider, request, "batch create", Retry::OnlyAfterStatus).await?;
            Ok(Submitted { state: parse_state(Api::Anthropic, provider, &batch)?, input_file_id: None })
        }
    }
}

/// The URL of batch `id`, with `suffix` (`""`, `"/cancel"`, `"/results"`) after it.
fn batch_url(api: Api, provider: &Provider, id: &str, suffix: &str) -> String {
    match api {
        Api::OpenAi => provider.endpoint(&format!("/batches/{}{suffix}", segment(id))),
        Api::Anthropic => provider.endpoint(&format!("/messages/batches/{}{suffix}", segment(id))),
    }
}

/// Gets a batch's state.
pub async fn status(run: &Rc<Run>, api: Api, provider: &Provider, id: &str) -> Result<BatchState> {
    let request = HttpRequest { url: batch_url(api, provider, id, ""), method: "GET", headers: headers(api, provider, None), body: String::new() };
    let body = send(run, provider, request, "batch status check", Retry::Idempotent).await?;
    parse_state(api, provider, &body)
}

/// Asks the provider to cancel a batch and returns its state after the request.
pub async fn cancel(run: &Rc<Run>, api: Api, provider: &Provider, id: &str) -> Result<BatchState> {
    let request = HttpRequest {
        url: batch_url(api, provider, id, "/cancel"),
        method: "POST",
        headers: headers(api, provider, None),
        body: String::new(),
    };
    let body = send(run, provider, request, "batch cancel", Retry::Idempotent).await?;
    parse_state(api, provider, &body)
}

/// Builds the URL of a results file: OpenAI's file content, or Anthropic's results.
/// The Anthropic URL comes from the base URL rather than from `results_url`, so the
/// key only goes to the configured host (ogx sends `results_url` as a bare path).
pub fn results_url(api: Api, provider: &Provider, id: &str) -> String {
    match api {
        Api::OpenAi => provider.endpoint(&format!("/files/{}/content", segment(id))),
        Api::Anthropic => batch_url(api, provider, id, "/results"),
    }
}

/// Reads a JSONL results file line by line, so that a file of tens of thousands of
/// results is never held whole. Each line is passed to `on_line` with its 1-based
/// number; a line longer than the provider's `maxResponseBytes` fails the read.
/// `timeoutMs` applies to the headers and to each wait for the next chunk.
pub async fn read_lines(run: &Rc<Run>, api: Api, provider: &Provider, url: String, on_line: &mut dyn FnMut(usize, &str)) -> Result<()> {
    let request = HttpRequest { url, method: "GET", headers: headers(api, provider, None), body: String::new() };
    let timeout = run.retry.timeout_ms;
    let fetch = std::pin::pin!(run.host.fetch(request, provider.fetch.as_ref()));
    let mut response: Box<dyn HttpResponse> = match select(fetch, run.host.sleep(timeout)).await {
        Either::Left((Ok(r), _)) => r,
        Either::Left((Err(e), _)) => return Err(network_error(provider, &e)),
        Either::Right(_) => return Err(timeout_error(provider, "batch results download", timeout)),
    };

    let status = response.status();
    if !(200..300).contains(&status) {
        return Err(crate::provider::openai::read_error(provider, response.as_mut(), status, run.host.epoch_ms()).await);
    }

    // Complete lines are passed on as they arrive; the bytes after the last newline
    // wait for the next chunk.
    let mut pending: Vec<u8> = Vec::new();
    let mut number = 0usize;
    let mut emit = |bytes: &[u8], number: &mut usize| {
        *number += 1;
        let text = String::from_utf8_lossy(bytes);
        let line = text.trim_end_matches('\r');
        if !line.trim().is_empty() {
            on_line(*number, line);
        }
    };
    loop {
        let next = std::pin::pin!(response.next_chunk());
        let chunk = match select(next, run.host.sleep(timeout)).await {
            Either::Left((Ok(chunk), _)) => chunk,
            Either::Left((Err(e), _)) => return Err(network_error(provider, &e)),
            Either::Right(_) => return Err(timeout_error(provider, "batch results download", timeout)),
        };
        let Some(bytes) = chunk else { break };
        pending.extend_from_slice(&bytes);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|&b| b == b'\n') {
            emit(&pending[start..start + end], &mut number);
            start += end + 1;
        }
        pending.drain(..start);
        if pending.len() > provider.max_response_bytes {
            return Err(crate::provider::openai::body_error(provider, http::BodyError::TooLarge));
        }
    }
    if !pending.is_empty() {
        emit(&pending, &mut number);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_encoded_as_one_path_segment() {
        assert_eq!(segment("batch_abc-12"), "batch_abc-12");
        assert_eq!(segment("../x?y"), "%2E%2E%2Fx%3Fy");
    }
}
