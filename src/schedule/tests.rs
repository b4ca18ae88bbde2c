//! The scheduler against the virtual-time host: cool-downs, `Retry-After`, backoff,
//! budgets, timeouts, connection caps and shared limiters. Virtual time makes every
//! wait exact, so the tests assert times to the millisecond.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::future::join_all;
use serde_json::{json, Value};

use super::call::{run_call, Label};
use super::limiter::Limiter;
use super::testing::{self, Refs};
use super::{Run, RunOptions, RUN_OPTIONS};
use crate::decode::Obj;
use crate::error::{Code, Error};
use crate::provider::{CallRequest, CallResponse, Provider};
use crate::registry;
use crate::report::CallRecord;
use crate::sim::{prompt_of, Action, Record, SimHost};
use crate::transport::Runtime;

fn options(value: Value) -> RunOptions {
    let o = Obj::new("", &value, RUN_OPTIONS).unwrap();
    RunOptions::decode(&o, &Refs::default()).unwrap()
}

type Outcome = Vec<(Result<CallResponse, Error>, CallRecord)>;

/// Runs one call per prompt at once in one run and returns each result with its record.
async fn calls(run: &Rc<Run>, provider: &Rc<Provider>, prompts: &[&str]) -> Outcome {
    let futures = prompts.iter().map(|prompt| {
        let run = run.clone();
        let provider = provider.clone();
        let prompt = prompt.to_string();
        async move {
            let record = RefCell::new(CallRecord::default());
            let label = Label::new(json!({ "call": prompt }));
            let result = run_call(&run, &provider, &CallRequest::prompt(&prompt), &label, &record, None).await;
            (result, record.into_inner())
        }
    });
    join_all(futures).await
}

fn run_all(sim: &Rc<SimHost>, opts: RunOptions, provider: &Rc<Provider>, prompts: &[&str]) -> Outcome {
    let run = Run::start(testing::host(sim), &opts, prompts.len());
    sim.run(calls(&run, provider, prompts))
}

fn rate_limited(retry_after: (&str, &str)) -> Action {
    Action::status(429, r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#)
        .header(retry_after.0, retry_after.1)
}

/// Returns a handler that sends `first` to the first `n` requests and a quick
/// success to later ones.
fn first_n(n: usize, first: Action) -> impl Fn(&Record) -> Action {
    move |r: &Record| if r.seq <= n { first.clone() } else { Action::openai("42").after(10.0) }
}

/// Arrival times of the requests after the first `n`.
fn retry_arrivals(sim: &SimHost, n: usize) -> Vec<f64> {
    sim.records().iter().skip(n).map(|r| r.at).collect()
}

#[test]
fn retry_after_seconds_is_never_undercut() {
    let sim = SimHost::new(first_n(3, rate_limited(("retry-after", "2"))));
    let (p, _) = testing::provider();
    let out = run_all(&sim, options(json!({ "maxRetries": 3 })), &p, &["a", "b", "c"]);
    assert!(out.iter().all(|(r, _)| r.is_ok()));
    assert_eq!(sim.records().len(), 6);
    let retries = retry_arrivals(&sim, 3);
    assert!(retries.iter().all(|&t| t >= 2000.0), "{retries:?}");
    // The spread keeps the three retries from landing in the same millisecond.
    let spread = retries.iter().cloned().fold(f64::MIN, f64::max) - retries.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread > 1.0, "{retries:?}");
}

#[test]
fn retry_after_ms_header_is_honoured() {
    let sim = SimHost::new(first_n(1, rate_limited(("retry-after-ms", "1500"))));
    let (p, _) = testing::provider();
    let out = run_all(&sim, options(json!({})), &p, &["a"]);
    assert!(out[0].0.is_ok());
    let retry = retry_arrivals(&sim, 1)[0];
    assert!(retry >= 1500.0, "{retry}");
    assert!(retry <= 1500.0 + super::retry::RETRY_AFTER_SPREAD_MAX_MS, "{retry}");
}

#[test]
fn retry_after_http_date_is_honoured() {
    // The virtual epoch starts at 1_700_000_000_000 ms, which is 22:13:20 GMT.
    let sim = SimHost::new(first_n(1, rate_limited(("retry-after", "Tue, 14 Nov 2023 22:13:22 GMT"))));
    let (p, _) = testing::provider();
    let out = run_all(&sim, options(json!({})), &p, &["a"]);
    assert!(out[0].0.is_ok());
    let retry = retry_arrivals(&sim, 1)[0];
    assert!(retry >= 2000.0, "{retry}");
}

