//! Provider batch APIs as a mode of `section` and `vote` (`batch: true`): OpenAI's
//! Batch API and Anthropic's Message Batches run the same requests asynchronously at
//! half price, and the results come back as the same report.
//!
//! A batch run builds each request with the provider's own body builder and gives
//! it a stable `custom_id` (`subtask-<id>` or `sample-<index>`). It submits one or
//! more batches per plan phase within the provider's limits and polls them with a
//! growing interval. It reads the result lines by `custom_id` into outcomes, and the
//! durable-engine `finish` functions ([`crate::sectioning::external::finish`],
//! [`crate::voting::external::finish`]) turn those into the report. A plan with
//! dependencies runs one phase after another.
//!
//! The run's `signal` cancels the batches at the provider and collects whatever
//! finished; its `deadlineMs` only stops waiting, and the batches keep running. The
//! handle in `report.batch` (also in `err.report.batch` and in each
//! `batch-submitted` event) lets a later call resume polling with
//! `batch: { resume: handle }`, which `resumeBatch` in the JS package wraps.
//!
//! Adaptive vote rules are rejected because a batch cannot stop early. The judge
//! calls of a `score` rule and a `synthesize` merge run as ordinary calls after the
//! batches.

pub mod api;
pub mod handle;
pub mod job;
pub mod options;
pub mod request;
pub mod results;
#[cfg(test)]
mod sim_server;
#[cfg(test)]
mod tests;

use std::any::Any;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use futures_util::future::select;
use serde_json::{json, Value};

use crate::decode::{self, RefTable};
use crate::error::{Code, Error, Result};
use crate::provider::Provider;
use crate::schedule::cancel::CancelReason;
use crate::schedule::Run;
use crate::sectioning::SectionOptions;
use crate::transport::{AbortReason, Host, SignalSource};
use crate::voting::VoteOptions;

use api::BatchState;
use handle::{batch_json, handle_json, Handle, HandleBatch, Progress};
use job::{without_batch, Job};
use options::{Api, BatchOptions, POLL_GROWTH};
use request::{chunk, BatchRequest, Chunk};
use results::{batch_error, missing_result, outcome_json, validation_error, Collected, LineResult, Source, Span, BATCH_PRICE_FACTOR};

/// Checks whether the options have a `batch` key. `false` and `null` count too, so
/// that this module removes the key before the in-process decoders read the rest.
pub fn is_requested(options: &Value) -> bool {
    options.get("batch").is_some()
}

/// Runs `section(options)` with `options.batch` set.
pub async fn section(host: Rc<dyn Host>, options: &Value, refs: &dyn RefTable) -> Result<Value> {
    let (rest, batch) = without_batch(options);
    let opts = SectionOptions::decode(&rest, refs)?;
    if matches!(batch, Value::Bool(false) | Value::Null) {
        return crate::sectioning::run_plan(host, opts).await;
    }
    let batch = BatchOptions::decode(&batch)?;
    drive(host, Job::section(opts)?, batch).await
}

/// Runs `vote(options)` with `options.batch` set.
pub async fn vote(host: Rc<dyn Host>, options: &Value, refs: &dyn RefTable) -> Result<Value> {
    let (rest, batch) = without_batch(options);
    let opts = VoteOptions::decode(&rest, refs, host.regex())?;
    if matches!(batch, Value::Bool(false) | Value::Null) {
        return crate::voting::run_vote(host, Rc::new(opts)).await;
    }
    let batch = BatchOptions::decode(&batch)?;
    drive(host, Job::vote(opts)?, batch).await
}

/// One batch this run submitted or resumed.
struct Tracked {
    batch: HandleBatch,
    provider: Rc<Provider>,
    /// When it was submitted, in ms from the start of the run; 0 when an earlier run
    /// submitted it.
    submitted_ms: f64,
    state: Option<BatchState>,
    /// Whether its results have been read into outcomes.
    collected: bool,
    cancel_requested: bool,
    /// Whether a failed status check was already reported as a warning.
    warned: bool,
}

impl Tracked {
    fn ended(&self) -> bool {
        self.state.as_ref().is_some_and(|s| s.ended)
    }

