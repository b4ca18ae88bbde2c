//! The outcome of one call as plain data, for runs that a durable engine drives one
//! call at a time (a Cloudflare Workflow step, a queue consumer, a provider batch):
//! the engine stores each outcome, and the same core code merges or tallies them.

use serde_json::{json, Value};

use crate::decode::{self, Obj};
use crate::error::{Code, Error, ProviderFailure, Result};
use crate::provider::{parse_usage, CallResponse, FinishReason, Usage};
use crate::report::{Attempt, CallRecord, Status};

/// One finished call.
#[derive(Clone)]
pub struct Outcome {
    /// `ok`, `failed` or `cancelled`.
    pub status: Status,
    /// The response, when it succeeded.
    pub response: Option<CallResponse>,
    /// The error, when it failed.
    pub error: Option<Error>,
    /// Its attempts and usage.
    pub record: CallRecord,
}

impl Outcome {
    /// An outcome from a call's result and record.
    pub fn new(result: Result<CallResponse>, record: CallRecord) -> Outcome {
        match result {
            Ok(response) => Outcome { status: Status::Ok, response: Some(response), error: None, record },
            Err(error) => Outcome { status: Status::Failed, response: None, error: Some(error), record },
        }
    }

    /// The outcome as plain data.
    pub fn to_json(&self) -> Value {
        let usage = if self.record.attempts.is_empty() && self.response.is_none() {
            Value::Null
        } else {
            crate::schedule::call::usage_json(&self.record)
        };
        json!({
            "status": self.status.as_str(),
            "text": self.response.as_ref().map(|r| r.text.clone()),
            "finishReason": self.response.as_ref().map(|r| r.finish_reason.as_str().to_string()),
            "model": self.response.as_ref().and_then(|r| r.model.clone()),
            "usage": usage,
            "error": self.error.as_ref().map(Error::to_json),
            "attempts": self.record.attempts_json(),
        })
    }

    /// Reads an outcome stored by the engine. `path` names it in errors.
    pub fn from_json(path: &str, value: &Value) -> Result<Outcome> {
        let o = Obj::new(path, value, &["status", "text", "finishReason", "model", "usage", "error", "attempts", "index", "id", "order"])?;
        let status = match o.str("status")? {
            Some("ok") => Status::Ok,
            Some("failed") => Status::Failed,
            Some("cancelled") => Status::Cancelled,
            Some("skipped") => Status::Skipped,
            other => {
                return Err(Error::type_error(
                    &o.at("status"),
                    format!("expected \"ok\", \"failed\" or \"cancelled\", got {}", other.map_or("nothing".into(), |s| format!("{s:?}"))),
                ))
            }
        };
        let mut record = CallRecord::default();
        if let Some(usage) = o.get("usage") {
            if let Some(u) = parse_usage(usage) {
                record.usage = Usage { cost_usd: usage.get("costUsd").and_then(Value::as_f64), ..u };
            }
            record.raw_usage = usage.get("raw").filter(|r| !r.is_null()).cloned();
        }
        if let Some(list) = o.array("attempts")? {
            for (i, a) in list.iter().enumerate() {
                let ao = Obj::new(&decode::index(&o.at("attempts"), i), a, &["status", "error", "startedMs", "finishedMs"])?;
                record.attempts.push(Attempt {
                    status: Some(match ao.str("status")? {
                        Some("ok") => Status::Ok,
                        Some("cancelled") => Status::Cancelled,
                        _ => Status::Failed,
                    }),
                    error: ao.get("error").map(error_from_json),
                    started_ms: ao.number("startedMs", f64::MIN, f64::MAX)?.unwrap_or(0.0),
                    finished_ms: ao.number("finishedMs", f64::MIN, f64::MAX)?,
                });
            }
        }
        // `text` is a string, or null for a reply with no text.
        let text = o.str("text")?.unwrap_or("").to_string();
        let response = (status == Status::Ok).then(|| CallResponse {
            text,
            finish_reason: FinishReason::parse(o.get("finishReason").and_then(Value::as_str)),
            usage: o.get("usage").and_then(parse_usage),
            raw_usage: record.raw_usage.clone(),
            logprobs: None,
            model: o.get("model").and_then(Value::as_str).map(str::to_string),
        });
        let error = match status {
            Status::Failed => Some(o.get("error").map(error_from_json).unwrap_or_else(|| Error::new(Code::ProviderError, "the call failed"))),
            _ => None,
        };
        Ok(Outcome { status, response, error, record })
    }
}

