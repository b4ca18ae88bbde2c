//! Voting: the same task sampled several times (or as several strategies), answers
//! extracted and counted by a rule, outstanding samples cancelled once the outcome is
//! settled. `aggregate` applies the same rules to answers the caller already has.

pub mod external;
pub mod extract;
pub mod normalize;
pub mod result;
pub mod rules;
pub mod score;
#[cfg(test)]
mod vote_tests;

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use serde_json::{json, Value};

use crate::decode::{self, Obj, RefTable};
use crate::error::{Error, Result};
use crate::provider::{CallResponse, FinishReason, Provider};
use crate::registry;
use crate::report::{round_ms, CallRecord};
use crate::schedule::call::{run_call, Label};
use crate::schedule::{check_budget_providers, Run, RunOptions, RUN_OPTIONS};
use crate::task::Input;
use crate::transport::{Host, RegexEngine};
use extract::Extract;
use normalize::Ratio;
use result::{Candidate, Sample, SampleStatus, Verdict};
use rules::{LiveTally, Outlook, Rule, TiePolicy, Vote};

/// One voter (a strategy, perspective or model).
#[derive(Clone)]
pub struct Voter {
    /// Its name, or `None` for `voters: n`.
    pub name: Option<String>,
    /// Replaces the run's prompt or messages.
    pub input: Option<Input>,
    /// Replaces the run's system prompt.
    pub system: Option<String>,
    /// Replaces the run's provider.
    pub provider: Option<Rc<Provider>>,
    /// Replaces the provider's temperature.
    pub temperature: Option<f64>,
    /// The voter's weight.
    pub weight: Ratio,
    /// The weight as given.
    pub weight_f64: f64,
}

/// Samples excluded by what they look like, before any answer is extracted.
#[derive(Clone, Default)]
pub struct RedFlags {
    /// More output tokens than this (measured, or estimated at four characters a
    /// token while streaming) excludes a sample.
    pub max_output_tokens: Option<u64>,
    /// A JavaScript regular expression the reply must match.
    pub require_format: Option<(String, String)>,
    /// Phrases that mark a refusal; empty when refusal detection is off.
    pub refusal: Vec<String>,
}

/// Phrases that mark a refusal when `redFlags.refusal` is `true`.
pub const REFUSAL_PHRASES: &[&str] = &[
    "i can't help with",
    "i cannot help with",
    "i can't assist",
    "i cannot assist",
    "i'm sorry, but i can't",
    "i'm sorry, but i cannot",
    "i am unable to",
    "i'm unable to",
    "i won't be able to",
    "as an ai language model",
];

impl RedFlags {
    fn decode(value: Option<&Value>, regex: &dyn RegexEngine) -> Result<RedFlags> {
        let Some(value) = value else { return Ok(RedFlags::default()) };
        let o = Obj::new("redFlags", value, &["maxOutputTokens", "requireFormat", "refusal"])?;
        let require_format = match o.get("requireFormat") {
            None => None,
            Some(Value::String(p)) => {
                regex.validate(p, "").map_err(|m| Error::type_error("redFlags.requireFormat", format!("is not a valid JavaScript regular expression: {m}")))?;
                Some((p.clone(), String::new()))
            }
            Some(v) => {
                let ro = Obj::new("redFlags.requireFormat", v, &["regex", "flags"])?;
                let p = ro.required_str("regex")?.to_string();
                let flags = ro.str("flags")?.unwrap_or("").to_string();
                regex.validate(&p, &flags).map_err(|m| Error::type_error("redFlags.requireFormat.regex", format!("is not a valid JavaScript regular expression: {m}")))?;
                Some((p, flags))
            }
        };
        let refusal = match o.get("refusal") {
            None | Some(Value::Bool(false)) => Vec::new(),
            Some(Value::Bool(true)) => REFUSAL_PHRASES.iter().map(|s| refusal_form(s)).collect(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.push(refusal_form(decode::string(&decode::index("redFlags.refusal", i), item)?));
                }
                out
            }
            Some(v) => return Err(Error::type_error("redFlags.refusal", format!("expected a boolean or an array of phrases, got {}", decode::describe(v)))),
        };
        Ok(RedFlags { max_output_tokens: o.integer("maxOutputTokens", 1, 10_000_000)?.map(|n| n as u64), require_format, refusal })
    }

    /// The reason a finished reply is excluded, if any.
    fn check(&self, response: &CallResponse) -> Option<String> {
        match &response.finish_reason {
            FinishReason::Stopped(reason) => return Some(reason.clone()),
            FinishReason::Length => return Some("length".into()),
            FinishReason::ContentFilter => return Some("content_filter".into()),
            _ => {}
        }
        self.check_text(&response.text, response.usage.as_ref().map(|u| u.output_tokens))
    }

    /// The reason a reply's text is excluded, if any.
    fn check_text(&self, text: &str, output_tokens: Option<u64>) -> Option<String> {
        if let Some(max) = self.max_output_tokens {
            let tokens = output_tokens.unwrap_or_else(|| (text.chars().count() as u64).div_ceil(4));
            if tokens > max {
                return Some("too-long".into());
            }
        }
        let lower = refusal_form(text);
        if self.refusal.iter().any(|p| lower.contains(p.as_str())) {
            return Some("refusal".into());
        }
        None
    }
}

