//! Samples, candidates and the vote result: the verdict on the samples so far and the
//! report every sample appears in exactly once.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Map, Value};

use super::extract::{Answer, Extract};
use super::normalize::Ratio;
use super::rules::{self, Entry, Evaluation, Outlook, Rule, TiePolicy, Vote};
use super::score::{self, Criterion};
use super::{RedFlags, VoteOptions, Voter};
use crate::decode::{self, Obj};
use crate::error::{Code, Error, Result};
use crate::provider::CallResponse;
use crate::report::{round_ms, CallRecord};
use crate::schedule::call::usage_json;
use crate::transport::RegexEngine;

/// How a sample ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SampleStatus {
    /// It produced an answer that counts.
    Ok,
    /// It produced no extractable answer.
    Abstained,
    /// A red flag excluded it.
    RedFlagged,
    /// Its call failed.
    Failed,
    /// The vote was settled, aborted or out of time before it finished.
    Cancelled,
}

impl SampleStatus {
    /// The status as reports show it.
    pub fn as_str(&self) -> &'static str {
        match self {
            SampleStatus::Ok => "ok",
            SampleStatus::Abstained => "abstained",
            SampleStatus::RedFlagged => "red-flagged",
            SampleStatus::Failed => "failed",
            SampleStatus::Cancelled => "cancelled",
        }
    }
}

/// One sample of a vote.
#[derive(Clone)]
pub struct Sample {
    /// Its index: its position in the voter sequence.
    pub index: usize,
    /// The voter it came from.
    pub voter_index: usize,
    /// The voter's name.
    pub voter_name: Option<String>,
    /// The voter's weight.
    pub weight: Ratio,
    /// The weight as given.
    pub weight_f64: f64,
    /// `None` while it runs.
    pub status: Option<SampleStatus>,
    /// Its place among the finished samples (completion order in `vote`, input order
    /// in `aggregate`).
    pub order: Option<usize>,
    /// The reply.
    pub text: Option<String>,
    /// The extracted answer.
    pub answer: Option<Answer>,
    /// Why it abstained or was excluded.
    pub reason: Option<String>,
    /// Why it failed.
    pub error: Option<Error>,
    /// Why generation stopped.
    pub finish_reason: Option<String>,
    /// Scores it gave itself, or scores given to `aggregate`.
    pub self_scores: Option<Value>,
    /// Its call's attempts and usage.
    pub record: Rc<RefCell<CallRecord>>,
}

/// Canonicalizes an answer given to `aggregate` as the extractor would have read it
/// from a reply: a value of a kind the extractor never produces (a boolean or an
/// object under "number", anything but a label under "choice") is no answer, and a
/// ranking names each candidate once, at its first place.
fn given_answer(extract: &Extract, answer: &Value) -> Option<super::extract::Answer> {
    match (extract, answer) {
        (Extract::Number, Value::Number(_) | Value::String(_)) => extract.canonicalize(answer),
        (Extract::Number, _) => None,
        (Extract::Choice(_), Value::String(_)) => extract.canonicalize(answer),
        (Extract::Choice(_), _) => None,
        (Extract::Ranking, Value::Array(items)) => {
            let mut seen: Vec<&Value> = Vec::new();
            for item in items {
                if !seen.contains(&item) {
                    seen.push(item);
                }
            }
            extract.canonicalize(&Value::Array(seen.into_iter().cloned().collect()))
        }
        _ => extract.canonicalize(answer),
    }
}

impl Sample {
    /// A sample about to start.
    pub fn new(index: usize, voter_index: usize, voter: &Voter, record: Rc<RefCell<CallRecord>>) -> Sample {
        Sample {
            index,
            voter_index,
            voter_name: voter.name.clone(),
            weight: voter.weight,
            weight_f64: voter.weight_f64,
            status: None,
            order: None,
            text: None,
            answer: None,
            reason: None,
            error: None,
            finish_reason: None,
            self_scores: None,
            record,
        }
    }

