//! The one error type of the crate. Each variant of [`Code`] has a stable string
//! that JavaScript callers branch on (`err.code`).

use std::fmt;
use std::rc::Rc;

use serde_json::{json, Map, Value};

use crate::transport::HostValue;

/// The stable error codes, as JavaScript sees them in `err.code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Code {
    /// An option has the wrong type, is out of range or is unknown. Raised before any request.
    InvalidOptions,
    /// Subtasks depend on each other in a circle.
    DependencyCycle,
    /// A subtask depends on an id that no subtask has.
    UnknownDependency,
    /// The caller's `signal` was aborted.
    Aborted,
    /// The run's `deadlineMs` passed.
    DeadlineExceeded,
    /// `maxRequests` or `budget` would be exceeded by the next request.
    BudgetExceeded,
    /// Fewer subtasks succeeded than `failure.minSuccesses` requires.
    QuorumNotMet,
    /// Every voter (or every required call) failed.
    AllFailed,
    /// A vote ended in a tie under `tie: "error"`.
    Tie,
    /// A JSON merge found a conflict under `conflicts: "error"`.
    MergeConflict,
    /// The provider asked to wait longer than `retry.maxRetryAfterMs`.
    RetryAfterTooLong,
    /// The provider (or the network, or a custom function) failed.
    ProviderError,
}

impl Code {
    /// Returns the string JavaScript sees in `err.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidOptions => "INVALID_OPTIONS",
            Code::DependencyCycle => "DEPENDENCY_CYCLE",
            Code::UnknownDependency => "UNKNOWN_DEPENDENCY",
            Code::Aborted => "ABORTED",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::BudgetExceeded => "BUDGET_EXCEEDED",
            Code::QuorumNotMet => "QUORUM_NOT_MET",
            Code::AllFailed => "ALL_FAILED",
            Code::Tie => "TIE",
            Code::MergeConflict => "MERGE_CONFLICT",
            Code::RetryAfterTooLong => "RETRY_AFTER_TOO_LONG",
            Code::ProviderError => "PROVIDER_ERROR",
        }
    }
}

/// The JavaScript class an error becomes: `TypeError` and `RangeError` follow the JS
/// convention for bad arguments, everything else is a plain `Error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsClass {
    /// A plain `Error`.
    Error,
    /// A value of the wrong type, or an unknown option.
    TypeError,
    /// A value of the right type outside its allowed range.
    RangeError,
}

/// Details of a failed provider call, exposed as fields of the JS error.
#[derive(Clone, Debug, Default)]
pub struct ProviderFailure {
    /// HTTP status, when the server answered.
    pub status: Option<u16>,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// The provider's own error type (`rate_limit_error`, `network`, `timeout`, ...).
    pub provider_type: Option<String>,
    /// The provider's own error message, secrets removed.
    pub provider_message: Option<String>,
    /// The start of the response body, secrets removed.
    pub body_excerpt: Option<String>,
    /// The delay the server asked for, in milliseconds.
    pub retry_after_ms: Option<f64>,
    /// Which provider kind failed: `openai`, `anthropic` or `custom`.
    pub provider: Option<&'static str>,
}

/// An error with its code, a message that names the value at fault, and whatever
/// partial result the run had produced.
#[derive(Clone)]
pub struct Error {
    /// The stable code.
    pub code: Code,
    /// What failed, on which value, and what to do.
    pub message: String,
    /// The JavaScript class to throw.
    pub class: JsClass,
    /// Provider details, for provider errors and errors caused by one.
    pub provider: Option<Box<ProviderFailure>>,
    /// The error that caused this one.
    pub cause: Option<Box<Error>>,
    /// Every underlying error, for `ALL_FAILED` and `QUORUM_NOT_MET`.
    pub errors: Vec<Error>,
    /// An original JavaScript value (an abort reason, a thrown error) to expose as `cause`.
    pub host_cause: Option<HostValue>,
    /// The partial report of the run.
    pub report: Option<Value>,
    /// Extra machine-readable detail (`cycle`, `ids`, `path`, `requestedMs`...).
    pub detail: Map<String, Value>,
}