    fn progress(&self) -> Progress {
        Progress {
            status: self.state.as_ref().map(|s| s.status.clone()),
            request_counts: self.state.as_ref().map_or(Value::Null, |s| s.counts.clone()),
            base_url: self.provider.base_url.clone(),
            model: self.provider.model.clone(),
        }
    }
}

/// The reason the run stopped before every batch ended.
enum Stop {
    /// The options or the budget do not allow the next phase.
    Failed(Error),
    /// The signal aborted or the deadline passed.
    Cancelled(CancelReason),
}

struct Driver {
    run: Rc<Run>,
    kind: &'static str,
    options: BatchOptions,
    tracked: Vec<Tracked>,
    /// Outcomes by `custom_id`.
    outcomes: HashMap<String, Value>,
    unmatched: Vec<Value>,
    metadata_warned: bool,
}

/// Runs a job through the batch APIs and returns the same report as an in-process run,
/// with `report.batch` added.
async fn drive(host: Rc<dyn Host>, mut job: Job, options: BatchOptions) -> Result<Value> {
    if !options.split {
        check_counts(&job, &options)?;
    }
    let deadline_ms = job.run_options().deadline_ms;
    let run = Run::start(host.clone(), job.run_options(), 1);
    let mut driver = Driver {
        run: run.clone(),
        kind: job.kind(),
        options,
        tracked: Vec::new(),
        outcomes: HashMap::new(),
        unmatched: Vec::new(),
        metadata_warned: false,
    };
    if let Some(handle) = driver.options.resume.clone() {
        if let Err(err) = driver.adopt(&job, &handle) {
            run.finish();
            return Err(err);
        }
    }
    run.events.emit(
        "run-start",
        json!({ "kind": job.kind(), "batch": true, "requests": job.request_count(), "phases": job.phases(), "resumed": driver.tracked.len() }),
    );

    let mut stop = None;
    for phase in 0..job.phases() {
        if job.stop_reason(&driver.outcomes).is_some() {
            break;
        }
        match run.guard(driver.run_phase(&job, phase)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                stop = Some(Stop::Failed(err));
                break;
            }
            Err(reason) => {
                stop = Some(Stop::Cancelled(reason));
                break;
            }
        }
    }
    if let Some(Stop::Cancelled(CancelReason::Aborted(_))) = &stop {
        driver.cancel_all().await;
    }
    if stop.is_some() {
        driver.leave_unfinished(&job, matches!(stop, Some(Stop::Cancelled(CancelReason::Deadline))));
    }

    // The finish step runs under this run's remaining deadline and signal. After a
    // stop, an aborted signal keeps it from starting new calls (a synthesis or a judge).
    let elapsed = run.elapsed();
    {
        let run_options = job.run_options_mut();
        run_options.on_event = None;
        run_options.deadline_ms = run_options.deadline_ms.map(|d| (d - elapsed).max(0.0));
        if stop.is_some() {
            run_options.signal = Some(Rc::new(Stopped));
        }
    }
    if stop.is_some() {
        job.skip_finish_calls();
    }
    let outcomes = job.outcomes_json(&mut driver.outcomes);
    let finished = job.finish(host, &outcomes).await;
    let (mut report, finish_error) = match finished {
        Ok(report) => (report, None),
        Err(mut err) => (err.report.take().unwrap_or_else(|| json!({})), Some(err)),
    };
    driver.annotate(&mut report);
    if let Some(mut usage) = report.get("usage").and_then(crate::provider::parse_usage) {
        usage.cost_usd = report["usage"]["costUsd"].as_f64();
        *run.usage.borrow_mut() = usage;
    }

    let error = match stop {
        Some(Stop::Failed(err)) => Some(err),
        Some(Stop::Cancelled(CancelReason::Deadline)) => Some(Error::new(
            Code::DeadlineExceeded,
            format!(
                "the run did not finish within deadlineMs ({} ms); the batches keep running at the provider, and resumeBatch(err.report.batch, options) collects their results later",
                deadline_ms.unwrap_or(0.0)
            ),
        )),
        Some(Stop::Cancelled(reason)) => Some(run.cancel_error(&reason)),
        None => finish_error,
    };
    let result = match error {
        Some(err) => {
            run.end_event(err.code.as_str());
            Err(err.with_report(report))
        }
        None => {
            run.end_event("ok");
            Ok(report)
        }
    };
    run.finish();
    result
}

