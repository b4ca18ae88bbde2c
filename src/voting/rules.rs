//! Voting rules as data, the tally, and the decision: whether the outcome is settled
//! (no further sample can change it), who wins, and how many more samples an
//! adaptive rule should draw.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value;

use super::normalize::Ratio;
use super::score::Criterion;
use crate::decode::{self, Obj};
use crate::error::{Error, Result};

/// A voting rule.
#[derive(Clone, Debug)]
pub enum Rule {
    /// The answer with the most votes wins.
    Plurality,
    /// The leader wins if its share of the votes reaches `share` (`strict`: exceeds
    /// it). `"majority"` is more than half of the valid votes.
    Threshold {
        /// The share needed, 0 to 1.
        share: Ratio,
        /// Whether the share must be exceeded rather than reached.
        strict: bool,
        /// Count the share of every sample requested, not only the valid votes.
        of_samples: bool,
    },
    /// An answer wins once it has `k` votes; with `answer`, the outcome is whether
    /// that answer reaches `k` ("flag if at least k flag").
    AtLeast {
        /// Votes needed.
        k: Ratio,
        /// The answer being counted, if fixed.
        answer: Option<String>,
    },
    /// Keep sampling until an answer has `k` votes.
    FirstTo(Ratio),
    /// Keep sampling until an answer leads every other by `k` votes.
    AheadBy(Ratio),
    /// Ranked ballots, counted by Borda points.
    Borda,
    /// Weighted criteria scored 0 to 10, totals 0 to 100, and a pass score.
    Score {
        /// The criteria with their weights.
        criteria: Vec<Criterion>,
        /// The total a winner needs to pass.
        pass_score: Ratio,
        /// The pass score as given.
        pass_score_f64: f64,
    },
}

impl Rule {
    /// Whether the rule draws more samples until it is settled.
    pub fn is_adaptive(&self) -> bool {
        matches!(self, Rule::FirstTo(_) | Rule::AheadBy(_))
    }

    /// The rule's name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Plurality => "plurality",
            Rule::Threshold { strict: true, .. } => "majority",
            Rule::Threshold { .. } => "threshold",
            Rule::AtLeast { .. } => "atLeast",
            Rule::FirstTo(_) => "firstTo",
            Rule::AheadBy(_) => "aheadBy",
            Rule::Borda => "borda",
            Rule::Score { .. } => "score",
        }
    }

    /// Reads the `rule` option. `top_criteria` is the top-level `criteria` option,
    /// which a `score` rule may use instead of its own.
    pub fn decode(value: Option<&Value>, top_criteria: Option<&Value>) -> Result<Rule> {
        let path = "rule";
        let Some(value) = value else { return Ok(Rule::Plurality) };
        let names = "\"plurality\", \"majority\", \"borda\", { atLeast }, { firstTo }, { aheadBy }, { threshold } or { score }";
        match value {
            Value::String(s) => match s.as_str() {
                "plurality" => Ok(Rule::Plurality),
                "majority" => Ok(Rule::Threshold { share: Ratio::from_f64(0.5), strict: true, of_samples: false }),
                "borda" => Ok(Rule::Borda),
                other => {
                    let hint = decode::suggest(other, &["plurality", "majority", "borda"]).map_or(String::new(), |s| format!(" (did you mean `{s}`?)"));
                    Err(Error::type_error(path, format!("unknown rule {other:?}{hint}; expected {names}")))
                }
            },
            Value::Object(map) => {
                let key = map.keys().next().cloned().unwrap_or_default();
                match key.as_str() {
                    "atLeast" | "answer" => {
                        let o = Obj::new(path, value, &["atLeast", "answer"])?;
                        let k = o.number("atLeast", 1.0, 1e9)?.ok_or_else(|| Error::type_error("rule.atLeast", "is required; pass the number of votes needed"))?;
                        let answer = match o.get("answer") {
                            None => None,
                            Some(Value::String(s)) => Some(s.clone()),
                            Some(Value::Number(n)) => Some(super::normalize::canonical_number_json(n)),
                            Some(Value::Bool(b)) => Some(b.to_string()),
                            Some(other) => return Err(Error::type_error("rule.answer", format!("expected a string, got {}", decode::describe(other)))),
                        };
                        Ok(Rule::AtLeast { k: Ratio::from_f64(k), answer })
                    }
                    "firstTo" => {
                        let o = Obj::new(path, value, &["firstTo"])?;
                        let k = o.number("firstTo", 1.0, 1e6)?.ok_or_else(|| Error::type_error("rule.firstTo", "is required; pass the number of votes an answer needs to win"))?;
                        Ok(Rule::FirstTo(Ratio::from_f64(k)))
                    }
                    "aheadBy" => {
                        let o = Obj::new(path, value, &["aheadBy"])?;
                        let k = o.number("aheadBy", 1.0, 1e6)?.ok_or_else(|| Error::type_error("rule.aheadBy", "is required; pass the lead in votes an answer needs to win"))?;
                        Ok(Rule::AheadBy(Ratio::from_f64(k)))
                    }
                    "threshold" | "of" => {
                        let o = Obj::new(path, value, &["threshold", "of"])?;
                        let share = o.number("threshold", 0.0, 1.0)?.ok_or_else(|| Error::type_error("rule.threshold", "is required; pass the share needed, such as 0.6"))?;
                        if share == 0.0 {
                            return Err(Error::range_error("rule.threshold", "must be above 0"));
                        }
                        let of_samples = match o.str("of")? {
                            None | Some("valid") => false,
                            Some("samples") => true,
                            Some(other) => return Err(Error::type_error("rule.of", format!("expected \"valid\" or \"samples\", got {other:?}"))),
                        };
                        Ok(Rule::Threshold { share: Ratio::from_f64(share), strict: false, of_samples })
                    }
                    "score" => {
                        let o = Obj::new(path, value, &["score"])?;
                        let s = o.get("score").ok_or_else(|| Error::type_error("rule.score", "is required; pass { criteria, passScore }"))?;
                        let so = Obj::new("rule.score", s, &["criteria", "passScore"])?;
                        let criteria_value = match (so.get("criteria"), top_criteria) {
                            (Some(_), Some(_)) => return Err(Error::type_error("criteria", "is set both here and in rule.score.criteria; keep one")),
                            (Some(c), None) => (c, "rule.score.criteria"),
                            (None, Some(c)) => (c, "criteria"),
                            (None, None) => return Err(Error::type_error("rule.score.criteria", "is required; pass [{ name, weight }]")),
                        };
                        let criteria = Criterion::decode_list(criteria_value.1, criteria_value.0)?;
                        let pass = so.number("passScore", 0.0, 100.0)?.unwrap_or(0.0);
                        Ok(Rule::Score { criteria, pass_score: Ratio::from_f64(pass), pass_score_f64: pass })
                    }
                    "" => Err(Error::type_error(path, format!("is an empty object; expected {names}"))),
                    other => {
                        let hint = decode::suggest(other, &["atLeast", "firstTo", "aheadBy", "threshold", "score"])
                            .map_or(String::new(), |s| format!(" (did you mean `{s}`?)"));
                        Err(Error::type_error(path, format!("has the unknown key {other:?}{hint}; expected {names}")))
                    }
                }
            }
            other => Err(Error::type_error(path, format!("expected {names}, got {}", decode::describe(other)))),
        }
    }
}

