//! One logical call with its retries. The caller drops the returned future to cancel
//! it; every request and sleep inside stops with it, and the call's record keeps what
//! happened up to then.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::future::{select, Either};
use serde_json::{json, Map, Value};

use super::Run;
use crate::error::{Code, Error, ProviderFailure};
use crate::provider::{self, CallRequest, CallResponse, Kind, Provider, StreamObserver, Usage};
use crate::report::{round_ms, Attempt, CallRecord, Status};

/// What a call is for; its fields go into every event about it.
#[derive(Clone, Debug)]
pub struct Label(pub Map<String, Value>);

impl Label {
    /// A label from key/value pairs.
    pub fn new(fields: Value) -> Label {
        match fields {
            Value::Object(map) => Label(map),
            _ => Label(Map::new()),
        }
    }

    /// A readable description for error messages.
    pub fn describe(&self) -> String {
        if let Some(id) = self.0.get("subtask").and_then(Value::as_str) {
            return format!("subtask {id:?}");
        }
        if let Some(i) = self.0.get("sample").and_then(Value::as_u64) {
            return format!("sample {i}");
        }
        match self.0.get("call").and_then(Value::as_str) {
            Some(kind) => kind.to_string(),
            None => "the call".into(),
        }
    }

    fn with(&self, extra: Value) -> Value {
        let mut map = self.0.clone();
        if let Value::Object(e) = extra {
            map.extend(e);
        }
        Value::Object(map)
    }
}

/// A budget reservation taken before an attempt.
struct Reservation {
    tokens: u64,
    cost: f64,
}

/// Runs one call to completion: waits out cool-downs, reserves budget, takes the
/// concurrency permits, makes attempts and retries the retryable failures.
pub async fn run_call(
    run: &Rc<Run>,
    provider: &Rc<Provider>,
    request: &CallRequest,
    label: &Label,
    record: &RefCell<CallRecord>,
    observer: Option<StreamObserver<'_>>,
) -> Result<CallResponse, Error> {
    let mut retry = 0u32;
    loop {
        wait_for_cooldown(run, provider).await;
        let reservation = reserve(run, provider, request, label)?;

        // Take the run's permit, then the HTTP caps. A custom function holds only the
        // run's permit: a nested run inside it may use the same shared limiter, and
        // holding a shared permit across it could deadlock.
        let _permit = run.concurrency.acquire().await;
        let mut _http_permits = Vec::new();
        if provider.kind != Kind::Custom {
            for cap in &run.http_caps {
                _http_permits.push(cap.acquire().await);
            }
        }
        if cooldown_until(run, provider).is_some_and(|t| t > run.host.now()) {
            // A rate limit arrived while this call queued: give the permits back and
            // wait it out like everyone else.
            release(run, reservation);
            continue;
        }

        let index = {
            let mut rec = record.borrow_mut();
            rec.attempts.push(Attempt { status: None, error: None, started_ms: run.elapsed(), finished_ms: None });
            rec.attempts.len() - 1
        };
        run.events.emit("attempt-start", label.with(json!({ "attempt": index + 1 })));

        let (result, pace_until) = attempt(run, provider, request, label, observer).await;
        drop(_http_permits);
        drop(_permit);

        let finished = run.elapsed();
        let status = if result.is_ok() { Status::Ok } else { Status::Failed };
        {
            let mut rec = record.borrow_mut();
            let a = &mut rec.attempts[index];
            a.status = Some(status);
            a.finished_ms = Some(finished);
            a.error = result.as_ref().err().cloned();
        }
        settle(run, provider, reservation, &result, record);
        run.events.emit(
            "attempt-end",
            label.with(json!({
                "attempt": index + 1,
                "status": status.as_str(),
                "error": result.as_ref().err().map(Error::to_json),
                "durationMs": round_ms(finished - record.borrow().attempts[index].started_ms),
            })),
        );
        if let Some(until_epoch) = pace_until {
            let until = run.host.now() + (until_epoch - run.host.epoch_ms());
            extend_cooldown(run, provider, until);
            run.events.emit(
                "rate-limited",
                label.with(json!({ "provider": provider.name, "waitMs": round_ms(until - run.host.now()), "reason": "rate-limit headers show no requests or tokens left" })),
            );
        }

        let err = match result {
            Ok(response) => return Ok(response),
            Err(err) => err,
        };
        if !err.is_retryable() || retry >= run.retry.max_retries {
            return Err(final_error(err, record.borrow().attempts.len()));
        }
        let retry_after = err.provider.as_ref().and_then(|p| p.retry_after_ms);
        let delay = run.retry.delay_ms(retry, retry_after, run.host.random(), &err)?;
        let status = err.provider.as_ref().and_then(|p| p.status);
        let rate_limited = status == Some(429) || (retry_after.is_some() && matches!(status, Some(503 | 529)));
        if rate_limited {
            // Every sibling waits out the same cool-down.
            let base = retry_after.unwrap_or(delay);
            extend_cooldown(run, provider, run.host.now() + base);
            run.events.emit(
                "rate-limited",
                label.with(json!({ "provider": provider.name, "status": status, "waitMs": round_ms(base) })),
            );
        }
        run.events.emit(
            "retry",
            label.with(json!({
                "attempt": record.borrow().attempts.len(),
                "delayMs": round_ms(delay),
                "reason": err.message,
                "status": status,
            })),
        );
        run.host.sleep(delay).await;
        retry += 1;
    }
}

