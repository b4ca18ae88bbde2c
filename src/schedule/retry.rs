//! Retry timing: capped exponential backoff with full jitter, and the delay a server
//! asked for.

use crate::error::{Code, Error};

/// Retry settings of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The backoff cap grows from this.
    pub base_delay_ms: f64,
    /// The backoff never exceeds this.
    pub max_delay_ms: f64,
    /// A server asking for a longer wait fails the call at once with
    /// `RETRY_AFTER_TOO_LONG`.
    pub max_retry_after_ms: f64,
    /// One attempt, headers and whole body, may take this long.
    pub timeout_ms: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            base_delay_ms: 500.0,
            max_delay_ms: 20_000.0,
            max_retry_after_ms: 60_000.0,
            timeout_ms: 120_000.0,
        }
    }
}

/// The longest extra wait added after a server-requested delay, so that siblings that
/// waited out the same cool-down do not all fire in the same millisecond.
pub const RETRY_AFTER_SPREAD_MAX_MS: f64 = 250.0;

impl RetryPolicy {
    /// The backoff before retry number `retry` (0 for the first retry) when the server
    /// named no delay: uniform in `[0, min(max, base * 2^retry))`.
    pub fn backoff_ms(&self, retry: u32, random: f64) -> f64 {
        let cap = (self.base_delay_ms * 2f64.powi(retry.min(30) as i32)).min(self.max_delay_ms);
        random * cap
    }

    /// The extra spread after a server-requested delay: up to a tenth of it, at most
    /// [`RETRY_AFTER_SPREAD_MAX_MS`].
    pub fn spread_ms(requested_ms: f64, random: f64) -> f64 {
        random * (requested_ms * 0.1).min(RETRY_AFTER_SPREAD_MAX_MS)
    }

    /// The wait before the next retry: the server's delay (never less, plus a spread)
    /// or the backoff. A server delay above the ceiling fails the call.
    pub fn delay_ms(&self, retry: u32, retry_after_ms: Option<f64>, random: f64, cause: &Error) -> Result<f64, Error> {
        match retry_after_ms {
            Some(requested) if requested > self.max_retry_after_ms => {
                let mut err = Error::new(
                    Code::RetryAfterTooLong,
                    format!(
                        "the server asked to wait {} ms before retrying, more than retry.maxRetryAfterMs ({} ms); raise retry.maxRetryAfterMs or try later",
                        requested.round(),
                        self.max_retry_after_ms
                    ),
                );
                err.provider = cause.provider.clone();
                err.cause = Some(Box::new(cause.clone()));
                err.detail.insert("requestedMs".into(), serde_json::json!(requested));
                Err(err)
            }
            Some(requested) => Ok(requested + Self::spread_ms(requested, random)),
            None => Ok(self.backoff_ms(retry, random)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = RetryPolicy { base_delay_ms: 100.0, max_delay_ms: 1000.0, ..Default::default() };
        assert_eq!(p.backoff_ms(0, 0.5), 50.0);
        assert_eq!(p.backoff_ms(3, 0.999_999).round(), 800.0);
        assert_eq!(p.backoff_ms(10, 1.0), 1000.0);
        assert_eq!(p.backoff_ms(0, 0.0), 0.0);
    }

    #[test]
    fn server_delay_is_never_undercut() {
        let p = RetryPolicy::default();
        let cause = Error::new(Code::ProviderError, "429");
        for r in [0.0, 0.3, 0.99] {
            let d = p.delay_ms(0, Some(2000.0), r, &cause).unwrap();
            assert!(d >= 2000.0 && d <= 2000.0 + RETRY_AFTER_SPREAD_MAX_MS, "{d}");
        }
    }

    #[test]
    fn too_long_server_delay_fails_with_the_request() {
        let p = RetryPolicy { max_retry_after_ms: 30_000.0, ..Default::default() };
        let err = p.delay_ms(0, Some(3_600_000.0), 0.5, &Error::new(Code::ProviderError, "429")).unwrap_err();
        assert_eq!(err.code, Code::RetryAfterTooLong);
        assert_eq!(err.detail["requestedMs"], 3_600_000.0);
    }
}
