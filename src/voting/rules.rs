//! Voting rules as data, the tally, and the decision: whether the outcome is settled
//! (no further sample can change it), who wins, and how many more samples an
//! adaptive rule should draw.

use std::cmp::Ordering;

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
                other => Err(Error::type_error(path, format!("unknown rule {other:?}; expected {names}"))),
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
                        Ok(Rule::FirstTo(Ratio::from_f64(o.number("firstTo", 1.0, 1e6)?.expect("the key is present"))))
                    }
                    "aheadBy" => {
                        let o = Obj::new(path, value, &["aheadBy"])?;
                        Ok(Rule::AheadBy(Ratio::from_f64(o.number("aheadBy", 1.0, 1e6)?.expect("the key is present"))))
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
                        let s = o.get("score").expect("the key is present");
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
                    _ => Err(Error::type_error(path, format!("unknown rule {}; expected {names}", decode::describe(value)))),
                }
            }
            other => Err(Error::type_error(path, format!("expected {names}, got {}", decode::describe(other)))),
        }
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
    /// The canonical answer.
    pub key: String,
    /// The answer as shown.
    pub display: String,
    /// The parsed value.
    pub value: Value,
    /// The voter's weight.
    pub weight: Ratio,
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
    /// Sample indexes that voted for it, ascending.
    pub voters: Vec<usize>,
}

impl Entry {
    /// The lowest voter index among its supporters.
    pub fn first(&self) -> usize {
        self.voters.first().copied().unwrap_or(usize::MAX)
    }
}

/// Orders a tally: most votes first, then the answer whose first supporter came
/// earliest in voter order (never arrival order).
pub fn sort_tally(entries: &mut [Entry]) {
    entries.sort_by(|a, b| b.votes.compare(a.votes).then(a.first().cmp(&b.first())));
}

/// Counts votes per answer.
pub fn tally(votes: &[Vote]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for v in votes {
        match entries.iter_mut().find(|e| e.key == v.key) {
            Some(e) => {
                e.votes = e.votes.add(v.weight);
                e.voters.push(v.sample);
            }
            None => entries.push(Entry {
                key: v.key.clone(),
                display: v.display.clone(),
                value: v.value.clone(),
                votes: v.weight,
                voters: vec![v.sample],
            }),
        }
    }
    for e in &mut entries {
        e.voters.sort_unstable();
    }
    sort_tally(&mut entries);
    entries
}

/// Borda points: on a ballot ranking `L` of the `m` candidates seen on any ballot, the
/// candidate at position `i` gets `m - 1 - i` points times the voter's weight;
/// unranked candidates get none.
pub fn borda(ballots: &[(Vote, Vec<String>)]) -> Vec<Entry> {
    let mut candidates: Vec<String> = Vec::new();
    for (_, ranking) in ballots {
        for c in ranking {
            if !candidates.contains(c) {
                candidates.push(c.clone());
            }
        }
    }
    let m = candidates.len() as i64;
    let mut entries: Vec<Entry> = candidates
        .iter()
        .map(|c| Entry { key: c.clone(), display: c.clone(), value: Value::String(c.clone()), votes: Ratio::ZERO, voters: Vec::new() })
        .collect();
    for (vote, ranking) in ballots {
        for (pos, c) in ranking.iter().enumerate() {
            let e = entries.iter_mut().find(|e| &e.key == c).expect("every candidate has an entry");
            e.votes = e.votes.add(Ratio::int(m - 1 - pos as i64).mul(vote.weight));
            if pos == 0 {
                e.voters.push(vote.sample);
            }
        }
    }
    for e in &mut entries {
        e.voters.sort_unstable();
        if e.voters.is_empty() {
            // Order candidates nobody ranked first after the others on equal points.
            e.voters.clear();
        }
    }
    sort_tally(&mut entries);
    entries
}

