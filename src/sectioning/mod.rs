//! Sectioning: subtasks run concurrently (each as soon as its own dependencies
//! finish), then their outputs are merged.

pub mod external;
pub mod merge;
pub mod plan;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::{json, Map, Value};

use crate::decode::{self, Obj, RefTable};
use crate::error::{Code, Error, Result};
use crate::provider::{CallResponse, Provider};
use crate::registry;
use crate::report::{round_ms, CallRecord, Status};
use crate::schedule::call::{no_usage, run_call, usage_json, Label};
use crate::schedule::cancel::CancelReason;
use crate::schedule::{check_budget_providers, Run, RunOptions, RUN_OPTIONS};
use crate::task::substitute;
use crate::transport::Host;
use merge::{merge_json, Conflicts};
use plan::Plan;

/// What happens when a subtask fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Stop at the first required failure and reject.
    FailFast,
    /// Run everything and resolve with what succeeded.
    Settle,
    /// Reject with `QUORUM_NOT_MET` unless at least this many required subtasks
    /// succeed; optional subtasks (`required: false`) do not count toward it.
    MinSuccesses(usize),
}

/// How outputs are combined.
pub enum Merge {
    /// Outputs joined by a separator, in declaration order.
    Ordered(String),
    /// An object of outputs keyed by subtask id.
    Keyed,
    /// JSON from each output, deep-merged.
    Json(Conflicts),
    /// One more call that writes the result from the outputs.
    Synthesize {
        /// The prompt, with `{{id}}` or `{{outputs}}` placeholders.
        prompt: String,
        /// The provider of the extra call.
        provider: Rc<Provider>,
    },
}

const OPTIONS: &[&str] = &["provider", "subtasks", "failure", "merge", "separator", "conflicts"];

/// Section options, decoded and checked.
pub struct SectionOptions {
    /// The plan.
    pub plan: Plan,
    /// The failure policy.
    pub failure: Failure,
    /// The merge.
    pub merge: Merge,
    /// Run options.
    pub run: RunOptions,
}