/// Rejects, before any request, a plan whose requests for one provider in one phase
/// exceed the request limit when `split` is false.
fn check_counts(job: &Job, options: &BatchOptions) -> Result<()> {
    for phase in 0..job.phases() {
        let mut counts: Vec<(Rc<Provider>, usize)> = Vec::new();
        for i in job.members(phase) {
            let p = job.provider(i);
            match counts.iter_mut().find(|(q, _)| q.id == p.id) {
                Some((_, n)) => *n += 1,
                None => counts.push((p, 1)),
            }
        }
        for (p, n) in counts {
            let api = Api::of(p.kind).expect("custom providers were rejected");
            let limit = options.limits(api).max_requests;
            if n > limit {
                return Err(Error::range_error(
                    "batch.split",
                    format!(
                        "is false, but provider {:?} has {n} requests, above the limit of {limit} requests per {} batch; pass batch: {{ split: true }} to submit several batches, or send fewer requests",
                        p.name,
                        api.label()
                    ),
                )
                .with_detail("limit", json!("requests")));
            }
        }
    }
    Ok(())
}

/// A signal that is already aborted, so the finish step of a stopped run starts no
/// call.
struct Stopped;

impl SignalSource for Stopped {
    fn aborted(&self) -> Option<AbortReason> {
        Some(AbortReason { value: None, is_timeout: false, message: "the batch run stopped".into() })
    }

    fn subscribe(&self, _: Box<dyn Fn(AbortReason)>) -> Box<dyn Any> {
        Box::new(())
    }
}

impl Driver {
    /// Takes over the batches of a handle, after checking that each `custom_id` names
    /// a request of these options in the same phase and for the same API.
    fn adopt(&mut self, job: &Job, handle: &Handle) -> Result<()> {
        if handle.kind != job.kind() {
            return Err(Error::type_error(
                "batch.resume.kind",
                format!(
                    "the handle is from a {} run, but {}() was called; resume it with {}() and the same options, or with resumeBatch(handle, options)",
                    handle.kind,
                    job.kind(),
                    handle.kind
                ),
            ));
        }
        let mut seen = HashSet::new();
        for (b, hb) in handle.batches.iter().enumerate() {
            let path = format!("batch.resume.batches[{b}]");
            let mut provider: Option<Rc<Provider>> = None;
            if hb.custom_ids.is_empty() {
                return Err(Error::type_error(&format!("{path}.customIds"), "is empty; a batch contains at least one request"));
            }
            for (k, custom_id) in hb.custom_ids.iter().enumerate() {
                let at = decode::index(&format!("{path}.customIds"), k);
                let Some(i) = job.index(custom_id) else {
                    return Err(Error::type_error(
                        &at,
                        format!("{custom_id:?} names no {} of these options; pass the options the batch was submitted with", job.unit()),
                    ));
                };
                if !seen.insert(custom_id.clone()) {
                    return Err(Error::type_error(&at, format!("{custom_id:?} appears in two batches of the handle")));
                }
                if job.phase_of(i) != hb.phase {
                    return Err(Error::type_error(
                        &format!("{path}.phase"),
                        format!("is {}, but {custom_id:?} belongs to phase {} of these options; pass the options the batch was submitted with", hb.phase, job.phase_of(i)),
                    ));
                }
                let p = job.provider(i);
                if Api::of(p.kind) != Some(hb.api) {
                    return Err(Error::type_error(
                        &format!("{path}.provider"),
                        format!("the batch went to {}, but these options send {custom_id:?} to the {} provider; pass the options the batch was submitted with", hb.api.name(), p.kind.name()),
                    ));
                }
                provider.get_or_insert(p);
            }
            self.tracked.push(Tracked {
                batch: hb.clone(),
                provider: provider.expect("a batch has at least one request"),
                submitted_ms: 0.0,
                state: None,
                collected: false,
                cancel_requested: false,
                warned: false,
            });
        }
        Ok(())
    }

    fn handle(&self) -> Value {
        handle_json(self.kind, self.tracked.iter().map(|t| batch_json(&t.batch, &t.progress())).collect())
    }

