//! Reading result lines into outcomes. Each line is matched to its request by
//! `custom_id`, in any order. Its body goes through the provider's own response
//! parser, and its usage is priced at the batch discount. A line whose `custom_id` is
//! unknown, repeated or missing is recorded as unmatched instead of counted.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{json, Value};

use crate::error::{Error, ProviderFailure};
use crate::outcome::Outcome;
use crate::provider::{anthropic, http, openai, CallResponse, Provider};
use crate::report::{Attempt, CallRecord, Status};

use super::options::Api;

/// Batch requests cost this fraction of the standard price (both providers give 50%
/// off input and output tokens).
pub const BATCH_PRICE_FACTOR: f64 = 0.5;

/// The end state of one request.
pub enum LineResult {
    /// It succeeded.
    Ok(CallResponse),
    /// It failed, with the provider's error.
    Failed(Error),
    /// The provider cancelled it before it ran.
    Cancelled(Error),
}

impl LineResult {
    /// Removes `redactor`'s secrets from every field, as a direct call does.
    fn scrubbed(mut self, redactor: &crate::error::Redactor) -> LineResult {
        match &mut self {
            LineResult::Ok(response) => response.scrub(redactor),
            LineResult::Failed(err) | LineResult::Cancelled(err) => redactor.scrub_error(err),
        }
        self
    }
}

/// Reads one line of OpenAI batch output, secrets removed (see `read_openai_line`).
pub fn openai_line(provider: &Provider, batch_id: &str, line: &Value) -> LineResult {
    read_openai_line(provider, batch_id, line).scrubbed(&provider.redactor)
}

/// Reads one line of Anthropic results, secrets removed (see `read_anthropic_line`).
pub fn anthropic_line(provider: &Provider, batch_id: &str, line: &Value) -> LineResult {
    read_anthropic_line(provider, batch_id, line).scrubbed(&provider.redactor)
}

/// The start and end of a request, in ms from the start of the run.
#[derive(Clone, Copy)]
pub struct Span {
    /// When its batch was submitted (0 for a batch submitted by an earlier run).
    pub started_ms: f64,
    /// When its result was read.
    pub finished_ms: f64,
}

/// Builds the outcome of a request as the plain data that the `finish` functions read.
pub fn outcome_json(provider: &Provider, result: LineResult, span: Span) -> Value {
    let mut record = CallRecord::default();
    let (status, error) = match &result {
        LineResult::Ok(_) => (Status::Ok, None),
        LineResult::Failed(e) => (Status::Failed, Some(e.clone())),
        LineResult::Cancelled(e) => (Status::Cancelled, Some(e.clone())),
    };
    record.attempts.push(Attempt { status: Some(status), error, started_ms: span.started_ms, finished_ms: Some(span.finished_ms) });
    let outcome = match result {
        LineResult::Ok(response) => {
            if let Some(u) = &response.usage {
                let mut priced = u.clone().priced(provider.price(response.model.as_deref()));
                priced.cost_usd = priced.cost_usd.map(|c| c * BATCH_PRICE_FACTOR);
                record.usage = priced;
            }
            record.raw_usage = response.raw_usage.clone();
            Outcome::new(Ok(response), record)
        }
        LineResult::Failed(e) => Outcome::new(Err(e), record),
        LineResult::Cancelled(_) => Outcome { status: Status::Cancelled, response: None, error: None, record },
    };
    outcome.to_json()
}

/// Builds the error of one request that failed at the batch level.
pub fn batch_error(api: Api, message: String, provider_type: &str, retryable: bool) -> Error {
    Error::provider(
        message,
        ProviderFailure {
            retryable,
            provider_type: Some(provider_type.to_string()),
            provider: Some(api.name()),
            ..Default::default()
        },
    )
}

/// Parses a body that came as a JSON string (ogx sends OpenAI bodies that way), and
/// returns any other value as it is.
fn loose_json(value: &Value) -> Cow<'_, Value> {
    match value {
        Value::String(text) => serde_json::from_str(text).map_or(Cow::Borrowed(value), Cow::Owned),
        other => Cow::Borrowed(other),
    }
}