impl Rule {
    /// Rewrites a fixed `answer` (of `{ atLeast, answer }`) into the canonical form of
    /// the extractor, so that `answer: "42.0"` counts the votes for "42" and `"Yes"`
    /// those for "yes" under text extraction.
    pub fn canonicalize_answer(&mut self, extract: &super::extract::Extract) -> Result<()> {
        if let Rule::AtLeast { answer: Some(answer), .. } = self {
            use super::extract::Extract;
            // The answer is read as the extractor reads a reply: JSON text is parsed, so
            // key order and number forms do not matter, and a ranking is split into
            // its ballot.
            let as_reply = match extract {
                Extract::Json | Extract::JsonPath(_) => serde_json::from_str::<Value>(answer).unwrap_or_else(|_| Value::String(answer.clone())),
                Extract::Ranking => super::extract::find_ranking(answer)
                    .map(|items| Value::Array(items.into_iter().map(Value::String).collect()))
                    .unwrap_or_else(|| Value::String(answer.clone())),
                _ => Value::String(answer.clone()),
            };
            let canonical = extract.canonicalize(&as_reply).ok_or_else(|| {
                Error::type_error("rule.answer", format!("{answer:?} is not an answer the extractor can produce, so no vote could ever count for it"))
            })?;
            *answer = canonical.key;
        }
        Ok(())
    }
}

/// What to do with a tie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TiePolicy {
    /// Report it: no winner, `decided: false`.
    None,
    /// The tied answer whose first supporter has the lowest voter index wins.
    First,
    /// Reject with `TIE`.
    Error,
}

impl TiePolicy {
    /// Reads the `tie` option.
    pub fn decode(value: Option<&str>) -> Result<TiePolicy> {
        match value {
            None | Some("none") => Ok(TiePolicy::None),
            Some("first") => Ok(TiePolicy::First),
            Some("error") => Ok(TiePolicy::Error),
            Some(other) => Err(Error::type_error("tie", format!("expected \"none\", \"first\" or \"error\", got {other:?}"))),
        }
    }
}

/// One counted vote.
#[derive(Clone, Debug)]
pub struct Vote {
    /// The sample's index (its position in the voter sequence).
    pub sample: usize,
    /// The index of the voter that cast it.
    pub voter: usize,
    /// Its place in the order the votes were cast: completion order in `vote`, input
    /// order in `aggregate`. Only the sequential rules (`firstTo`, `aheadBy`) use it.
    pub order: usize,
    /// The canonical answer, shared by every vote for it.
    pub key: Rc<str>,
    /// The answer as shown.
    pub display: Rc<str>,
    /// The parsed value.
    pub value: Rc<Value>,
    /// The voter's weight.
    pub weight: Ratio,
}

impl Vote {
    /// The tie-break key: lower voter index first, then lower sample index.
    pub fn precedence(&self) -> (usize, usize) {
        (self.voter, self.sample)
    }
}

/// An answer's line in the tally.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The canonical answer.
    pub key: String,
    /// The answer as shown.
    pub display: String,
    /// The parsed value.
    pub value: Value,
    /// Votes (weights summed; Borda points for ballots).
    pub votes: Ratio,
    /// Sample indexes that voted for it (for ballots: ranked it first), ascending.
    pub voters: Vec<usize>,
    /// The lowest (voter index, sample index) among its supporters; equal votes are
    /// ordered by it, so a tie-break never depends on arrival order.
    pub precedence: (usize, usize),
}