    /// Submits the runnable requests of a phase that no batch contains yet, then waits
    /// for every batch of the phase and reads its results.
    async fn run_phase(&mut self, job: &Job, phase: usize) -> Result<()> {
        let submitted: HashSet<&str> = self.tracked.iter().flat_map(|t| t.batch.custom_ids.iter().map(String::as_str)).collect();
        let mut requests = Vec::new();
        for i in job.runnable(phase, &self.outcomes) {
            let custom_id = job.custom_id(i);
            if submitted.contains(custom_id.as_str()) || self.outcomes.contains_key(&custom_id) {
                continue;
            }
            requests.push(job.build(i, &self.outcomes)?);
        }
        if !requests.is_empty() {
            self.reserve(&requests)?;
            let options = &self.options;
            let chunks = chunk(requests, &|api| options.limits(api), options.split)?;
            for c in chunks {
                self.submit(phase, c).await;
            }
        }
        self.wait_phase(phase).await;
        Ok(())
    }

    /// Counts the requests against `maxRequests`, and their input estimates plus
    /// `maxTokens` (priced at the batch discount) against `budget`, before they are
    /// submitted: a batch cannot be stopped request by request.
    fn reserve(&self, requests: &[BatchRequest]) -> Result<()> {
        let mut budget = self.run.budget.borrow_mut();
        let n = requests.len() as u64;
        if let Some(max) = budget.max_requests {
            if budget.requests + n > max {
                return Err(Error::new(
                    Code::BudgetExceeded,
                    format!(
                        "request budget exceeded: this batch phase has {n} requests but maxRequests ({max}) leaves {}; raise maxRequests",
                        max.saturating_sub(budget.requests)
                    ),
                )
                .with_detail("limit", json!("maxRequests")));
            }
        }
        let tokens: u64 = requests.iter().map(|r| r.input_estimate + r.provider.max_tokens.unwrap_or(0)).sum();
        if let Some(max) = budget.max_tokens {
            if budget.tokens + tokens > max {
                return Err(Error::new(
                    Code::BudgetExceeded,
                    format!(
                        "token budget exceeded: this batch phase may use up to {tokens} tokens (input estimates plus maxTokens) but budget.tokens ({max}) leaves {}; raise budget.tokens",
                        max.saturating_sub(budget.tokens)
                    ),
                )
                .with_detail("limit", json!("budget.tokens")));
            }
        }
        let cost: f64 = requests
            .iter()
            .map(|r| {
                r.provider.price(None).map_or(0.0, |p| {
                    (r.input_estimate as f64 * p.input + r.provider.max_tokens.unwrap_or(0) as f64 * p.output) / 1e6 * BATCH_PRICE_FACTOR
                })
            })
            .sum();
        if let Some(max) = budget.max_cost {
            if budget.cost + cost > max + 1e-12 {
                return Err(Error::new(
                    Code::BudgetExceeded,
                    format!(
                        "cost budget exceeded: this batch phase may cost up to ${cost:.6} at the batch price but budget.costUsd (${max}) leaves ${:.6}; raise budget.costUsd",
                        (max - budget.cost).max(0.0)
                    ),
                )
                .with_detail("limit", json!("budget.costUsd")));
            }
        }
        budget.requests += n;
        budget.tokens += tokens;
        budget.cost += cost;
        Ok(())
    }