impl SectionOptions {
    /// Reads and checks every option before any request.
    pub fn decode(options: &Value, refs: &dyn RefTable) -> Result<SectionOptions> {
        let allowed: Vec<&str> = OPTIONS.iter().chain(RUN_OPTIONS).copied().collect();
        let o = Obj::new("", options, &allowed)?;
        let provider = o.get("provider").map(|v| registry::provider("provider", v)).transpose()?;
        let subtasks = o.get("subtasks").ok_or_else(|| {
            Error::type_error("subtasks", "is required; pass an array of { id, prompt, dependsOn? }")
        })?;
        let plan = Plan::decode(subtasks, provider.as_ref())?;

        let failure = match o.get("failure") {
            None => Failure::Settle,
            Some(Value::String(s)) if s == "fail-fast" => Failure::FailFast,
            Some(Value::String(s)) if s == "settle" => Failure::Settle,
            Some(v @ Value::Object(_)) => {
                let fo = Obj::new("failure", v, &["minSuccesses"])?;
                let n = fo.integer("minSuccesses", -decode::MAX_SAFE_INTEGER, decode::MAX_SAFE_INTEGER)?.ok_or_else(|| {
                    Error::type_error("failure.minSuccesses", "is required; pass the number of subtasks that must succeed")
                })?;
                if n < 1 {
                    return Err(Error::range_error("failure.minSuccesses", format!("is {n}; pass at least 1 (with no minimum, use failure: \"settle\")")));
                }
                let required = plan.subtasks.iter().filter(|s| s.required).count();
                if n as usize > required {
                    return Err(Error::range_error(
                        "failure.minSuccesses",
                        format!("is {n}, but only {required} subtasks are required and count toward it; lower it or mark more subtasks required"),
                    ));
                }
                Failure::MinSuccesses(n as usize)
            }
            Some(v) => {
                return Err(Error::type_error(
                    "failure",
                    format!("expected \"fail-fast\", \"settle\" or {{ minSuccesses }}, got {}", decode::describe(v)),
                ))
            }
        };
        let conflicts = match o.str("conflicts")? {
            None => Conflicts::Collect,
            Some(s) => Conflicts::parse(s).ok_or_else(|| {
                Error::type_error("conflicts", format!("expected \"collect\", \"first\", \"last\" or \"error\", got {s:?}"))
            })?,
        };

        let separator = o.str("separator")?.unwrap_or("\n\n").to_string();
        let merge = match o.get("merge") {
            None => Merge::Ordered(separator),
            Some(Value::String(s)) => match s.as_str() {
                "ordered" => Merge::Ordered(separator),
                "keyed" => Merge::Keyed,
                "json" => Merge::Json(conflicts),
                other => {
                    return Err(Error::type_error(
                        "merge",
                        format!("expected \"ordered\", \"keyed\", \"json\" or {{ synthesize: {{ prompt }} }}, got {other:?}"),
                    ))
                }
            },
            Some(v @ Value::Object(_)) => {
                let mo = Obj::new("merge", v, &["synthesize"])?;
                let s = mo.get("synthesize").ok_or_else(|| Error::type_error("merge.synthesize", "is required"))?;
                let so = Obj::new("merge.synthesize", s, &["prompt", "provider"])?;
                let prompt = so.required_str("prompt")?.to_string();
                let synth_provider = match so.get("provider") {
                    Some(p) => registry::provider(&so.at("provider"), p)?,
                    None => provider.clone().ok_or_else(|| {
                        Error::type_error("merge.synthesize.provider", "is required when the run has no `provider`")
                    })?,
                };
                for ph in crate::task::placeholders(&prompt) {
                    if ph.name != "outputs" && !plan.subtasks.iter().any(|s| s.id == ph.name) {
                        return Err(Error::new(
                            Code::UnknownDependency,
                            format!("merge.synthesize.prompt: {{{{{}}}}} names no subtask; use a subtask id or {{{{outputs}}}}", ph.name),
                        ));
                    }
                }
                Merge::Synthesize { prompt, provider: synth_provider }
            }
            Some(v) => return Err(Error::type_error("merge", format!("expected a string or an object, got {}", decode::describe(v)))),
        };
        // An option that the chosen merge never reads is a mistake in the call, not a
        // default to ignore.
        let merge_name = match &merge {
            Merge::Ordered(_) => "\"ordered\"",
            Merge::Keyed => "\"keyed\"",
            Merge::Json(_) => "\"json\"",
            Merge::Synthesize { .. } => "{ synthesize }",
        };
        if o.get("separator").is_some() && !matches!(merge, Merge::Ordered(_)) {
            return Err(Error::type_error("separator", format!("applies only to merge \"ordered\", but merge is {merge_name}; remove it")));
        }
        if o.get("conflicts").is_some() && !matches!(merge, Merge::Json(_)) {
            return Err(Error::type_error("conflicts", format!("applies only to merge \"json\", but merge is {merge_name}; remove it")));
        }

        let run = RunOptions::decode(&o, refs)?;
        let mut providers: Vec<(String, &Provider)> = plan
            .subtasks
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("subtasks[{i}].provider"), s.provider.as_ref()))
            .collect();
        if let Merge::Synthesize { provider, .. } = &merge {
            providers.push(("merge.synthesize.provider".into(), provider.as_ref()));
        }
        check_budget_providers(&run, &providers)?;
        Ok(SectionOptions { plan, failure, merge, run })
    }
}

/// Per-subtask state during the run.
struct State {
    status: Option<Status>,
    record: Rc<RefCell<CallRecord>>,
    response: Option<CallResponse>,
    error: Option<Error>,
}

/// Runs `section(options)`.
pub async fn section(host: Rc<dyn Host>, options: &Value, refs: &dyn RefTable) -> Result<Value> {
    if crate::batch::is_requested(options) {
        return crate::batch::section(host, options, refs).await;
    }
    let opts = SectionOptions::decode(options, refs)?;
    run_plan(host, opts).await
}