/// Lowercases `text`, writes every apostrophe-like character as `'` and every run of
/// whitespace as one space, so "I’m  sorry" matches the phrase "i'm sorry".
fn refusal_form(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
            continue;
        }
        in_space = false;
        out.push(match c {
            '\u{2019}' | '\u{2018}' | '\u{02BC}' | '\u{2032}' | '\u{00B4}' | '`' | '\u{FF07}' => '\'',
            other => other,
        });
    }
    out
}

/// How candidates get their scores under a `score` rule.
#[derive(Clone)]
pub enum Scoring {
    /// A judge provider scores each candidate.
    Judge {
        /// The judge.
        provider: Rc<Provider>,
        /// A prompt template with `{{task}}`, `{{answer}}` and `{{criteria}}`.
        prompt: Option<String>,
    },
    /// Each voter rates its own answer.
    SelfAssessment,
}

/// Vote options, decoded and checked.
pub struct VoteOptions {
    /// The run's default provider.
    pub provider: Option<Rc<Provider>>,
    /// The task.
    pub input: Option<Input>,
    /// Voters, cycled in order.
    pub voters: Vec<Voter>,
    /// Samples in the first round.
    pub first_round: usize,
    /// The cap on samples.
    pub max_samples: usize,
    /// Answer extraction.
    pub extract: Extract,
    /// The rule.
    pub rule: Rule,
    /// The tie policy.
    pub tie: TiePolicy,
    /// Red flags.
    pub red_flags: RedFlags,
    /// Scoring, for the `score` rule.
    pub scoring: Option<Scoring>,
    /// Similarity threshold for grouping free-text answers.
    pub similarity: Option<f64>,
    /// Run options.
    pub run: RunOptions,
}

const OPTIONS: &[&str] = &[
    "provider", "prompt", "messages", "system", "voters", "extract", "choices", "rule", "maxSamples", "tie", "redFlags",
    "criteria", "judge", "similarity",
];

const VOTER_OPTIONS: &[&str] = &["name", "system", "prompt", "messages", "provider", "temperature", "weight"];

/// Reads `voters`.
fn decode_voters(value: Option<&Value>) -> Result<Vec<Voter>> {
    let plain = |_| Voter {
        name: None,
        input: None,
        system: None,
        provider: None,
        temperature: None,
        weight: Ratio::int(1),
        weight_f64: 1.0,
    };
    let Some(value) = value else {
        return Err(Error::type_error("voters", "is required; pass a number of samples or an array of voter strategies"));
    };
    match value {
        Value::Number(_) => {
            let n = decode::integer("voters", value, 1, 10_000)? as usize;
            Ok((0..n).map(plain).collect())
        }
        Value::Array(items) => {
            if items.is_empty() {
                return Err(Error::range_error("voters", "must not be empty; pass at least one voter"));
            }
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let p = decode::index("voters", i);
                let o = Obj::new(&p, item, VOTER_OPTIONS)?;
                let weight = o.number("weight", 0.0, 1e9)?.unwrap_or(1.0);
                out.push(Voter {
                    name: o.nonempty_str("name")?.map(str::to_string),
                    input: if o.has("prompt") || o.has("messages") { Input::decode(&o, true)? } else { None },
                    system: o.nonempty_str("system")?.map(str::to_string),
                    provider: o.get("provider").map(|v| registry::provider(&o.at("provider"), v)).transpose()?,
                    temperature: o.number("temperature", 0.0, 2.0)?,
                    weight: Ratio::from_f64(weight),
                    weight_f64: weight,
                });
            }
            if out.iter().all(|v| v.weight.is_zero()) {
                return Err(Error::range_error("voters", "every voter's weight is 0; give at least one voter a positive weight"));
            }
            Ok(out)
        }
        other => Err(Error::type_error("voters", format!("expected a number or an array of voters, got {}", decode::describe(other)))),
    }
}

/// Rejects a rule whose `k` no vote could reach: `maxSamples` samples at the largest
/// voter weight count less than `k`.
fn check_reachable(rule: &Rule, voters: &[Voter], max_samples: usize) -> Result<()> {
    let (path, k) = match rule {
        Rule::AtLeast { k, .. } => ("rule.atLeast", *k),
        Rule::FirstTo(k) => ("rule.firstTo", *k),
        Rule::AheadBy(k) => ("rule.aheadBy", *k),
        _ => return Ok(()),
    };
    let max_weight = voters.iter().map(|v| v.weight).fold(Ratio::ZERO, |a, b| if b.compare(a).is_gt() { b } else { a });
    if k.compare(max_weight.mul(Ratio::int(max_samples as i64))).is_gt() {
        let advice = if rule.is_adaptive() { "raise maxSamples" } else { "lower it or add voters" };
        return Err(Error::range_error(
            path,
            format!("{} can never be reached by {max_samples} samples (the largest voter weight is {}); {advice}", k.to_f64(), max_weight.to_f64()),
        ));
    }
    Ok(())
}

