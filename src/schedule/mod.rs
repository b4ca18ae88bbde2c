//! The scheduler that `complete`, `section` and `vote` share: bounded concurrency,
//! retries with backoff and shared rate-limit cool-downs, per-attempt timeouts, a run
//! deadline, cancellation, and request and token budgets.

pub mod call;
pub mod cancel;
pub mod limiter;
pub mod retry;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use futures_util::future::{select, Either};
use serde_json::json;

use crate::decode::{self, Obj, RefTable};
use crate::error::{Code, Error, Result};
use crate::provider::Usage;
use crate::registry;
use crate::report::Events;
use crate::transport::{Host, HostFunction, Runtime, SignalSource, WORKERS_MAX_OPEN_REQUESTS};
use cancel::{CancelReason, CancelToken};
use limiter::{Cooldowns, Limiter, Notify, Semaphore};
use retry::RetryPolicy;

/// Option names every run accepts.
pub const RUN_OPTIONS: &[&str] = &[
    "concurrency",
    "limiter",
    "timeoutMs",
    "deadlineMs",
    "maxRetries",
    "retry",
    "maxRequests",
    "budget",
    "signal",
    "onEvent",
];

/// Default number of calls in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// The run options shared by `complete`, `section` and `vote`.
#[derive(Clone)]
pub struct RunOptions {
    /// Calls in flight at once.
    pub concurrency: Option<usize>,
    /// A limiter shared with other runs.
    pub limiter: Option<Rc<Limiter>>,
    /// Retry and timeout settings.
    pub retry: RetryPolicy,
    /// The whole run's time limit.
    pub deadline_ms: Option<f64>,
    /// Attempts allowed in all.
    pub max_requests: Option<u64>,
    /// Token limit.
    pub budget_tokens: Option<u64>,
    /// Cost limit in USD.
    pub budget_cost: Option<f64>,
    /// The caller's abort signal.
    pub signal: Option<Rc<dyn SignalSource>>,
    /// The event callback.
    pub on_event: Option<Rc<dyn HostFunction>>,
}

impl RunOptions {
    /// Reads the run options out of an options object.
    pub fn decode(o: &Obj<'_>, refs: &dyn RefTable) -> Result<RunOptions> {
        let mut retry = RetryPolicy::default();
        if let Some(n) = o.integer("maxRetries", 0, 100)? {
            retry.max_retries = n as u32;
        }
        if let Some(ms) = o.number("timeoutMs", 1.0, 2_147_483_647.0)? {
            retry.timeout_ms = ms;
        }
        if let Some(r) = o.get("retry") {
            let ro = Obj::new(&o.at("retry"), r, &["baseDelayMs", "maxDelayMs", "maxRetryAfterMs"])?;
            if let Some(v) = ro.number("baseDelayMs", 0.0, 2_147_483_647.0)? {
                retry.base_delay_ms = v;
            }
            if let Some(v) = ro.number("maxDelayMs", 0.0, 2_147_483_647.0)? {
                retry.max_delay_ms = v;
            }
            if let Some(v) = ro.number("maxRetryAfterMs", 0.0, 2_147_483_647.0)? {
                retry.max_retry_after_ms = v;
            }
        }
        let (budget_tokens, budget_cost) = match o.get("budget") {
            None => (None, None),
            Some(b) => {
                let bo = Obj::new(&o.at("budget"), b, &["tokens", "costUsd"])?;
                (
                    bo.integer("tokens", 1, decode::MAX_SAFE_INTEGER)?.map(|n| n as u64),
                    bo.number("costUsd", 0.0, 1e12)?,
                )
            }
        };
        let signal = match o.get("signal") {
            None => None,
            Some(v) => match decode::marker(v) {
                Some(("signal", idx)) => Some(
                    idx.as_u64()
                        .and_then(|i| refs.signal(i as usize))
                        .ok_or_else(|| Error::type_error(&o.at("signal"), "the signal reference is invalid"))?,
                ),
                _ => {
                    return Err(Error::type_error(
                        &o.at("signal"),
                        format!("expected an AbortSignal, got {}", decode::describe(v)),
                    ))
                }
            },
        };
        Ok(RunOptions {
            concurrency: o.integer("concurrency", 1, 100_000)?.map(|n| n as usize),
            limiter: o.get("limiter").map(|v| registry::limiter(&o.at("limiter"), v)).transpose()?,
            retry,
            deadline_ms: o.number("deadlineMs", 1.0, 2_147_483_647.0)?,
            max_requests: o.integer("maxRequests", 1, decode::MAX_SAFE_INTEGER)?.map(|n| n as u64),
            budget_tokens,
            budget_cost,
            signal,
            on_event: o.function("onEvent", refs)?,
        })
    }
}