/// Adds the attempt count to a final failure.
fn final_error(mut err: Error, attempts: usize) -> Error {
    err.detail.insert("attempts".into(), json!(attempts));
    err
}

/// One attempt under the run's timeout.
async fn attempt(
    run: &Rc<Run>,
    provider: &Rc<Provider>,
    request: &CallRequest,
    label: &Label,
    observer: Option<StreamObserver<'_>>,
) -> (Result<CallResponse, Error>, Option<f64>) {
    let emit_delta = |piece: &str, so_far: &str| -> Option<String> {
        run.events.emit("delta", label.with(json!({ "text": piece })));
        observer.and_then(|o| o(piece, so_far))
    };
    let delta_observer: Option<StreamObserver<'_>> =
        if run.events.enabled() || observer.is_some() { Some(&emit_delta) } else { None };
    let timeout_ms = run.retry.timeout_ms;
    let call = std::pin::pin!(provider::call(provider, &run.host, request, delta_observer, &run.cancel));
    let timer = run.host.sleep(timeout_ms);
    match select(call, timer).await {
        Either::Left(((result, info), _)) => (result, info.pace_until),
        Either::Right(_) => {
            let err = Error::provider(
                format!(
                    "{} call for {} timed out after {timeout_ms} ms (timeoutMs covers the headers and the whole body)",
                    provider.kind.name(),
                    label.describe()
                ),
                ProviderFailure {
                    retryable: true,
                    provider_type: Some("timeout".into()),
                    provider: Some(provider.kind.name()),
                    ..Default::default()
                },
            );
            (Err(err), None)
        }
    }
}