    /// Submits one batch. A failed submission fails its requests with the error, as
    /// a failed call fails its subtask or sample.
    ///
    /// NOTE: an abort or a deadline that stops the run while the create request is in
    /// flight leaves it unknown whether the provider created the batch. Such a batch
    /// is in no handle, so nothing cancels or collects it.
    async fn submit(&mut self, phase: usize, c: Chunk) {
        if c.api == Api::Anthropic && !self.options.metadata.is_empty() && !self.metadata_warned {
            self.metadata_warned = true;
            self.run.events.warn("batch-metadata-ignored", "batch.metadata applies to OpenAI batches only; Anthropic message batches take no metadata, so it was not sent");
        }
        let started = self.run.elapsed();
        match api::submit(&self.run, &c, &self.options.metadata).await {
            Ok(submitted) => {
                let t = Tracked {
                    batch: HandleBatch {
                        api: c.api,
                        id: submitted.state.id.clone(),
                        phase,
                        custom_ids: c.custom_ids(),
                        input_file_id: submitted.input_file_id,
                    },
                    provider: c.provider.clone(),
                    submitted_ms: started,
                    state: Some(submitted.state),
                    collected: false,
                    cancel_requested: false,
                    warned: false,
                };
                let (id, api, count) = (t.batch.id.clone(), c.api, c.requests.len());
                self.tracked.push(t);
                let handle = self.handle();
                self.run.events.emit(
                    "batch-submitted",
                    json!({ "batchId": id, "provider": api.name(), "phase": phase, "requests": count, "handle": handle }),
                );
            }
            Err(err) => {
                self.run.events.warn(
                    "batch-submit-failed",
                    &format!("a {} batch of {} requests could not be submitted, so they failed: {}", c.api.name(), c.requests.len(), err.message),
                );
                let span = Span { started_ms: started, finished_ms: self.run.elapsed() };
                for r in &c.requests {
                    let outcome = outcome_json(&c.provider, LineResult::Failed(err.clone()), span);
                    self.outcomes.insert(r.custom_id.clone(), outcome);
                }
            }
        }
    }

    fn pending(&self, phase: usize) -> Vec<usize> {
        (0..self.tracked.len()).filter(|&i| self.tracked[i].batch.phase == phase && !self.tracked[i].collected).collect()
    }

    /// Polls the batches of a phase, waiting `pollIntervalMs` first and then longer
    /// each time up to `maxPollIntervalMs`, and reads each batch's results once it
    /// has ended. Batches taken over from a handle are checked at once.
    async fn wait_phase(&mut self, phase: usize) {
        let mut interval = self.options.poll_interval_ms;
        for i in self.pending(phase) {
            if self.tracked[i].state.is_none() {
                self.poll(i).await;
            }
        }
        loop {
            for i in self.pending(phase) {
                if self.tracked[i].ended() {
                    self.collect(i).await;
                }
            }
            let pending = self.pending(phase);
            if pending.is_empty() {
                return;
            }
            self.run.host.sleep(interval).await;
            interval = (interval * POLL_GROWTH).min(self.options.max_poll_interval_ms);
            for i in pending {
                if !self.tracked[i].ended() {
                    self.poll(i).await;
                }
            }
        }
    }

    /// Checks a batch's status. A failure that may pass is reported once as a warning
    /// and the next check tries again; any other failure fails the batch's requests.
    async fn poll(&mut self, i: usize) {
        let t = &self.tracked[i];
        let result = api::status(&self.run, t.batch.api, &t.provider, &t.batch.id).await;
        match result {
            Ok(state) => self.update(i, state),
            Err(err) if err.is_retryable() => self.warn_once(i, "batch-status-failed", &err),
            Err(err) => self.fail_batch(i, err),
        }
    }

    fn warn_once(&mut self, i: usize, code: &str, err: &Error) {
        let t = &mut self.tracked[i];
        if !t.warned {
            t.warned = true;
            self.run.events.warn(code, &format!("batch {}: {}; the next status check tries again", t.batch.id, err.message));
        }
    }

    /// Records a new state and emits `batch-progress`, and `batch-ended` when the
    /// batch has just ended.
    fn update(&mut self, i: usize, state: BatchState) {
        let t = &mut self.tracked[i];
        let was_ended = t.ended();
        let fields = json!({
            "batchId": t.batch.id,
            "provider": t.batch.api.name(),
            "phase": t.batch.phase,
            "status": state.status,
            "counts": state.counts,
        });
        let ended = state.ended;
        t.state = Some(state);
        t.warned = false;
        self.run.events.emit("batch-progress", fields.clone());
        if ended && !was_ended {
            self.run.events.emit("batch-ended", fields);
        }
    }

    /// Fails every request of a batch that can no longer be read (an unknown id, a
    /// revoked key).
    fn fail_batch(&mut self, i: usize, err: Error) {
        let t = &mut self.tracked[i];
        t.collected = true;
        let span = Span { started_ms: t.submitted_ms, finished_ms: self.run.elapsed() };
        let message = format!("{} batch {} could not be read, so its requests failed: {}", t.batch.api.name(), t.batch.id, err.message);
        self.run.events.warn("batch-lost", &message);
        self.run.events.emit(
            "batch-ended",
            json!({ "batchId": t.batch.id, "provider": t.batch.api.name(), "phase": t.batch.phase, "status": null, "counts": null, "error": err.to_json() }),
        );
        for custom_id in &t.batch.custom_ids {
            if !self.outcomes.contains_key(custom_id) {
                self.outcomes.insert(custom_id.clone(), outcome_json(&t.provider, LineResult::Failed(err.clone()), span));
            }
        }
    }

