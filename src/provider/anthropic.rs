//! The Anthropic Messages API (`POST {baseURL}/messages`).

use std::rc::Rc;

use serde_json::{json, Map, Value};

use super::http::{self, BodyError};
use super::openai::body_error;
use super::sse::SseParser;
use super::{bad_response, parse_usage, AttemptInfo, CallRequest, CallResponse, FinishReason, Provider, StreamObserver, StreamText, Usage};
use crate::error::{Error, ProviderFailure, Result};
use crate::transport::{Host, HttpRequest};

/// Builds the request body. `max_tokens` is required by the API.
pub fn request_body(provider: &Provider, request: &CallRequest) -> Value {
    let messages: Vec<Value> =
        request.messages.iter().map(|m| json!({ "role": m.role, "content": m.content })).collect();
    let mut body = Map::new();
    body.insert("model".into(), json!(provider.model));
    body.insert("max_tokens".into(), json!(provider.max_tokens.unwrap_or(1024)));
    body.insert("messages".into(), Value::Array(messages));
    if let Some(system) = &request.system {
        body.insert("system".into(), json!(system));
    }
    if let Some(t) = request.temperature.or(provider.temperature) {
        // The Messages API accepts temperatures from 0 to 1.
        body.insert("temperature".into(), json!(t.min(1.0)));
    }
    if let Some(p) = provider.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if provider.stream {
        body.insert("stream".into(), json!(true));
    }
    for (k, v) in &provider.extra_body {
        body.insert(k.clone(), v.clone());
    }
    Value::Object(body)
}

/// Builds the HTTP request with the headers the API requires.
pub fn http_request(provider: &Provider, request: &CallRequest) -> HttpRequest {
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("anthropic-version".to_string(), provider.version.clone()),
    ];
    if let Some(key) = &provider.api_key {
        headers.push(("x-api-key".into(), key.clone()));
    }
    if provider.browser {
        // The API rejects browser requests without this header; `browser: true` is the
        // caller's explicit consent to expose the key to the page.
        headers.push(("anthropic-dangerous-direct-browser-access".into(), "true".into()));
    }
    headers.extend(provider.headers.iter().cloned());
    HttpRequest {
        url: provider.endpoint("/messages"),
        method: "POST",
        headers,
        body: request_body(provider, request).to_string(),
    }
}

/// Makes one attempt.
pub async fn call(
    provider: &Provider,
    host: &Rc<dyn Host>,
    request: &CallRequest,
    observer: Option<StreamObserver<'_>>,
) -> (Result<CallResponse>, AttemptInfo) {
    super::exchange(provider, host, http_request(provider, request), observer).await
}

/// Reads a non-streamed `message` body. An empty `content` with `end_turn` is a
/// legitimate empty answer, not an error.
pub fn parse_message(provider: &Provider, json: &Value) -> Result<CallResponse> {
    if json.get("type").and_then(Value::as_str) == Some("error") {
        return Err(error_event(provider, json, false));
    }
    let Some(content) = json.get("content").and_then(Value::as_array) else {
        return Err(bad_response(provider, "the response has no content array", true, Some(&json.to_string())));
    };
    let text: String = content
        .iter()
        .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|block| block.get("text").and_then(Value::as_str))
        .collect();
    let raw_usage = json.get("usage").filter(|u| u.is_object()).cloned();
    Ok(CallResponse {
        text: provider.redactor.redact(&text),
        finish_reason: FinishReason::parse(json.get("stop_reason").and_then(Value::as_str)),
        usage: raw_usage.as_ref().and_then(parse_usage),
        raw_usage,
        logprobs: None,
        model: json.get("model").and_then(Value::as_str).map(str::to_string),
    })
}

/// An `error` event of a stream (or an error body of a 200 response, when `in_stream`
/// is false): `overloaded_error` and `api_error` are retryable.
fn error_event(provider: &Provider, json: &Value, in_stream: bool) -> Error {
    let (kind, message) = http::provider_error_fields(json);
    let retryable = matches!(kind.as_deref(), Some("overloaded_error" | "api_error" | "rate_limit_error" | "timeout_error") | None);
    let message = message.map(|m| provider.redactor.redact(&m));
    Error::provider(
        format!(
            "anthropic {} {}: {}",
            if in_stream { "stream reported" } else { "returned an error in a 200 response:" },
            kind.clone().unwrap_or_else(|| "an error".into()),
            message.clone().unwrap_or_default()
        ),
        ProviderFailure {
            status: Some(200),
            retryable,
            provider_type: kind,
            provider_message: message,
            provider: Some("anthropic"),
            ..Default::default()
        },
    )
}