/// Runs a decoded plan.
pub async fn run_plan(host: Rc<dyn Host>, opts: SectionOptions) -> Result<Value> {
    let plan = Rc::new(opts.plan);
    let n = plan.subtasks.len();
    let widest = plan.phases.iter().map(Vec::len).max().unwrap_or(1);
    let run = Run::start(host, &opts.run, widest);
    run.events.emit("run-start", json!({ "kind": "section", "subtasks": n, "phases": plan.phases_json() }));

    let states: Rc<RefCell<Vec<State>>> = Rc::new(RefCell::new(
        (0..n)
            .map(|_| State { status: None, record: Rc::new(RefCell::new(CallRecord::default())), response: None, error: None })
            .collect(),
    ));
    let mut pool = FuturesUnordered::new();
    let start = |i: usize, pool: &mut FuturesUnordered<_>| {
        let run = run.clone();
        let plan = plan.clone();
        let record = states.borrow()[i].record.clone();
        // The outputs are copied now, when every dependency has finished, and filled
        // in with one pass, so placeholder-like text inside an output stays literal.
        let outputs: Vec<(String, String)> = plan.subtasks[i]
            .deps
            .iter()
            .map(|&d| (plan.subtasks[d].id.clone(), states.borrow()[d].response.as_ref().map(|r| r.text.clone()).unwrap_or_default()))
            .collect();
        let future: futures_util::future::LocalBoxFuture<'static, (usize, Result<CallResponse>)> = Box::pin(async move {
            let subtask = &plan.subtasks[i];
            let fill = |text: &str| substitute(text, &|name| outputs.iter().find(|(id, _)| id == name).map(|(_, out)| out.clone()));
            let mut request = subtask.input.request();
            for m in &mut request.messages {
                m.content = fill(&m.content);
            }
            request.system = request.system.as_deref().map(fill);
            request.temperature = subtask.temperature;
            let label = Label::new(json!({ "subtask": subtask.id }));
            let result = run_call(&run, &subtask.provider, &request, &label, &record, None).await;
            (i, result)
        });
        pool.push(future);
    };
    for &i in &plan.phases[0] {
        start(i, &mut pool);
    }

    // Drive the pool until every subtask has an end state, or the run stops early.
    let mut stop: Option<(Error, &'static str)> = None;
    while !pool.is_empty() {
        let (i, result) = match run.guard(pool.next()).await {
            Ok(Some(done)) => done,
            Ok(None) => break,
            Err(reason) => {
                let cancelled_because = match reason {
                    CancelReason::Deadline => "deadline",
                    _ => "aborted",
                };
                stop = Some((run.cancel_error(&reason), cancelled_because));
                break;
            }
        };
        let ok = result.is_ok();
        {
            let mut st = states.borrow_mut();
            match result {
                Ok(response) => {
                    st[i].status = Some(Status::Ok);
                    st[i].response = Some(response);
                }
                Err(err) => {
                    st[i].status = Some(Status::Failed);
                    st[i].error = Some(err);
                }
            }
        }
        emit_subtask_end(&run, &plan, &states.borrow(), i);

        if ok {
            // A dependent starts as soon as its own dependencies are done.
            for &j in &plan.dependents[i] {
                let ready = plan.subtasks[j].deps.iter().all(|&d| states.borrow()[d].status == Some(Status::Ok));
                if ready && states.borrow()[j].status.is_none() {
                    start(j, &mut pool);
                }
            }
        } else {
            let skipped = skip_dependents(&run, &plan, &mut states.borrow_mut(), i);
            if opts.failure == Failure::FailFast {
                // A required subtask fails the run also when it is skipped because an
                // optional one it depends on failed: either way its output is missing.
                let err = states.borrow()[i].error.clone().expect("a failed subtask has an error");
                let failed_id = &plan.subtasks[i].id;
                let rejection = if plan.subtasks[i].required {
                    Some(fail_fast_error(failed_id, err))
                } else {
                    skipped.iter().find(|&&j| plan.subtasks[j].required).map(|&j| {
                        let id = &plan.subtasks[j].id;
                        let message = format!(
                            "subtask {id:?} is required but was skipped because {failed_id:?} failed, and failure is \"fail-fast\": {}",
                            err.message
                        );
                        let mut e = fail_fast_error(id, err);
                        e.message = message;
                        e
                    })
                };
                if let Some(err) = rejection {
                    run.cancel.cancel(CancelReason::Stopped);
                    stop = Some((err, "fail-fast"));
                    break;
                }
            }
        }
        if let Failure::MinSuccesses(min) = opts.failure {
            let st = states.borrow();
            let counted = || st.iter().zip(&plan.subtasks).filter(|(_, t)| t.required).map(|(s, _)| s);
            let ok_count = counted().filter(|s| s.status == Some(Status::Ok)).count();
            let open = counted().filter(|s| s.status.is_none()).count();
            if ok_count + open < min {
                drop(st);
                run.cancel.cancel(CancelReason::Stopped);
                stop = Some((quorum_error(&plan, &states.borrow(), min), "quorum-unreachable"));
                break;
            }
        }
    }
    // Dropping the pool aborts every request still open and ends every retry sleep.
    drop(pool);
    let cancelled_because = stop.as_ref().map_or("stopped", |(_, because)| *because);
    cancel_unfinished(&run, &plan, &mut states.borrow_mut(), cancelled_because);

    let mut report = build_report(&run, &plan, &states.borrow());
    if let Some((err, _)) = stop {
        return Err(reject(&run, &plan, &states.borrow(), report, err));
    }
    if let Failure::MinSuccesses(min) = opts.failure {
        if required_successes(&plan, &states.borrow()) < min {
            let err = quorum_error(&plan, &states.borrow(), min);
            return Err(reject(&run, &plan, &states.borrow(), report, err));
        }
    }
    if states.borrow().iter().all(|s| s.status != Some(Status::Ok)) {
        run.events.warn("all-failed", "every subtask failed, so the output is empty; see results for each error");
    }

    let merged = merge_outputs(&run, &plan, &states.borrow(), &opts.merge).await;
    match merged {
        Ok((output, conflicts, synthesis)) => {
            report["output"] = output;
            report["conflicts"] = Value::Array(conflicts);
            if let Some(s) = synthesis {
                report["synthesis"] = s;
            }
            finalize_report(&run, &plan, &states.borrow(), &mut report);
            run.end_event("ok");
            run.finish();
            Ok(report)
        }
        Err((err, synthesis)) => {
            if let Some(s) = synthesis {
                report["synthesis"] = s;
            }
            if let Some(conflicts) = err.detail.get("conflicts") {
                report["conflicts"] = conflicts.clone();
            }
            Err(reject(&run, &plan, &states.borrow(), report, err))
        }
    }
}