fn cooldown_until(run: &Run, provider: &Provider) -> Option<f64> {
    let local = run.cooldowns.until(provider.id);
    let shared = run.shared.as_ref().and_then(|s| s.cooldowns.until(provider.id));
    match (local, shared) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn extend_cooldown(run: &Run, provider: &Provider, until: f64) {
    run.cooldowns.extend(provider.id, until);
    if let Some(shared) = &run.shared {
        shared.cooldowns.extend(provider.id, until);
    }
}

/// Sleeps until the provider's cool-down has passed, plus a small spread so that the
/// calls that waited do not all start in the same millisecond.
async fn wait_for_cooldown(run: &Run, provider: &Provider) {
    while let Some(until) = cooldown_until(run, provider) {
        let now = run.host.now();
        if until <= now {
            return;
        }
        let wait = until - now;
        let spread = super::retry::RetryPolicy::spread_ms(wait, run.host.random());
        run.host.sleep(wait + spread).await;
    }
}

/// Reserves one request and the call's worst-case tokens and cost.
fn reserve(run: &Run, provider: &Provider, request: &CallRequest, label: &Label) -> Result<Reservation, Error> {
    let mut budget = run.budget.borrow_mut();
    if let Some(max) = budget.max_requests {
        if budget.requests >= max {
            return Err(Error::new(
                Code::BudgetExceeded,
                format!(
                    "request budget exhausted: maxRequests ({max}) were all used before {} could start; raise maxRequests or lower maxRetries",
                    label.describe()
                ),
            )
            .with_detail("limit", json!("maxRequests")));
        }
    }
    let input = request.estimate_input_tokens();
    let tokens = input + provider.max_tokens.unwrap_or(0);
    if let Some(max) = budget.max_tokens {
        if budget.tokens + tokens > max {
            return Err(Error::new(
                Code::BudgetExceeded,
                format!(
                    "token budget exhausted: {} needs up to {tokens} tokens (input estimate plus maxTokens) but only {} of budget.tokens ({max}) are left",
                    label.describe(),
                    max.saturating_sub(budget.tokens)
                ),
            )
            .with_detail("limit", json!("budget.tokens")));
        }
    }
    let cost = provider
        .price(None)
        .map_or(0.0, |p| (input as f64 * p.input + provider.max_tokens.unwrap_or(0) as f64 * p.output) / 1e6);
    if let Some(max) = budget.max_cost {
        if budget.cost + cost > max + 1e-12 {
            return Err(Error::new(
                Code::BudgetExceeded,
                format!(
                    "cost budget exhausted: {} may cost up to ${cost:.6} but only ${:.6} of budget.costUsd (${max}) is left",
                    label.describe(),
                    (max - budget.cost).max(0.0)
                ),
            )
            .with_detail("limit", json!("budget.costUsd")));
        }
    }
    budget.requests += 1;
    budget.tokens += tokens;
    budget.cost += cost;
    Ok(Reservation { tokens, cost })
}

/// Gives back a reservation for an attempt that never started.
fn release(run: &Run, r: Reservation) {
    let mut budget = run.budget.borrow_mut();
    budget.requests -= 1;
    budget.tokens -= r.tokens;
    budget.cost -= r.cost;
}

/// Replaces the reservation with what the attempt used, and adds its usage.
fn settle(
    run: &Run,
    provider: &Provider,
    r: Reservation,
    result: &Result<CallResponse, Error>,
    record: &RefCell<CallRecord>,
) {
    let usage = match result {
        Ok(response) => response.usage.clone().map(|u| u.priced(provider.price(response.model.as_deref()))),
        Err(_) => None,
    };
    let mut budget = run.budget.borrow_mut();
    match (&usage, result) {
        (Some(u), _) => {
            budget.tokens = budget.tokens - r.tokens + u.input_tokens + u.output_tokens;
            budget.cost = budget.cost - r.cost + u.cost_usd.unwrap_or(r.cost);
        }
        // The server answered with an error status: nothing was generated.
        (None, Err(e)) if e.provider.as_ref().and_then(|p| p.status).is_some_and(|s| s != 200) => {
            budget.tokens -= r.tokens;
            budget.cost -= r.cost;
        }
        // No usage reported: keep the reservation, the only safe bound.
        _ => {}
    }
    drop(budget);
    if let Some(u) = usage {
        run.usage.borrow_mut().add(&u);
        let mut rec = record.borrow_mut();
        rec.usage.add(&u);
        if let Ok(response) = result {
            rec.raw_usage = response.raw_usage.clone();
        }
    } else if let Ok(response) = result {
        record.borrow_mut().raw_usage = response.raw_usage.clone();
    }
}

/// Usage of a call record as report data, with the provider's raw usage object.
pub fn usage_json(record: &CallRecord) -> Value {
    let mut v = record.usage.to_json();
    v["raw"] = record.raw_usage.clone().unwrap_or(Value::Null);
    v
}

/// An empty usage for calls that never ran.
pub fn no_usage() -> Value {
    let mut v = Usage::default().to_json();
    v["raw"] = Value::Null;
    v
}