/// What is known about votes still to come.
#[derive(Clone, Copy, Debug)]
pub struct Outlook {
    /// The most weight that samples still pending or still drawable can add.
    pub remaining: Ratio,
    /// Whether no more samples will come.
    pub is_final: bool,
    /// The weight of every sample requested so far or to be requested (for
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
    /// A winner is decided (before the tie policy).
    pub decided: bool,
    /// Index into the tally of the winner or leader.
    pub winner: Option<usize>,
    /// The top answers are tied.
    pub tie: bool,
    /// For `atLeast` with a fixed answer: whether it reached `k`.
    pub passed: Option<bool>,
    /// For adaptive rules: how many more samples could settle it.
    pub top_up: usize,
}

impl Evaluation {
    fn pending() -> Evaluation {
        Evaluation { settled: false, decided: false, winner: None, tie: false, passed: None, top_up: 0 }
    }

    fn settled_winner(i: usize) -> Evaluation {
        Evaluation { settled: true, decided: true, winner: Some(i), tie: false, passed: None, top_up: 0 }
    }

    /// The end state when nothing more will come and no rule condition held.
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

/// Samples needed to add `needed` votes at `max_weight` each.
fn samples_for(needed: Ratio, max_weight: Ratio) -> usize {
    match needed.div(max_weight) {
        Some(n) if n.to_f64() > 0.0 => (n.to_f64() - 1e-9).ceil().max(1.0) as usize,
        _ => 1,
    }
}

/// Evaluates `rule` on a tally (Borda and score tallies included).
pub fn evaluate(rule: &Rule, tally: &[Entry], votes: &[Vote], outlook: Outlook) -> Evaluation {
    let v0 = votes_at(tally, 0);
    let v1 = votes_at(tally, 1);
    let lead = v0.sub(v1);
    let tied_top = tally.len() >= 2 && v0 == v1;
    match rule {
        Rule::Plurality | Rule::Borda | Rule::Score { .. } => {
            if tally.is_empty() {
                return if outlook.is_final { Evaluation::undecided(tally) } else { Evaluation::pending() };
            }
            let can_stop_early = matches!(rule, Rule::Plurality);
            if can_stop_early && lead.compare(outlook.remaining) == Ordering::Greater {
                return Evaluation::settled_winner(0);
            }
            if outlook.is_final {
                if tied_top {
                    return Evaluation { settled: true, decided: true, winner: None, tie: true, passed: None, top_up: 0 };
                }
                return Evaluation::settled_winner(0);
            }
            Evaluation::pending()
        }
        Rule::Threshold { share, strict, of_samples } => {
            let valid: Ratio = tally.iter().fold(Ratio::ZERO, |acc, e| acc.add(e.votes));
            let meets = |votes: Ratio, denominator: Ratio| {
                let needed = share.mul(denominator);
                let c = votes.compare(needed);
                if *strict { c == Ordering::Greater } else { c != Ordering::Less }
            };
            // The worst case for the leader: every remaining vote goes elsewhere.
            let worst_den = if *of_samples { outlook.all_weight } else { valid.add(outlook.remaining) };
            if !tally.is_empty() && meets(v0, worst_den) && !(tied_top && meets(v1, worst_den)) {
                return Evaluation::settled_winner(0);
            }
            let final_den = if *of_samples { outlook.all_weight } else { valid };
            if outlook.is_final {
                if !tally.is_empty() && meets(v0, final_den) {
                    if tied_top {
                        return Evaluation { settled: true, decided: true, winner: None, tie: true, passed: None, top_up: 0 };
                    }
                    return Evaluation::settled_winner(0);
                }
                return Evaluation::undecided(tally);
            }
            // The best case for the leader: every remaining vote goes to it.
            let best_den = if *of_samples { outlook.all_weight } else { valid.add(outlook.remaining) };
            if !meets(v0.add(outlook.remaining), best_den) {
                let mut e = Evaluation::undecided(tally);
                e.settled = true;
                return e;
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
            if !tally.is_empty() && v0.compare(*k) != Ordering::Less {
                if tied_top {
                    return if outlook.is_final {
                        Evaluation { settled: true, decided: true, winner: None, tie: true, passed: None, top_up: 0 }
                    } else {
                        Evaluation::pending()
                    };
                }
                return Evaluation::settled_winner(0);
            }
            if v0.add(outlook.remaining).compare(*k) == Ordering::Less || outlook.is_final {
                return Evaluation::undecided(tally);
            }
            Evaluation::pending()
        }
        Rule::FirstTo(k) => {
            // Replay the votes in voter order: the first answer to reach k wins.
            let mut running: Vec<(String, Ratio)> = Vec::new();
            let mut ordered: Vec<&Vote> = votes.iter().collect();
            ordered.sort_by_key(|v| v.sample);
            for v in ordered {
                let slot = match running.iter().position(|(key, _)| key == &v.key) {
                    Some(i) => i,
                    None => {
                        running.push((v.key.clone(), Ratio::ZERO));
                        running.len() - 1
                    }
                };
                running[slot].1 = running[slot].1.add(v.weight);
                if running[slot].1.compare(*k) != Ordering::Less {
                    let index = tally.iter().position(|e| e.key == v.key);
                    return Evaluation { settled: true, decided: true, winner: index, tie: false, passed: None, top_up: 0 };
                }
            }
            if outlook.is_final {
                return Evaluation::undecided(tally);
            }
            let mut e = Evaluation::pending();
            e.top_up = samples_for(k.sub(v0), outlook.max_weight);
            e
        }
        Rule::AheadBy(k) => {
            if !tally.is_empty() && lead.compare(*k) != Ordering::Less {
                return Evaluation::settled_winner(0);
            }
            if outlook.is_final {
                return Evaluation::undecided(tally);
            }
            let mut e = Evaluation::pending();
            e.top_up = samples_for(k.sub(lead), outlook.max_weight);
            e
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
    for k in 1..=10_000u32 {
        if 1.0 / (1.0 + ratio.powi(k as i32)) >= target {
            return Ok(k);
        }
    }
    Err(Error::range_error("target", "needs more than 10000 votes ahead; lower the target or raise the accuracy"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn votes(answers: &[&str]) -> Vec<Vote> {
        answers
            .iter()
            .enumerate()
            .map(|(i, a)| Vote { sample: i, key: a.to_string(), display: a.to_string(), value: json!(a), weight: Ratio::int(1) })
            .collect()
    }

    fn final_outlook(n: usize) -> Outlook {
        Outlook { remaining: Ratio::ZERO, is_final: true, all_weight: Ratio::int(n as i64), max_weight: Ratio::int(1) }
    }

    fn eval(rule: &Rule, answers: &[&str], outlook: Outlook) -> (Evaluation, Vec<Entry>) {
        let v = votes(answers);
        let t = tally(&v);
        (evaluate(rule, &t, &v, outlook), t)
    }

    #[test]
    fn plurality_tie_is_reported() {
        let (e, _) = eval(&Rule::Plurality, &["yes", "no", "yes", "no"], final_outlook(5));
        assert!(e.tie);
        assert_eq!(e.winner, None);
    }

    #[test]
    fn tie_order_ignores_arrival() {
        let (_, t1) = eval(&Rule::Plurality, &["B", "A", "A", "B"], final_outlook(4));
        let (_, t2) = eval(&Rule::Plurality, &["A", "B", "B", "A"], final_outlook(4));
        assert_eq!(t1[0].key, "B");
        assert_eq!(t2[0].key, "A");
        // Sample 0 voted B in the first order and A in the second: the tally order
        // follows voter index, which is the input order, not completion order.
    }

    #[test]
    fn plurality_settles_early_when_lead_exceeds_remaining() {
        let outlook = Outlook { remaining: Ratio::int(1), is_final: false, all_weight: Ratio::int(5), max_weight: Ratio::int(1) };
        let (e, t) = eval(&Rule::Plurality, &["4", "4", "3", "4"], outlook);
        assert!(e.settled);
        assert_eq!(t[e.winner.unwrap()].key, "4");
        let outlook = Outlook { remaining: Ratio::int(2), ..outlook };
        let (e, _) = eval(&Rule::Plurality, &["4", "4", "3"], outlook);
        assert!(!e.settled);
    }

    #[test]
    fn majority_needs_more_than_half() {
        let majority = Rule::decode(Some(&json!("majority")), None).unwrap();
        let (e, _) = eval(&majority, &["a", "a", "b", "c"], final_outlook(4));
        assert!(!e.decided);
        assert_eq!(e.winner, Some(0));
        let (e, _) = eval(&majority, &["a", "a", "a", "b"], final_outlook(4));
        assert!(e.decided);
    }

    #[test]
    fn threshold_reports_no_consensus() {
        let rule = Rule::decode(Some(&json!({ "threshold": 0.6 })), None).unwrap();
        let (e, _) = eval(&rule, &["x", "x", "y", "z"], final_outlook(5));
        assert!(!e.decided);
        let rule = Rule::decode(Some(&json!({ "threshold": 0.4, "of": "samples" })), None).unwrap();
        let (e, _) = eval(&rule, &["x", "x", "y", "z"], final_outlook(5));
        assert!(e.decided);
    }

    #[test]
    fn ahead_by_tops_up_only_what_can_settle() {
        let rule = Rule::AheadBy(Ratio::int(2));
        let outlook = Outlook { remaining: Ratio::int(5), is_final: false, all_weight: Ratio::int(9), max_weight: Ratio::int(1) };
        let (e, _) = eval(&rule, &["4", "4", "2"], outlook);
        assert!(!e.settled);
        assert_eq!(e.top_up, 1);
        let (e, _) = eval(&rule, &["4", "4", "2", "4"], outlook);
        assert!(e.settled && e.decided);
    }

    #[test]
    fn first_to_uses_voter_order() {
        let rule = Rule::FirstTo(Ratio::int(2));
        let outlook = Outlook { remaining: Ratio::int(4), is_final: false, all_weight: Ratio::int(9), max_weight: Ratio::int(1) };
        let (e, t) = eval(&rule, &["a", "b", "b", "a"], outlook);
        assert!(e.settled);
        assert_eq!(t[e.winner.unwrap()].key, "b");
    }

    #[test]
    fn at_least_flag_style() {
        let rule = Rule::decode(Some(&json!({ "atLeast": 2, "answer": "flag" })), None).unwrap();
        let outlook = Outlook { remaining: Ratio::int(1), is_final: false, all_weight: Ratio::int(3), max_weight: Ratio::int(1) };
        let (e, _) = eval(&rule, &["ok", "ok"], outlook);
        assert_eq!(e.passed, Some(false));
        assert!(e.settled);
        let (e, _) = eval(&rule, &["flag", "ok", "flag"], final_outlook(3));
        assert_eq!(e.passed, Some(true));
    }

    #[test]
    fn float_weights_tie_exactly() {
        let v = vec![
            Vote { sample: 0, key: "A".into(), display: "A".into(), value: json!("A"), weight: Ratio::from_f64(0.3) },
            Vote { sample: 1, key: "B".into(), display: "B".into(), value: json!("B"), weight: Ratio::from_f64(0.1) },
            Vote { sample: 2, key: "B".into(), display: "B".into(), value: json!("B"), weight: Ratio::from_f64(0.2) },
        ];
        let t = tally(&v);
        let e = evaluate(&Rule::Plurality, &t, &v, final_outlook(3));
        assert!(e.tie);
    }

    #[test]
    fn borda_points() {
        let ballot = |i: usize, r: &[&str]| {
            (
                Vote { sample: i, key: r.join(" > "), display: String::new(), value: Value::Null, weight: Ratio::int(1) },
                r.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
        };
        let t = borda(&[ballot(0, &["A", "B", "C"]), ballot(1, &["B", "A", "C"]), ballot(2, &["B", "C", "A"])]);
        assert_eq!(t[0].key, "B");
        assert_eq!(t[0].votes.to_f64(), 5.0);
        assert_eq!(t[1].key, "A");
        assert_eq!(t[1].votes.to_f64(), 3.0);
    }

    #[test]
    fn ahead_by_for_matches_formula() {
        assert_eq!(ahead_by_for(0.9, 0.99).unwrap(), 3);
        assert_eq!(ahead_by_for(0.7, 0.99).unwrap(), 6);
        assert!(ahead_by_for(0.5, 0.9).is_err());
    }
}