/// Requests and spending so far, against the run's limits.
#[derive(Default)]
pub struct Budget {
    /// Attempts allowed in all.
    pub max_requests: Option<u64>,
    /// Attempts started.
    pub requests: u64,
    /// Token limit.
    pub max_tokens: Option<u64>,
    /// Tokens spent or reserved.
    pub tokens: u64,
    /// Cost limit.
    pub max_cost: Option<f64>,
    /// Cost spent or reserved.
    pub cost: f64,
    /// Reservations of attempts still running. While any is open, a call that does
    /// not fit the token or cost budget waits, because a reservation usually settles
    /// below its worst case.
    pub open: usize,
    /// The largest ratio seen so far of the input tokens a provider reported to the
    /// input estimate (0 until a call reports usage). Later reservations scale their
    /// estimate by it, so a server that counts more than estimated, such as one whose
    /// tokenizer splits the text finer, is not underestimated twice.
    pub input_ratio: f64,
}

/// One run in progress.
pub struct Run {
    /// A unique id, in every event.
    pub id: String,
    /// The host.
    pub host: Rc<dyn Host>,
    /// Host time at the start.
    pub started: f64,
    /// Fires on abort, deadline or an early stop.
    pub cancel: CancelToken,
    /// Bounds every call of the run.
    pub concurrency: Rc<Semaphore>,
    /// Bounds HTTP requests: the shared limiter and, on Workers, the connection cap.
    pub http_caps: Vec<Rc<Semaphore>>,
    /// The shared limiter, if any.
    pub shared: Option<Rc<Limiter>>,
    /// Rate-limit cool-downs of this run.
    pub cooldowns: Cooldowns,
    /// Retry settings.
    pub retry: RetryPolicy,
    /// Limits and spending.
    pub budget: RefCell<Budget>,
    /// Fires whenever a reservation settles, for calls waiting for budget.
    pub budget_changed: Notify,
    /// The event stream.
    pub events: Events,
    /// Usage summed over every call.
    pub usage: RefCell<Usage>,
    /// Attempts open now, and the most open at once (`metrics.maxInFlight`).
    in_flight: Rc<Cell<(usize, usize)>>,
    /// Milliseconds calls spent waiting for a shared limiter, the Workers cap, a
    /// rate-limit cool-down, a retry backoff or the budget, summed over calls.
    waited_ms: Cell<f64>,
    deadline_ms: Option<f64>,
    signal: Option<Rc<dyn SignalSource>>,
    signal_guard: RefCell<Option<Box<dyn Any>>>,
    finished: Cell<bool>,
}

/// An open attempt of a run, counted until it is dropped (also when its future is).
pub struct InFlight(Rc<Cell<(usize, usize)>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let (now, max) = self.0.get();
        self.0.set((now.saturating_sub(1), max));
    }
}

thread_local! {
    static RUN_COUNTER: Cell<u64> = const { Cell::new(0) };
}

