//! OpenAI-compatible chat completions (`POST {baseURL}/chat/completions`), as served
//! by OpenAI, OpenRouter, Groq, Together, vLLM, Ollama and llama.cpp.

use std::rc::Rc;

use serde_json::{json, Map, Value};

use super::http::{self, BodyError};
use super::sse::SseParser;
use super::{bad_response, network_error, parse_usage, AttemptInfo, CallRequest, CallResponse, FinishReason, Provider, StreamObserver, StreamText};
use crate::error::{Error, ProviderFailure, Result};
use crate::transport::{Host, HttpRequest, HttpResponse};

/// Builds the request body.
pub fn request_body(provider: &Provider, request: &CallRequest) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = &request.system {
        messages.push(json!({ "role": "system", "content": system }));
    }
    for m in &request.messages {
        messages.push(json!({ "role": m.role, "content": m.content }));
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(provider.model));
    body.insert("messages".into(), Value::Array(messages));
    if let Some(t) = request.temperature.or(provider.temperature) {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = provider.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(n) = provider.max_tokens {
        body.insert("max_tokens".into(), json!(n));
    }
    if let Some(seed) = request.seed.or(provider.seed) {
        body.insert("seed".into(), json!(seed));
    }
    if provider.stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    for (k, v) in &provider.extra_body {
        body.insert(k.clone(), v.clone());
    }
    Value::Object(body)
}

/// Builds the HTTP request.
pub fn http_request(provider: &Provider, request: &CallRequest) -> HttpRequest {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(key) = &provider.api_key {
        headers.push(("authorization".into(), format!("Bearer {key}")));
    }
    headers.extend(provider.headers.iter().cloned());
    HttpRequest {
        url: provider.endpoint("/chat/completions"),
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

/// Reads an error response's body (capped) and builds the provider error.
pub async fn read_error(provider: &Provider, response: &mut dyn HttpResponse, status: u16, epoch: f64) -> Error {
    let retry_after = http::retry_after_ms(response, epoch);
    let body = match http::read_body(response, 64 * 1024).await {
        Ok(body) => body,
        // The status says enough; the body only adds detail.
        Err(_) => Vec::new(),
    };
    http::status_error(provider.kind.name(), status, &body, retry_after, &provider.redactor)
}

/// Maps a body-read failure onto an error.
pub fn body_error(provider: &Provider, err: BodyError) -> Error {
    match err {
        BodyError::Fetch(e) => network_error(provider, &e),
        BodyError::TooLarge => Error::provider(
            format!(
                "{} response body is larger than maxResponseBytes ({} bytes); raise maxResponseBytes or lower maxTokens",
                provider.kind.name(),
                provider.max_response_bytes
            ),
            ProviderFailure {
                retryable: false,
                provider_type: Some("response_too_large".into()),
                provider: Some(provider.kind.name()),
                ..Default::default()
            },
        ),
    }
}

/// Reads a non-streamed body: an `error` object in a 200 response is a retryable
/// failure, anything else a `chat.completion`.
pub fn parse_body(provider: &Provider, json: &Value) -> Result<CallResponse> {
    if json.get("error").is_some_and(|e| !e.is_null()) {
        let (kind, message) = http::provider_error_fields(json);
        return Err(Error::provider(
            format!("openai returned an error in a 200 response: {}", message.clone().unwrap_or_default()),
            ProviderFailure {
                status: Some(200),
                retryable: true,
                provider_type: kind,
                provider_message: message.map(|m| provider.redactor.redact(&m)),
                provider: Some("openai"),
                ..Default::default()
            },
        ));
    }
    parse_completion(provider, json)
}

/// Reads a non-streamed `chat.completion` body.
pub fn parse_completion(provider: &Provider, json: &Value) -> Result<CallResponse> {
    let raw_usage = json.get("usage").filter(|u| u.is_object()).cloned();
    let usage = raw_usage.as_ref().and_then(parse_usage);
    let choices = json.get("choices").and_then(Value::as_array);
    let Some(choice) = choices.and_then(|c| c.iter().find(|c| choice_index(c) == 0).or_else(|| c.first())) else {
        return Err(bad_response(provider, "the response has no choices", true, Some(&json.to_string())));
    };
    let message = choice.get("message").unwrap_or(&Value::Null);
    let text = content_text(message.get("content"));
    // A model that declines answers with `refusal` instead of content: the same outcome
    // as a content filter, which is how Anthropic reports a refusal too.
    let refused = message.get("refusal").and_then(Value::as_str).is_some_and(|r| !r.is_empty());
    let finish_reason =
        if refused { FinishReason::ContentFilter } else { FinishReason::parse(choice.get("finish_reason").and_then(Value::as_str)) };
    Ok(CallResponse {
        text: provider.redactor.redact(&text),
        finish_reason,
        usage,
        raw_usage,
        logprobs: choice.get("logprobs").filter(|l| !l.is_null()).cloned(),
        model: json.get("model").and_then(Value::as_str).map(str::to_string),
    })
}

/// Message content as text: a string, `null`, or an array of parts.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str).or_else(|| p.as_str()))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

pub(super) async fn read_stream(
    provider: &Provider,
    response: &mut dyn HttpResponse,
    observer: Option<StreamObserver<'_>>,
) -> Result<CallResponse> {
    let mut parser = SseParser::new();
    let mut text = StreamText::new(&provider.redactor, observer);
    let mut state = StreamState::default();
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
            if let Some(stop) = state.apply(provider, &event.data, &mut text, chunk.is_none())? {
                return Ok(state.into_response(text, FinishReason::Stopped(stop)));
            }
            if state.done {
                let reason = state.finish.clone().unwrap_or(FinishReason::Unknown);
                return Ok(state.into_response(text, reason));
            }
        }
        if chunk.is_none() {
            break;
        }
    }
    if let Some(reason) = state.finish.clone() {
        // Some servers close without `[DONE]` after the last chunk.
        return Ok(state.into_response(text, reason));
    }
    Err(super::stream_cut(provider, "the connection closed before a finish_reason or [DONE]", None))
}