/// Marks every subtask without an end state as cancelled, closes its open attempt,
/// and emits `attempt-end`, `subtask-end` and `cancelled` for it.
fn cancel_unfinished(run: &Run, plan: &Plan, states: &mut [State], because: &str) {
    let at = run.elapsed();
    for i in 0..states.len() {
        if states[i].status.is_some() {
            continue;
        }
        states[i].status = Some(Status::Cancelled);
        let id = &plan.subtasks[i].id;
        let open_attempt = {
            let mut rec = states[i].record.borrow_mut();
            let open = rec.attempts.last().filter(|a| a.status.is_none()).map(|a| (rec.attempts.len(), a.started_ms));
            rec.cancel_open_attempt(at);
            open
        };
        if let Some((number, started)) = open_attempt {
            run.events.emit(
                "attempt-end",
                json!({ "subtask": id, "attempt": number, "status": "cancelled", "error": null, "durationMs": round_ms(at - started) }),
            );
        }
        emit_subtask_end(run, plan, states, i);
        run.events.emit("cancelled", json!({ "subtask": id, "reason": because }));
    }
}

/// Finishes a run that rejects: the report keeps every subtask, its metrics and
/// warnings, and travels with the error.
fn reject(run: &Run, plan: &Plan, states: &[State], mut report: Value, err: Error) -> Error {
    finalize_report(run, plan, states, &mut report);
    run.end_event(err.code.as_str());
    run.finish();
    err.with_report(report)
}