impl VoteOptions {
    /// Reads and checks every option before any request.
    pub fn decode(options: &Value, refs: &dyn RefTable, regex: &dyn RegexEngine) -> Result<VoteOptions> {
        let allowed: Vec<&str> = OPTIONS.iter().chain(RUN_OPTIONS).copied().collect();
        let o = Obj::new("", options, &allowed)?;
        let provider = o.get("provider").map(|v| registry::provider("provider", v)).transpose()?;
        let input = Input::decode(&o, true)?.filter(|i| !i.messages.is_empty());
        let voters = decode_voters(o.get("voters"))?;
        for (i, v) in voters.iter().enumerate() {
            if v.provider.is_none() && provider.is_none() {
                return Err(Error::type_error(&format!("voters[{i}].provider"), "is required when the run has no `provider`; pass one here or at the top level"));
            }
            if v.input.is_none() && input.is_none() {
                return Err(Error::type_error("prompt", "is required (or give every voter its own `prompt`); pass the task as `prompt` or `messages`"));
            }
        }
        let extract = Extract::decode("extract", o.get("extract"), o.get("choices"), refs, regex)?;
        if o.has("choices") && !matches!(extract, Extract::Choice(_)) {
            return Err(Error::type_error("choices", "only applies to extract: \"choice\""));
        }
        let mut rule = Rule::decode(o.get("rule"), o.get("criteria"))?;
        rule.canonicalize_answer(&extract)?;
        if o.has("criteria") && !matches!(rule, Rule::Score { .. }) {
            return Err(Error::type_error("criteria", "only applies to rule: { score: { passScore } }"));
        }
        let extract = if matches!(rule, Rule::Borda) && matches!(extract, Extract::Text) { Extract::Ranking } else { extract };
        check_borda_extract(&rule, &extract)?;
        let first_round = voters.len();
        let max_samples = match o.integer("maxSamples", 1, 100_000)? {
            Some(n) if (n as usize) < first_round => {
                return Err(Error::range_error(
                    "maxSamples",
                    format!("{n} is below the {first_round} samples of the first round; raise it or use fewer voters"),
                ))
            }
            Some(n) if !rule.is_adaptive() && n as usize != first_round => {
                return Err(Error::range_error(
                    "maxSamples",
                    format!("{n} applies only to adaptive rules ({{ firstTo }}, {{ aheadBy }}); the {} rule takes exactly the {first_round} samples of the first round", rule.name()),
                ))
            }
            Some(n) => n as usize,
            None if rule.is_adaptive() => {
                let k = match &rule {
                    Rule::FirstTo(k) | Rule::AheadBy(k) => k.to_f64().ceil() as usize,
                    _ => 1,
                };
                (first_round * 3).max(first_round + 2 * k).min(first_round.max(100))
            }
            None => first_round,
        };
        check_reachable(&rule, &voters, max_samples)?;
        let scoring = match (&rule, o.get("judge")) {
            (Rule::Score { .. }, Some(j)) => Some(match decode::marker(j) {
                Some(("provider", _)) => Scoring::Judge { provider: registry::provider("judge", j)?, prompt: None },
                _ => {
                    let jo = Obj::new("judge", j, &["provider", "prompt"])?;
                    let provider = jo
                        .get("provider")
                        .map(|v| registry::provider("judge.provider", v))
                        .transpose()?
                        .or_else(|| provider.clone())
                        .ok_or_else(|| Error::type_error("judge.provider", "is required when the run has no `provider`"))?;
                    Scoring::Judge { provider, prompt: jo.nonempty_str("prompt")?.map(str::to_string) }
                }
            }),
            (Rule::Score { .. }, None) => Some(Scoring::SelfAssessment),
            (_, Some(_)) => return Err(Error::type_error("judge", "only applies to rule: { score: { passScore } }")),
            (_, None) => None,
        };
        let similarity = o.number("similarity", 0.0, 1.0)?;
        let red_flags = RedFlags::decode(o.get("redFlags"), regex)?;
        let run = RunOptions::decode(&o, refs)?;
        let mut providers: Vec<(String, &Provider)> = Vec::new();
        if let Some(p) = &provider {
            providers.push(("provider".into(), p));
        }
        for (i, v) in voters.iter().enumerate() {
            if let Some(p) = &v.provider {
                providers.push((format!("voters[{i}].provider"), p));
            }
        }
        if let Some(Scoring::Judge { provider, .. }) = &scoring {
            providers.push(("judge".into(), provider));
        }
        check_budget_providers(&run, &providers)?;
        Ok(VoteOptions {
            provider,
            input,
            voters,
            first_round,
            max_samples,
            extract,
            rule,
            tie: TiePolicy::decode(o.str("tie")?)?,
            red_flags,
            scoring,
            similarity,
            run,
        })
    }