/// Reads one line of an OpenAI output or error file:
/// `{"id","custom_id","response":{"status_code","request_id","body"},"error"}`.
fn read_openai_line(provider: &Provider, batch_id: &str, line: &Value) -> LineResult {
    if let Some(err) = line.get("error").filter(|e| !e.is_null()) {
        let code = err.get("code").or_else(|| err.get("type")).and_then(Value::as_str).unwrap_or("error").to_string();
        let message = err.get("message").and_then(Value::as_str).map(|m| provider.redactor.redact(m)).unwrap_or_default();
        let full = format!("openai batch {batch_id}: the request failed: {code}: {message}");
        let mut e = batch_error(Api::OpenAi, full, &code, code == "batch_expired");
        if let Some(p) = e.provider.as_mut() {
            p.provider_message = Some(message);
        }
        if code.contains("cancel") {
            return LineResult::Cancelled(e);
        }
        return LineResult::Failed(e);
    }
    let Some(response) = line.get("response").filter(|r| !r.is_null()) else {
        return LineResult::Failed(crate::provider::bad_response(provider, "a batch result line has neither response nor error", false, Some(&line.to_string())));
    };
    let status = response.get("status_code").and_then(Value::as_u64).unwrap_or(200) as u16;
    let body = loose_json(response.get("body").unwrap_or(&Value::Null));
    if !(200..300).contains(&status) {
        let text = match body.as_ref() {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return LineResult::Failed(http::status_error("openai", status, text.as_bytes(), None, &provider.redactor));
    }
    if let Some(err) = body.get("error").filter(|e| !e.is_null()) {
        let (kind, message) = http::provider_error_fields(&json!({ "error": err }));
        let message = message.map(|m| provider.redactor.redact(&m));
        return LineResult::Failed(Error::provider(
            format!("openai batch {batch_id}: the request returned an error: {}", message.clone().unwrap_or_default()),
            ProviderFailure { status: Some(status), retryable: false, provider_type: kind, provider_message: message, provider: Some("openai"), ..Default::default() },
        ));
    }
    match openai::parse_completion(provider, &body) {
        Ok(r) => LineResult::Ok(r),
        Err(e) => LineResult::Failed(e),
    }
}

/// Reads one line of Anthropic results: `{"custom_id","result":{"type",...}}` with
/// the types `succeeded` (a `message`), `errored` (an error response), `canceled`
/// and `expired`.
fn read_anthropic_line(provider: &Provider, batch_id: &str, line: &Value) -> LineResult {
    let result = loose_json(line.get("result").unwrap_or(&Value::Null));
    match result.get("type").and_then(Value::as_str) {
        Some("succeeded") => {
            let message = loose_json(result.get("message").unwrap_or(&Value::Null));
            match anthropic::parse_message(provider, &message) {
                Ok(r) => LineResult::Ok(r),
                Err(e) => LineResult::Failed(e),
            }
        }
        Some("errored") => {
            // The documented shape nests the error object in an error response,
            // `{"type":"error","error":{"type","message"}}`; ogx sends it flat.
            let outer = result.get("error").unwrap_or(&Value::Null);
            let inner = outer.get("error").filter(|e| e.is_object()).unwrap_or(outer);
            let (kind, message) = http::provider_error_fields(&json!({ "error": inner }));
            let message = message.map(|m| provider.redactor.redact(&m));
            let retryable = matches!(kind.as_deref(), Some("api_error" | "overloaded_error" | "rate_limit_error" | "timeout_error"));
            LineResult::Failed(Error::provider(
                format!(
                    "anthropic batch {batch_id}: the request errored: {}: {}",
                    kind.clone().unwrap_or_else(|| "error".into()),
                    message.clone().unwrap_or_default()
                ),
                ProviderFailure { retryable, provider_type: kind, provider_message: message, provider: Some("anthropic"), ..Default::default() },
            ))
        }
        Some("canceled") => LineResult::Cancelled(batch_error(
            Api::Anthropic,
            format!("anthropic batch {batch_id}: the request was canceled before it ran"),
            "canceled",
            true,
        )),
        Some("expired") => LineResult::Failed(batch_error(
            Api::Anthropic,
            format!("anthropic batch {batch_id}: the request expired before it ran (a batch has 24 hours)"),
            "expired",
            true,
        )),
        other => LineResult::Failed(crate::provider::bad_response(
            provider,
            &format!("a batch result has the unknown type {}", other.map_or("(none)".into(), |t| format!("{t:?}"))),
            false,
            Some(&line.to_string()),
        )),
    }
}

/// The batch and file that result lines come from.
pub struct Source<'a> {
    /// The batch's API.
    pub api: Api,
    /// The provider of every request in the batch.
    pub provider: &'a Provider,
    /// The provider's batch id.
    pub batch_id: &'a str,
    /// `output`, `error` or `results`, for reports of unmatched lines.
    pub file: &'a str,
    /// The batch's `custom_id`s.
    pub expected: &'a HashMap<String, usize>,
    /// The times of every request in the batch.
    pub span: Span,
}