    /// Records the call's result: a failure, a red flag, an abstention or an answer.
    pub fn finish(&mut self, result: Result<CallResponse>, opts: &VoteOptions, regex: &dyn RegexEngine) {
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                self.status = Some(SampleStatus::Failed);
                self.error = Some(e);
                return;
            }
        };
        self.finish_reason = Some(response.finish_reason.as_str().to_string());
        self.text = Some(response.text.clone());
        if let Some(reason) = opts.red_flags.check(&response) {
            self.status = Some(SampleStatus::RedFlagged);
            self.reason = Some(reason);
            return;
        }
        let mut answer_text = response.text.clone();
        if matches!(opts.scoring, Some(super::Scoring::SelfAssessment)) {
            let (answer, scores) = score::split_self_assessment(&response.text);
            answer_text = answer;
            self.self_scores = scores;
        }
        self.classify(&answer_text, &opts.extract, &opts.red_flags, regex);
    }

    /// Applies the format red flag and extraction to a reply text.
    fn classify(&mut self, text: &str, extract: &Extract, red_flags: &RedFlags, regex: &dyn RegexEngine) {
        if let Some((pattern, flags)) = &red_flags.require_format {
            if !matches!(regex.find_answer(pattern, flags, text), Ok(Some(_))) {
                self.status = Some(SampleStatus::RedFlagged);
                self.reason = Some("format".into());
                return;
            }
        }
        match extract.extract(text, regex) {
            Ok(answer) => {
                self.status = Some(SampleStatus::Ok);
                self.answer = Some(answer);
            }
            Err(no) => {
                self.status = Some(SampleStatus::Abstained);
                if let super::extract::NoAnswer::Failed(m) = &no {
                    self.error = Some(Error::new(Code::InvalidOptions, m.clone()));
                }
                self.reason = Some(no.reason());
            }
        }
    }

    /// Marks a sample that never finished as cancelled.
    pub fn cancel(&mut self, at_ms: f64) {
        self.status = Some(SampleStatus::Cancelled);
        self.record.borrow_mut().cancel_open_attempt(at_ms);
    }

    /// A sample given to `aggregate`: a string, or `{ answer | text, voter?, weight?, scores? }`.
    pub fn from_given(index: usize, item: &Value, extract: &Extract, rule: &Rule, red_flags: &RedFlags, regex: &dyn RegexEngine) -> Result<Sample> {
        let path = decode::index("answers", index);
        let mut s = Sample {
            index,
            voter_index: index,
            voter_name: None,
            weight: Ratio::int(1),
            weight_f64: 1.0,
            status: None,
            order: Some(index),
            text: None,
            answer: None,
            reason: None,
            error: None,
            finish_reason: None,
            self_scores: None,
            record: Rc::new(RefCell::new(CallRecord::default())),
        };
        match item {
            Value::String(text) => {
                s.text = Some(text.clone());
                if let Some(reason) = red_flags.check_text(text, None) {
                    s.status = Some(SampleStatus::RedFlagged);
                    s.reason = Some(reason);
                } else {
                    s.classify(text, extract, red_flags, regex);
                }
            }
            // A function, a signal or another value JSON cannot carry arrives as a marker.
            Value::Object(_) if decode::marker(item).is_some() => {
                return Err(Error::type_error(&path, format!("expected a string or {{ answer | text, voter?, weight?, scores? }}, got {}", decode::describe(item))));
            }
            Value::Object(_) => {
                let o = Obj::new(&path, item, &["answer", "text", "voter", "weight", "scores"])?;
                if o.has("answer") && o.has("text") {
                    return Err(Error::type_error(&path, "pass either `answer` (already extracted) or `text` (to extract from), not both"));
                }
                if let Some(w) = o.number("weight", 0.0, 1e9)? {
                    s.weight = Ratio::from_f64(w);
                    s.weight_f64 = w;
                }
                // A numeric voter is the voter index that tie-breaks use, so answers
                // listed in arrival order still break ties by voter.
                match o.get("voter") {
                    None => {}
                    Some(Value::String(v)) => s.voter_name = Some(v.clone()),
                    Some(Value::Number(_)) => s.voter_index = o.integer("voter", 0, decode::MAX_SAFE_INTEGER)?.expect("the key is present") as usize,
                    Some(v) => {
                        return Err(Error::type_error(
                            &o.at("voter"),
                            format!("expected a voter index (a non-negative integer) or a voter name (a string), got {}", decode::describe(v)),
                        ))
                    }
                }
                if let Some(scores) = o.get("scores") {
                    s.self_scores = Some(decode::plain_json(&o.at("scores"), scores)?);
                }
                if let Some(text) = o.str("text")? {
                    s.text = Some(text.to_string());
                    if let Some(reason) = red_flags.check_text(text, None) {
                        s.status = Some(SampleStatus::RedFlagged);
                        s.reason = Some(reason);
                    } else {
                        s.classify(text, extract, red_flags, regex);
                    }
                } else if let Some(answer) = o.get("answer") {
                    // NaN, a BigInt, a Map and the like arrive as markers: they are no JSON
                    // answer, and the marker must never count as one.
                    let answer = decode::plain_json(&o.at("answer"), answer)?;
                    match given_answer(extract, &answer) {
                        Some(a) => {
                            s.text = Some(a.display.clone());
                            s.status = Some(SampleStatus::Ok);
                            s.answer = Some(a);
                        }
                        None => {
                            s.status = Some(SampleStatus::Abstained);
                            s.reason = Some("no-answer".into());
                        }
                    }
                } else {
                    s.status = Some(SampleStatus::Abstained);
                    s.reason = Some("no-answer".into());
                }
            }
            Value::Null => {
                s.status = Some(SampleStatus::Abstained);
                s.reason = Some("no-answer".into());
            }
            other => return Err(Error::type_error(&path, format!("expected a string or an object, got {}", decode::describe(other)))),
        }
        if let Rule::Score { .. } = rule {
            if s.status == Some(SampleStatus::Ok) && s.self_scores.is_none() {
                return Err(Error::type_error(&format!("{path}.scores"), "is required by the score rule; pass { criterion: score } with scores from 0 to 10"));
            }
        }
        Ok(s)
    }

    /// The sample as report data. [`Sample::write_json`] writes the same as text.
    pub fn to_json(&self) -> Value {
        let rec = self.record.borrow();
        json!({
            "index": self.index,
            "voter": self.voter_index,
            "voterName": self.voter_name,
            "weight": self.weight_f64,
            "status": self.status.as_ref().unwrap_or(&SampleStatus::Cancelled).as_str(),
            "text": self.text,
            "answer": self.answer.as_ref().map(|a| a.display.clone()),
            "value": self.answer.as_ref().map_or(Value::Null, |a| a.value.clone()),
            "reason": self.reason,
            "error": self.error.as_ref().map(Error::to_json),
            "finishReason": self.finish_reason,
            // A sample that never sent a request has no usage.
            "usage": if rec.attempts.is_empty() { Value::Null } else { usage_json(&rec) },
            "attempts": rec.attempts_json(),
            "startedMs": rec.started_ms().map(round_ms),
            "finishedMs": rec.finished_ms().map(round_ms),
        })
    }

    /// Appends the same object as [`Sample::to_json`] as JSON text, without building
    /// a `Value` for it.
    pub fn write_json(&self, out: &mut String) {
        use crate::jsonout::{integer, key, number, opt_string, string, value};
        let rec = self.record.borrow();
        out.push('{');
        key(out, "index", true);
        integer(out, self.index);
        key(out, "voter", false);
        integer(out, self.voter_index);
        key(out, "voterName", false);
        opt_string(out, self.voter_name.as_deref());
        key(out, "weight", false);
        number(out, self.weight_f64);
        key(out, "status", false);
        string(out, self.status.as_ref().unwrap_or(&SampleStatus::Cancelled).as_str());
        key(out, "text", false);
        opt_string(out, self.text.as_deref());
        key(out, "answer", false);
        opt_string(out, self.answer.as_ref().map(|a| a.display.as_str()));
        key(out, "value", false);
        value(out, self.answer.as_ref().map_or(&Value::Null, |a| &a.value));
        key(out, "reason", false);
        opt_string(out, self.reason.as_deref());
        key(out, "error", false);
        match &self.error {
            Some(e) => out.push_str(&e.to_json().to_string()),
            None => out.push_str("null"),
        }
        key(out, "finishReason", false);
        opt_string(out, self.finish_reason.as_deref());
        key(out, "usage", false);
        if rec.attempts.is_empty() {
            out.push_str("null");
        } else {
            out.push_str(&usage_json(&rec).to_string());
        }
        key(out, "attempts", false);
        if rec.attempts.is_empty() {
            out.push_str("[]");
        } else {
            out.push_str(&rec.attempts_json().to_string());
        }
        key(out, "startedMs", false);
        match rec.started_ms() {
            Some(t) => number(out, round_ms(t)),
            None => out.push_str("null"),
        }
        key(out, "finishedMs", false);
        match rec.finished_ms() {
            Some(t) => number(out, round_ms(t)),
            None => out.push_str("null"),
        }
        out.push('}');
    }

    /// The `sample` event.
    pub fn event_json(&self) -> Value {
        json!({
            "sample": self.index,
            "voter": self.voter_index,
            "status": self.status.as_ref().map(SampleStatus::as_str),
            "answer": self.answer.as_ref().map(|a| a.display.clone()),
            "reason": self.reason,
            "text": self.text,
            "error": self.error.as_ref().map(Error::to_json),
        })
    }
}