    pub(crate) fn voter_of(&self, index: usize) -> (usize, &Voter) {
        let v = index % self.voters.len();
        (v, &self.voters[v])
    }

    pub(crate) fn request_for(&self, index: usize) -> (Rc<Provider>, crate::provider::CallRequest) {
        let (_, voter) = self.voter_of(index);
        let provider = voter.provider.clone().or_else(|| self.provider.clone()).expect("checked when decoding");
        let input = voter.input.as_ref().or(self.input.as_ref()).expect("checked when decoding");
        let mut request = input.request();
        // A voter's own system prompt wins; otherwise the run's applies, also to a voter
        // with its own prompt.
        if voter.system.is_some() {
            request.system = voter.system.clone();
        } else if request.system.is_none() {
            request.system = self.input.as_ref().and_then(|i| i.system.clone());
        }
        if let (Some(Scoring::SelfAssessment), Rule::Score { criteria, .. }) = (&self.scoring, &self.rule) {
            if let Some(last) = request.messages.last_mut() {
                last.content.push_str(&score::self_assessment_instruction(criteria));
            }
        }
        request.temperature = voter.temperature;
        request.seed = provider.seed.map(|s| s.saturating_add(index as i64));
        (provider, request)
    }

    fn max_weight(&self) -> Ratio {
        self.voters.iter().map(|v| v.weight).fold(Ratio::ZERO, |a, b| if b.compare(a).is_gt() { b } else { a })
    }
}

/// A vote's result, with its samples kept apart until it is written: a report with
/// many samples is written straight to JSON text instead of building a value for
/// each sample.
pub struct VoteReport {
    /// Every field but `samples`.
    pub head: Value,
    /// Every sample, in index order.
    pub samples: Vec<Sample>,
}

impl VoteReport {
    /// The whole result as a value.
    pub fn into_value(self) -> Value {
        let mut value = self.head;
        value["samples"] = Value::Array(self.samples.iter().map(Sample::to_json).collect());
        value
    }

    /// The whole result as JSON text.
    pub fn to_text(&self) -> String {
        crate::jsonout::with_raw_field(&self.head, "samples", &result::samples_text(&self.samples))
    }
}

/// Runs `vote(options)`.
pub async fn vote(host: Rc<dyn Host>, options: &Value, refs: &dyn RefTable) -> Result<Value> {
    vote_text(host, options, refs).await.map(|text| serde_json::from_str(&text).expect("a report is valid JSON"))
}

/// Runs `vote(options)` and writes the result as JSON text.
pub async fn vote_text(host: Rc<dyn Host>, options: &Value, refs: &dyn RefTable) -> Result<String> {
    if crate::batch::is_requested(options) {
        return crate::batch::vote(host, options, refs).await.map(|v| v.to_string());
    }
    let opts = Rc::new(VoteOptions::decode(options, refs, host.regex())?);
    run_vote_report(host, opts).await.map(|r| r.to_text())
}

type SampleFuture = futures_util::future::LocalBoxFuture<'static, (usize, Result<CallResponse>)>;

/// Runs a decoded vote.
pub async fn run_vote(host: Rc<dyn Host>, opts: Rc<VoteOptions>) -> Result<Value> {
    run_vote_report(host, opts).await.map(VoteReport::into_value)
}