fn emit_subtask_end(run: &Run, plan: &Plan, states: &[State], i: usize) {
    let s = &states[i];
    let rec = s.record.borrow();
    run.events.emit(
        "subtask-end",
        json!({
            "subtask": plan.subtasks[i].id,
            "status": s.status.map(Status::as_str),
            "error": s.error.as_ref().map(Error::to_json),
            "startedMs": rec.started_ms().map(round_ms),
            "finishedMs": rec.finished_ms().map(round_ms),
        }),
    );
}

/// Marks every subtask downstream of `failed` as skipped and returns them.
fn skip_dependents(run: &Run, plan: &Plan, states: &mut [State], failed: usize) -> Vec<usize> {
    let mut skipped = Vec::new();
    let mut stack = plan.dependents[failed].clone();
    while let Some(j) = stack.pop() {
        if states[j].status.is_some() {
            continue;
        }
        states[j].status = Some(Status::Skipped);
        let because: Vec<&str> = plan.subtasks[j]
            .deps
            .iter()
            .filter(|&&d| matches!(states[d].status, Some(Status::Failed | Status::Skipped)))
            .map(|&d| plan.subtasks[d].id.as_str())
            .collect();
        states[j].error = Some(Error::new(
            Code::ProviderError,
            format!("skipped because {} did not succeed", because.iter().map(|id| format!("{id:?}")).collect::<Vec<_>>().join(", ")),
        ).with_detail("skippedBecause", json!(because)));
        emit_subtask_end(run, plan, states, j);
        skipped.push(j);
        stack.extend(plan.dependents[j].iter().copied());
    }
    skipped
}

fn fail_fast_error(id: &str, cause: Error) -> Error {
    let mut err = Error::new(
        cause.code,
        format!("subtask {id:?} failed and failure is \"fail-fast\": {}", cause.message),
    );
    err.provider = cause.provider.clone();
    err.host_cause = cause.host_cause.clone();
    err.detail = cause.detail.clone();
    err.detail.insert("subtask".into(), json!(id));
    err.cause = Some(Box::new(cause));
    err
}

/// Successes among the subtasks that count toward `minSuccesses`.
fn required_successes(plan: &Plan, states: &[State]) -> usize {
    states.iter().zip(&plan.subtasks).filter(|(s, t)| t.required && s.status == Some(Status::Ok)).count()
}

fn quorum_error(plan: &Plan, states: &[State], min: usize) -> Error {
    let ok = required_successes(plan, states);
    let required = plan.subtasks.iter().filter(|s| s.required).count();
    let mut err = Error::new(
        Code::QuorumNotMet,
        format!(
            "only {ok} of {required} required subtasks succeeded, fewer than failure.minSuccesses ({min}); the failures are in err.errors and err.report.results"
        ),
    );
    err.errors = states
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.error.clone().map(|e| e.with_detail("subtask", json!(plan.subtasks[i].id))))
        .collect();
    err
}

fn build_report(run: &Run, plan: &Plan, states: &[State]) -> Value {
    let results: Vec<Value> = plan
        .subtasks
        .iter()
        .zip(states)
        .map(|(subtask, s)| {
            let rec = s.record.borrow();
            json!({
                "id": subtask.id,
                "status": s.status.unwrap_or(Status::Cancelled).as_str(),
                "text": s.response.as_ref().map(|r| r.text.clone()),
                "finishReason": s.response.as_ref().map(|r| r.finish_reason.as_str().to_string()),
                "error": s.error.as_ref().map(Error::to_json),
                "attempts": rec.attempts_json(),
                "startedMs": rec.started_ms().map(round_ms),
                "finishedMs": rec.finished_ms().map(round_ms),
                "usage": if rec.attempts.is_empty() { no_usage() } else { usage_json(&rec) },
                "provider": subtask.provider.name,
            })
        })
        .collect();
    json!({
        "runId": run.id,
        "output": Value::Null,
        "results": results,
        "conflicts": [],
        "metrics": Value::Null,
        "usage": Value::Null,
        "warnings": [],
    })
}

