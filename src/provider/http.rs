//! What both HTTP providers share: reading bodies within a size limit, turning an
//! error response into a provider error, and reading `Retry-After` and rate-limit
//! headers.

use serde_json::Value;

use crate::error::{Error, ProviderFailure, Redactor};
use crate::transport::{FetchError, HttpResponse};

/// Characters of a response body kept in an error's `bodyExcerpt`.
pub const EXCERPT_CHARS: usize = 200;

/// Whether an HTTP status is worth retrying: timeouts, conflicts, rate limits and
/// server errors (Anthropic's 529 "overloaded" included).
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || (500..=599).contains(&status)
}

/// The standard reason phrase of common statuses.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "",
    }
}

/// Why reading a body stopped early.
pub enum BodyError {
    /// The network failed.
    Fetch(FetchError),
    /// The body grew past the limit.
    TooLarge,
}

/// Reads a whole body, stopping once it exceeds `limit` bytes.
pub async fn read_body(response: &mut dyn HttpResponse, limit: usize) -> Result<Vec<u8>, BodyError> {
    if let Some(whole) = response.read_whole(limit) {
        let body = whole.await.map_err(BodyError::Fetch)?;
        return if body.len() > limit { Err(BodyError::TooLarge) } else { Ok(body) };
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.next_chunk().await.map_err(BodyError::Fetch)? {
        body.extend_from_slice(&chunk);
        if body.len() > limit {
            return Err(BodyError::TooLarge);
        }
    }
    Ok(body)
}

/// A short, single-line start of a body, with secrets removed.
pub fn excerpt(body: &str, redactor: &Redactor) -> String {
    let collapsed: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut redacted = redactor.redact(&collapsed);
    // A body cut in the middle of a secret ends with its start, which is dropped too
    // (from 4 characters on: shorter starts, such as "sk", show nothing of a key).
    let tail = redactor.unsafe_tail_len(&redacted);
    if tail >= 4 {
        redacted.truncate(redacted.len() - tail);
    }
    let mut out: String = redacted.chars().take(EXCERPT_CHARS).collect();
    if redacted.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

/// The `<title>` of an HTML error page, if the body is one.
fn html_title(body: &str) -> Option<String> {
    let lower = body.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = lower[start..].find("</title>")? + start;
    let title = body[start..end].trim();
    (!title.is_empty()).then(|| title.to_string())
}

/// The provider's own error type and message from an error body, in the OpenAI
/// (`{"error":{"type","message","code"}}`) or Anthropic
/// (`{"type":"error","error":{"type","message"}}`) shape.
pub fn provider_error_fields(body: &Value) -> (Option<String>, Option<String>) {
    let error = body.get("error").unwrap_or(body);
    let message = match error {
        Value::String(s) => Some(s.clone()),
        _ => error.get("message").and_then(Value::as_str).map(str::to_string),
    };
    let kind = error
        .get("type")
        .and_then(Value::as_str)
        .or_else(|| error.get("code").and_then(Value::as_str))
        .map(str::to_string);
    (kind, message)
}

/// Builds the provider error for a response with a non-success status.
pub fn status_error(
    provider: &'static str,
    status: u16,
    body: &[u8],
    retry_after_ms: Option<f64>,
    redactor: &Redactor,
) -> Error {
    let text = String::from_utf8_lossy(body);
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    let (provider_type, provider_message) = match &parsed {
        Some(json) => provider_error_fields(json),
        None => (None, html_title(&text)),
    };
    let provider_message = provider_message.map(|m| redactor.redact(&m));
    let body_excerpt = (!text.trim().is_empty()).then(|| excerpt(&text, redactor));
    let overloaded = provider_type.as_deref() == Some("overloaded_error");
    let retryable = is_retryable_status(status) || overloaded;
    let phrase = reason_phrase(status);
    let mut message = format!("{provider} request failed with HTTP {status}");
    if !phrase.is_empty() {
        message.push_str(&format!(" ({phrase})"));
    }
    match (&provider_type, &provider_message) {
        (Some(t), Some(m)) => message.push_str(&format!(": {t}: {m}")),
        (None, Some(m)) => message.push_str(&format!(": {m}")),
        (Some(t), None) => message.push_str(&format!(": {t}")),
        (None, None) => {}
    }
    if status == 401 || status == 403 {
        message.push_str("; check the API key and the model's access");
    }
    Error::provider(
        message,
        ProviderFailure {
            status: Some(status),
            retryable,
            provider_type,
            provider_message,
            body_excerpt,
            retry_after_ms,
            provider: Some(provider),
        },
    )
}

/// The delay a response asks for: `retry-after-ms` (milliseconds) or `Retry-After`
/// (seconds or an HTTP date), the longer one when both are sent.
pub fn retry_after_ms(response: &dyn HttpResponse, epoch_now: f64) -> Option<f64> {
    let millis = response
        .header("retry-after-ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0);
    let standard = response.header("retry-after").and_then(|v| parse_retry_after(&v, epoch_now));
    // When both are sent, neither may be undercut: wait for the later one.
    match (millis, standard) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Parses a `Retry-After` value: delta seconds, or an HTTP date compared with
/// `epoch_now`. A date in the past means no wait.
pub fn parse_retry_after(value: &str, epoch_now: f64) -> Option<f64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then_some(seconds * 1000.0);
    }
    let at = parse_http_date(value)?;
    Some((at - epoch_now).max(0.0))
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn epoch_ms_of(year: i64, month: i64, day: i64, h: i64, m: i64, s: f64) -> Option<f64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s >= 61.0 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 86_400 + h * 3600 + m * 60) as f64 + s) * 1000.0)
}

