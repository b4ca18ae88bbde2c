//! Sectioning driven by a durable engine one subtask at a time: the engine gets the
//! plan from [`plan`], runs each subtask with [`run_subtask`] once its dependencies
//! have outputs (a Workflow step, a queue message, a batch line), stores the outcomes,
//! and gets the merged report from [`finish`], the same merge and report shape as an
//! in-process `section`.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Map, Value};

use super::plan::Plan;
use super::{build_report, fail_fast_error, merge_outputs, quorum_error, required_successes, Failure, Merge, SectionOptions, State};
use crate::decode;
use crate::error::{Code, Error, Result};
use crate::outcome::Outcome;
use crate::report::{round_ms, CallRecord, Status};
use crate::schedule::call::{run_call, Label};
use crate::schedule::retry::RetryPolicy;
use crate::schedule::Run;
use crate::task::substitute;
use crate::transport::Host;

/// The subtasks, their dependencies and phases, for the engine to schedule.
pub fn plan(opts: &SectionOptions) -> Value {
    let plan = &opts.plan;
    let mut phase_of = vec![0usize; plan.subtasks.len()];
    for (level, members) in plan.phases.iter().enumerate() {
        for &i in members {
            phase_of[i] = level;
        }
    }
    let subtasks: Vec<Value> = plan
        .subtasks
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "id": s.id,
                "dependsOn": s.deps.iter().map(|&d| plan.subtasks[d].id.clone()).collect::<Vec<_>>(),
                "required": s.required,
                "phase": phase_of[i],
                "key": format!("subtask-{}", s.id),
            })
        })
        .collect();
    json!({
        "kind": "section",
        "subtasks": subtasks,
        "phases": plan.phases_json(),
        "failure": match opts.failure {
            Failure::FailFast => json!("fail-fast"),
            Failure::Settle => json!("settle"),
            Failure::MinSuccesses(n) => json!({ "minSuccesses": n }),
        },
        "synthesize": matches!(opts.merge, Merge::Synthesize { .. }),
        "finishCalls": usize::from(matches!(opts.merge, Merge::Synthesize { .. })),
        "retry": retry_json(&opts.run.retry),
    })
}

/// Returns the resolved retry settings as plain data, for an engine that retries calls
/// itself and runs each call with `maxRetries: 0`.
pub(crate) fn retry_json(retry: &RetryPolicy) -> Value {
    json!({
        "maxRetries": retry.max_retries,
        "baseDelayMs": retry.base_delay_ms,
        "maxDelayMs": retry.max_delay_ms,
        "maxRetryAfterMs": retry.max_retry_after_ms,
        "timeoutMs": retry.timeout_ms,
    })
}

fn index_of(plan: &Plan, path: &str, id: &str) -> Result<usize> {
    plan.subtasks.iter().position(|s| s.id == id).ok_or_else(|| {
        let ids: Vec<&str> = plan.subtasks.iter().map(|s| s.id.as_str()).collect();
        let hint = decode::suggest(id, &ids).map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default();
        Error::type_error(path, format!("no subtask has the id {id:?}{hint}"))
    })
}