/// Orders a tally: most votes first, then by precedence (the answer whose earliest
/// supporter has the lowest voter index).
pub fn sort_tally(entries: &mut [Entry]) {
    entries.sort_by(|a, b| b.votes.compare(a.votes).then(a.precedence.cmp(&b.precedence)));
}

/// Counts votes per answer.
pub fn tally(votes: &[Vote]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    // Each answer's entry by key: a scan of the entries would make many distinct
    // answers quadratic.
    let mut index: HashMap<Rc<str>, usize> = HashMap::new();
    for v in votes {
        let slot = index.get(&v.key).copied();
        match slot.map(|i| &mut entries[i]) {
            Some(e) => {
                e.votes = e.votes.add(v.weight);
                e.voters.push(v.sample);
                e.precedence = e.precedence.min(v.precedence());
            }
            None => {
                index.insert(v.key.clone(), entries.len());
                entries.push(Entry {
                    key: v.key.to_string(),
                    display: v.display.to_string(),
                    value: (*v.value).clone(),
                    votes: v.weight,
                    voters: vec![v.sample],
                    precedence: v.precedence(),
                });
            }
        }
    }
    for e in &mut entries {
        e.voters.sort_unstable();
    }
    sort_tally(&mut entries);
    entries
}

/// Borda points over the `m` candidates seen on any ballot. On each ballot the
/// candidate ranked at position `i` (from 0) gets `m - 1 - i` points. Candidates a
/// partial ballot leaves out share the points of the positions it left empty, so each
/// gets `(m - 1 - L) / 2` on a ballot that ranks `L`. A short ballot therefore gives its
/// first choice no more advantage than a full ballot would. Points are multiplied by
/// the voter's weight. Equal points are ordered by the ballots in voter order: the
/// candidate ranked higher on the first ballot that separates them comes first.
pub fn borda(ballots: &[(Vote, Vec<String>)]) -> Vec<Entry> {
    let mut ordered: Vec<&(Vote, Vec<String>)> = ballots.iter().collect();
    ordered.sort_by_key(|(v, _)| v.precedence());
    let mut candidates: Vec<String> = Vec::new();
    for (_, ranking) in &ordered {
        for c in ranking {
            if !candidates.contains(c) {
                candidates.push(c.clone());
            }
        }
    }
    let m = candidates.len() as i64;
    let mut entries: Vec<Entry> = candidates
        .iter()
        .map(|c| Entry {
            key: c.clone(),
            display: c.clone(),
            value: Value::String(c.clone()),
            votes: Ratio::ZERO,
            voters: Vec::new(),
            precedence: (usize::MAX, usize::MAX),
        })
        .collect();
    for (vote, ranking) in &ordered {
        // A candidate counts at its first place only, so a ballot that repeats one
        // cannot push the others below zero points.
        let mut distinct: Vec<&String> = Vec::with_capacity(ranking.len());
        for c in ranking.iter() {
            if !distinct.contains(&c) {
                distinct.push(c);
            }
        }
        let ranking: Vec<String> = distinct.into_iter().cloned().collect();
        let ranked = ranking.len() as i64;
        let unranked_points = Ratio::int(m - 1 - ranked).div(Ratio::int(2)).unwrap_or(Ratio::ZERO);
        for e in entries.iter_mut() {
            let points = match ranking.iter().position(|c| c == &e.key) {
                Some(pos) => Ratio::int(m - 1 - pos as i64),
                None => unranked_points,
            };
            e.votes = e.votes.add(points.mul(vote.weight));
        }
        if let Some(top) = ranking.first() {
            let e = entries.iter_mut().find(|e| &e.key == top).expect("every candidate has an entry");
            e.voters.push(vote.sample);
            e.precedence = e.precedence.min(vote.precedence());
        }
    }
    // Position of each candidate on each ballot, in voter order; unranked is m.
    let position = |key: &str, ranking: &[String]| ranking.iter().position(|c| c == key).unwrap_or(m as usize);
    let appearance = |key: &str| candidates.iter().position(|c| c == key).unwrap_or(usize::MAX);
    entries.sort_by(|a, b| {
        b.votes.compare(a.votes).then_with(|| {
            ordered
                .iter()
                .map(|(_, r)| position(&a.key, r).cmp(&position(&b.key, r)))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
                .then(appearance(&a.key).cmp(&appearance(&b.key)))
        })
    });
    for e in &mut entries {
        e.voters.sort_unstable();
    }
    entries
}

/// What is known about votes still to come.
#[derive(Clone, Copy, Debug)]
pub struct Outlook {
    /// The most weight that samples still pending or still drawable can add.
    pub remaining: Ratio,
    /// Whether no more samples will come.
    pub is_final: bool,
    /// The weight of every sample requested so far (the denominator of
    /// `of: "samples"`).
    pub all_weight: Ratio,
    /// The largest voter weight, for sizing top-ups.
    pub max_weight: Ratio,
}

/// The state of a vote at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// No further sample can change the outcome.
    pub settled: bool,
    /// The rule's condition holds. On a tie it still holds, and the tie policy decides:
    /// `"first"` keeps it, `"none"` and `"error"` clear it.
    pub decided: bool,
    /// Index into the tally of the winner or leader.
    pub winner: Option<usize>,
    /// The top answers are tied.
    pub tie: bool,
    /// For `atLeast` with a fixed answer: whether it reached `k`.
    pub passed: Option<bool>,
    /// For adaptive rules: the fewest further samples that could settle the vote.
    pub top_up: usize,
}