/// Parses the three HTTP date forms (IMF-fixdate, RFC 850, asctime) into epoch ms.
pub fn parse_http_date(value: &str) -> Option<f64> {
    let tokens: Vec<&str> =
        value.split(|c: char| c == ' ' || c == ',' || c == '-').filter(|t| !t.is_empty()).collect();
    let mut day = None;
    let mut month = None;
    let mut year = None;
    let mut time = None;
    for token in tokens {
        let lower = token.to_ascii_lowercase();
        if let Some(i) = MONTHS.iter().position(|m| lower.starts_with(m)) {
            if lower.len() == 3 {
                month = Some(i as i64 + 1);
                continue;
            }
        }
        if token.contains(':') {
            let parts: Vec<i64> = token.split(':').filter_map(|p| p.parse().ok()).collect();
            if parts.len() == 3 {
                time = Some((parts[0], parts[1], parts[2]));
            }
            continue;
        }
        if let Ok(n) = token.parse::<i64>() {
            if token.len() == 4 {
                year = Some(n);
            } else if token.len() <= 2 && day.is_none() {
                day = Some(n);
            } else if token.len() == 2 {
                // RFC 850 two-digit year: 70-99 is 19xx, else 20xx.
                year = Some(if n >= 70 { 1900 + n } else { 2000 + n });
            }
        }
    }
    let (h, m, s) = time?;
    epoch_ms_of(year?, month?, day?, h, m, s as f64)
}

/// Parses an RFC 3339 timestamp (`2024-05-01T12:00:30.5Z`, offsets allowed) into epoch ms.
pub fn parse_rfc3339(value: &str) -> Option<f64> {
    let value = value.trim();
    let (date, rest) = value.split_once(['T', 't', ' '])?;
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    let (clock, offset_ms) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0.0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (c, off) = rest.split_at(i);
        let sign = if off.starts_with('-') { -1.0 } else { 1.0 };
        let (oh, om) = off[1..].split_once(':')?;
        let minutes = oh.parse::<f64>().ok()? * 60.0 + om.parse::<f64>().ok()?;
        (c, sign * minutes * 60_000.0)
    } else {
        (rest, 0.0)
    };
    let mut t = clock.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let m: i64 = t.next()?.parse().ok()?;
    let s: f64 = t.next()?.parse().ok()?;
    Some(epoch_ms_of(year, month, day, h, m, s)? - offset_ms)
}