    /// Reads an ended batch's result files into outcomes. A request without a result
    /// line fails (or is cancelled) with the reason the batch's status gives. The
    /// outcomes are merged only once every file has been read, so a read that stops
    /// midway leaves nothing half-counted.
    async fn collect(&mut self, i: usize) {
        let t = &self.tracked[i];
        let (api, provider, id) = (t.batch.api, t.provider.clone(), t.batch.id.clone());
        let state = t.state.clone().expect("an ended batch has a state");
        let expected: HashMap<String, usize> = t.batch.custom_ids.iter().enumerate().map(|(k, c)| (c.clone(), k)).collect();
        let span = Span { started_ms: t.submitted_ms, finished_ms: self.run.elapsed() };
        let files: Vec<(&str, String)> = match api {
            Api::OpenAi => [("output", &state.output_file_id), ("error", &state.error_file_id)]
                .into_iter()
                .filter_map(|(name, file)| file.as_ref().map(|f| (name, api::results_url(api, &provider, f))))
                .collect(),
            Api::Anthropic => vec![("results", api::results_url(api, &provider, &id))],
        };
        let mut collected = Collected::default();
        for (file, url) in files {
            let source = Source { api, provider: &provider, batch_id: &id, file, expected: &expected, span };
            let mut on_line = |number: usize, text: &str| collected.line(&source, number, text);
            if let Err(err) = api::read_lines(&self.run, api, &provider, url, &mut on_line).await {
                if err.is_retryable() {
                    self.warn_once(i, "batch-results-failed", &err);
                } else {
                    self.fail_batch(i, err);
                }
                return;
            }
        }

        let t = &mut self.tracked[i];
        for (k, custom_id) in t.batch.custom_ids.iter().enumerate() {
            if collected.outcomes.contains_key(custom_id) {
                continue;
            }
            let result = match (api, state.status.as_str()) {
                (Api::OpenAi, "failed") => LineResult::Failed(validation_error(&id, &state.errors, k + 1)),
                (Api::OpenAi, "expired") => LineResult::Failed(batch_error(
                    api,
                    format!("openai batch {id} expired (24 hours) before this request ran"),
                    "batch_expired",
                    true,
                )),
                (Api::OpenAi, "cancelled") => LineResult::Cancelled(batch_error(api, format!("openai batch {id} was cancelled before this request ran"), "batch_cancelled", true)),
                (Api::Anthropic, _) if t.cancel_requested => LineResult::Cancelled(batch_error(api, format!("anthropic batch {id} was canceled before this request ran"), "canceled", true)),
                _ => LineResult::Failed(missing_result(api, &id, &state.status)),
            };
            collected.outcomes.insert(custom_id.clone(), outcome_json(&provider, result, span));
        }
        t.collected = true;

        for (custom_id, outcome) in collected.outcomes {
            match self.outcomes.entry(custom_id) {
                Entry::Occupied(taken) => collected.unmatched.push(
                    json!({ "batchId": id, "file": null, "line": null, "customId": taken.key(), "reason": "duplicate-custom-id" }),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(outcome);
                }
            }
        }
        if !collected.unmatched.is_empty() {
            self.run.events.warn(
                "batch-unmatched-results",
                &format!(
                    "{} batch {id} returned {} result lines that match no request of the batch or repeat one; they are listed in report.batch.unmatched and not counted",
                    api.name(),
                    collected.unmatched.len()
                ),
            );
            self.unmatched.extend(collected.unmatched);
        }
    }