/// Runs subtask `id` once, with its dependencies' outputs filled in, and returns its
/// outcome. `outputs` maps each dependency's id to its output text.
pub async fn run_subtask(host: Rc<dyn Host>, opts: &SectionOptions, id: &str, outputs: &Value) -> Result<Value> {
    let plan = &opts.plan;
    let i = index_of(plan, "id", id)?;
    let subtask = &plan.subtasks[i];
    let empty = Map::new();
    let given = match outputs {
        Value::Object(map) => map,
        Value::Null => &empty,
        other => return Err(Error::type_error("outputs", format!("expected an object of dependency id to output text, got {}", decode::describe(other)))),
    };
    let mut texts: Vec<(String, String)> = Vec::new();
    for &d in &subtask.deps {
        let dep = &plan.subtasks[d].id;
        match given.get(dep).and_then(Value::as_str) {
            Some(text) => texts.push((dep.clone(), text.to_string())),
            None => {
                return Err(Error::type_error(
                    &format!("outputs.{dep}"),
                    format!("is required: subtask {id:?} depends on {dep:?}; run it first and pass its output text"),
                ))
            }
        }
    }
    let fill = |text: &str| substitute(text, &|name| texts.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
    let mut request = subtask.input.request();
    for m in &mut request.messages {
        m.content = fill(&m.content);
    }
    request.system = request.system.as_deref().map(fill);
    request.temperature = subtask.temperature;

    let run = Run::start(host, &opts.run, 1);
    let label = Label::new(json!({ "subtask": subtask.id }));
    let record = RefCell::new(CallRecord::default());
    let result = match run.guard(run_call(&run, &subtask.provider, &request, &label, &record, None)).await {
        Ok(r) => r,
        Err(reason) => {
            record.borrow_mut().cancel_open_attempt(run.elapsed());
            run.finish();
            return Err(run.cancel_error(&reason));
        }
    };
    run.finish();
    let mut out = Outcome::new(result, record.into_inner()).to_json();
    out["id"] = json!(subtask.id);
    Ok(out)
}

/// Reads outcomes given as `{ id: outcome }` or `[{ id, ...outcome }]`.
fn outcomes_by_index(plan: &Plan, outcomes: &Value) -> Result<Vec<Option<Outcome>>> {
    let mut out: Vec<Option<Outcome>> = (0..plan.subtasks.len()).map(|_| None).collect();
    let mut put = |path: &str, id: &str, value: &Value| -> Result<()> {
        let i = index_of(plan, path, id)?;
        if out[i].is_some() {
            return Err(Error::type_error(path, format!("subtask {id:?} has two outcomes; record each subtask once")));
        }
        out[i] = Some(Outcome::from_json(path, value)?);
        Ok(())
    };
    match outcomes {
        Value::Object(map) => {
            for (id, value) in map {
                let path = decode::join("outcomes", id);
                // An outcome that names its subtask must be stored under that id.
                if let Some(own) = value.get("id").filter(|v| !v.is_null()) {
                    if own.as_str() != Some(id.as_str()) {
                        return Err(Error::type_error(
                            &path,
                            format!("is stored under {id:?} but its id is {}; store each outcome under its own subtask id", decode::describe(own)),
                        ));
                    }
                }
                put(&path, id, value)?;
            }
        }
        Value::Array(list) => {
            for (n, value) in list.iter().enumerate() {
                let path = decode::index("outcomes", n);
                let id = value
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::type_error(&format!("{path}.id"), "is required; pass the subtask id the outcome belongs to"))?;
                put(&path, id, value)?;
            }
        }
        other => return Err(Error::type_error("outcomes", format!("expected an object or an array of outcomes, got {}", decode::describe(other)))),
    }
    Ok(out)
}