/// Answers counted together: equal canonical answers, or near-identical texts.
#[derive(Clone, Debug)]
pub struct CandidateGroup {
    /// The key votes are counted on.
    pub key: String,
    /// The representative's answer as shown.
    pub display: String,
    /// The representative's value.
    pub value: Value,
    /// Member sample positions, ascending.
    pub samples: Vec<usize>,
    /// The most central member.
    pub representative: usize,
}

/// Groups the valid samples by answer (by similarity for free text when set).
pub fn candidate_groups(extract: &Extract, samples: &[Sample], similarity: Option<f64>) -> Vec<CandidateGroup> {
    let valid: Vec<usize> = (0..samples.len()).filter(|&i| samples[i].status == Some(SampleStatus::Ok)).collect();
    let answer = |i: usize| samples[i].answer.as_ref().expect("valid samples have an answer");
    match (extract.is_text(), similarity) {
        (true, Some(threshold)) => {
            let texts: Vec<&str> = valid.iter().map(|&i| answer(i).display.as_str()).collect();
            score::group_texts(&texts, threshold)
                .into_iter()
                .map(|g| {
                    let rep = valid[g.representative];
                    CandidateGroup {
                        key: answer(rep).key.clone(),
                        display: answer(rep).display.clone(),
                        value: answer(rep).value.clone(),
                        samples: g.members.iter().map(|&m| valid[m]).collect(),
                        representative: rep,
                    }
                })
                .collect()
        }
        _ => {
            let mut groups: Vec<CandidateGroup> = Vec::new();
            let mut by_key: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
            for &i in &valid {
                let a = answer(i);
                match by_key.get(a.key.as_str()) {
                    Some(&g) => groups[g].samples.push(i),
                    None => {
                        by_key.insert(a.key.as_str(), groups.len());
                        groups.push(CandidateGroup { key: a.key.clone(), display: a.display.clone(), value: a.value.clone(), samples: vec![i], representative: i });
                    }
                }
            }
            groups
        }
    }
}