impl Run {
    /// Starts a run. `natural_width` is the concurrency used when none is given (the
    /// number of calls that could run at once).
    pub fn start(host: Rc<dyn Host>, options: &RunOptions, natural_width: usize) -> Rc<Run> {
        let started = host.now();
        let n = RUN_COUNTER.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        let id = format!("run-{n}-{:06x}", (host.random() * 16_777_216.0) as u32);
        let mut width = options.concurrency.unwrap_or_else(|| natural_width.clamp(1, DEFAULT_CONCURRENCY));
        let events = Events::new(options.on_event.clone(), id.clone(), host.clone(), started);
        let mut http_caps = Vec::new();
        if let Some(shared) = &options.limiter {
            http_caps.push(shared.semaphore.clone());
        }
        if host.runtime() == Runtime::Workers {
            if width > WORKERS_MAX_OPEN_REQUESTS {
                if options.concurrency.is_some() {
                    events.warn(
                        "workers-connection-cap",
                        &format!(
                            "concurrency {width} lowered to {WORKERS_MAX_OPEN_REQUESTS}: Cloudflare Workers allows {WORKERS_MAX_OPEN_REQUESTS} open requests per invocation"
                        ),
                    );
                }
                width = WORKERS_MAX_OPEN_REQUESTS;
            }
            // Runs that share a limiter also share one connection cap, so together
            // they stay within the cap of the invocation.
            // NOTE: a run without a limiter gets a cap of its own, so several such runs
            // in one invocation (a nested run, or runs awaited together) may open more
            // than 6 requests in all. The core cannot tell invocations apart.
            let cap = match &options.limiter {
                Some(shared) => shared.workers_cap.clone(),
                None => Semaphore::new(WORKERS_MAX_OPEN_REQUESTS),
            };
            http_caps.push(cap);
        }

        let run = Rc::new(Run {
            id,
            host,
            started,
            cancel: CancelToken::new(),
            concurrency: Semaphore::new(width),
            http_caps,
            shared: options.limiter.clone(),
            cooldowns: Cooldowns::default(),
            retry: options.retry.clone(),
            budget: RefCell::new(Budget {
                max_requests: options.max_requests,
                max_tokens: options.budget_tokens,
                max_cost: options.budget_cost,
                ..Default::default()
            }),
            budget_changed: Notify::default(),
            events,
            usage: RefCell::new(Usage::default()),
            in_flight: Rc::new(Cell::new((0, 0))),
            waited_ms: Cell::new(0.0),
            deadline_ms: options.deadline_ms,
            signal: options.signal.clone(),
            signal_guard: RefCell::new(None),
            finished: Cell::new(false),
        });
        if let Some(shared) = &run.shared {
            shared.runs.set(shared.runs.get() + 1);
        }
        run.listen_to_signal();
        run
    }

    /// Subscribes one listener to the caller's signal, removed by [`Run::finish`].
    fn listen_to_signal(self: &Rc<Self>) {
        let Some(signal) = &self.signal else { return };
        if let Some(reason) = signal.aborted() {
            self.cancel.cancel(CancelReason::Aborted(reason));
            return;
        }
        let token = self.cancel.clone();
        let guard = signal.subscribe(Box::new(move |reason| token.cancel(CancelReason::Aborted(reason))));
        *self.signal_guard.borrow_mut() = Some(guard);
    }

    /// Computes the maximum number of HTTP requests this run can have open at once:
    /// its concurrency, lowered by the shared limiter and the Workers connection cap.
    pub fn width(&self) -> usize {
        self.http_caps.iter().map(|cap| cap.limit()).fold(self.concurrency.limit(), usize::min)
    }

    /// Counts an attempt as open until the returned guard is dropped.
    pub fn open_attempt(&self) -> InFlight {
        let (now, max) = self.in_flight.get();
        self.in_flight.set((now + 1, max.max(now + 1)));
        InFlight(self.in_flight.clone())
    }

    /// The most attempts this run had open at once: calls that held every permit they
    /// needed, so a shared limiter or the Workers cap lowers it.
    pub fn max_in_flight(&self) -> usize {
        self.in_flight.get().1
    }

    /// Adds the time since `since` (host time) to the time calls spent waiting.
    pub fn add_wait(&self, since: f64) {
        self.waited_ms.set(self.waited_ms.get() + (self.host.now() - since).max(0.0));
    }