/// Merges stored outcomes into the same report as `section`. A subtask with no outcome
/// is `skipped` when a dependency did not succeed and `cancelled` otherwise.
pub async fn finish(host: Rc<dyn Host>, opts: &SectionOptions, outcomes: &Value) -> Result<Value> {
    let plan = &opts.plan;
    let given = outcomes_by_index(plan, outcomes)?;
    let mut states: Vec<State> = given
        .into_iter()
        .map(|o| match o {
            Some(o) => State {
                status: Some(o.status),
                record: Rc::new(RefCell::new(o.record)),
                response: o.response,
                error: o.error,
            },
            None => State { status: None, record: Rc::new(RefCell::new(CallRecord::default())), response: None, error: None },
        })
        .collect();
    for level in &plan.phases {
        for &i in level {
            if states[i].status.is_some() {
                continue;
            }
            let blocked: Vec<&str> = plan.subtasks[i]
                .deps
                .iter()
                .filter(|&&d| states[d].status != Some(Status::Ok))
                .map(|&d| plan.subtasks[d].id.as_str())
                .collect();
            if blocked.is_empty() {
                states[i].status = Some(Status::Cancelled);
            } else {
                states[i].status = Some(Status::Skipped);
                states[i].error = Some(
                    Error::new(Code::ProviderError, format!("skipped because {} did not succeed", blocked.iter().map(|id| format!("{id:?}")).collect::<Vec<_>>().join(", ")))
                        .with_detail("skippedBecause", json!(blocked)),
                );
            }
        }
    }

    let run = Run::start(host, &opts.run, 1);
    if states.iter().all(|s| s.status != Some(Status::Ok)) {
        run.events.warn("all-failed", "every subtask failed, so the output is empty; see results for each error");
    }
    let mut report = build_report(&run, plan, &states);
    let mut failure = None;
    if opts.failure == Failure::FailFast {
        // As in `section`: a required subtask that failed, or that was skipped because
        // a dependency failed, fails the run.
        if let Some(i) = (0..states.len()).find(|&i| plan.subtasks[i].required && states[i].status == Some(Status::Failed)) {
            failure = Some(fail_fast_error(&plan.subtasks[i].id, states[i].error.clone().expect("a failed subtask has an error")));
        } else if let Some(j) = (0..states.len()).find(|&j| plan.subtasks[j].required && states[j].status == Some(Status::Skipped)) {
            let cause = states[j].error.clone().expect("a skipped subtask has an error");
            let id = &plan.subtasks[j].id;
            let message = format!("subtask {id:?} is required but was {}, and failure is \"fail-fast\"", cause.message);
            let mut err = fail_fast_error(id, cause);
            err.message = message;
            failure = Some(err);
        }
    }
    if let Failure::MinSuccesses(min) = opts.failure {
        if required_successes(plan, &states) < min {
            failure = Some(quorum_error(plan, &states, min));
        }
    }
    let merged = match failure {
        Some(err) => Err((err, None)),
        None => merge_outputs(&run, plan, &states, &opts.merge).await,
    };
    let result = match merged {
        Ok((output, conflicts, synthesis)) => {
            report["output"] = output;
            report["conflicts"] = Value::Array(conflicts);
            if let Some(s) = synthesis {
                report["synthesis"] = s;
            }
            Ok(())
        }
        Err((err, synthesis)) => {
            if let Some(s) = synthesis {
                report["synthesis"] = s;
            }
            if let Some(conflicts) = err.detail.get("conflicts") {
                report["conflicts"] = conflicts.clone();
            }
            Err(err)
        }
    };
    fill_metrics(&run, plan, &states, &mut report);
    run.finish();
    match result {
        Ok(()) => Ok(report),
        Err(err) => Err(err.with_report(report)),
    }
}

