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

/// The budget an attempt has reserved while it runs. Dropping it closes the
/// reservation and wakes the calls waiting for budget. The amounts stay spent unless
/// [`settle`] replaced them with the attempt's real usage.
/// Returns pending once, waking itself, then ready.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

struct Reservation {
    run: Rc<Run>,
    /// The input estimate before any correction.
    input_estimate: u64,
    tokens: u64,
    cost: f64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.run.budget.borrow_mut().open -= 1;
        self.run.budget_changed.notify_all();
    }
}

/// The reason a call could not reserve its budget.
enum Shortfall {
    /// Attempts still running hold reservations that may settle lower: wait for them.
    Wait,
    /// The budget cannot cover the call.
    Exhausted(Error),
}

/// Runs one call to completion: waits out cool-downs, takes the concurrency permits,
/// reserves budget, makes attempts and retries the retryable failures. The permits
/// are held until the attempt's response body has been read or its request aborted.
pub async fn run_call(
    run: &Rc<Run>,
    provider: &Rc<Provider>,
    request: &CallRequest,
    label: &Label,
    record: &RefCell<CallRecord>,
    observer: Option<StreamObserver<'_>>,
) -> Result<CallResponse, Error> {
    let mut retry = 0u32;
    let mut last_error: Option<Error> = None;
    loop {
        if let Err(err) = wait_for_cooldown(run, provider, label).await {
            return Err(after_failures(err, last_error, record));
        }
        // A call that could never start fails without queueing for a permit first.
        let action = if last_error.is_some() { "retry" } else { "start" };
        if let Some(err) = requests_exhausted(run, label, action) {
            return Err(after_failures(err, last_error, record));
        }

        // Take the run's permit, then the HTTP caps. A custom function holds only the
        // run's permit: a nested run inside it may use the same shared limiter, and
        // holding a shared permit across it could deadlock.
        let permit = run.concurrency.acquire().await;
        let mut http_permits = Vec::new();
        if provider.kind != Kind::Custom {
            let queued = run.host.now();
            for cap in &run.http_caps {
                http_permits.push(cap.acquire().await);
            }
            run.add_wait(queued);
        }
        if run.past_deadline() {
            // Another run's permit can wake this call before the run's own deadline
            // timer fires: no request starts after the deadline. Yielding once lets the
            // run's guard see the deadline and record the call as cancelled.
            drop(http_permits);
            drop(permit);
            run.cancel.cancel(super::cancel::CancelReason::Deadline);
            YieldOnce(false).await;
            return Err(after_failures(run.cancel_error(&super::cancel::CancelReason::Deadline), last_error, record));
        }
        if cooldown_until(run, provider).is_some_and(|t| t > run.host.now()) {
            // A rate limit arrived while this call queued: give the permits back and
            // wait it out like everyone else.
            continue;
        }
        let reservation = match reserve(run, provider, request, label, action) {
            Ok(r) => r,
            Err(Shortfall::Wait) => {
                let settled = run.budget_changed.notified();
                drop(http_permits);
                drop(permit);
                let queued = run.host.now();
                settled.await;
                run.add_wait(queued);
                continue;
            }
            Err(Shortfall::Exhausted(err)) => return Err(after_failures(err, last_error, record)),
        };

        let index = {
            let mut rec = record.borrow_mut();
            rec.attempts.push(Attempt { status: None, error: None, started_ms: run.elapsed(), finished_ms: None });
            rec.attempts.len() - 1
        };
        run.events.emit("attempt-start", label.with(json!({ "attempt": index + 1 })));

        let open = run.open_attempt();
        let (result, pace_until) = attempt(run, provider, request, label, index + 1, observer).await;
        drop(open);
        drop(http_permits);
        drop(permit);

        let finished = run.elapsed();
        let status = if result.is_ok() { Status::Ok } else { Status::Failed };
        {
            let mut rec = record.borrow_mut();
            let a = &mut rec.attempts[index];
            a.status = Some(status);
            a.finished_ms = Some(finished);
            a.error = result.as_ref().err().cloned();
        }
        settle(run, provider, &reservation, &result, record);
        drop(reservation);
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
        let attempts = record.borrow().attempts.len();
        if !err.is_retryable() || retry >= run.retry.max_retries {
            return Err(final_error(err, attempts));
        }
        let retry_after = err.provider.as_ref().and_then(|p| p.retry_after_ms);
        let status = err.provider.as_ref().and_then(|p| p.status);
        let rate_limited = status == Some(429) || (retry_after.is_some() && matches!(status, Some(503 | 529)));
        let delay = match run.retry.delay_ms(retry, retry_after, run.host.random(), &err) {
            Ok(delay) => delay,
            Err(too_long) => {
                // Siblings would get the same response, so the cool-down makes them
                // fail at once instead of sending into it or sleeping through it.
                if let (true, Some(requested)) = (rate_limited, retry_after) {
                    start_cooldown(run, provider, label, status, requested);
                }
                return Err(final_error(too_long, attempts));
            }
        };
        if let Some(exhausted) = requests_exhausted(run, label, "retry") {
            return Err(after_failures(exhausted, Some(err), record));
        }
        run.events.emit(
            "retry",
            label.with(json!({
                "attempt": attempts,
                "delayMs": round_ms(delay),
                "reason": err.message,
                "status": status,
            })),
        );
        if rate_limited {
            // Every sibling waits out the same cool-down.
            start_cooldown(run, provider, label, status, retry_after.unwrap_or(delay));
        }
        let slept = run.host.now();
        run.host.sleep(delay).await;
        run.add_wait(slept);
        retry += 1;
        last_error = Some(err);
    }
}