    /// Milliseconds calls spent waiting (see [`Run::add_wait`]), summed over calls.
    pub fn waited_ms(&self) -> f64 {
        self.waited_ms.get()
    }

    /// Whether the run's deadline has passed (its timer may not have fired yet).
    pub fn past_deadline(&self) -> bool {
        self.deadline_ms.is_some_and(|deadline| self.elapsed() >= deadline)
    }

    /// Milliseconds since the run started.
    pub fn elapsed(&self) -> f64 {
        self.host.now() - self.started
    }

    /// Ends the run: removes the signal listener and releases the shared limiter.
    pub fn finish(&self) {
        if self.finished.replace(true) {
            return;
        }
        self.signal_guard.borrow_mut().take();
        if let Some(shared) = &self.shared {
            shared.runs.set(shared.runs.get().saturating_sub(1));
        }
    }

    /// Runs `future` until it completes or the run is cancelled (by the signal, the
    /// deadline or an early stop). On cancellation `future` is dropped, which aborts
    /// every request inside it.
    pub async fn guard<F: Future>(&self, future: F) -> std::result::Result<F::Output, CancelReason> {
        if let Some(reason) = self.cancel.reason() {
            return Err(reason);
        }
        let future = std::pin::pin!(future);
        let cancelled = std::pin::pin!(self.cancel.cancelled());
        let stop = async {
            match self.deadline_ms {
                Some(deadline) => {
                    let remaining = deadline - self.elapsed();
                    let deadline_sleep = self.host.sleep(remaining.max(0.0));
                    match select(cancelled, deadline_sleep).await {
                        Either::Left((reason, _)) => reason,
                        Either::Right(_) => {
                            self.cancel.cancel(CancelReason::Deadline);
                            CancelReason::Deadline
                        }
                    }
                }
                None => cancelled.await,
            }
        };
        let stop = std::pin::pin!(stop);
        match select(future, stop).await {
            Either::Left((output, _)) => Ok(output),
            Either::Right((reason, _)) => Err(reason),
        }
    }

    /// The error a cancelled run rejects with.
    pub fn cancel_error(&self, reason: &CancelReason) -> Error {
        match reason {
            CancelReason::Aborted(abort) => {
                let mut err = Error::new(Code::Aborted, format!("the run was aborted: {}", abort.message));
                err.host_cause = abort.value.clone();
                err.detail.insert("timeout".into(), json!(abort.is_timeout));
                err
            }
            CancelReason::Deadline => Error::new(
                Code::DeadlineExceeded,
                format!(
                    "the run did not finish within deadlineMs ({} ms); raise deadlineMs or lower the work",
                    self.deadline_ms.unwrap_or(0.0)
                ),
            ),
            CancelReason::Decided | CancelReason::Stopped => Error::new(Code::Aborted, "the run was stopped"),
        }
    }

    /// Base fields of the `run-end` event and the report's timing.
    pub fn end_event(&self, status: &str) {
        self.events.emit(
            "run-end",
            json!({ "status": status, "wallMs": crate::report::round_ms(self.elapsed()), "usage": self.usage.borrow().to_json() }),
        );
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Decodes a `budget.tokens` requirement: every provider needs `maxTokens`, so that
/// each call's reservation is bounded.
pub fn check_budget_providers(
    options: &RunOptions,
    providers: &[(String, &crate::provider::Provider)],
) -> Result<()> {
    for (path, provider) in providers {
        if options.budget_tokens.is_some() && provider.max_tokens.is_none() {
            return Err(Error::type_error(
                path,
                format!(
                    "budget.tokens is set, so provider {:?} needs maxTokens: each call reserves its input estimate plus maxTokens before it starts",
                    provider.name
                ),
            ));
        }
        if options.budget_cost.is_some() && provider.price(None).is_none() {
            return Err(Error::type_error(
                path,
                format!(
                    "budget.costUsd is set, so provider {:?} needs prices ({{ input, output }} in USD per million tokens)",
                    provider.name
                ),
            ));
        }
    }
    Ok(())
}