    /// Cancels every batch still running after an abort, waits up to `cancelWaitMs`
    /// for them to end, and reads the results of the requests that finished.
    async fn cancel_all(&mut self) {
        let open: Vec<usize> = (0..self.tracked.len()).filter(|&i| !self.tracked[i].collected).collect();
        if open.is_empty() {
            return;
        }
        let host = self.run.host.clone();
        let limit = self.options.cancel_wait_ms;
        let work = async {
            for &i in &open {
                if self.tracked[i].ended() {
                    continue;
                }
                self.tracked[i].cancel_requested = true;
                let t = &self.tracked[i];
                match api::cancel(&self.run, t.batch.api, &t.provider, &t.batch.id).await {
                    Ok(state) => self.update(i, state),
                    Err(err) => {
                        let t = &self.tracked[i];
                        self.run.events.warn("batch-cancel-failed", &format!("batch {} could not be cancelled: {}", t.batch.id, err.message));
                        self.poll(i).await;
                    }
                }
            }
            let mut interval = self.options.poll_interval_ms;
            loop {
                for &i in &open {
                    if !self.tracked[i].collected && self.tracked[i].ended() {
                        self.collect(i).await;
                    }
                }
                let waiting: Vec<usize> = open.iter().copied().filter(|&i| !self.tracked[i].collected).collect();
                if waiting.is_empty() {
                    return;
                }
                self.run.host.sleep(interval).await;
                interval = (interval * POLL_GROWTH).min(self.options.max_poll_interval_ms);
                for i in waiting {
                    if !self.tracked[i].ended() {
                        self.poll(i).await;
                    }
                }
            }
        };
        select(std::pin::pin!(work), host.sleep(limit)).await;
    }

    /// Gives every request without an outcome after a stop a cancelled outcome with
    /// the reason: its batch still runs (deadline), did not end in time after the
    /// cancel (abort), or was never submitted. Subtasks never submitted get no outcome
    /// here, and `finish` marks them skipped or cancelled.
    fn leave_unfinished(&mut self, job: &Job, deadline: bool) {
        let now = self.run.elapsed();
        for t in &self.tracked {
            if t.collected {
                continue;
            }
            let status = t.state.as_ref().map_or("unknown", |s| s.status.as_str());
            let message = if deadline {
                format!(
                    "the run's deadline passed while {} batch {} was {status}; the batch keeps running, and resumeBatch(err.report.batch, options) collects this result",
                    t.batch.api.name(),
                    t.batch.id
                )
            } else {
                format!(
                    "the run was aborted; {} batch {} was asked to cancel and had not ended within batch.cancelWaitMs ({} ms)",
                    t.batch.api.name(),
                    t.batch.id,
                    self.options.cancel_wait_ms
                )
            };
            let err = batch_error(t.batch.api, message, if deadline { "deadline" } else { "aborted" }, true);
            let span = Span { started_ms: t.submitted_ms, finished_ms: now };
            for custom_id in &t.batch.custom_ids {
                if !self.outcomes.contains_key(custom_id) {
                    self.outcomes.insert(custom_id.clone(), outcome_json(&t.provider, LineResult::Cancelled(err.clone()), span));
                }
            }
        }
        if let Job::Vote { .. } = job {
            // Every sample of a vote needs an outcome; these were never submitted.
            for i in 0..job.request_count() {
                let custom_id = job.custom_id(i);
                if let Entry::Vacant(slot) = self.outcomes.entry(custom_id) {
                    let provider = job.provider(i);
                    let api = Api::of(provider.kind).unwrap_or(Api::OpenAi);
                    let err = batch_error(api, "the run stopped before this sample was submitted".into(), "not_submitted", true);
                    slot.insert(outcome_json(&provider, LineResult::Cancelled(err), Span { started_ms: now, finished_ms: now }));
                }
            }
        }
    }

    /// Adds the handle, the unmatched lines, this run's warnings and its wall time to
    /// the report that `finish` built.
    fn annotate(&self, report: &mut Value) {
        let mut batch = self.handle();
        batch["unmatched"] = Value::Array(self.unmatched.clone());
        report["batch"] = batch;
        let mut warnings = self.run.events.warnings();
        if let Some(Value::Array(more)) = report.get("warnings") {
            warnings.extend(more.iter().cloned());
        }
        report["warnings"] = Value::Array(warnings);
        if report.get("metrics").is_some_and(Value::is_object) {
            report["metrics"]["wallMs"] = json!(crate::report::round_ms(self.run.elapsed()));
            report["metrics"]["batches"] = json!(self.tracked.len());
        }
    }
}