/// Runs a decoded vote, keeping its samples apart (see [`VoteReport`]).
pub async fn run_vote_report(host: Rc<dyn Host>, opts: Rc<VoteOptions>) -> Result<VoteReport> {
    let run = Run::start(host.clone(), &opts.run, opts.first_round);
    run.events.emit(
        "run-start",
        json!({ "kind": "vote", "voters": opts.first_round, "maxSamples": opts.max_samples, "rule": opts.rule.name() }),
    );
    let samples: Rc<RefCell<Vec<Sample>>> = Rc::new(RefCell::new(Vec::new()));
    let weights: RefCell<Weights> = RefCell::new(Weights::default());
    // Rules whose count a later sample cannot rewrite are tallied as samples finish;
    // the others are re-counted from every sample at each step.
    let mut live = (!matches!(opts.rule, Rule::Score { .. } | Rule::Borda) && !(opts.extract.is_text() && opts.similarity.is_some()))
        .then(|| LiveTally::new(&opts.rule));
    let mut pool: FuturesUnordered<SampleFuture> = FuturesUnordered::new();
    let mut round = 0usize;
    let mut rounds: Vec<Value> = Vec::new();

    let draw = |count: usize, round: usize, pool: &mut FuturesUnordered<SampleFuture>, rounds: &mut Vec<Value>| {
        let mut indexes = Vec::new();
        for _ in 0..count {
            let index = samples.borrow().len();
            let (voter_index, voter) = opts.voter_of(index);
            let record = Rc::new(RefCell::new(CallRecord::default()));
            samples.borrow_mut().push(Sample::new(index, voter_index, voter, record.clone()));
            weights.borrow_mut().add_drawn(voter.weight);
            indexes.push(index);
            let run = run.clone();
            let opts = opts.clone();
            pool.push(Box::pin(async move {
                let (provider, request) = opts.request_for(index);
                let label = Label::new(json!({ "sample": index, "voter": voter_index }));
                let red_flags = &opts.red_flags;
                let observer = |_piece: &str, so_far: &str| -> Option<String> {
                    red_flags.max_output_tokens.and_then(|max| {
                        ((so_far.chars().count() as u64).div_ceil(4) > max).then(|| "too-long".to_string())
                    })
                };
                let watch: Option<crate::provider::StreamObserver<'_>> =
                    if red_flags.max_output_tokens.is_some() { Some(&observer) } else { None };
                let result = run_call(&run, &provider, &request, &label, &record, watch).await;
                (index, result)
            }));
        }
        rounds.push(json!({ "round": round, "samples": indexes, "startedMs": round_ms(run.elapsed()) }));
    };

    draw(opts.first_round, round, &mut pool, &mut rounds);
    let mut decision: Option<Value> = None;
    let mut finished_count = 0usize;
    let mut stop_error: Option<Error> = None;
    let regex = host.regex();
    loop {
        let verdict = match &live {
            Some(live) => live_verdict(&opts, live, &weights.borrow(), pool.is_empty()),
            None => current_verdict(&opts, &samples.borrow(), pool.len()),
        };
        if verdict.evaluation.settled && !matches!(opts.rule, Rule::Score { .. } | Rule::Borda) {
            if !pool.is_empty() || decision.is_none() {
                let counted = finished_count;
                decision = Some(json!({ "afterSamples": counted, "round": round, "atMs": round_ms(run.elapsed()) }));
                run.events.emit("decided", json!({ "winner": verdict.winner_display(), "decided": verdict.evaluation.decided, "afterSamples": counted, "round": round }));
            }
            break;
        }
        if pool.is_empty() {
            let drawn = samples.borrow().len();
            // When every sample so far failed, the provider is not answering: more
            // samples would fail the same way, so the vote ends with ALL_FAILED.
            let all_failed = weights.borrow().failed == drawn;
            let exhausted = weights.borrow().budget_exhausted;
            if opts.rule.is_adaptive() && drawn < opts.max_samples && !all_failed && !exhausted {
                let want = verdict.evaluation.top_up.max(1).min(opts.max_samples - drawn);
                round += 1;
                draw(want, round, &mut pool, &mut rounds);
                continue;
            }
            break;
        }
        let first = match run.guard(pool.next()).await {
            Ok(Some(done)) => done,
            Ok(None) => break,
            Err(reason) => {
                stop_error = Some(run.cancel_error(&reason));
                break;
            }
        };
        // Take every other sample that has already finished before evaluating again:
        // evaluating is linear in the samples, so once per completion would make a
        // large vote quadratic. Polling here cannot lose a wake-up, because the next
        // turn of the loop polls the pool again with this task's waker.
        let mut finished_now = vec![first];
        while let Some(Some(done)) = pool.next().now_or_never() {
            finished_now.push(done);
        }
        for (index, result) in finished_now {
            let mut all = samples.borrow_mut();
            let sample = &mut all[index];
            sample.finish(result, &opts, regex);
            sample.order = Some(finished_count);
            weights.borrow_mut().finish(sample);
            if let (Some(live), Some(SampleStatus::Ok), Some(answer)) = (&mut live, &sample.status, &sample.answer) {
                live.push(&Vote {
                    sample: sample.index,
                    voter: sample.voter_index,
                    order: finished_count,
                    key: Rc::from(answer.key.as_str()),
                    display: Rc::from(answer.display.as_str()),
                    value: Rc::new(answer.value.clone()),
                    weight: sample.weight,
                });
            }
            finished_count += 1;
            run.events.emit("sample", sample.event_json());
        }
    }

    // Cancel what is still running: dropping the pool aborts each request, stream,
    // retry sleep and custom function's signal. The run's own token stays unfired,
    // so a judge phase after the decision still runs.
    drop(pool);
    let at = run.elapsed();
    // Each cancelled sample closes its open attempt and ends with a `sample` event, as
    // a finished one does, so every `attempt-start` has its `attempt-end`.
    for s in samples.borrow_mut().iter_mut() {
        if s.status.is_none() {
            let open_attempt = {
                let rec = s.record.borrow();
                rec.attempts.last().filter(|a| a.status.is_none()).map(|a| (rec.attempts.len(), a.started_ms))
            };
            s.cancel(at);
            if let Some((number, started)) = open_attempt {
                run.events.emit(
                    "attempt-end",
                    json!({ "sample": s.index, "voter": s.voter_index, "attempt": number, "status": "cancelled", "error": null, "durationMs": round_ms(at - started) }),
                );
            }
            run.events.emit("sample", s.event_json());
            run.events.emit("cancelled", json!({ "sample": s.index, "voter": s.voter_index }));
        }
    }

    // Scores come after the samples: judge calls, or the voters' own ratings.
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut score_error = None;
    if stop_error.is_none() {
        if let (Rule::Score { criteria, pass_score, .. }, Some(scoring)) = (&opts.rule, &opts.scoring) {
            let snapshot = samples.borrow().clone();
            // The candidates stay in the report also when scoring fails.
            (candidates, score_error) = score_candidates(&run, &opts, &snapshot, criteria, *pass_score, scoring).await;
        }
    }

    let sample_list = samples.borrow().clone();
    let verdict = result::verdict(&opts.rule, &opts.extract, &sample_list, &candidates, opts.similarity, true, Outlook {
        remaining: Ratio::ZERO,
        is_final: true,
        all_weight: sample_list.iter().fold(Ratio::ZERO, |a, s| a.add(s.weight)),
        max_weight: opts.max_weight(),
    });
    let mut report = result::report_head(&verdict, &sample_list, &opts.rule, opts.tie, &candidates);
    report["runId"] = json!(run.id);
    report["rounds"] = json!(rounds.len());
    report["roundDetails"] = Value::Array(rounds);
    report["decision"] = decision.unwrap_or(Value::Null);
    report["usage"] = run.usage.borrow().to_json();
    report["metrics"] = json!({
        "wallMs": round_ms(run.elapsed()),
        "samples": sample_list.len(),
        "maxSamples": opts.max_samples,
        "maxInFlight": run.max_in_flight(),
        "requests": run.budget.borrow().requests,
    });
    report["warnings"] = Value::Array(run.events.warnings());

    let outcome = if let Some(err) = stop_error {
        Err(err)
    } else if let Some(err) = score_error {
        Err(err)
    } else {
        result::final_error(&verdict, &sample_list, &opts.rule, opts.tie)
    };
    let report = VoteReport { head: report, samples: sample_list };
    match outcome {
        Ok(()) => {
            run.end_event("ok");
            run.finish();
            Ok(report)
        }
        Err(err) => {
            run.end_event(err.code.as_str());
            run.finish();
            Err(err.with_report(report.into_value()))
        }
    }
}