/// A choice's `index` (0 when absent, as servers with one choice may leave it out).
fn choice_index(choice: &Value) -> u64 {
    choice.get("index").and_then(Value::as_u64).unwrap_or(0)
}

#[derive(Default)]
struct StreamState {
    /// A `refusal` arrived in place of content.
    refused: bool,
    finish: Option<FinishReason>,
    usage: Option<Value>,
    model: Option<String>,
    done: bool,
}

impl StreamState {
    /// Applies one event; returns the observer's reason to stop early. `at_end` marks
    /// the event the stream's close completed: if it is cut short, it is dropped, as
    /// the standard drops an unfinished event.
    fn apply(&mut self, provider: &Provider, data: &str, text: &mut StreamText<'_>, at_end: bool) -> Result<Option<String>> {
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(None);
        }
        if data.is_empty() {
            return Ok(None);
        }
        let json: Value = match serde_json::from_str(data) {
            Ok(json) => json,
            Err(_) if at_end => return Ok(None),
            Err(_) => return Err(bad_response(provider, "a stream event is not JSON", true, Some(data))),
        };
        if let Some(err) = json.get("error").filter(|e| !e.is_null()) {
            let (kind, message) = http::provider_error_fields(&json!({ "error": err }));
            let message = message.map(|m| provider.redactor.redact(&m));
            return Err(Error::provider(
                format!(
                    "openai stream reported an error: {}",
                    message.clone().unwrap_or_else(|| "unknown error".into())
                ),
                ProviderFailure {
                    status: Some(200),
                    retryable: true,
                    provider_type: kind,
                    provider_message: message,
                    provider: Some("openai"),
                    ..Default::default()
                },
            ));
        }
        if let Some(u) = json.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        if let Some(m) = json.get("model").and_then(Value::as_str).filter(|m| !m.is_empty()) {
            self.model = Some(m.to_string());
        }
        // Azure's first chunk and the final usage chunk have empty `choices`. With
        // `n` above 1 every chunk carries one choice by its index; only the first
        // choice is the answer, as in a non-streamed reply.
        let Some(choice) = json.get("choices").and_then(Value::as_array).and_then(|c| c.iter().find(|c| choice_index(c) == 0)) else {
            return Ok(None);
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        if delta.get("refusal").and_then(Value::as_str).is_some_and(|r| !r.is_empty()) {
            self.refused = true;
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(if self.refused { FinishReason::ContentFilter } else { FinishReason::parse(Some(reason)) });
        }
        let piece = content_text(delta.get("content"));
        Ok(text.push(&piece))
    }

    fn into_response(self, text: StreamText<'_>, finish_reason: FinishReason) -> CallResponse {
        let text = if matches!(finish_reason, FinishReason::Stopped(_)) { text.finish_stopped() } else { text.finish() };
        CallResponse {
            text,
            finish_reason,
            usage: self.usage.as_ref().and_then(parse_usage),
            raw_usage: self.usage,
            logprobs: None,
            model: self.model,
        }
    }
}