impl Evaluation {
    fn pending() -> Evaluation {
        Evaluation { settled: false, decided: false, winner: None, tie: false, passed: None, top_up: 0 }
    }

    fn settled_winner(i: usize) -> Evaluation {
        Evaluation { settled: true, decided: true, winner: Some(i), tie: false, passed: None, top_up: 0 }
    }

    /// The rule's condition holds for the top answers, but they are tied.
    fn settled_tie() -> Evaluation {
        Evaluation { settled: true, decided: true, winner: None, tie: true, passed: None, top_up: 0 }
    }

    /// The end state when the rule's condition cannot hold (or no more samples come):
    /// the leader, or no one on a tie, and `decided: false`.
    fn undecided(tally: &[Entry]) -> Evaluation {
        let tie = tally.len() >= 2 && tally[0].votes == tally[1].votes;
        Evaluation {
            settled: true,
            decided: false,
            winner: if tally.is_empty() || tie { None } else { Some(0) },
            tie,
            passed: None,
            top_up: 0,
        }
    }
}

fn votes_at(tally: &[Entry], i: usize) -> Ratio {
    tally.get(i).map_or(Ratio::ZERO, |e| e.votes)
}

/// Samples needed to add `needed` votes at `max_weight` each (at least one).
fn samples_for(needed: Ratio, max_weight: Ratio) -> usize {
    match needed.div(max_weight) {
        Some(n) if n.compare(Ratio::ZERO).is_gt() => (n.to_f64() - 1e-9).ceil().max(1.0) as usize,
        _ => 1,
    }
}

/// Votes in the order they were cast, tracking the leader and the runner-up as they
/// arrive (counts only grow), so each vote costs a lookup rather than a scan.
#[derive(Default)]
pub struct Sequence {
    counts: HashMap<Rc<str>, Ratio>,
    leader: Option<Rc<str>>,
    top: Ratio,
    second: Ratio,
}

impl Default for Ratio {
    fn default() -> Ratio {
        Ratio::ZERO
    }
}

impl Sequence {
    /// Adds a vote. Returns the leader's and the runner-up's votes when `key` leads
    /// after it (only the answer that just gained can newly meet a condition).
    pub fn push(&mut self, key: &Rc<str>, weight: Ratio) -> Option<(Ratio, Ratio)> {
        let count = self.counts.entry(key.clone()).or_insert(Ratio::ZERO);
        *count = count.add(weight);
        let count = *count;
        if self.leader.as_ref() == Some(key) {
            self.top = count;
        } else if count.compare(self.top).is_gt() {
            self.second = self.top;
            self.top = count;
            self.leader = Some(key.clone());
        } else if count.compare(self.second).is_gt() {
            self.second = count;
        }
        (self.leader.as_ref() == Some(key)).then_some((self.top, self.second))
    }
}

/// The condition a sequential rule stops at, given the leader's and the runner-up's
/// votes; `None` for the other rules.
pub fn stop_condition(rule: &Rule) -> Option<Box<dyn Fn(Ratio, Ratio) -> bool>> {
    match rule {
        Rule::FirstTo(k) => {
            let k = *k;
            Some(Box::new(move |top, _| top.compare(k) != Ordering::Less))
        }
        Rule::AheadBy(k) => {
            let k = *k;
            Some(Box::new(move |top, second: Ratio| top.sub(second).compare(k) != Ordering::Less))
        }
        _ => None,
    }
}

/// Replays the votes in the order they were cast and returns the key of the answer
/// that first met `reached(votes of the leader, votes of the runner-up)`.
fn first_to_reach(votes: &[Vote], reached: impl Fn(Ratio, Ratio) -> bool) -> Option<String> {
    let mut ordered: Vec<&Vote> = votes.iter().collect();
    ordered.sort_by_key(|v| (v.order, v.sample));
    let mut sequence = Sequence::default();
    for v in ordered {
        if let Some((top, second)) = sequence.push(&v.key, v.weight) {
            if reached(top, second) {
                return Some(v.key.to_string());
            }
        }
    }
    None
}

/// A tally kept up to date vote by vote while a vote runs, so that deciding whether
/// to stop costs the same after the thousandth sample as after the first. It holds
/// for rules whose count never changes retroactively: not Borda or score, and not
/// free text grouped by similarity.
pub struct LiveTally {
    entries: Vec<Entry>,
    index: HashMap<Rc<str>, usize>,
    /// The two best entries, best first. Counts only grow and precedence only
    /// improves, so an entry can only climb, and only when it gains a vote.
    top: [Option<usize>; 2],
    sequence: Sequence,
    condition: Option<Box<dyn Fn(Ratio, Ratio) -> bool>>,
    reached: Option<usize>,
    valid: Ratio,
}

impl LiveTally {
    /// An empty tally for `rule`.
    pub fn new(rule: &Rule) -> LiveTally {
        LiveTally {
            entries: Vec::new(),
            index: HashMap::new(),
            top: [None, None],
            sequence: Sequence::default(),
            condition: stop_condition(rule),
            reached: None,
            valid: Ratio::ZERO,
        }
    }

    fn better(&self, a: usize, b: usize) -> bool {
        let (a, b) = (&self.entries[a], &self.entries[b]);
        b.votes.compare(a.votes).then(a.precedence.cmp(&b.precedence)) == Ordering::Less
    }