/// Outcomes read from the result files of one batch.
#[derive(Default)]
pub struct Collected {
    /// Outcomes by `custom_id`.
    pub outcomes: HashMap<String, Value>,
    /// Lines that match no request of the batch, or repeat one.
    pub unmatched: Vec<Value>,
}

impl Collected {
    /// Reads line `number` (1-based) of a results file.
    pub fn line(&mut self, source: &Source<'_>, number: usize, text: &str) {
        let unmatched = |reason: &str, custom_id: Option<&str>| {
            json!({ "batchId": source.batch_id, "file": source.file, "line": number, "customId": custom_id, "reason": reason })
        };
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            self.unmatched.push(unmatched("unreadable-line", None));
            return;
        };
        let Some(custom_id) = value.get("custom_id").and_then(Value::as_str) else {
            self.unmatched.push(unmatched("missing-custom-id", None));
            return;
        };
        if !source.expected.contains_key(custom_id) {
            self.unmatched.push(unmatched("unknown-custom-id", Some(custom_id)));
            return;
        }
        if self.outcomes.contains_key(custom_id) {
            self.unmatched.push(unmatched("duplicate-custom-id", Some(custom_id)));
            return;
        }
        let result = match source.api {
            Api::OpenAi => openai_line(source.provider, source.batch_id, &value),
            Api::Anthropic => anthropic_line(source.provider, source.batch_id, &value),
        };
        self.outcomes.insert(custom_id.to_string(), outcome_json(source.provider, result, source.span));
    }
}

/// Builds the error of a request that an OpenAI batch never ran because the batch
/// failed validation: the errors of its own line (`line` is 1-based), else the batch's.
pub fn validation_error(batch_id: &str, errors: &[Value], line: usize) -> Error {
    let describe = |e: &Value| {
        let code = e.get("code").and_then(Value::as_str).unwrap_or("invalid_request");
        let message = e.get("message").and_then(Value::as_str).unwrap_or("");
        match e.get("line").and_then(Value::as_u64) {
            Some(l) => format!("line {l}: {code}: {message}"),
            None => format!("{code}: {message}"),
        }
    };
    let own: Vec<&Value> = errors.iter().filter(|e| e.get("line").and_then(Value::as_u64) == Some(line as u64)).collect();
    let (message, code, retryable) = if own.is_empty() {
        let listed: Vec<String> = errors.iter().take(3).map(describe).collect();
        let more = if errors.len() > 3 { format!(" and {} more", errors.len() - 3) } else { String::new() };
        (
            format!("openai batch {batch_id} failed validation, so this request never ran: {}{more}", listed.join("; ")),
            errors.first().and_then(|e| e.get("code")).and_then(Value::as_str).unwrap_or("batch_failed").to_string(),
            true,
        )
    } else {
        let listed: Vec<String> = own.iter().map(|e| describe(e)).collect();
        (
            format!("openai batch {batch_id} failed validation because of this request: {}", listed.join("; ")),
            own[0].get("code").and_then(Value::as_str).unwrap_or("invalid_request").to_string(),
            false,
        )
    };
    let mut err = batch_error(Api::OpenAi, message, &code, retryable);
    err.detail.insert("batchErrors".into(), Value::Array(errors.to_vec()));
    err
}

/// Builds the error of a request that has no result although its batch ended.
pub fn missing_result(api: Api, batch_id: &str, status: &str) -> Error {
    batch_error(
        api,
        format!("{} batch {batch_id} ended ({status}) without a result for this request", api.name()),
        "missing_result",
        true,
    )
}