/// One attempt under the run's timeout.
async fn attempt(
    run: &Rc<Run>,
    provider: &Rc<Provider>,
    request: &CallRequest,
    label: &Label,
    number: usize,
    observer: Option<StreamObserver<'_>>,
) -> (Result<CallResponse, Error>, Option<f64>) {
    // Deltas carry their attempt, so after a retry a listener can drop the text of the
    // attempt that failed.
    let emit_delta = |piece: &str, so_far: &str| -> Option<String> {
        run.events.emit("delta", label.with(json!({ "attempt": number, "text": piece })));
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

/// Adds the attempt count to a call's final error.
fn final_error(mut err: Error, attempts: usize) -> Error {
    err.detail.insert("attempts".into(), json!(attempts));
    err
}

/// Builds a call's final error when it stopped for a reason of its own (budget,
/// cool-down) after earlier attempts failed. The last attempt's error becomes the cause.
fn after_failures(err: Error, last: Option<Error>, record: &RefCell<CallRecord>) -> Error {
    let attempts = record.borrow().attempts.len();
    let mut err = final_error(err, attempts);
    if let Some(last) = last {
        err.cause = Some(Box::new(last));
    }
    err
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

/// Starts a cool-down of `wait_ms` for every call to `provider` after a rate limit.
fn start_cooldown(run: &Run, provider: &Provider, label: &Label, status: Option<u16>, wait_ms: f64) {
    extend_cooldown(run, provider, run.host.now() + wait_ms);
    run.events.emit(
        "rate-limited",
        label.with(json!({ "provider": provider.name, "status": status, "waitMs": round_ms(wait_ms) })),
    );
}

/// Sleeps until the provider's cool-down has passed, plus a small spread so that the
/// calls that waited do not all start in the same millisecond. A cool-down longer
/// than `retry.maxRetryAfterMs` fails the call at once, as it would if the server
/// had returned that delay for this call.
async fn wait_for_cooldown(run: &Run, provider: &Provider, label: &Label) -> Result<(), Error> {
    while let Some(until) = cooldown_until(run, provider) {
        let now = run.host.now();
        if until <= now {
            return Ok(());
        }
        let wait = until - now;
        if wait > run.retry.max_retry_after_ms {
            return Err(Error::new(
                Code::RetryAfterTooLong,
                format!(
                    "{} cannot start: provider {:?} is rate-limited for another {} ms, longer than retry.maxRetryAfterMs ({} ms); raise retry.maxRetryAfterMs or try later",
                    label.describe(),
                    provider.name,
                    wait.round(),
                    run.retry.max_retry_after_ms
                ),
            )
            .with_detail("requestedMs", json!(wait.round())));
        }
        let spread = super::retry::RetryPolicy::spread_ms(wait, run.host.random());
        let slept = run.host.now();
        run.host.sleep(wait + spread).await;
        run.add_wait(slept);
    }
    Ok(())
}

/// Returns the error for a call that cannot `action` because all `maxRequests`
/// attempts have been made, or `None` while attempts are left.
fn requests_exhausted(run: &Run, label: &Label, action: &str) -> Option<Error> {
    let budget = run.budget.borrow();
    let max = budget.max_requests?;
    (budget.requests >= max).then(|| {
        Error::new(
            Code::BudgetExceeded,
            format!(
                "request budget exhausted: maxRequests ({max}) were all used before {} could {action}; raise maxRequests or lower maxRetries",
                label.describe()
            ),
        )
        .with_detail("limit", json!("maxRequests"))
    })
}

/// Reserves one request and the call's worst-case tokens and cost for an attempt
/// that is about to `action` (start or retry).
fn reserve(
    run: &Rc<Run>,
    provider: &Provider,
    request: &CallRequest,
    label: &Label,
    action: &str,
) -> Result<Reservation, Shortfall> {
    if let Some(err) = requests_exhausted(run, label, action) {
        return Err(Shortfall::Exhausted(err));
    }

    let mut budget = run.budget.borrow_mut();
    let input_estimate = request.estimate_input_tokens();
    let input = (input_estimate as f64 * budget.input_ratio.max(1.0)).ceil() as u64;
    let tokens = input + provider.max_tokens.unwrap_or(0);
    if let Some(max) = budget.max_tokens {
        if tokens > max || (budget.tokens + tokens > max && budget.open == 0) {
            return Err(Shortfall::Exhausted(
                Error::new(
                    Code::BudgetExceeded,
                    format!(
                        "token budget exhausted: {} needs up to {tokens} tokens (input estimate plus maxTokens) but only {} of budget.tokens ({max}) are left",
                        label.describe(),
                        max.saturating_sub(budget.tokens)
                    ),
                )
                .with_detail("limit", json!("budget.tokens")),
            ));
        }
        if budget.tokens + tokens > max {
            return Err(Shortfall::Wait);
        }
    }

    let cost = provider
        .max_price()
        .map_or(0.0, |p| (input as f64 * p.input + provider.max_tokens.unwrap_or(0) as f64 * p.output) / 1e6);
    if let Some(max) = budget.max_cost {
        let fits = |spent: f64| spent + cost <= max + 1e-12;
        if !fits(0.0) || (!fits(budget.cost) && budget.open == 0) {
            return Err(Shortfall::Exhausted(
                Error::new(
                    Code::BudgetExceeded,
                    format!(
                        "cost budget exhausted: {} may cost up to ${cost:.6} but only ${:.6} of budget.costUsd (${max}) is left",
                        label.describe(),
                        (max - budget.cost).max(0.0)
                    ),
                )
                .with_detail("limit", json!("budget.costUsd")),
            ));
        }
        if !fits(budget.cost) {
            return Err(Shortfall::Wait);
        }
    }

    budget.requests += 1;
    budget.tokens += tokens;
    budget.cost += cost;
    budget.open += 1;
    Ok(Reservation { run: run.clone(), input_estimate, tokens, cost })
}

/// Replaces the reservation with what the attempt used, and adds its usage.
fn settle(
    run: &Run,
    provider: &Provider,
    r: &Reservation,
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
            if r.input_estimate > 0 {
                // Capped, so one odd report cannot make every later call look unaffordable.
                let ratio = (u.input_tokens as f64 / r.input_estimate as f64).min(16.0);
                budget.input_ratio = budget.input_ratio.max(ratio);
            }
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