pub(super) async fn read_stream(
    provider: &Provider,
    response: &mut dyn crate::transport::HttpResponse,
    observer: Option<StreamObserver<'_>>,
) -> Result<CallResponse> {
    let mut parser = SseParser::new();
    let mut text = StreamText::new(&provider.redactor, observer);
    let mut usage = Map::new();
    let mut model = None;
    let mut finish = None;
    let mut received = 0usize;
    loop {
        let chunk = response.next_chunk().await.map_err(|e| super::stream_cut(provider, &e.message, e.host.clone()))?;
        let events = match &chunk {
            Some(bytes) => {
                received += bytes.len();
                if received > provider.max_response_bytes {
                    return Err(body_error(provider, BodyError::TooLarge));
                }
                parser.feed(bytes)
            }
            None => parser.finish(),
        };
        for event in events {
            let json: Value = match serde_json::from_str(&event.data) {
                Ok(j) => j,
                // The stream's close cut its last event short: dropped, as the standard
                // drops an unfinished event.
                Err(_) if chunk.is_none() => continue,
                Err(_) => return Err(bad_response(provider, "a stream event is not JSON", true, Some(&event.data))),
            };
            let kind = json.get("type").and_then(Value::as_str).or(event.event.as_deref()).unwrap_or("");
            match kind {
                "message_start" => {
                    let message = json.get("message").unwrap_or(&Value::Null);
                    model = message.get("model").and_then(Value::as_str).map(str::to_string);
                    if let Some(Value::Object(u)) = message.get("usage") {
                        usage.extend(u.clone());
                    }
                }
                "content_block_start" => {
                    // Anthropic starts a text block empty; compatible servers may not.
                    let block = json.get("content_block").unwrap_or(&Value::Null);
                    if block.get("type").and_then(Value::as_str) == Some("text") {
                        let piece = block.get("text").and_then(Value::as_str).unwrap_or("");
                        if let Some(stop) = text.push(piece) {
                            return Ok(done(text, FinishReason::Stopped(stop), usage, model));
                        }
                    }
                }
                "content_block_delta" => {
                    let delta = json.get("delta").unwrap_or(&Value::Null);
                    if delta.get("type").and_then(Value::as_str) == Some("text_delta") {
                        let piece = delta.get("text").and_then(Value::as_str).unwrap_or("");
                        if let Some(stop) = text.push(piece) {
                            return Ok(done(text, FinishReason::Stopped(stop), usage, model));
                        }
                    }
                }
                "message_delta" => {
                    if let Some(reason) = json.get("delta").and_then(|d| d.get("stop_reason")).and_then(Value::as_str) {
                        finish = Some(FinishReason::parse(Some(reason)));
                    }
                    if let Some(Value::Object(u)) = json.get("usage") {
                        for (k, v) in u {
                            if !v.is_null() {
                                usage.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
                "message_stop" => {
                    let reason = finish.unwrap_or(FinishReason::Unknown);
                    return Ok(done(text, reason, usage, model));
                }
                "error" => return Err(error_event(provider, &json, true)),
                _ => {}
            }
        }
        if chunk.is_none() {
            break;
        }
    }
    Err(super::stream_cut(provider, "the connection closed before message_stop", None))
}

fn done(text: StreamText<'_>, reason: FinishReason, usage: Map<String, Value>, model: Option<String>) -> CallResponse {
    let raw = (!usage.is_empty()).then_some(Value::Object(usage));
    let text = if matches!(reason, FinishReason::Stopped(_)) { text.finish_stopped() } else { text.finish() };
    CallResponse {
        text,
        finish_reason: reason,
        usage: raw.as_ref().and_then(parse_usage).or(Some(Usage::default())).filter(|_| raw.is_some()),
        raw_usage: raw,
        logprobs: None,
        model,
    }
}
