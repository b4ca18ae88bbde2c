//! Votes driven by a durable engine one sample at a time: the engine asks which
//! samples to run, runs each with [`run_sample`] (a Workflow step, a queue message,
//! a batch line), stores the outcomes, asks [`evaluate`] whether the vote is settled
//! or needs more samples, and gets the result from [`finish`], the same rules and
//! result shape as an in-process `vote`.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Value};

use super::normalize::Ratio;
use super::result::{self, Candidate, Sample};
use super::rules::{Outlook, Rule};
use super::VoteOptions;
use crate::decode;
use crate::error::{Error, Result};
use crate::outcome::Outcome;
use crate::report::{round_ms, CallRecord, Status};
use crate::schedule::call::{run_call, Label};
use crate::schedule::Run;
use crate::transport::Host;

/// The first round and the limits the engine needs before it starts.
pub fn plan(opts: &VoteOptions) -> Value {
    let samples: Vec<Value> = (0..opts.first_round)
        .map(|i| {
            let (voter, v) = opts.voter_of(i);
            json!({ "index": i, "voter": voter, "voterName": v.name, "key": format!("sample-{i}") })
        })
        .collect();
    json!({
        "kind": "vote",
        "rule": opts.rule.name(),
        "adaptive": opts.rule.is_adaptive(),
        "firstRound": opts.first_round,
        "maxSamples": opts.max_samples,
        "samples": samples,
        // A judge scores each distinct answer once, so at most one call per sample.
        "finishCalls": if matches!(opts.scoring, Some(super::Scoring::Judge { .. })) { opts.max_samples } else { 0 },
        "retry": crate::sectioning::external::retry_json(&opts.run.retry),
    })
}

/// Runs sample `index` once, with the run options' retries, and returns its outcome.
pub async fn run_sample(host: Rc<dyn Host>, opts: &VoteOptions, index: usize) -> Result<Value> {
    if index >= opts.max_samples {
        return Err(Error::range_error(
            "index",
            format!("{index} is out of range; this vote takes samples 0 to {}", opts.max_samples - 1),
        ));
    }
    let run = Run::start(host, &opts.run, 1);
    let (provider, request) = opts.request_for(index);
    let (voter, _) = opts.voter_of(index);
    let label = Label::new(json!({ "sample": index, "voter": voter }));
    let record = RefCell::new(CallRecord::default());
    let result = match run.guard(run_call(&run, &provider, &request, &label, &record, None)).await {
        Ok(r) => r,
        Err(reason) => {
            record.borrow_mut().cancel_open_attempt(run.elapsed());
            run.finish();
            return Err(run.cancel_error(&reason));
        }
    };
    run.finish();
    let mut out = Outcome::new(result, record.into_inner()).to_json();
    out["index"] = json!(index);
    Ok(out)
}

/// Rebuilds the samples from stored outcomes. Each outcome names its `index`; their
/// order in the list is the order they finished (for `firstTo` and `aheadBy`).
/// `pending` lists samples still running.
fn samples_from(opts: &VoteOptions, outcomes: &Value, pending: &[usize], regex: &dyn crate::transport::RegexEngine) -> Result<Vec<Sample>> {
    let Value::Array(list) = outcomes else {
        return Err(Error::type_error("outcomes", format!("expected an array of sample outcomes, got {}", decode::describe(outcomes))));
    };
    let mut slots: Vec<Option<Sample>> = Vec::new();
    let place = |slots: &mut Vec<Option<Sample>>, index: usize, sample: Sample| -> Result<()> {
        if slots.len() <= index {
            slots.resize(index + 1, None);
        }
        if slots[index].is_some() {
            return Err(Error::type_error("outcomes", format!("sample {index} appears twice; record each sample's outcome once")));
        }
        slots[index] = Some(sample);
        Ok(())
    };
    for (position, item) in list.iter().enumerate() {
        let path = decode::index("outcomes", position);
        let index = match item.get("index").filter(|v| !v.is_null()) {
            None => return Err(Error::type_error(&format!("{path}.index"), "is required; pass the sample index the outcome belongs to")),
            Some(v) => v.as_u64().ok_or_else(|| {
                Error::type_error(&format!("{path}.index"), format!("expected a sample index (a non-negative integer), got {}", decode::describe(v)))
            })? as usize,
        };
        if index >= opts.max_samples {
            return Err(Error::range_error(&format!("{path}.index"), format!("{index} is beyond maxSamples ({})", opts.max_samples)));
        }
        let outcome = Outcome::from_json(&path, item)?;
        let (voter_index, voter) = opts.voter_of(index);
        let mut sample = Sample::new(index, voter_index, voter, Rc::new(RefCell::new(outcome.record.clone())));
        match outcome.status {
            Status::Ok => sample.finish(Ok(outcome.response.expect("an ok outcome has a response")), opts, regex),
            Status::Failed => sample.finish(Err(outcome.error.expect("a failed outcome has an error")), opts, regex),
            Status::Cancelled | Status::Skipped => sample.cancel(0.0),
        }
        sample.order = Some(position);
        place(&mut slots, index, sample)?;
    }
    for (i, &index) in pending.iter().enumerate() {
        if index >= opts.max_samples {
            return Err(Error::range_error(&decode::index("pending", i), format!("{index} is beyond maxSamples ({})", opts.max_samples)));
        }
        let (voter_index, voter) = opts.voter_of(index);
        place(&mut slots, index, Sample::new(index, voter_index, voter, Rc::new(RefCell::new(CallRecord::default()))))?;
    }
    // A sample index with no outcome and not pending was never drawn.
    let mut samples = Vec::new();
    for (i, slot) in slots.into_iter().enumerate() {
        match slot {
            Some(s) => samples.push(s),
            None => return Err(Error::type_error("outcomes", format!("sample {i} has no outcome and is not pending; samples are drawn in index order"))),
        }
    }
    Ok(samples)
}

