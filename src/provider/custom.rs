//! Custom providers: a caller's function `fn(request, { signal })` that returns
//! `{ text, usage?, finishReason? }` or throws.

use serde_json::{json, Value};

use super::{parse_usage, CallRequest, CallResponse, FinishReason, Provider};
use crate::error::{Error, ProviderFailure, Result};
use crate::schedule::cancel::CancelToken;

/// The request object the function receives.
pub fn request_json(provider: &Provider, request: &CallRequest) -> Value {
    let messages: Vec<Value> =
        request.messages.iter().map(|m| json!({ "role": m.role, "content": m.content })).collect();
    json!({
        "messages": messages,
        "system": request.system,
        "model": provider.model,
        "temperature": request.temperature.or(provider.temperature),
        "topP": provider.top_p,
        "maxTokens": provider.max_tokens,
        "seed": request.seed.or(provider.seed),
    })
}

/// Calls the function once. The returned future is dropped on cancellation, which
/// aborts the signal the function was given.
pub async fn call(provider: &Provider, request: &CallRequest, cancel: &CancelToken) -> Result<CallResponse> {
    let function = provider.function.as_ref().expect("a custom provider has a function");
    let arg = request_json(provider, request);
    match function.call_async(&arg, cancel.clone()).await {
        Ok(value) => parse_result(provider, &value),
        Err(thrown) => {
            let mut err = Error::provider(
                if thrown.invalid_return {
                    format!("custom provider {:?} returned an unusable value: {}", provider.name, provider.redactor.redact(&thrown.message))
                } else {
                    format!("custom provider {:?} threw: {}", provider.name, provider.redactor.redact(&thrown.message))
                },
                ProviderFailure {
                    status: thrown.status,
                    retryable: thrown.retryable,
                    provider_type: Some(if thrown.is_abort { "aborted" } else { "custom_error" }.into()),
                    provider_message: Some(thrown.message.clone()),
                    retry_after_ms: thrown.retry_after_ms,
                    provider: Some("custom"),
                    ..Default::default()
                },
            );
            err.host_cause = thrown.value;
            Err(err)
        }
    }
}

/// Reads what the function returned: `{ text, usage?, finishReason? }` or a string.
pub fn parse_result(provider: &Provider, value: &Value) -> Result<CallResponse> {
    let invalid = |what: String| {
        Error::provider(
            format!("custom provider {:?} returned {what}; return {{ text, usage?, finishReason? }}", provider.name),
            ProviderFailure {
                retryable: false,
                provider_type: Some("invalid_response".into()),
                provider: Some("custom"),
                ..Default::default()
            },
        )
    };
    if let Value::String(text) = value {
        return Ok(CallResponse {
            text: text.clone(),
            finish_reason: FinishReason::Stop,
            usage: None,
            raw_usage: None,
            logprobs: None,
            model: provider.model.clone(),
        });
    }
    let Some(obj) = value.as_object() else {
        return Err(invalid(crate::decode::describe(value)));
    };
    let text = match obj.get("text") {
        Some(Value::String(s)) => s.clone(),
        // `text: null` is a reply with no text, such as a filtered one.
        Some(Value::Null) => String::new(),
        None => {
            let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
            let found = if keys.is_empty() { "no keys".to_string() } else { format!("the keys {}", keys.join(", ")) };
            return Err(invalid(format!("an object without `text` (it has {found})")));
        }
        Some(other) => return Err(invalid(format!("a `text` that is {}", crate::decode::describe(other)))),
    };
    let finish_reason = match obj.get("finishReason").and_then(Value::as_str) {
        Some(reason) => FinishReason::parse(Some(reason)),
        None if obj.get("text").is_some_and(|t| !t.is_null()) => FinishReason::Stop,
        None => FinishReason::Unknown,
    };
    let raw_usage = obj.get("usage").filter(|u| u.is_object()).cloned();
    Ok(CallResponse {
        text: provider.redactor.redact(&text),
        finish_reason,
        usage: raw_usage.as_ref().and_then(parse_usage),
        raw_usage,
        logprobs: None,
        model: obj.get("model").and_then(Value::as_str).map(str::to_string).or_else(|| provider.model.clone()),
    })
}