#[test]
fn too_long_retry_after_fails_at_once() {
    let sim = SimHost::new(first_n(1, rate_limited(("retry-after", "3600"))));
    let (p, _) = testing::provider();
    let opts = options(json!({ "concurrency": 1, "retry": { "maxRetryAfterMs": 30000 } }));
    let run = Run::start(testing::host(&sim), &opts, 2);
    let out = sim.run(calls(&run, &p, &["a", "b"]));
    let first = out[0].0.as_ref().unwrap_err();
    assert_eq!(first.code, Code::RetryAfterTooLong);
    assert_eq!(first.detail["requestedMs"], json!(3_600_000.0));
    assert_eq!(first.provider.as_ref().and_then(|p| p.status), Some(429));
    // The queued sibling fails the same way without sending a request.
    let second = out[1].0.as_ref().unwrap_err();
    assert_eq!(second.code, Code::RetryAfterTooLong);
    assert!(out[1].1.attempts.is_empty());
    assert_eq!(sim.records().len(), 1);
    // No call slept: virtual time did not move past the first response.
    assert!(run.elapsed() < 1.0, "{}", run.elapsed());
}

#[test]
fn queued_siblings_wait_out_the_cooldown() {
    let sim = SimHost::new(|r: &Record| match r.seq {
        1 => rate_limited(("retry-after", "1")),
        _ => Action::openai("ok").after(50.0),
    });
    let (p, _) = testing::provider();
    let out = run_all(&sim, options(json!({ "concurrency": 2 })), &p, &["a", "b", "c", "d"]);
    assert!(out.iter().all(|(r, _)| r.is_ok()));
    let records = sim.records();
    // Request 2 was already in flight; every request after the 429 waits 1 s.
    assert!(records.iter().skip(2).all(|r| r.at >= 1000.0), "{:?}", records.iter().map(|r| r.at).collect::<Vec<_>>());
}

#[test]
fn backoff_without_retry_after_is_jittered_and_capped() {
    let sim = SimHost::new(first_n(2, Action::status(503, "busy")));
    let (p, _) = testing::provider();
    let opts = options(json!({ "maxRetries": 2, "retry": { "baseDelayMs": 100, "maxDelayMs": 150 } }));
    let out = run_all(&sim, opts, &p, &["a"]);
    assert!(out[0].0.is_ok());
    let at: Vec<f64> = sim.records().iter().map(|r| r.at).collect();
    assert_eq!(at.len(), 3);
    // Full jitter: the first wait is below base, the second below min(2 * base, max).
    assert!(at[1] - at[0] < 100.0, "{at:?}");
    assert!(at[2] - at[1] < 150.0, "{at:?}");
}