/// Whether the vote is settled, and if not which samples to draw next.
pub fn evaluate(opts: &VoteOptions, outcomes: &Value, pending: &[usize], regex: &dyn crate::transport::RegexEngine) -> Result<Value> {
    let samples = samples_from(opts, outcomes, pending, regex)?;
    let verdict = super::current_verdict(opts, &samples, pending.len());
    let settled = verdict.evaluation.settled && !matches!(opts.rule, Rule::Score { .. } | Rule::Borda);
    let drawn = samples.len();
    let all_failed = !samples.is_empty() && samples.iter().all(|s| s.status == Some(result::SampleStatus::Failed));
    let next: Vec<usize> = if settled || !pending.is_empty() || all_failed {
        Vec::new()
    } else if drawn < opts.first_round {
        (drawn..opts.first_round).collect()
    } else if opts.rule.is_adaptive() && drawn < opts.max_samples {
        let want = verdict.evaluation.top_up.max(1).min(opts.max_samples - drawn);
        (drawn..drawn + want).collect()
    } else {
        Vec::new()
    };
    let done = settled || (pending.is_empty() && next.is_empty());
    Ok(json!({
        "settled": settled,
        "done": done,
        "winner": verdict.winner_display(),
        "decided": verdict.evaluation.decided,
        "next": next,
        "cancel": if settled { json!(pending) } else { json!([]) },
    }))
}

/// The vote's result from every stored outcome, judged and tallied by the same code
/// as an in-process `vote`.
pub async fn finish(host: Rc<dyn Host>, opts: &VoteOptions, outcomes: &Value) -> Result<Value> {
    finish_report(host, opts, outcomes).await.map(super::VoteReport::into_value)
}