/// Metrics for a run whose calls happened elsewhere: each outcome's times are relative
/// to its own step, so wall time and parallelism are unknown here.
fn fill_metrics(run: &Run, plan: &Plan, states: &[State], report: &mut Value) {
    let mut usage = crate::provider::Usage::default();
    for s in states {
        usage.add(&s.record.borrow().usage);
    }
    usage.add(&run.usage.borrow());
    let (critical_ms, critical_path) = plan.critical_path(&|i| {
        let rec = states[i].record.borrow();
        match (rec.started_ms(), rec.finished_ms()) {
            (Some(a), Some(b)) => b - a,
            _ => 0.0,
        }
    });
    let busy: f64 = states.iter().map(|s| s.record.borrow().busy_ms()).sum();
    report["metrics"] = json!({
        "wallMs": Value::Null,
        "busyMs": round_ms(busy),
        "parallelism": Value::Null,
        "expectedParallelism": Value::Null,
        "criticalPathMs": round_ms(critical_ms),
        "criticalPath": critical_path.iter().map(|&i| plan.subtasks[i].id.as_str()).collect::<Vec<_>>(),
        "phases": plan.phases_json(),
        "maxInFlight": Value::Null,
        "requests": states.iter().map(|s| s.record.borrow().attempts.len()).sum::<usize>() + run.budget.borrow().requests as usize,
    });
    report["usage"] = usage.to_json();
    report["warnings"] = Value::Array(run.events.warnings());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::NoRefs;
    use crate::schedule::testing::{host, provider};
    use crate::sim::{prompt_of, Action, SimHost};

    fn options(p: &Value, merge: Value) -> SectionOptions {
        let v = json!({
            "provider": p,
            "merge": merge,
            "subtasks": [
                { "id": "a", "prompt": "A" },
                { "id": "b", "prompt": "B" },
                { "id": "c", "prompt": "C from {{a}} and {{b}}" },
            ],
        });
        SectionOptions::decode(&v, &NoRefs).unwrap()
    }

    #[test]
    fn plan_lists_dependencies_and_phases() {
        let (_, p) = provider();
        let plan = plan(&options(&p, json!("ordered")));
        assert_eq!(plan["subtasks"][2]["dependsOn"], json!(["a", "b"]));
        assert_eq!(plan["subtasks"][2]["phase"], 1);
        assert_eq!(plan["phases"], json!([["a", "b"], ["c"]]));
        assert_eq!(plan["subtasks"][0]["key"], "subtask-a");
        assert_eq!(plan["finishCalls"], 0);
        assert_eq!(plan["retry"], json!({ "maxRetries": 2, "baseDelayMs": 500.0, "maxDelayMs": 20_000.0, "maxRetryAfterMs": 60_000.0, "timeoutMs": 120_000.0 }));
    }

    #[test]
    fn steps_then_finish_match_the_in_process_merge() {
        let (_, p) = provider();
        let sim = SimHost::new(|r| Action::openai(&format!("out({})", prompt_of(r))));
        let opts = options(&p, json!("keyed"));
        let h = host(&sim);
        let a = sim.run(run_subtask(h.clone(), &opts, "a", &Value::Null)).unwrap();
        let b = sim.run(run_subtask(h.clone(), &opts, "b", &Value::Null)).unwrap();
        let outputs = json!({ "a": a["text"], "b": b["text"] });
        let c = sim.run(run_subtask(h.clone(), &opts, "c", &outputs)).unwrap();
        assert_eq!(c["text"], "out(C from out(A) and out(B))");
        let report = sim.run(finish(h, &opts, &json!([a, b, c]))).unwrap();
        assert_eq!(report["output"], json!({ "a": "out(A)", "b": "out(B)", "c": "out(C from out(A) and out(B))" }));
        assert_eq!(report["usage"]["inputTokens"], 27);
        assert_eq!(report["results"][2]["status"], "ok");
    }

    #[test]
    fn missing_dependency_output_is_named() {
        let (_, p) = provider();
        let sim = SimHost::new(|_| Action::openai("x"));
        let opts = options(&p, json!("ordered"));
        let err = sim.run(run_subtask(host(&sim), &opts, "c", &json!({ "a": "1" }))).unwrap_err();
        assert!(err.message.starts_with("outputs.b"), "{}", err.message);
        assert!(sim.records().is_empty());
    }

    #[test]
    fn unrecorded_subtasks_are_skipped_or_cancelled() {
        let (_, p) = provider();
        let sim = SimHost::new(|_| Action::openai("x"));
        let opts = options(&p, json!("ordered"));
        let failed = json!({ "status": "failed", "error": { "code": "PROVIDER_ERROR", "message": "boom", "status": 500, "retryable": true } });
        let report = sim.run(finish(host(&sim), &opts, &json!({ "a": failed }))).unwrap();
        let statuses: Vec<&str> = report["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, vec!["failed", "cancelled", "skipped"]);
        assert_eq!(report["results"][0]["error"]["status"], 500);
    }

    #[test]
    fn duplicate_and_unknown_outcomes_are_rejected() {
        let (_, p) = provider();
        let sim = SimHost::new(|_| Action::openai("x"));
        let opts = options(&p, json!("ordered"));
        let ok = json!({ "id": "a", "status": "ok", "text": "1" });
        let err = sim.run(finish(host(&sim), &opts, &json!([ok, ok]))).unwrap_err();
        assert!(err.message.contains("two outcomes"), "{}", err.message);
        let unnamed = json!({ "status": "ok", "text": "1" });
        let err = sim.run(finish(host(&sim), &opts, &json!({ "zz": unnamed }))).unwrap_err();
        assert!(err.message.contains("no subtask has the id"), "{}", err.message);
        let err = sim.run(finish(host(&sim), &opts, &json!({ "zz": ok }))).unwrap_err();
        assert!(err.message.contains("its id is"), "{}", err.message);
    }
}