/// A scored candidate.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Its group.
    pub group: CandidateGroup,
    /// Its total, when every criterion has a score.
    pub total: Option<Ratio>,
    /// The candidate as report data.
    pub json: Value,
}

/// Scores one candidate: its total and whether it passes.
pub fn candidate(group: &CandidateGroup, samples: &[Sample], criteria: &[Criterion], scores: Option<&[Ratio]>, pass_score: Ratio, problem: Option<String>) -> Candidate {
    let total = scores.map(|s| score::total(criteria, s));
    let json = json!({
        "answer": group.display,
        "value": group.value,
        "samples": group.samples.iter().map(|&i| samples[i].index).collect::<Vec<_>>(),
        "scores": scores.map(|s| score::scores_json(criteria, s)),
        "total": total.map(|t| (t.to_f64() * 1e9).round() / 1e9),
        "passed": total.map(|t| t.compare(pass_score).is_ge()),
        "problem": problem,
    });
    Candidate { group: group.clone(), total, json }
}

/// The verdict: the tally, the rule's evaluation, and the figures the report needs.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// Answers with their votes, leader first.
    pub tally: Vec<Entry>,
    /// The rule's evaluation.
    pub evaluation: Evaluation,
    /// For the score rule: candidates by total, best first.
    pub ranking: Vec<Candidate>,
    /// Total valid vote weight.
    pub valid_weight: Ratio,
}

impl Verdict {
    /// The winner's answer, for events.
    pub fn winner_display(&self) -> Option<String> {
        self.evaluation.winner.and_then(|i| self.tally.get(i)).map(|e| e.display.clone())
    }
}