    /// Counts one vote, in the order votes are cast.
    pub fn push(&mut self, vote: &Vote) {
        let at = match self.index.get(&vote.key) {
            Some(&at) => {
                let e = &mut self.entries[at];
                e.votes = e.votes.add(vote.weight);
                e.precedence = e.precedence.min(vote.precedence());
                at
            }
            None => {
                self.index.insert(vote.key.clone(), self.entries.len());
                self.entries.push(Entry {
                    key: vote.key.to_string(),
                    display: vote.display.to_string(),
                    value: (*vote.value).clone(),
                    votes: vote.weight,
                    voters: Vec::new(),
                    precedence: vote.precedence(),
                });
                self.entries.len() - 1
            }
        };
        self.valid = self.valid.add(vote.weight);
        match self.top {
            [None, _] => self.top = [Some(at), None],
            [Some(first), _] if first == at => {}
            [Some(first), second] => {
                if self.better(at, first) {
                    self.top = [Some(at), Some(first)];
                } else if second.is_none_or(|s| s == at || self.better(at, s)) {
                    self.top = [Some(first), Some(at)];
                }
            }
        }
        if self.reached.is_none() {
            if let (Some(condition), Some((top, second))) = (&self.condition, self.sequence.push(&vote.key, vote.weight)) {
                if condition(top, second) {
                    self.reached = Some(at);
                }
            }
        }
    }

    /// Whether an answer has met the `firstTo` or `aheadBy` condition.
    pub fn has_reached(&self) -> bool {
        self.reached.is_some()
    }

    /// Evaluates `rule` on the votes so far. The evaluation's `winner` indexes
    /// [`LiveTally::entries_for`]'s result.
    pub fn evaluate(&self, rule: &Rule, outlook: Outlook) -> (Evaluation, Vec<Entry>) {
        let snapshot = self.entries_for(rule);
        let reached = self.reached.map(|i| self.entries[i].key.as_str());
        let evaluation = evaluate_with(rule, &snapshot, self.valid, reached, outlook);
        (evaluation, snapshot)
    }

    /// The entries a rule looks at: the leader, the runner-up, and the answers the
    /// rule names or that met its condition. Their votes carry no voter lists.
    fn entries_for(&self, rule: &Rule) -> Vec<Entry> {
        let mut picked: Vec<usize> = self.top.iter().flatten().copied().collect();
        if let Some(i) = self.reached {
            picked.push(i);
        }
        if let Rule::AtLeast { answer: Some(answer), .. } = rule {
            picked.extend(self.index.get(answer.as_str()).copied());
        }
        let mut seen = Vec::with_capacity(picked.len());
        for i in picked {
            if !seen.contains(&i) {
                seen.push(i);
            }
        }
        seen.into_iter().map(|i| self.entries[i].clone()).collect()
    }
}

/// Evaluates `rule` on a tally (Borda and score tallies included).
pub fn evaluate(rule: &Rule, tally: &[Entry], votes: &[Vote], outlook: Outlook) -> Evaluation {
    let reached = stop_condition(rule).and_then(|condition| first_to_reach(votes, condition));
    let valid = tally.iter().fold(Ratio::ZERO, |acc, e| acc.add(e.votes));
    evaluate_with(rule, tally, valid, reached.as_deref(), outlook)
}

/// Evaluates `rule` as [`evaluate`] does, for a tally whose sequential winner is
/// already known. `tally` is sorted, leader first, and may hold only the entries the
/// rule looks at. `valid` is the weight of every valid vote. `reached` is the answer
/// that first met a `firstTo` or `aheadBy` condition in the order votes were cast.
pub fn evaluate_with(rule: &Rule, tally: &[Entry], valid: Ratio, reached: Option<&str>, outlook: Outlook) -> Evaluation {
    let v0 = votes_at(tally, 0);
    let v1 = votes_at(tally, 1);
    let lead = v0.sub(v1);
    let tied_top = tally.len() >= 2 && v0 == v1;
    // No answer can catch up with the leader, even if every remaining vote goes to
    // the runner-up.
    let unassailable = !tally.is_empty() && lead.compare(outlook.remaining) == Ordering::Greater;
    match rule {
        Rule::Plurality | Rule::Borda | Rule::Score { .. } => {
            if tally.is_empty() {
                return if outlook.is_final { Evaluation::undecided(tally) } else { Evaluation::pending() };
            }
            // Borda and score totals can move in ways a vote count cannot bound (new
            // candidates, judge scores), so only plurality stops early.
            if matches!(rule, Rule::Plurality) && unassailable {
                return Evaluation::settled_winner(0);
            }
            if outlook.is_final {
                return if tied_top { Evaluation::settled_tie() } else { Evaluation::settled_winner(0) };
            }
            Evaluation::pending()
        }
        Rule::Threshold { share, strict, of_samples } => {
            let meets = |votes: Ratio, denominator: Ratio| {
                let needed = share.mul(denominator);
                let c = votes.compare(needed);
                if *strict { c == Ordering::Greater } else { c != Ordering::Less }
            };
            // The worst case for the leader: every remaining vote is valid and goes
            // to the runner-up.
            let worst_den = if *of_samples { outlook.all_weight } else { valid.add(outlook.remaining) };
            if unassailable && meets(v0, worst_den) {
                return Evaluation::settled_winner(0);
            }
            if outlook.is_final {
                let final_den = if *of_samples { outlook.all_weight } else { valid };
                if !tally.is_empty() && meets(v0, final_den) {
                    return if tied_top { Evaluation::settled_tie() } else { Evaluation::settled_winner(0) };
                }
                return Evaluation::undecided(tally);
            }
            // The best case for the leader: every remaining vote goes to it. No other
            // answer can do better than the leader, so if it cannot reach the share,
            // nobody can.
            if !meets(v0.add(outlook.remaining), worst_den) {
                return Evaluation::undecided(tally);
            }
            Evaluation::pending()
        }
        Rule::AtLeast { k, answer: Some(answer) } => {
            let count = tally.iter().find(|e| &e.key == answer).map_or(Ratio::ZERO, |e| e.votes);
            let index = tally.iter().position(|e| &e.key == answer);
            if count.compare(*k) != Ordering::Less {
                return Evaluation { settled: true, decided: true, winner: index, tie: false, passed: Some(true), top_up: 0 };
            }
            if count.add(outlook.remaining).compare(*k) == Ordering::Less || outlook.is_final {
                return Evaluation { settled: true, decided: true, winner: None, tie: false, passed: Some(false), top_up: 0 };
            }
            Evaluation::pending()
        }
        Rule::AtLeast { k, answer: None } => {
            let reached = !tally.is_empty() && v0.compare(*k) != Ordering::Less;
            if reached && unassailable {
                return Evaluation::settled_winner(0);
            }
            if outlook.is_final {
                if reached {
                    return if tied_top { Evaluation::settled_tie() } else { Evaluation::settled_winner(0) };
                }
                return Evaluation::undecided(tally);
            }
            if v0.add(outlook.remaining).compare(*k) == Ordering::Less {
                return Evaluation::undecided(tally);
            }
            Evaluation::pending()
        }
        Rule::FirstTo(k) => {
            if let Some(key) = reached {
                return Evaluation::settled_winner(tally.iter().position(|e| e.key == key).expect("the winner is in the tally"));
            }
            if outlook.is_final {
                return Evaluation::undecided(tally);
            }
            Evaluation { top_up: samples_for(k.sub(v0), outlook.max_weight), ..Evaluation::pending() }
        }
        Rule::AheadBy(k) => {
            if let Some(key) = reached {
                return Evaluation::settled_winner(tally.iter().position(|e| e.key == key).expect("the winner is in the tally"));
            }
            if outlook.is_final {
                return Evaluation::undecided(tally);
            }
            Evaluation { top_up: samples_for(k.sub(lead), outlook.max_weight), ..Evaluation::pending() }
        }
    }
}