/// Where a `firstTo` or `aheadBy` rule was met among samples in the order they
/// finished (for `aggregate`, the order given): the number of samples up to that
/// point, as `vote` reports where it stopped. `null` for the other rules and when the
/// rule was never met.
pub(crate) fn decision_in_order(rule: &Rule, extract: &Extract, similarity: Option<f64>, samples: &[Sample]) -> Value {
    if !rule.is_adaptive() || (extract.is_text() && similarity.is_some()) {
        return Value::Null;
    }
    let mut ordered: Vec<&Sample> = samples.iter().filter(|s| s.order.is_some()).collect();
    ordered.sort_by_key(|s| (s.order, s.index));
    let mut live = LiveTally::new(rule);
    for (position, s) in ordered.into_iter().enumerate() {
        let (Some(SampleStatus::Ok), Some(answer)) = (&s.status, &s.answer) else { continue };
        live.push(&Vote {
            sample: s.index,
            voter: s.voter_index,
            order: position,
            key: Rc::from(answer.key.as_str()),
            display: Rc::from(answer.display.as_str()),
            value: Rc::new(answer.value.clone()),
            weight: s.weight,
        });
        if live.has_reached() {
            return json!({ "afterSamples": position + 1, "round": 0, "atMs": null });
        }
    }
    Value::Null
}

/// Rejects a Borda count over answers that are never ranked ballots: a number,
/// choice or regular-expression answer would count as an empty ballot.
fn check_borda_extract(rule: &Rule, extract: &Extract) -> Result<()> {
    if matches!(rule, Rule::Borda) && matches!(extract, Extract::Number | Extract::Choice(_) | Extract::Regex { .. }) {
        return Err(Error::type_error(
            "rule",
            "\"borda\" counts ranked ballots, but this extract yields single answers; use extract \"ranking\" (or \"json\" with arrays), or a rule such as \"plurality\"",
        ));
    }
    Ok(())
}

/// Sample weights of a running vote, kept as samples are drawn and finish.
#[derive(Default)]
struct Weights {
    drawn: usize,
    failed: usize,
    /// A sample failed because `maxRequests` or the budget ran out, so a new one would
    /// fail the same way.
    budget_exhausted: bool,
    all: Ratio,
    pending: Ratio,
}

impl Weights {
    fn add_drawn(&mut self, weight: Ratio) {
        self.drawn += 1;
        self.all = self.all.add(weight);
        self.pending = self.pending.add(weight);
    }

    fn finish(&mut self, sample: &Sample) {
        self.pending = self.pending.sub(sample.weight);
        if sample.status == Some(SampleStatus::Failed) {
            self.failed += 1;
            if sample.error.as_ref().is_some_and(|e| e.code == crate::error::Code::BudgetExceeded) {
                self.budget_exhausted = true;
            }
        }
    }
}