/// Fills in metrics, usage and warnings, which the merge step may still change.
fn finalize_report(run: &Run, plan: &Plan, states: &[State], report: &mut Value) {
    let wall = run.elapsed();
    let busy: f64 = states.iter().map(|s| s.record.borrow().busy_ms()).sum::<f64>()
        + report.get("synthesis").and_then(|s| s.get("busyMs")).and_then(Value::as_f64).unwrap_or(0.0);
    let parallelism = if wall > 0.0 { busy / wall } else { 0.0 };
    // What the plan allows: subtasks per phase on average, within the number of
    // requests the run may have open at once.
    let expected = (plan.subtasks.len() as f64 / plan.phases.len() as f64).min(run.width() as f64);
    let (critical_ms, critical_path) = plan.critical_path(&|i| {
        let rec = states[i].record.borrow();
        match (rec.started_ms(), rec.finished_ms()) {
            (Some(a), Some(b)) => b - a,
            _ => 0.0,
        }
    });
    // Only a run whose calls spent more time waiting than in flight is warned about:
    // calls that return at once also make busy / wall small, with nothing to fix.
    let waited_more = run.waited_ms() > busy;
    if expected >= 2.0 && parallelism < 1.5 && waited_more && states.iter().filter(|s| s.status == Some(Status::Ok)).count() >= 2 {
        run.events.warn(
            "low-parallelism",
            &format!(
                "the plan allowed a parallelism of {expected:.1} but the run reached {parallelism:.2}: calls spent most of the run waiting (for a shared limiter, a rate-limit cool-down or a retry backoff) instead of in flight"
            ),
        );
    }
    report["metrics"] = json!({
        "wallMs": round_ms(wall),
        "busyMs": round_ms(busy),
        "parallelism": (parallelism * 100.0).round() / 100.0,
        "expectedParallelism": (expected * 100.0).round() / 100.0,
        "criticalPathMs": round_ms(critical_ms),
        "criticalPath": critical_path.iter().map(|&i| plan.subtasks[i].id.as_str()).collect::<Vec<_>>(),
        "phases": plan.phases_json(),
        "maxInFlight": run.max_in_flight(),
        "requests": run.budget.borrow().requests,
    });
    report["usage"] = run.usage.borrow().to_json();
    report["warnings"] = Value::Array(run.events.warnings());
}

type MergeOk = (Value, Vec<Value>, Option<Value>);

async fn merge_outputs(
    run: &Rc<Run>,
    plan: &Plan,
    states: &[State],
    merge: &Merge,
) -> std::result::Result<MergeOk, (Error, Option<Value>)> {
    let ok: Vec<(usize, &str)> = states
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.response.as_ref().map(|r| (i, r.text.as_str())))
        .collect();
    match merge {
        Merge::Ordered(sep) => {
            let output = ok.iter().map(|(_, t)| *t).collect::<Vec<_>>().join(sep);
            run.events.emit("merge", json!({ "strategy": "ordered", "parts": ok.len() }));
            Ok((json!(output), Vec::new(), None))
        }
        Merge::Keyed => {
            let mut map = Map::new();
            for (i, text) in &ok {
                map.insert(plan.subtasks[*i].id.clone(), json!(text));
            }
            run.events.emit("merge", json!({ "strategy": "keyed", "parts": ok.len() }));
            Ok((Value::Object(map), Vec::new(), None))
        }
        Merge::Json(policy) => {
            let mut parts = Vec::new();
            for (i, text) in &ok {
                match crate::jsontext::find_json(text) {
                    Some(v) => parts.push((plan.subtasks[*i].id.clone(), v)),
                    None => run.events.warn(
                        "not-json",
                        &format!(
                            "subtask {:?} returned no JSON that could be read (or JSON nested deeper than 128 levels), so it is left out of the merge",
                            plan.subtasks[*i].id
                        ),
                    ),
                }
            }
            match merge_json(&parts, *policy) {
                Ok((value, conflicts)) => {
                    run.events.emit("merge", json!({ "strategy": "json", "parts": parts.len(), "conflicts": conflicts.len() }));
                    Ok((value, conflicts.iter().map(|c| c.to_json()).collect(), None))
                }
                Err(err) => Err((err, None)),
            }
        }
        Merge::Synthesize { prompt, provider } => synthesize(run, plan, states, prompt, provider).await,
    }
}