impl Error {
    /// Creates an error with a code and a message.
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            class: JsClass::Error,
            provider: None,
            cause: None,
            errors: Vec::new(),
            host_cause: None,
            report: None,
            detail: Map::new(),
        }
    }

    /// An `INVALID_OPTIONS` error thrown as a `TypeError`.
    pub fn type_error(path: &str, message: impl fmt::Display) -> Error {
        let mut err = Error::new(Code::InvalidOptions, format!("{path}: {message}"));
        err.class = JsClass::TypeError;
        err.detail.insert("path".into(), Value::String(path.into()));
        err
    }

    /// An `INVALID_OPTIONS` error thrown as a `RangeError`.
    pub fn range_error(path: &str, message: impl fmt::Display) -> Error {
        let mut err = Error::type_error(path, message);
        err.class = JsClass::RangeError;
        err
    }

    /// A provider error with its failure details.
    pub fn provider(message: impl Into<String>, failure: ProviderFailure) -> Error {
        let mut err = Error::new(Code::ProviderError, message);
        err.provider = Some(Box::new(failure));
        err
    }

    /// Adds a detail field.
    pub fn with_detail(mut self, key: &str, value: Value) -> Error {
        self.detail.insert(key.into(), value);
        self
    }

    /// Attaches the partial report.
    pub fn with_report(mut self, report: Value) -> Error {
        self.report = Some(report);
        self
    }

    /// Whether retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        self.provider.as_ref().is_some_and(|p| p.retryable)
    }

    /// The error as plain data, as it appears inside reports (`results[i].error`).
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("code".into(), json!(self.code.as_str()));
        obj.insert("message".into(), json!(self.message));
        if let Some(p) = &self.provider {
            obj.insert("status".into(), json!(p.status));
            obj.insert("retryable".into(), json!(p.retryable));
            obj.insert("providerType".into(), json!(p.provider_type));
            obj.insert("providerMessage".into(), json!(p.provider_message));
            obj.insert("bodyExcerpt".into(), json!(p.body_excerpt));
            obj.insert("retryAfterMs".into(), json!(p.retry_after_ms));
            obj.insert("provider".into(), json!(p.provider));
        }
        for (key, value) in &self.detail {
            obj.insert(key.clone(), value.clone());
        }
        if let Some(cause) = &self.cause {
            obj.insert("cause".into(), cause.to_json());
        }
        if !self.errors.is_empty() {
            obj.insert("errors".into(), Value::Array(self.errors.iter().map(Error::to_json).collect()));
        }
        Value::Object(obj)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Removes every secret from a text that may be shown to users.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Rc<Vec<String>>,
}

impl Redactor {
    /// Secrets shorter than this are not redacted: they would mangle ordinary text and
    /// are not real credentials.
    const MIN_SECRET_LEN: usize = 6;

    /// Creates a redactor for the given secrets.
    pub fn new(secrets: Vec<String>) -> Redactor {
        let mut secrets: Vec<String> =
            secrets.into_iter().filter(|s| s.len() >= Self::MIN_SECRET_LEN).collect();
        // Longest first, so a secret that contains another is removed whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets: Rc::new(secrets) }
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Returns `text` with each secret replaced by `[REDACTED]`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in self.secrets.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[REDACTED]");
            }
        }
        out
    }

    /// Removes the secrets from every string in `value`, keys included.
    pub fn scrub_value(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                if self.secrets.iter().any(|secret| s.contains(secret.as_str())) {
                    *s = self.redact(s);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.scrub_value(item)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut item) in entries {
                    self.scrub_value(&mut item);
                    map.insert(self.redact(&key), item);
                }
            }
            _ => {}
        }
    }

    /// Removes the secrets from every text an error carries: its message, the
    /// provider's fields, its detail, its causes and the errors it lists.
    pub fn scrub_error(&self, err: &mut Error) {
        if self.is_empty() {
            return;
        }
        err.message = self.redact(&err.message);
        if let Some(p) = err.provider.as_mut() {
            for field in [&mut p.provider_type, &mut p.provider_message, &mut p.body_excerpt] {
                if let Some(text) = field.as_mut() {
                    *text = self.redact(text);
                }
            }
        }
        for item in err.detail.values_mut() {
            self.scrub_value(item);
        }
        if let Some(cause) = err.cause.as_mut() {
            self.scrub_error(cause);
        }
        for inner in &mut err.errors {
            self.scrub_error(inner);
        }
        if let Some(report) = err.report.as_mut() {
            self.scrub_value(report);
        }
    }

    /// The length of the longest tail of `text` that is the start of a secret. A
    /// stream holds that many bytes back, so a secret split across chunks is still
    /// caught whole.
    pub fn unsafe_tail_len(&self, text: &str) -> usize {
        let mut longest = 0;
        for secret in self.secrets.iter() {
            let max = secret.len().saturating_sub(1).min(text.len());
            for len in (longest + 1..=max).rev() {
                let start = text.len() - len;
                if text.is_char_boundary(start) && secret.starts_with(&text[start..]) {
                    longest = len;
                    break;
                }
            }
        }
        longest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redactor_removes_every_secret() {
        let r = Redactor::new(vec!["sk-secret-123".into(), "abc".into()]);
        assert_eq!(r.redact("key sk-secret-123 and sk-secret-123"), "key [REDACTED] and [REDACTED]");
        assert_eq!(r.redact("abc stays"), "abc stays");
    }

    #[test]
    fn redactor_finds_a_split_secret_tail() {
        let r = Redactor::new(vec!["sk-secret-123".into()]);
        assert_eq!(r.unsafe_tail_len("hello sk-sec"), 6);
        assert_eq!(r.unsafe_tail_len("hello"), 0);
        assert_eq!(r.unsafe_tail_len("s"), 1);
    }

    #[test]
    fn error_json_has_provider_fields() {
        let err = Error::provider(
            "bad",
            ProviderFailure { status: Some(502), retryable: true, ..Default::default() },
        );
        let v = err.to_json();
        assert_eq!(v["code"], "PROVIDER_ERROR");
        assert_eq!(v["status"], 502);
        assert_eq!(v["retryable"], true);
        assert!(v["bodyExcerpt"].is_null());
    }
}