#[test]
fn only_retryable_failures_are_retried() {
    let cases: [(Action, u32); 6] = [
        (Action::status(400, r#"{"error":{"message":"bad param","type":"invalid_request_error"}}"#), 1),
        (Action::status(401, r#"{"error":{"message":"no key"}}"#), 1),
        (Action::status(408, "timeout"), 3),
        (Action::status(409, "conflict"), 3),
        (Action::status(500, "oops"), 3),
        (Action::status(529, r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#), 3),
    ];
    for (action, attempts) in cases {
        let status = action.status;
        let sim = SimHost::new(move |_| action.clone());
        let (p, _) = testing::provider();
        let out = run_all(&sim, options(json!({ "maxRetries": 2, "retry": { "baseDelayMs": 1 } })), &p, &["a"]);
        let err = out[0].0.as_ref().unwrap_err();
        assert_eq!(err.detail["attempts"], json!(attempts), "HTTP {status}");
        assert_eq!(sim.records().len() as u32, attempts, "HTTP {status}");
    }
    let sim = SimHost::new(first_n(1, Action::network_error()));
    let (p, _) = testing::provider();
    let out = run_all(&sim, options(json!({ "retry": { "baseDelayMs": 1 } })), &p, &["a"]);
    assert!(out[0].0.is_ok(), "a network error is retried");
}

#[test]
fn error_body_holds_the_slot_until_read() {
    let sim = SimHost::new(|r: &Record| match r.seq {
        1 => {
            let mut a = Action::status(503, "");
            a.chunks = vec![(0.0, b"<html>".to_vec()), (400.0, b"busy</html>".to_vec())];
            a
        }
        _ => Action::openai("ok"),
    });
    let (p, _) = testing::provider();
    let out = run_all(&sim, options(json!({ "concurrency": 1, "maxRetries": 0 })), &p, &["a", "b"]);
    assert!(out[0].0.is_err());
    let records = sim.records();
    assert_eq!(records[0].closed_at, Some(400.0));
    assert!(records[1].at >= 400.0, "the next request started at {}", records[1].at);
}

#[test]
fn timeout_covers_whole_body() {
    let sim = SimHost::new(|r: &Record| match r.seq {
        1 => {
            let mut a = Action::openai("late");
            let body = a.chunks[0].1.clone();
            a.chunks = vec![(0.0, body[..10].to_vec()), (5000.0, body[10..].to_vec())];
            a
        }
        _ => Action::openai("ok"),
    });
    let (p, _) = testing::provider();
    let out = run_all(&sim, options(json!({ "timeoutMs": 1000, "retry": { "baseDelayMs": 1 } })), &p, &["a"]);
    assert!(out[0].0.is_ok());
    let records = sim.records();
    assert_eq!(records[0].closed_at, Some(1000.0));
    assert!(records[0].aborted);
    let first = out[0].1.attempts[0].error.as_ref().unwrap();
    assert!(first.message.contains("timed out after 1000 ms"), "{}", first.message);
}

#[test]
fn max_requests_is_never_exceeded() {
    let sim = SimHost::new(|_| Action::status(503, "busy"));
    let (p, _) = testing::provider();
    let prompts: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    let prompts: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let opts = options(json!({ "maxRetries": 5, "maxRequests": 50, "retry": { "baseDelayMs": 1 } }));
    let out = run_all(&sim, opts, &p, &prompts);
    assert_eq!(sim.records().len(), 50);
    let budget_errors: Vec<&Error> =
        out.iter().filter_map(|(r, _)| r.as_ref().err()).filter(|e| e.code == Code::BudgetExceeded).collect();
    assert!(!budget_errors.is_empty());
    for err in budget_errors {
        assert!(err.message.contains("maxRequests (50)"), "{}", err.message);
        // The last provider failure is kept as the cause.
        assert_eq!(err.cause.as_ref().and_then(|c| c.provider.as_ref()).and_then(|p| p.status), Some(503));
    }
}

#[test]
fn token_budget_waits_for_reservations_to_settle() {
    let sim = SimHost::new(|_| Action::openai("ok").after(100.0));
    // Each call reserves 41 input tokens (estimate) plus maxTokens 100; it uses 10.
    let (p, _) = testing::provider_with(json!({ "maxTokens": 100 }));
    let opts = options(json!({ "concurrency": 4, "budget": { "tokens": 320 } }));
    let out = run_all(&sim, opts, &p, &["a", "b", "c", "d"]);
    assert!(out.iter().all(|(r, _)| r.is_ok()));
    // Two reservations fit at once; the others waited for them to settle.
    assert_eq!(sim.max_open(), 2);
    let at: Vec<f64> = sim.records().iter().map(|r| r.at).collect();
    assert_eq!(at, vec![0.0, 0.0, 100.0, 100.0]);
}

#[test]
fn undersized_token_budget_fails_at_once() {
    let sim = SimHost::new(|_| Action::openai("ok"));
    let (p, _) = testing::provider_with(json!({ "maxTokens": 100 }));
    let out = run_all(&sim, options(json!({ "budget": { "tokens": 50 } })), &p, &["a"]);
    let err = out[0].0.as_ref().unwrap_err();
    assert_eq!(err.code, Code::BudgetExceeded);
    assert_eq!(err.detail["limit"], "budget.tokens");
    assert!(sim.records().is_empty());
}

#[test]
fn token_budget_learns_a_larger_input_count() {
    // The server counts 123 input tokens for a prompt estimated at 41 (three times as
    // many), and each call uses 10 output tokens of its maxTokens 10. The first call
    // shows the ratio, so later reservations are 3 * 41 + 10 = 133, and the run stops
    // where 133 more would pass the budget.
    let sim = SimHost::new(|_| {
        Action::json(json!({
            "id": "c", "object": "chat.completion", "model": "sim",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": "ok" }, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": 123, "completion_tokens": 10, "total_tokens": 133 }
        }))
    });
    let (p, _) = testing::provider_with(json!({ "maxTokens": 10 }));
    // Without the ratio a third call would reserve 51 and fit (266 + 51 <= 330), then
    // use 133 and end at 399.
    let opts = options(json!({ "concurrency": 1, "budget": { "tokens": 330 } }));
    let run = Run::start(testing::host(&sim), &opts, 1);
    let out = sim.run(calls(&run, &p, &["a", "b", "c", "d"]));
    assert_eq!(sim.records().len(), 2);
    assert_eq!(run.budget.borrow().tokens, 266);
    let codes: Vec<Option<Code>> = out.iter().map(|(r, _)| r.as_ref().err().map(|e| e.code)).collect();
    assert_eq!(codes, vec![None, None, Some(Code::BudgetExceeded), Some(Code::BudgetExceeded)]);
}

#[test]
fn cost_budget_stops_before_overspending() {
    let sim = SimHost::new(|_| Action::openai("ok"));
    // A call may cost (41 * 1 + 100 * 10) / 1e6 = $0.001041; $0.0025 fits two at a time.
    let (p, _) = testing::provider_with(json!({ "maxTokens": 100, "prices": { "m": { "input": 1, "output": 10 } } }));
    let opts = options(json!({ "concurrency": 1, "budget": { "costUsd": 0.0025 } }));
    let run = Run::start(testing::host(&sim), &opts, 3);
    let out = sim.run(calls(&run, &p, &["a", "b", "c"]));
    assert!(out.iter().all(|(r, _)| r.is_ok()), "real usage (9 in, 1 out) is far below the reservation");
    assert!(run.budget.borrow().cost <= 0.0025);
}

#[test]
fn workers_cap_holds_whatever_the_concurrency() {
    let sim = SimHost::new(|_| Action::openai("ok").after(100.0));
    sim.set_runtime(Runtime::Workers);
    let (p, _) = testing::provider();
    let prompts: Vec<String> = (0..12).map(|i| format!("v{i}")).collect();
    let prompts: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let out = run_all(&sim, options(json!({ "concurrency": 20 })), &p, &prompts);
    assert!(out.iter().all(|(r, _)| r.is_ok()));
    assert_eq!(sim.max_open(), 6);
}

#[test]
fn runs_sharing_a_limiter_share_the_workers_cap() {
    let sim = SimHost::new(|_| Action::openai("ok").after(100.0));
    sim.set_runtime(Runtime::Workers);
    let (p, _) = testing::provider();
    let id = registry::add_limiter(Limiter::new(10));
    let opts = options(json!({ "concurrency": 6, "limiter": { "\u{0}": ["limiter", id] } }));
    let a = Run::start(testing::host(&sim), &opts, 6);
    let b = Run::start(testing::host(&sim), &opts, 6);
    let prompts = ["1", "2", "3", "4", "5", "6"];
    let (x, y) = sim.run(futures_util::future::join(calls(&a, &p, &prompts), calls(&b, &p, &prompts)));
    assert!(x.iter().all(|(r, _)| r.is_ok()));
    assert!(y.iter().all(|(r, _)| r.is_ok()));
    assert_eq!(sim.max_open(), 6);
}

#[test]
fn shared_limiter_bounds_several_runs() {
    let sim = SimHost::new(|_| Action::openai("ok").after(100.0));
    let (p, _) = testing::provider();
    let id = registry::add_limiter(Limiter::new(3));
    let opts = options(json!({ "concurrency": 4, "limiter": { "\u{0}": ["limiter", id] } }));
    let a = Run::start(testing::host(&sim), &opts, 4);
    let b = Run::start(testing::host(&sim), &opts, 4);
    let prompts = ["1", "2", "3", "4"];
    let (x, y) = sim.run(futures_util::future::join(calls(&a, &p, &prompts), calls(&b, &p, &prompts)));
    assert!(x.iter().all(|(r, _)| r.is_ok()));
    assert!(y.iter().all(|(r, _)| r.is_ok()));
    assert_eq!(sim.max_open(), 3);
}

#[test]
fn cooldown_is_shared_through_the_limiter() {
    let sim = SimHost::new(|r: &Record| match prompt_of(r).as_str() {
        "a" if r.seq == 1 => rate_limited(("retry-after", "1")),
        _ => Action::openai("ok").after(10.0),
    });
    let (p, _) = testing::provider();
    let id = registry::add_limiter(Limiter::new(4));
    let opts = options(json!({ "limiter": { "\u{0}": ["limiter", id] } }));
    let a = Run::start(testing::host(&sim), &opts, 1);
    let b = Run::start(testing::host(&sim), &opts, 1);
    let host = testing::host(&sim);
    let (x, y) = sim.run(futures_util::future::join(calls(&a, &p, &["a"]), async {
        // The second run starts just after the first one's 429.
        host.sleep(5.0).await;
        calls(&b, &p, &["b"]).await
    }));
    assert!(x[0].0.is_ok());
    assert!(y[0].0.is_ok());
    let b_request = sim.records().into_iter().find(|r| prompt_of(r) == "b").unwrap();
    assert!(b_request.at >= 1000.0, "the other run waited out the cool-down: {}", b_request.at);
}