async fn synthesize(
    run: &Rc<Run>,
    plan: &Plan,
    states: &[State],
    template: &str,
    provider: &Rc<Provider>,
) -> std::result::Result<MergeOk, (Error, Option<Value>)> {
    let output_of = |i: usize| states[i].response.as_ref().map(|r| r.text.clone());
    let mut blocks = String::new();
    let mut missing = Vec::new();
    for (i, s) in plan.subtasks.iter().enumerate() {
        match output_of(i) {
            Some(text) => blocks.push_str(&format!("<output id=\"{}\">\n{}\n</output>\n", s.id, text)),
            None => missing.push(s.id.clone()),
        }
    }
    if missing.len() == plan.subtasks.len() {
        // Nothing to combine: a call would only pay for a reply about missing parts.
        let synthesis = json!({
            "status": "skipped",
            "text": null,
            "error": null,
            "missing": missing,
            "attempts": [],
            "usage": usage_json(&CallRecord::default()),
            "busyMs": 0,
        });
        run.events.emit("merge", json!({ "strategy": "synthesize", "parts": 0, "missing": missing }));
        return Ok((json!(""), Vec::new(), Some(synthesis)));
    }
    let mut missing_note = String::new();
    if !missing.is_empty() {
        missing_note = format!(
            "These parts are missing because their subtasks did not succeed: {}. Work with the parts you have and say what is missing.\n",
            missing.join(", ")
        );
    }
    let found = crate::task::placeholders(template);
    let has_placeholders = !found.is_empty();
    let has_outputs = found.iter().any(|p| p.name == "outputs");
    let lookup = |name: &str| -> Option<String> {
        if name == "outputs" {
            return Some(format!("{blocks}{missing_note}"));
        }
        let i = plan.subtasks.iter().position(|s| s.id == name)?;
        Some(output_of(i).unwrap_or_else(|| format!("[missing: subtask {name:?} did not succeed]")))
    };
    let mut prompt = substitute(template, &lookup);
    if !has_placeholders {
        prompt = format!("{prompt}\n\n{blocks}{missing_note}");
    } else if !missing_note.is_empty() && !has_outputs {
        prompt.push_str(&format!("\n\n{missing_note}"));
    }
    let request = crate::provider::CallRequest::prompt(&prompt);
    let record = RefCell::new(CallRecord::default());
    let label = Label::new(json!({ "call": "synthesize" }));
    let mut cancelled = false;
    let result = match run.guard(run_call(run, provider, &request, &label, &record, None)).await {
        Ok(r) => r,
        Err(reason) => {
            cancelled = true;
            let at = run.elapsed();
            let mut rec = record.borrow_mut();
            if let Some(started) = rec.attempts.last().filter(|a| a.status.is_none()).map(|a| a.started_ms) {
                let number = rec.attempts.len();
                rec.cancel_open_attempt(at);
                run.events.emit(
                    "attempt-end",
                    json!({ "call": "synthesize", "attempt": number, "status": "cancelled", "error": null, "durationMs": round_ms(at - started) }),
                );
            }
            Err(run.cancel_error(&reason))
        }
    };
    let rec = record.into_inner();
    let status = match (&result, cancelled) {
        (Ok(_), _) => "ok",
        (Err(_), true) => "cancelled",
        (Err(_), false) => "failed",
    };
    let synthesis = json!({
        "status": status,
        "text": result.as_ref().ok().map(|r| r.text.clone()),
        "error": result.as_ref().err().map(Error::to_json),
        "missing": missing,
        "attempts": rec.attempts_json(),
        "usage": usage_json(&rec),
        "busyMs": round_ms(rec.busy_ms()),
    });
    match result {
        Ok(response) => {
            run.events.emit("merge", json!({ "strategy": "synthesize", "parts": plan.subtasks.len() - missing.len(), "missing": missing }));
            Ok((json!(response.text), Vec::new(), Some(synthesis)))
        }
        Err(err) => Err((err, Some(synthesis))),
    }
}