fn code_of(code: &str) -> Code {
    match code {
        "INVALID_OPTIONS" => Code::InvalidOptions,
        "DEPENDENCY_CYCLE" => Code::DependencyCycle,
        "UNKNOWN_DEPENDENCY" => Code::UnknownDependency,
        "ABORTED" => Code::Aborted,
        "DEADLINE_EXCEEDED" => Code::DeadlineExceeded,
        "BUDGET_EXCEEDED" => Code::BudgetExceeded,
        "QUORUM_NOT_MET" => Code::QuorumNotMet,
        "ALL_FAILED" => Code::AllFailed,
        "TIE" => Code::Tie,
        "MERGE_CONFLICT" => Code::MergeConflict,
        "RETRY_AFTER_TOO_LONG" => Code::RetryAfterTooLong,
        _ => Code::ProviderError,
    }
}

/// Rebuilds an error from its plain-data form (`Error::to_json`).
pub fn error_from_json(value: &Value) -> Error {
    let message = value.get("message").and_then(Value::as_str).unwrap_or("the call failed").to_string();
    let mut err = Error::new(code_of(value.get("code").and_then(Value::as_str).unwrap_or("")), message);
    if value.get("status").is_some() || value.get("retryable").is_some() {
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_string);
        err.provider = Some(Box::new(ProviderFailure {
            status: value.get("status").and_then(Value::as_u64).map(|s| s as u16),
            retryable: value.get("retryable").and_then(Value::as_bool).unwrap_or(false),
            provider_type: text("providerType"),
            provider_message: text("providerMessage"),
            body_excerpt: text("bodyExcerpt"),
            retry_after_ms: value.get("retryAfterMs").and_then(Value::as_f64),
            provider: None,
        }));
    }
    if let Some(Value::Object(map)) = Some(value) {
        for key in ["attempts", "limit", "requestedMs", "subtask", "sample"] {
            if let Some(v) = map.get(key) {
                err.detail.insert(key.into(), v.clone());
            }
        }
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_round_trips() {
        let response = CallResponse {
            text: "42".into(),
            finish_reason: FinishReason::Stop,
            usage: Some(Usage { input_tokens: 9, output_tokens: 1, cost_usd: None }),
            raw_usage: Some(json!({ "prompt_tokens": 9, "completion_tokens": 1 })),
            logprobs: None,
            model: Some("m".into()),
        };
        let mut record = CallRecord::default();
        record.usage = Usage { input_tokens: 9, output_tokens: 1, cost_usd: None };
        record.attempts.push(Attempt { status: Some(Status::Ok), error: None, started_ms: 1.0, finished_ms: Some(5.0) });
        let json = Outcome::new(Ok(response), record).to_json();
        let back = Outcome::from_json("o", &json).unwrap();
        assert_eq!(back.to_json(), json);
    }

    #[test]
    fn failed_outcome_keeps_provider_fields() {
        let err = Error::provider("boom", ProviderFailure { status: Some(503), retryable: true, ..Default::default() });
        let json = Outcome::new(Err(err), CallRecord::default()).to_json();
        let back = Outcome::from_json("o", &json).unwrap();
        let e = back.error.unwrap();
        assert_eq!(e.code, Code::ProviderError);
        assert_eq!(e.provider.unwrap().status, Some(503));
    }

    #[test]
    fn bad_status_is_named() {
        let err = Outcome::from_json("outcomes[3]", &json!({ "status": "done" })).err().unwrap();
        assert!(err.message.starts_with("outcomes[3].status"), "{}", err.message);
    }
}