/// Evaluates the samples under a rule.
pub fn verdict(rule: &Rule, extract: &Extract, samples: &[Sample], candidates: &[Candidate], similarity: Option<f64>, is_final: bool, outlook: Outlook) -> Verdict {
    let groups = candidate_groups(extract, samples, similarity);
    let mut votes: Vec<Vote> = Vec::with_capacity(samples.len());
    for g in &groups {
        // One shared copy per answer: a vote only points at it.
        let key: Rc<str> = Rc::from(g.key.as_str());
        let display: Rc<str> = Rc::from(g.display.as_str());
        let value = Rc::new(g.value.clone());
        for &i in &g.samples {
            let s = &samples[i];
            votes.push(Vote {
                sample: s.index,
                voter: s.voter_index,
                order: s.order.unwrap_or(s.index),
                key: key.clone(),
                display: display.clone(),
                value: value.clone(),
                weight: s.weight,
            });
        }
    }
    votes.sort_by_key(|v| v.sample);
    let valid_weight = votes.iter().fold(Ratio::ZERO, |a, v| a.add(v.weight));
    let outlook = Outlook { is_final, ..outlook };
    match rule {
        Rule::Borda => {
            let ballots: Vec<(Vote, Vec<String>)> = votes
                .iter()
                .map(|v| {
                    let ranking = v.value.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default();
                    (v.clone(), ranking)
                })
                .collect();
            let tally = rules::borda(&ballots);
            let evaluation = rules::evaluate(rule, &tally, &votes, outlook);
            Verdict { tally, evaluation, ranking: Vec::new(), valid_weight }
        }
        Rule::Score { .. } => {
            let tally = rules::tally(&votes);
            let mut ranking: Vec<Candidate> = candidates.iter().filter(|c| c.total.is_some()).cloned().collect();
            let precedence = |c: &Candidate| tally.iter().find(|e| e.key == c.group.key).map_or((usize::MAX, usize::MAX), |e| e.precedence);
            ranking.sort_by(|a, b| b.total.unwrap().compare(a.total.unwrap()).then(precedence(a).cmp(&precedence(b))));
            // Evaluate on totals; the winner indexes into the tally by answer.
            let ranked: Vec<Entry> = ranking
                .iter()
                .map(|c| Entry {
                    key: c.group.key.clone(),
                    display: c.group.display.clone(),
                    value: c.group.value.clone(),
                    votes: c.total.unwrap(),
                    voters: c.group.samples.clone(),
                    precedence: precedence(c),
                })
                .collect();
            let mut evaluation = rules::evaluate(rule, &ranked, &votes, outlook);
            evaluation.winner = evaluation.winner.and_then(|w| tally.iter().position(|e| e.key == ranked[w].key));
            Verdict { tally, evaluation, ranking, valid_weight }
        }
        _ => {
            let tally = rules::tally(&votes);
            let evaluation = rules::evaluate(rule, &tally, &votes, outlook);
            Verdict { tally, evaluation, ranking: Vec::new(), valid_weight }
        }
    }
}

/// The tied entries at the top (by votes, or by total for the score rule), as tally
/// positions in tie-break order: the first one wins under `tie: "first"`.
fn tied_top(verdict: &Verdict, rule: &Rule) -> Vec<usize> {
    if let Rule::Score { .. } = rule {
        let Some(best) = verdict.ranking.first().and_then(|c| c.total) else { return Vec::new() };
        return verdict
            .ranking
            .iter()
            .filter(|c| c.total.is_some_and(|t| t == best))
            .filter_map(|c| verdict.tally.iter().position(|e| e.key == c.group.key))
            .collect();
    }
    let Some(top) = verdict.tally.first() else { return Vec::new() };
    (0..verdict.tally.len()).filter(|&i| verdict.tally[i].votes == top.votes).collect()
}

/// The report every caller sees.
pub fn report_json(verdict: &Verdict, samples: &[Sample], rule: &Rule, tie: TiePolicy, candidates: &[Candidate]) -> Value {
    let mut report = report_head(verdict, samples, rule, tie, candidates);
    report["samples"] = Value::Array(samples.iter().map(Sample::to_json).collect());
    report
}

/// Writes `samples` as a JSON array.
pub fn samples_text(samples: &[Sample]) -> String {
    let mut out = String::with_capacity(samples.len() * 256 + 2);
    out.push('[');
    for (i, s) in samples.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        s.write_json(&mut out);
    }
    out.push(']');
    out
}