/// The verdict on the samples so far from the live tally: the same decision as
/// [`current_verdict`] without going over every sample.
fn live_verdict(opts: &VoteOptions, live: &LiveTally, weights: &Weights, idle: bool) -> Verdict {
    let max_w = opts.max_weight();
    let drawable = if opts.rule.is_adaptive() { opts.max_samples.saturating_sub(weights.drawn) } else { 0 };
    let is_final = idle && drawable == 0;
    let outlook = Outlook { remaining: weights.pending.add(max_w.mul(Ratio::int(drawable as i64))), is_final, all_weight: weights.all, max_weight: max_w };
    let (evaluation, tally) = live.evaluate(&opts.rule, outlook);
    Verdict { valid_weight: Ratio::ZERO, tally, evaluation, ranking: Vec::new() }
}

/// The verdict on the samples so far, for early stopping.
fn current_verdict(opts: &VoteOptions, samples: &[Sample], pending: usize) -> Verdict {
    let pending_weight = samples.iter().filter(|s| s.status.is_none()).fold(Ratio::ZERO, |a, s| a.add(s.weight));
    let max_w = opts.max_weight();
    let drawable = if opts.rule.is_adaptive() { opts.max_samples.saturating_sub(samples.len()) } else { 0 };
    let remaining = pending_weight.add(max_w.mul(Ratio::int(drawable as i64)));
    let all_weight = samples.iter().fold(Ratio::ZERO, |a, s| a.add(s.weight));
    let is_final = pending == 0 && drawable == 0;
    result::verdict(&opts.rule, &opts.extract, samples, &[], opts.similarity, is_final, Outlook {
        remaining,
        is_final,
        all_weight,
        max_weight: max_w,
    })
}

/// Scores every candidate under a `score` rule.
async fn score_candidates(
    run: &Rc<Run>,
    opts: &VoteOptions,
    samples: &[Sample],
    criteria: &[score::Criterion],
    pass_score: Ratio,
    scoring: &Scoring,
) -> (Vec<Candidate>, Option<Error>) {
    let groups = result::candidate_groups(&opts.extract, samples, opts.similarity);
    let task = opts.input.as_ref().and_then(|i| i.messages.last()).map(|m| m.content.clone()).unwrap_or_default();
    let mut candidates = Vec::new();
    match scoring {
        Scoring::SelfAssessment => {
            for g in &groups {
                let mut sums: Option<Vec<Ratio>> = None;
                let mut count = 0i64;
                for &m in &g.samples {
                    if let Some(s) = samples[m].self_scores.as_ref().and_then(|v| score::parse_scores(criteria, v).ok()) {
                        sums = Some(match sums {
                            None => s,
                            Some(acc) => acc.iter().zip(&s).map(|(a, b)| a.add(*b)).collect(),
                        });
                        count += 1;
                    }
                }
                let averaged = sums.map(|s| s.into_iter().map(|x| x.div(Ratio::int(count)).unwrap_or(Ratio::ZERO)).collect::<Vec<_>>());
                let problem = averaged.is_none().then(|| "no sample of this answer rated itself with valid scores".to_string());
                candidates.push(result::candidate(g, samples, criteria, averaged.as_deref(), pass_score, problem));
            }
        }
        Scoring::Judge { provider, prompt } => {
            let mut pool = FuturesUnordered::new();
            for (gi, g) in groups.iter().enumerate() {
                let answer = samples[g.representative].text.clone().unwrap_or_default();
                let text = match prompt {
                    Some(t) => crate::task::substitute(t, &|name| match name {
                        "task" => Some(task.clone()),
                        "answer" => Some(answer.clone()),
                        "criteria" => Some(criteria.iter().map(|c| format!("{} (weight {})", c.name, c.weight_f64)).collect::<Vec<_>>().join(", ")),
                        _ => None,
                    }),
                    None => score::judge_prompt(criteria, &task, &answer),
                };
                let run = run.clone();
                let provider = provider.clone();
                pool.push(async move {
                    let record = RefCell::new(CallRecord::default());
                    let label = Label::new(json!({ "call": "judge", "candidate": gi }));
                    let r = run_call(&run, &provider, &crate::provider::CallRequest::prompt(&text), &label, &record, None).await;
                    (gi, r, record.into_inner())
                });
            }
            let mut judged: Vec<Option<(Result<CallResponse>, CallRecord)>> = (0..groups.len()).map(|_| None).collect();
            let mut stopped = None;
            loop {
                match run.guard(pool.next()).await {
                    Ok(Some((gi, r, rec))) => judged[gi] = Some((r, rec)),
                    Ok(None) => break,
                    Err(reason) => {
                        stopped = Some(run.cancel_error(&reason));
                        break;
                    }
                }
            }
            // Dropping the pool aborts the judge calls still running.
            drop(pool);
            let mut failures = Vec::new();
            for (gi, g) in groups.iter().enumerate() {
                let Some((r, rec)) = judged[gi].take() else {
                    let problem = Some("judge call cancelled before it finished".to_string());
                    candidates.push(result::candidate(g, samples, criteria, None, pass_score, problem));
                    continue;
                };
                let (scores, problem) = match r {
                    Ok(resp) => match crate::jsontext::find_json(&resp.text).ok_or_else(|| "the judge returned no JSON".to_string()).and_then(|v| score::parse_scores(criteria, &v)) {
                        Ok(s) => (Some(s), None),
                        Err(m) => (None, Some(format!("judge reply unusable: {m}"))),
                    },
                    Err(e) => {
                        let m = e.message.clone();
                        failures.push(e);
                        (None, Some(format!("judge call failed: {m}")))
                    }
                };
                let mut c = result::candidate(g, samples, criteria, scores.as_deref(), pass_score, problem);
                c.json["judge"] = json!({ "attempts": rec.attempts_json(), "usage": crate::schedule::call::usage_json(&rec) });
                candidates.push(c);
            }
            if stopped.is_some() {
                return (candidates, stopped);
            }
            if !groups.is_empty() && failures.len() == groups.len() {
                let mut err = Error::new(crate::error::Code::AllFailed, "every judge call failed, so no candidate could be scored; see err.errors");
                err.errors = failures;
                return (candidates, Some(err));
            }
        }
    }
    (candidates, None)
}