/// Parses a Go-style duration as OpenAI sends in `x-ratelimit-reset-*`: `1s`, `6m0s`,
/// `20ms`, `1h2m3.5s`.
pub fn parse_duration_ms(value: &str) -> Option<f64> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return Some(seconds * 1000.0);
    }
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let n: f64 = number.parse().ok()?;
        number.clear();
        let unit_ms = match c {
            'h' => 3_600_000.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1.0
            }
            'm' => 60_000.0,
            's' => 1000.0,
            _ => return None,
        };
        total += n * unit_ms;
    }
    number.is_empty().then_some(total)
}

/// The time (epoch ms) before which no new request should start, when the response's
/// rate-limit headers say a limit has no room left.
pub fn pace_until(response: &dyn HttpResponse, epoch_now: f64) -> Option<f64> {
    let mut until: Option<f64> = None;
    let mut push = |t: f64| until = Some(until.map_or(t, |u| u.max(t)));
    for kind in ["requests", "tokens"] {
        let remaining = response.header(&format!("x-ratelimit-remaining-{kind}"));
        if remaining.as_deref().map(str::trim) == Some("0") {
            if let Some(ms) = response.header(&format!("x-ratelimit-reset-{kind}")).and_then(|v| parse_duration_ms(&v)) {
                push(epoch_now + ms);
            }
        }
    }
    for kind in ["requests", "tokens", "input-tokens", "output-tokens"] {
        let remaining = response.header(&format!("anthropic-ratelimit-{kind}-remaining"));
        if remaining.as_deref().map(str::trim) == Some("0") {
            if let Some(at) = response.header(&format!("anthropic-ratelimit-{kind}-reset")).and_then(|v| parse_rfc3339(&v)) {
                push(at);
            }
        }
    }
    until.filter(|t| *t > epoch_now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after("2", now), Some(2000.0));
        assert_eq!(parse_retry_after("1.5", now), Some(1500.0));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:39 GMT", now), Some(2000.0));
        assert_eq!(parse_retry_after("Sunday, 06-Nov-94 08:49:40 GMT", now), Some(3000.0));
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:41 1994", now), Some(4000.0));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:30 GMT", now), Some(0.0));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn http_date_matches_known_epoch() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0.0));
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777_000.0));
    }

    #[test]
    fn rfc3339_with_offsets() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01Z"), Some(1000.0));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:01+01:00"), Some(1000.0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.5Z"), Some(500.0));
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration_ms("1s"), Some(1000.0));
        assert_eq!(parse_duration_ms("6m0s"), Some(360_000.0));
        assert_eq!(parse_duration_ms("20ms"), Some(20.0));
        assert_eq!(parse_duration_ms("1h2m3.5s"), Some(3_723_500.0));
        assert_eq!(parse_duration_ms("abc"), None);
    }

    #[test]
    fn html_502_becomes_a_retryable_error_with_title() {
        let body = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>";
        let err = status_error("openai", 502, body, None, &Redactor::default());
        let p = err.provider.as_ref().unwrap();
        assert!(p.retryable);
        assert_eq!(p.status, Some(502));
        assert_eq!(p.provider_message.as_deref(), Some("502 Bad Gateway"));
        assert!(p.body_excerpt.as_ref().unwrap().len() <= EXCERPT_CHARS + 3);
        assert!(!err.message.contains("SyntaxError"));
    }

    #[test]
    fn json_400_is_not_retryable_and_keeps_message() {
        let body = br#"{"error":{"message":"bad param","type":"invalid_request_error"}}"#;
        let err = status_error("openai", 400, body, None, &Redactor::default());
        let p = err.provider.as_ref().unwrap();
        assert!(!p.retryable);
        assert_eq!(p.provider_message.as_deref(), Some("bad param"));
        assert_eq!(p.provider_type.as_deref(), Some("invalid_request_error"));
    }

    #[test]
    fn echoed_key_is_redacted_from_error() {
        let body = br#"{"error":{"message":"Incorrect API key provided: sk-live-SECRET99"}}"#;
        let r = Redactor::new(vec!["sk-live-SECRET99".into()]);
        let err = status_error("openai", 401, body, None, &r);
        let json = err.to_json().to_string();
        assert!(!json.contains("sk-live-SECRET99"), "{json}");
        assert!(!err.message.contains("sk-live-SECRET99"));
    }
}