/// [`finish`], keeping the samples apart (see [`super::VoteReport`]).
pub async fn finish_report(host: Rc<dyn Host>, opts: &VoteOptions, outcomes: &Value) -> Result<super::VoteReport> {
    let samples = samples_from(opts, outcomes, &[], host.regex())?;
    let run = Run::start(host, &opts.run, 1);
    let mut candidates: Vec<Candidate> = Vec::new();
    if let (Rule::Score { criteria, pass_score, .. }, Some(scoring)) = (&opts.rule, &opts.scoring) {
        let (scored, error) = super::score_candidates(&run, opts, &samples, criteria, *pass_score, scoring).await;
        candidates = scored;
        if let Some(err) = error {
            // Keep every sample and candidate in the rejection's report, as an
            // in-process vote does.
            let verdict = result::verdict(&opts.rule, &opts.extract, &samples, &candidates, opts.similarity, true, Outlook {
                remaining: Ratio::ZERO,
                is_final: true,
                all_weight: samples.iter().fold(Ratio::ZERO, |a, s| a.add(s.weight)),
                max_weight: opts.max_weight(),
            });
            let report = result::report_json(&verdict, &samples, &opts.rule, opts.tie, &candidates);
            run.finish();
            return Err(err.with_report(report));
        }
    }
    let verdict = result::verdict(&opts.rule, &opts.extract, &samples, &candidates, opts.similarity, true, Outlook {
        remaining: Ratio::ZERO,
        is_final: true,
        all_weight: samples.iter().fold(Ratio::ZERO, |a, s| a.add(s.weight)),
        max_weight: opts.max_weight(),
    });
    let mut report = result::report_head(&verdict, &samples, &opts.rule, opts.tie, &candidates);
    let mut usage = crate::provider::Usage::default();
    for s in &samples {
        usage.add(&s.record.borrow().usage);
    }
    usage.add(&run.usage.borrow());
    report["runId"] = json!(run.id);
    report["rounds"] = Value::Null;
    report["decision"] = super::decision_in_order(&opts.rule, &opts.extract, opts.similarity, &samples);
    report["usage"] = usage.to_json();
    report["metrics"] = json!({
        "wallMs": Value::Null,
        "samples": samples.len(),
        "maxSamples": opts.max_samples,
        "maxInFlight": Value::Null,
        "requests": samples.iter().map(|s| s.record.borrow().attempts.len()).sum::<usize>() + run.budget.borrow().requests as usize,
        "finishMs": round_ms(run.elapsed()),
    });
    report["warnings"] = Value::Array(run.events.warnings());
    run.finish();
    let outcome = result::final_error(&verdict, &samples, &opts.rule, opts.tie);
    let report = super::VoteReport { head: report, samples };
    match outcome {
        Ok(()) => Ok(report),
        Err(err) => Err(err.with_report(report.into_value())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::NoRefs;
    use crate::schedule::testing::{host, provider_with};
    use crate::sim::{Action, SimHost, TestRegex};

    fn options(rule: Value) -> VoteOptions {
        let (_, p) = provider_with(json!({ "seed": 0 }));
        let mut v = json!({ "provider": p, "prompt": "q", "voters": 3, "extract": "number", "rule": rule });
        if v["rule"].is_object() {
            v["maxSamples"] = json!(7);
        }
        VoteOptions::decode(&v, &NoRefs, &TestRegex).unwrap()
    }

    /// Answers by seed, which is the sample index here.
    fn sim(answers: &'static [&'static str]) -> Rc<SimHost> {
        SimHost::new(move |r| Action::openai(answers[r.body["seed"].as_u64().unwrap() as usize]))
    }

    #[test]
    fn adaptive_vote_tops_up_until_settled() {
        let opts = options(json!({ "aheadBy": 2 }));
        let s = sim(&["4", "5", "4", "4", "9", "9", "9"]);
        let h = host(&s);
        let mut outcomes = Vec::new();
        let mut next: Vec<usize> = (0..3).collect();
        let mut rounds = 0;
        loop {
            for i in &next {
                outcomes.push(s.run(run_sample(h.clone(), &opts, *i)).unwrap());
            }
            let e = evaluate(&opts, &Value::Array(outcomes.clone()), &[], &TestRegex).unwrap();
            rounds += 1;
            if e["done"].as_bool().unwrap() {
                assert_eq!(e["winner"], "4");
                break;
            }
            next = e["next"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap() as usize).collect();
            assert_eq!(next, vec![3], "one more sample can settle a lead of one");
        }
        assert_eq!(rounds, 2);
        let result = s.run(finish(h, &opts, &Value::Array(outcomes))).unwrap();
        assert_eq!(result["winner"], "4");
        assert_eq!(result["decided"], true);
        assert_eq!(result["samples"].as_array().unwrap().len(), 4);
        assert_eq!(s.records().len(), 4);
    }

    #[test]
    fn plan_gives_retry_settings_and_finishing_calls() {
        let opts = options(json!({ "aheadBy": 2 }));
        let p = plan(&opts);
        assert_eq!(p["finishCalls"], 0, "no judge, so finishing makes no call");
        assert_eq!(p["retry"]["maxRetries"], 2);
        assert_eq!(p["retry"]["baseDelayMs"], 500.0);
    }

    #[test]
    fn settled_vote_lists_pending_samples_to_cancel() {
        let opts = options(json!("plurality"));
        let done = json!([
            { "index": 0, "status": "ok", "text": "4" },
            { "index": 1, "status": "ok", "text": "4" },
        ]);
        let e = evaluate(&opts, &done, &[2], &TestRegex).unwrap();
        assert_eq!(e["settled"], true);
        assert_eq!(e["cancel"], json!([2]));
        assert_eq!(e["next"], json!([]));
    }

    #[test]
    fn outcomes_must_be_complete_and_unique() {
        let opts = options(json!("plurality"));
        let gap = json!([{ "index": 1, "status": "ok", "text": "4" }]);
        let err = evaluate(&opts, &gap, &[], &TestRegex).unwrap_err();
        assert!(err.message.contains("sample 0 has no outcome"), "{}", err.message);
        let twice = json!([{ "index": 0, "status": "ok", "text": "4" }, { "index": 0, "status": "ok", "text": "4" }]);
        let err = evaluate(&opts, &twice, &[], &TestRegex).unwrap_err();
        assert!(err.message.contains("appears twice"), "{}", err.message);
    }

    #[test]
    fn failed_and_red_flagged_outcomes_are_counted_like_in_process() {
        let opts = options(json!("plurality"));
        let s = sim(&["4"]);
        let outcomes = json!([
            { "index": 0, "status": "ok", "text": "The answer is 4", "finishReason": "length" },
            { "index": 1, "status": "failed", "error": { "code": "PROVIDER_ERROR", "message": "HTTP 500", "status": 500, "retryable": true } },
            { "index": 2, "status": "ok", "text": "42" },
        ]);
        let result = s.run(finish(host(&s), &opts, &outcomes)).unwrap();
        assert_eq!(result["winner"], "42");
        assert_eq!(result["excluded"], json!({ "length": 1 }));
        assert_eq!(result["failed"], 1);
        assert!(s.records().is_empty(), "finishing makes no request");
    }
}