/// The smallest `k` for which ahead-by-`k` voting with voters of accuracy `p`
/// reaches the target reliability: `1 / (1 + ((1 - p) / p)^k) >= target` (the
/// gambler's-ruin probability that the correct answer gets `k` ahead first, for two
/// competing answers).
pub fn ahead_by_for(accuracy: f64, target: f64) -> Result<u32> {
    if !(accuracy > 0.5 && accuracy < 1.0) {
        return Err(Error::range_error(
            "accuracy",
            format!("{accuracy} is out of range; expected a number above 0.5 and below 1 (voters no better than a coin never converge)"),
        ));
    }
    if !(target > 0.0 && target < 1.0) {
        return Err(Error::range_error("target", format!("{target} is out of range; expected a number above 0 and below 1")));
    }
    let ratio = (1.0 - accuracy) / accuracy;
    // A target computed by the same formula for some k (in JS or here) may come out a
    // few ulps off, so reliability that falls short by less than 1e-12 counts as met.
    for k in 1..=10_000u32 {
        if 1.0 / (1.0 + ratio.powi(k as i32)) >= target - 1e-12 {
            return Ok(k);
        }
    }
    Err(Error::range_error("target", "needs more than 10000 votes ahead; lower the target or raise the accuracy"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Votes of weight 1, cast in input order by voters 0, 1, 2...
    fn votes(answers: &[&str]) -> Vec<Vote> {
        weighted(&answers.iter().map(|a| (*a, 1.0)).collect::<Vec<_>>())
    }

    fn weighted(answers: &[(&str, f64)]) -> Vec<Vote> {
        answers
            .iter()
            .enumerate()
            .map(|(i, (a, w))| Vote {
                sample: i,
                voter: i,
                order: i,
                key: Rc::from(*a),
                display: Rc::from(*a),
                value: Rc::new(json!(a)),
                weight: Ratio::from_f64(*w),
            })
            .collect()
    }

    fn final_outlook(n: usize) -> Outlook {
        Outlook { remaining: Ratio::ZERO, is_final: true, all_weight: Ratio::int(n as i64), max_weight: Ratio::int(1) }
    }

    fn open_outlook(remaining: i64, all: i64) -> Outlook {
        Outlook { remaining: Ratio::int(remaining), is_final: false, all_weight: Ratio::int(all), max_weight: Ratio::int(1) }
    }

    fn eval(rule: &Rule, answers: &[&str], outlook: Outlook) -> (Evaluation, Vec<Entry>) {
        let v = votes(answers);
        let t = tally(&v);
        (evaluate(rule, &t, &v, outlook), t)
    }

    fn rule(v: serde_json::Value) -> Rule {
        Rule::decode(Some(&v), None).unwrap()
    }

    fn winner(e: &Evaluation, t: &[Entry]) -> Option<String> {
        e.winner.map(|i| t[i].key.clone())
    }

    #[test]
    fn plurality_tie_is_reported() {
        let (e, t) = eval(&Rule::Plurality, &["yes", "no", "yes", "no"], final_outlook(5));
        assert!(e.tie);
        assert_eq!(e.winner, None);
        assert_eq!(t[0].votes, Ratio::int(2));
        assert_eq!(t[1].votes, Ratio::int(2));
    }

    #[test]
    fn tally_order_follows_voter_index_not_arrival() {
        // Voters 0..3 answer B, A, A, B; the votes arrive in two different orders.
        let mut v = votes(&["B", "A", "A", "B"]);
        let first = tally(&v);
        for (vote, order) in v.iter_mut().zip([2, 0, 3, 1]) {
            vote.order = order;
        }
        v.reverse();
        let second = tally(&v);
        assert_eq!(first[0].key, "B");
        assert_eq!(second[0].key, "B");
        assert_eq!(first[0].voters, vec![0, 3]);
        assert_eq!(second[0].voters, vec![0, 3]);
    }

    #[test]
    fn plurality_settles_only_when_lead_exceeds_remaining() {
        let (e, t) = eval(&Rule::Plurality, &["4", "4", "3", "4"], open_outlook(1, 5));
        assert!(e.settled);
        assert_eq!(winner(&e, &t).as_deref(), Some("4"));
        let (e, _) = eval(&Rule::Plurality, &["4", "4", "3"], open_outlook(2, 5));
        assert!(!e.settled, "3 vs 1 with 2 to come can still tie");
    }

    #[test]
    fn majority_needs_more_than_half() {
        let majority = rule(json!("majority"));
        let (e, t) = eval(&majority, &["a", "a", "b", "c"], final_outlook(4));
        assert!(!e.decided);
        assert!(e.settled);
        assert_eq!(winner(&e, &t).as_deref(), Some("a"), "the leader is reported");
        let (e, _) = eval(&majority, &["a", "a", "b", "b"], final_outlook(4));
        assert!(!e.decided);
        assert!(e.tie);
        let (e, _) = eval(&majority, &["a", "a", "a", "b"], final_outlook(4));
        assert!(e.decided);
    }

    #[test]
    fn majority_settles_early_once_more_than_half_of_all() {
        let majority = rule(json!("majority"));
        let (e, _) = eval(&majority, &["a", "a", "a"], open_outlook(2, 5));
        assert!(e.settled && e.decided);
        let (e, _) = eval(&majority, &["a", "a", "b"], open_outlook(2, 5));
        assert!(!e.settled);
        // 1 of 5 with 1 to come cannot reach more than half.
        let (e, _) = eval(&majority, &["a", "b", "c", "d"], open_outlook(1, 5));
        assert!(e.settled);
        assert!(!e.decided);
    }

    #[test]
    fn threshold_reports_no_consensus() {
        let (e, _) = eval(&rule(json!({ "threshold": 0.6 })), &["x", "x", "y", "z"], final_outlook(5));
        assert!(!e.decided);
        let (e, _) = eval(&rule(json!({ "threshold": 0.4, "of": "samples" })), &["x", "x", "y", "z"], final_outlook(5));
        assert!(e.decided);
        let (e, _) = eval(&rule(json!({ "threshold": 0.5, "of": "samples" })), &["x", "x", "y", "z"], final_outlook(5));
        assert!(!e.decided, "2 of 5 samples is below half even though 2 of 4 valid votes is half");
    }

    #[test]
    fn low_threshold_waits_while_runner_up_can_tie() {
        // 3 of 6 meets 0.3 in any case, but the last vote could make it 3 to 3.
        let r = rule(json!({ "threshold": 0.3 }));
        let (e, _) = eval(&r, &["a", "a", "a", "b", "b"], open_outlook(1, 6));
        assert!(!e.settled);
        let (e, _) = eval(&r, &["a", "a", "a", "b", "b", "b"], final_outlook(6));
        assert!(e.tie);
        assert!(e.decided);
    }

    #[test]
    fn at_least_without_answer_waits_while_overtaking_is_possible() {
        let r = rule(json!({ "atLeast": 2 }));
        let (e, _) = eval(&r, &["a", "a"], open_outlook(3, 5));
        assert!(!e.settled, "b could still get 3 of the 5");
        let (e, t) = eval(&r, &["a", "a", "a", "b"], open_outlook(1, 5));
        assert!(e.settled && e.decided);
        assert_eq!(winner(&e, &t).as_deref(), Some("a"));
        let (e, _) = eval(&rule(json!({ "atLeast": 3 })), &["a", "b", "c"], open_outlook(1, 4));
        assert!(e.settled);
        assert!(!e.decided);
    }

    #[test]
    fn at_least_flag_style() {
        let r = rule(json!({ "atLeast": 2, "answer": "flag" }));
        let (e, _) = eval(&r, &["ok", "ok"], open_outlook(1, 3));
        assert_eq!(e.passed, Some(false));
        assert!(e.settled);
        let (e, t) = eval(&r, &["flag", "ok", "flag"], final_outlook(3));
        assert_eq!(e.passed, Some(true));
        assert_eq!(winner(&e, &t).as_deref(), Some("flag"));
        let (e, _) = eval(&r, &["flag"], open_outlook(2, 3));
        assert!(!e.settled);
    }

    #[test]
    fn ahead_by_tops_up_only_what_can_settle() {
        let r = Rule::AheadBy(Ratio::int(2));
        let (e, _) = eval(&r, &["4", "2", "4"], open_outlook(5, 9));
        assert!(!e.settled);
        assert_eq!(e.top_up, 1);
        let (e, _) = eval(&r, &["4", "2"], open_outlook(5, 9));
        assert_eq!(e.top_up, 2);
        let (e, t) = eval(&r, &["4", "2", "4", "4"], open_outlook(5, 9));
        assert!(e.settled && e.decided);
        assert_eq!(winner(&e, &t).as_deref(), Some("4"));
    }

    #[test]
    fn ahead_by_decides_at_first_lead_in_cast_order() {
        // a leads by 2 after the second vote; b's later run does not undo that.
        let r = Rule::AheadBy(Ratio::int(2));
        let (e, t) = eval(&r, &["a", "a", "b", "b", "b", "b"], final_outlook(6));
        assert_eq!(winner(&e, &t).as_deref(), Some("a"));
        assert!(e.decided);
    }

    #[test]
    fn ahead_by_undecided_at_cap_reports_leader() {
        let r = Rule::AheadBy(Ratio::int(3));
        let (e, t) = eval(&r, &["a", "b", "a", "b", "a"], final_outlook(5));
        assert!(!e.decided);
        assert_eq!(winner(&e, &t).as_deref(), Some("a"));
        let (e, _) = eval(&r, &["a", "b", "a", "b"], final_outlook(4));
        assert!(e.tie);
        assert_eq!(e.winner, None);
    }

    #[test]
    fn first_to_uses_cast_order() {
        let r = Rule::FirstTo(Ratio::int(2));
        let mut v = votes(&["a", "b", "b", "a"]);
        let t = tally(&v);
        let e = evaluate(&r, &t, &v, open_outlook(4, 9));
        assert!(e.settled);
        assert_eq!(winner(&e, &t).as_deref(), Some("b"));
        // The same votes cast in another order: a reaches 2 first.
        for (vote, order) in v.iter_mut().zip([0, 2, 3, 1]) {
            vote.order = order;
        }
        let e = evaluate(&r, &t, &v, open_outlook(4, 9));
        assert_eq!(winner(&e, &t).as_deref(), Some("a"));
        let (e, _) = eval(&r, &["a", "b"], open_outlook(4, 9));
        assert_eq!(e.top_up, 1);
    }

    #[test]
    fn float_weights_tie_exactly() {
        let v = weighted(&[("A", 0.3), ("B", 0.1), ("B", 0.2)]);
        let t = tally(&v);
        let e = evaluate(&Rule::Plurality, &t, &v, final_outlook(3));
        assert!(e.tie);
        assert_eq!(t[0].votes, t[1].votes);
        assert_eq!(t[0].key, "A", "equal weights keep voter order");
    }

    fn ballots(list: &[&[&str]]) -> Vec<(Vote, Vec<String>)> {
        list.iter()
            .enumerate()
            .map(|(i, r)| {
                let vote = Vote { sample: i, voter: i, order: i, key: Rc::from(r.join(" > ")), display: Rc::from(""), value: Rc::new(Value::Null), weight: Ratio::int(1) };
                (vote, r.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            })
            .collect()
    }

    #[test]
    fn borda_points() {
        let t = borda(&ballots(&[&["A", "B", "C"], &["B", "A", "C"], &["B", "C", "A"]]));
        assert_eq!(t[0].key, "B");
        assert_eq!(t[0].votes, Ratio::int(5));
        assert_eq!(t[1].key, "A");
        assert_eq!(t[1].votes, Ratio::int(3));
        assert_eq!(t[2].votes, Ratio::int(1));
        assert_eq!(t[0].voters, vec![1, 2]);
    }

    #[test]
    fn borda_partial_ballot_shares_unranked_points() {
        // A bullet vote for C gives A and B half a point each, as if their order
        // were unknown, instead of nothing.
        let t = borda(&ballots(&[&["A", "B", "C"], &["C"]]));
        let points = |k: &str| t.iter().find(|e| e.key == k).unwrap().votes;
        assert_eq!(points("A"), Ratio::from_f64(2.5));
        assert_eq!(points("B"), Ratio::from_f64(1.5));
        assert_eq!(points("C"), Ratio::int(2));
    }

    #[test]
    fn borda_tie_follows_first_separating_ballot() {
        let t = borda(&ballots(&[&["B", "A"], &["A", "B"]]));
        assert_eq!(t[0].votes, t[1].votes);
        assert_eq!(t[0].key, "B", "voter 0 ranks B above A");
    }

    #[test]
    fn ahead_by_for_matches_formula() {
        assert_eq!(ahead_by_for(0.9, 0.99).unwrap(), 3);
        assert_eq!(ahead_by_for(0.7, 0.99).unwrap(), 6);
        assert_eq!(ahead_by_for(0.6, 0.9).unwrap(), 6);
        assert!(ahead_by_for(0.5, 0.9).is_err());
        assert!(ahead_by_for(0.9, 1.0).is_err());
    }

    #[test]
    fn rule_names_and_errors() {
        assert_eq!(rule(json!({ "threshold": 0.6, "of": "samples" })).name(), "threshold");
        assert_eq!(rule(json!({ "answer": "x", "atLeast": 2 })).name(), "atLeast");
        let err = Rule::decode(Some(&json!({ "aheadBy": 0 })), None).unwrap_err();
        assert!(err.message.starts_with("rule.aheadBy"), "{}", err.message);
        let err = Rule::decode(Some(&json!("unanimous")), None).unwrap_err();
        assert!(err.message.contains("unknown rule"), "{}", err.message);
        let err = Rule::decode(Some(&json!({ "threshold": 0.6, "of": "all" })), None).unwrap_err();
        assert!(err.message.starts_with("rule.of"), "{}", err.message);
    }
}