/// The report without its `samples`, which [`samples_text`] writes.
pub fn report_head(verdict: &Verdict, samples: &[Sample], rule: &Rule, tie: TiePolicy, candidates: &[Candidate]) -> Value {
    let e = &verdict.evaluation;
    let mut winner = e.winner;
    let mut decided = e.decided;
    if e.tie {
        match tie {
            TiePolicy::First => {
                // The tally is already in tie-break order (voter order, never arrival
                // order); `decided` stays as the rule left it, so a tie at the cap of
                // an adaptive rule is still undecided.
                winner = tied_top(verdict, rule).into_iter().next();
                decided = decided && winner.is_some();
            }
            TiePolicy::None | TiePolicy::Error => {
                winner = None;
                decided = false;
            }
        }
    }
    let winner_entry = winner.and_then(|i| verdict.tally.get(i));
    // Keyed by the answer as shown, like `winner` and `tally[].answer`, so that
    // `counts[winner]` works. Distinct keys have distinct displays.
    let mut counts = Map::new();
    for entry in &verdict.tally {
        counts.insert(entry.display.clone(), json!(entry.votes.to_f64()));
    }
    let count = |status: SampleStatus| samples.iter().filter(|s| s.status.as_ref() == Some(&status)).count();
    let mut excluded = Map::new();
    for s in samples.iter().filter(|s| s.status == Some(SampleStatus::RedFlagged)) {
        let reason = s.reason.clone().unwrap_or_default();
        let n = excluded.get(&reason).and_then(Value::as_u64).unwrap_or(0);
        excluded.insert(reason, json!(n + 1));
    }
    let margin = match rule {
        Rule::Score { .. } => {
            let best = verdict.ranking.first().and_then(|c| c.total);
            let second = verdict.ranking.get(1).and_then(|c| c.total).unwrap_or(Ratio::ZERO);
            best.map(|b| b.sub(second))
        }
        // The winner's lead over the best other answer. A firstTo or aheadBy winner is
        // the first to meet the condition, so with votes counted after that (in
        // `aggregate`) another answer may end ahead, and the margin is negative.
        _ => match winner_entry {
            Some(w) => {
                let best_other = verdict.tally.iter().filter(|e| e.key != w.key).map(|e| e.votes).fold(Ratio::ZERO, |a, b| if b.compare(a).is_gt() { b } else { a });
                Some(w.votes.sub(best_other))
            }
            None => verdict.tally.first().map(|e| e.votes.sub(verdict.tally.get(1).map_or(Ratio::ZERO, |e| e.votes))),
        },
    };
    // The share of the winner (or of the leader when there is none): of the valid
    // votes, of every sample under `of: "samples"`, or for Borda of the most points a
    // candidate could get (first place on every ballot).
    let denominator = match rule {
        Rule::Threshold { of_samples: true, .. } => samples.iter().fold(Ratio::ZERO, |a, s| a.add(s.weight)),
        Rule::Borda => verdict.valid_weight.mul(Ratio::int(verdict.tally.len().saturating_sub(1) as i64)),
        _ => verdict.valid_weight,
    };
    let agreement = winner_entry
        .or(verdict.tally.first())
        .and_then(|e| e.votes.div(denominator))
        .map(|r| (r.to_f64() * 1e6).round() / 1e6);
    let passed = match rule {
        Rule::AtLeast { answer: Some(_), .. } => e.passed.map(Value::Bool).unwrap_or(Value::Null),
        Rule::Score { pass_score, .. } => match winner_entry {
            Some(w) => {
                let total = verdict.ranking.iter().find(|c| c.group.key == w.key).and_then(|c| c.total);
                total.map_or(Value::Null, |t| Value::Bool(t.compare(*pass_score).is_ge()))
            }
            None => Value::Null,
        },
        _ => Value::Null,
    };
    let scores = match rule {
        Rule::Score { .. } => {
            let mut list: Vec<&Candidate> = candidates.iter().collect();
            list.sort_by(|a, b| match (a.total, b.total) {
                (Some(x), Some(y)) => y.compare(x),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            });
            Value::Array(list.iter().map(|c| c.json.clone()).collect())
        }
        _ => Value::Null,
    };
    json!({
        "winner": winner_entry.map(|w| w.display.clone()),
        "value": winner_entry.map_or(Value::Null, |w| w.value.clone()),
        "decided": decided,
        "tie": e.tie,
        "passed": passed,
        "rule": rule.name(),
        "tally": verdict.tally.iter().map(|entry| json!({
            "answer": entry.display,
            "value": entry.value,
            "votes": entry.votes.to_f64(),
            "voters": entry.voters,
        })).collect::<Vec<_>>(),
        "counts": counts,
        "valid": count(SampleStatus::Ok),
        "failed": count(SampleStatus::Failed),
        "abstained": count(SampleStatus::Abstained),
        "redFlagged": count(SampleStatus::RedFlagged),
        "cancelled": count(SampleStatus::Cancelled),
        "excluded": excluded,
        // Exact sums convert without noise; a float sum is rounded to hide it.
        "margin": margin.map(|m| if m.is_exact() { m.to_f64() } else { (m.to_f64() * 1e9).round() / 1e9 }),
        "agreement": agreement,
        "scores": scores,
    })
}