/// Runs `aggregate(answers, options)`: the same rules on answers the caller has.
pub fn aggregate(answers: &Value, options: &Value, refs: &dyn RefTable, regex: &dyn RegexEngine) -> Result<Value> {
    aggregate_report(answers, options, refs, regex).map(VoteReport::into_value)
}

/// Runs `aggregate(answers, options)`, keeping the samples apart (see [`VoteReport`]).
pub fn aggregate_report(answers: &Value, options: &Value, refs: &dyn RefTable, regex: &dyn RegexEngine) -> Result<VoteReport> {
    let empty = Value::Object(Default::default());
    let options = if options.is_null() { &empty } else { options };
    let o = Obj::new("", options, &["extract", "choices", "rule", "tie", "criteria", "similarity", "redFlags"])?;
    let extract = Extract::decode("extract", o.get("extract"), o.get("choices"), refs, regex)?;
    let mut rule = Rule::decode(o.get("rule"), o.get("criteria"))?;
    rule.canonicalize_answer(&extract)?;
    let extract = if matches!(rule, Rule::Borda) && matches!(extract, Extract::Text) { Extract::Ranking } else { extract };
    check_borda_extract(&rule, &extract)?;
    let tie = TiePolicy::decode(o.str("tie")?)?;
    let similarity = o.number("similarity", 0.0, 1.0)?;
    let red_flags = RedFlags::decode(o.get("redFlags"), regex)?;
    let Value::Array(items) = answers else {
        return Err(Error::type_error("answers", format!("expected an array of strings or {{ answer | text, voter?, weight?, scores? }}, got {}", decode::describe(answers))));
    };
    let mut samples = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        samples.push(Sample::from_given(i, item, &extract, &rule, &red_flags, regex)?);
    }
    let mut candidates = Vec::new();
    if let Rule::Score { criteria, pass_score, .. } = &rule {
        let groups = result::candidate_groups(&extract, &samples, similarity);
        for g in &groups {
            let mut sums: Option<Vec<Ratio>> = None;
            let mut count = 0i64;
            for &m in &g.samples {
                let given = samples[m].self_scores.as_ref().expect("checked when reading answers");
                let s = score::parse_scores(criteria, given).map_err(|msg| Error::type_error(&format!("answers[{m}].scores"), msg))?;
                sums = Some(match sums {
                    None => s,
                    Some(acc) => acc.iter().zip(&s).map(|(a, b)| a.add(*b)).collect(),
                });
                count += 1;
            }
            let avg = sums.map(|s| s.into_iter().map(|x| x.div(Ratio::int(count)).unwrap_or(Ratio::ZERO)).collect::<Vec<_>>());
            candidates.push(result::candidate(g, &samples, criteria, avg.as_deref(), *pass_score, None));
        }
    }
    let all_weight = samples.iter().fold(Ratio::ZERO, |a, s| a.add(s.weight));
    let max_weight = samples.iter().map(|s| s.weight).fold(Ratio::ZERO, |a, b| if b.compare(a).is_gt() { b } else { a });
    let verdict = result::verdict(&rule, &extract, &samples, &candidates, similarity, true, Outlook {
        remaining: Ratio::ZERO,
        is_final: true,
        all_weight,
        max_weight,
    });
    let mut report = result::report_head(&verdict, &samples, &rule, tie, &candidates);
    // No run and no requests: the fields a vote fills are present as null.
    report["runId"] = Value::Null;
    report["usage"] = Value::Null;
    report["rounds"] = json!(if samples.is_empty() { 0 } else { 1 });
    report["roundDetails"] = Value::Null;
    report["decision"] = decision_in_order(&rule, &extract, similarity, &samples);
    report["metrics"] = Value::Null;
    report["warnings"] = json!([]);
    let outcome = result::final_error(&verdict, &samples, &rule, tie);
    let report = VoteReport { head: report, samples };
    match outcome {
        Ok(()) => Ok(report),
        Err(err) => Err(err.with_report(report.into_value())),
    }
}