/// The rejection a finished vote ends in, if any: every sample failed, or a tie under
/// `tie: "error"`.
pub fn final_error(verdict: &Verdict, samples: &[Sample], rule: &Rule, tie: TiePolicy) -> Result<()> {
    let failed: Vec<&Sample> = samples.iter().filter(|s| s.status == Some(SampleStatus::Failed)).collect();
    if !samples.is_empty() && failed.len() == samples.len() {
        let first = failed[0].error.as_ref().map(|e| e.message.clone()).unwrap_or_default();
        let mut err = Error::new(
            Code::AllFailed,
            format!("all {} samples failed; every error is in err.errors (the first: {first})", samples.len()),
        );
        err.errors = failed
            .iter()
            .map(|s| s.error.clone().unwrap_or_else(|| Error::new(Code::ProviderError, "unknown failure")).with_detail("sample", json!(s.index)))
            .collect();
        return Err(err);
    }
    if verdict.evaluation.tie && tie == TiePolicy::Error {
        let measure = if matches!(rule, Rule::Score { .. }) { "total" } else { "votes" };
        let tied: Vec<String> = tied_top(verdict, rule)
            .into_iter()
            .map(|i| &verdict.tally[i])
            .map(|e| {
                let amount = match rule {
                    Rule::Score { .. } => verdict.ranking.iter().find(|c| c.group.key == e.key).and_then(|c| c.total).unwrap_or(Ratio::ZERO),
                    _ => e.votes,
                };
                let amount = amount.to_f64();
                let unit = if amount == 1.0 && measure == "votes" { "vote" } else { measure };
                format!("{:?} ({amount} {unit})", e.display)
            })
            .collect();
        let mut err = Error::new(Code::Tie, format!("the vote is tied between {}; add voters or set tie to \"first\"", tied.join(" and ")));
        err.detail.insert("tied".into(), json!(tied_top(verdict, rule).into_iter().map(|i| verdict.tally[i].display.clone()).collect::<Vec<_>>()));
        return Err(err);
    }
    Ok(())
}

#[cfg(test)]
mod write_tests {
    use super::*;
    use crate::report::{Attempt, Status};

    #[test]
    fn written_sample_equals_its_value() {
        let voter = super::super::Voter { name: Some("v\"1".into()), input: None, system: None, provider: None, temperature: None, weight: Ratio::from_f64(0.5), weight_f64: 0.5 };
        let mut record = CallRecord::default();
        record.attempts.push(Attempt { status: Some(Status::Failed), error: Some(Error::new(Code::ProviderError, "x")), started_ms: 1.25, finished_ms: Some(3.0) });
        record.attempts.push(Attempt { status: Some(Status::Ok), error: None, started_ms: 4.0, finished_ms: Some(9.5) });
        let mut s = Sample::new(3, 1, &voter, Rc::new(RefCell::new(record)));
        s.status = Some(SampleStatus::Ok);
        s.text = Some("The answer is \"42\"\n".into());
        s.answer = Some(Answer { key: "42".into(), display: "42".into(), value: serde_json::json!(42.0) });
        s.finish_reason = Some("stop".into());
        let mut text = String::new();
        s.write_json(&mut text);
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, s.to_json());
        let empty = Sample::new(0, 0, &voter, Rc::new(RefCell::new(CallRecord::default())));
        let parsed: Value = serde_json::from_str(&samples_text(&[empty.clone(), empty.clone()])).unwrap();
        assert_eq!(parsed, Value::Array(vec![empty.to_json(), empty.to_json()]));
    }
}
