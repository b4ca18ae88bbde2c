//! The `section` or `vote` behind a batch run: the requests of each phase with
//! their `custom_id`s and providers, the rule for when to stop submitting, and the
//! `finish` function that turns outcomes into the report.

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::provider::{Kind, Provider};
use crate::schedule::RunOptions;
use crate::sectioning::{Failure, SectionOptions};
use crate::task::substitute;
use crate::transport::Host;
use crate::voting::VoteOptions;

use super::request::{sample_custom_id, subtask_custom_id, BatchRequest};

/// A section or a vote in batch mode.
pub enum Job {
    /// Subtasks, one batch phase per plan phase.
    Section {
        /// The decoded options.
        opts: SectionOptions,
        /// The `custom_id` of each subtask, in declaration order.
        custom_ids: Vec<String>,
        /// The plan phase of each subtask.
        phase_of: Vec<usize>,
        /// Subtask index by `custom_id`.
        index_of: HashMap<String, usize>,
    },
    /// The samples of a fixed-N vote, in one phase.
    Vote {
        /// The decoded options.
        opts: VoteOptions,
        /// Sample index by `custom_id`.
        index_of: HashMap<String, usize>,
    },
}

fn reject_custom(path: &str, provider: &Provider) -> Result<()> {
    if provider.kind == Kind::Custom {
        return Err(Error::type_error(
            path,
            format!(
                "provider {:?} is a custom function, which has no batch API; batch mode needs an openai or anthropic provider, or run without batch",
                provider.name
            ),
        ));
    }
    Ok(())
}

impl Job {
    /// Builds a section job, rejecting custom providers.
    pub fn section(opts: SectionOptions) -> Result<Job> {
        let plan = &opts.plan;
        let mut phase_of = vec![0; plan.subtasks.len()];
        for (level, members) in plan.phases.iter().enumerate() {
            for &i in members {
                phase_of[i] = level;
            }
        }
        let mut custom_ids = Vec::with_capacity(plan.subtasks.len());
        let mut index_of = HashMap::new();
        for (i, s) in plan.subtasks.iter().enumerate() {
            reject_custom(&format!("subtasks[{i}].provider"), &s.provider)?;
            let id = subtask_custom_id(i, &s.id);
            index_of.insert(id.clone(), i);
            custom_ids.push(id);
        }
        Ok(Job::Section { opts, custom_ids, phase_of, index_of })
    }

    /// Builds a vote job, rejecting adaptive rules and custom providers.
    pub fn vote(opts: VoteOptions) -> Result<Job> {
        if opts.rule.is_adaptive() {
            return Err(Error::type_error(
                "rule",
                format!(
                    "the {} rule is adaptive: it draws more samples until the vote is settled, but a batch runs a fixed set of requests and cannot stop early or add more; use a fixed rule (plurality, majority, {{ atLeast }}, borda, score) with batch, or run without batch",
                    opts.rule.name()
                ),
            ));
        }
        if let Some(p) = &opts.provider {
            reject_custom("provider", p)?;
        }
        for (i, v) in opts.voters.iter().enumerate() {
            if let Some(p) = &v.provider {
                reject_custom(&format!("voters[{i}].provider"), p)?;
            }
        }
        let index_of = (0..opts.first_round).map(|i| (sample_custom_id(i), i)).collect();
        Ok(Job::Vote { opts, index_of })
    }

    /// Returns `section` or `vote`.
    pub fn kind(&self) -> &'static str {
        match self {
            Job::Section { .. } => "section",
            Job::Vote { .. } => "vote",
        }
    }

    /// Returns the name of one request in messages: `subtask` or `sample`.
    pub fn unit(&self) -> &'static str {
        match self {
            Job::Section { .. } => "subtask",
            Job::Vote { .. } => "sample",
        }
    }

    /// Returns the run options.
    pub fn run_options(&self) -> &RunOptions {
        match self {
            Job::Section { opts, .. } => &opts.run,
            Job::Vote { opts, .. } => &opts.run,
        }
    }

    /// Returns the run options, to adjust before finishing.
    pub fn run_options_mut(&mut self) -> &mut RunOptions {
        match self {
            Job::Section { opts, .. } => &mut opts.run,
            Job::Vote { opts, .. } => &mut opts.run,
        }
    }

    /// Counts the requests of every phase.
    pub fn request_count(&self) -> usize {
        match self {
            Job::Section { custom_ids, .. } => custom_ids.len(),
            Job::Vote { opts, .. } => opts.first_round,
        }
    }

    /// Counts the phases. Each phase's batches start once the previous phase's
    /// batches have ended.
    pub fn phases(&self) -> usize {
        match self {
            Job::Section { opts, .. } => opts.plan.phases.len(),
            Job::Vote { .. } => 1,
        }
    }

    /// Finds the request index of a `custom_id`.
    pub fn index(&self, custom_id: &str) -> Option<usize> {
        match self {
            Job::Section { index_of, .. } | Job::Vote { index_of, .. } => index_of.get(custom_id).copied(),
        }
    }

    /// Returns the `custom_id` of request `i`.
    pub fn custom_id(&self, i: usize) -> String {
        match self {
            Job::Section { custom_ids, .. } => custom_ids[i].clone(),
            Job::Vote { .. } => sample_custom_id(i),
        }
    }

    /// Returns the phase of request `i`.
    pub fn phase_of(&self, i: usize) -> usize {
        match self {
            Job::Section { phase_of, .. } => phase_of[i],
            Job::Vote { .. } => 0,
        }
    }

    /// Returns the provider of request `i`.
    pub fn provider(&self, i: usize) -> Rc<Provider> {
        match self {
            Job::Section { opts, .. } => opts.plan.subtasks[i].provider.clone(),
            Job::Vote { opts, .. } => opts.request_for(i).0,
        }
    }

    /// Lists every request of a phase.
    pub fn members(&self, phase: usize) -> Vec<usize> {
        match self {
            Job::Section { opts, .. } => opts.plan.phases.get(phase).cloned().unwrap_or_default(),
            Job::Vote { opts, .. } => (0..opts.first_round).collect(),
        }
    }

    /// Lists the requests of a phase that can run: those whose dependencies all
    /// succeeded. The others get no outcome, and `finish` reports them as skipped.
    pub fn runnable(&self, phase: usize, outcomes: &HashMap<String, Value>) -> Vec<usize> {
        let members = self.members(phase);
        match self {
            Job::Section { opts, custom_ids, .. } => members
                .into_iter()
                .filter(|&i| opts.plan.subtasks[i].deps.iter().all(|&d| is_ok(outcomes.get(&custom_ids[d]))))
                .collect(),
            Job::Vote { .. } => members,
        }
    }

    /// Builds request `i`, with its dependencies' outputs filled in once.
    pub fn build(&self, i: usize, outcomes: &HashMap<String, Value>) -> Result<BatchRequest> {
        match self {
            Job::Section { opts, custom_ids, .. } => {
                let subtask = &opts.plan.subtasks[i];
                let texts: Vec<(String, String)> = subtask
                    .deps
                    .iter()
                    .map(|&d| {
                        let text = outcomes.get(&custom_ids[d]).and_then(|o| o["text"].as_str()).unwrap_or_default();
                        (opts.plan.subtasks[d].id.clone(), text.to_string())
                    })
                    .collect();
                let fill = |text: &str| substitute(text, &|name| texts.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
                let mut request = subtask.input.request();
                for m in &mut request.messages {
                    m.content = fill(&m.content);
                }
                request.system = request.system.as_deref().map(fill);
                request.temperature = subtask.temperature;
                BatchRequest::new(custom_ids[i].clone(), subtask.provider.clone(), &request)
            }
            Job::Vote { opts, .. } => {
                let (provider, request) = opts.request_for(i);
                BatchRequest::new(sample_custom_id(i), provider, &request)
            }
        }
    }

    /// Returns the reason to submit no further phase, once the failure policy has
    /// decided: a required failure under `fail-fast`, or `minSuccesses` out of reach.
    pub fn stop_reason(&self, outcomes: &HashMap<String, Value>) -> Option<&'static str> {
        let Job::Section { opts, custom_ids, .. } = self else { return None };
        let plan = &opts.plan;
        let status = |i: usize| outcomes.get(&custom_ids[i]).and_then(|o| o["status"].as_str());
        match opts.failure {
            Failure::FailFast => (0..plan.subtasks.len())
                .any(|i| plan.subtasks[i].required && status(i) == Some("failed"))
                .then_some("fail-fast"),
            Failure::MinSuccesses(min) => {
                // A subtask is still open when it has no outcome and no dependency
                // that ended without success.
                let mut open = vec![false; plan.subtasks.len()];
                for level in &plan.phases {
                    for &i in level {
                        open[i] = status(i).is_none() && plan.subtasks[i].deps.iter().all(|&d| status(d) == Some("ok") || open[d]);
                    }
                }
                let counted = (0..plan.subtasks.len()).filter(|&i| plan.subtasks[i].required);
                let reachable = counted.filter(|&i| status(i) == Some("ok") || open[i]).count();
                (reachable < min).then_some("quorum-unreachable")
            }
            Failure::Settle => None,
        }
    }

    /// Moves the outcomes out of `outcomes` into the list that the `finish`
    /// functions read, in request order.
    pub fn outcomes_json(&self, outcomes: &mut HashMap<String, Value>) -> Value {
        let mut list = Vec::new();
        for i in 0..self.request_count() {
            let Some(mut o) = outcomes.remove(&self.custom_id(i)) else { continue };
            match self {
                Job::Section { opts, .. } => o["id"] = Value::String(opts.plan.subtasks[i].id.clone()),
                Job::Vote { .. } => o["index"] = Value::from(i),
            }
            list.push(o);
        }
        Value::Array(list)
    }

    /// Turns off the calls that finishing would make after a stop: a vote's judge
    /// scores nothing, so the report keeps every sample. A section's synthesis is
    /// kept from starting by the finish step's aborted signal instead, and its merge
    /// error carries the report.
    pub fn skip_finish_calls(&mut self) {
        if let Job::Vote { opts, .. } = self {
            if matches!(opts.scoring, Some(crate::voting::Scoring::Judge { .. })) {
                opts.scoring = None;
            }
        }
    }

    /// Merges or tallies the outcomes with the same core code as an in-process run.
    pub async fn finish(&self, host: Rc<dyn Host>, outcomes: &Value) -> Result<Value> {
        match self {
            Job::Section { opts, .. } => crate::sectioning::external::finish(host, opts, outcomes).await,
            Job::Vote { opts, .. } => crate::voting::external::finish(host, opts, outcomes).await,
        }
    }
}

fn is_ok(outcome: Option<&Value>) -> bool {
    outcome.and_then(|o| o["status"].as_str()) == Some("ok")
}

/// Removes `batch` from a copy of the options, for the decoders that do not know it.
pub fn without_batch(options: &Value) -> (Value, Value) {
    match options {
        Value::Object(map) => {
            let mut rest: Map<String, Value> = map.clone();
            let batch = rest.remove("batch").unwrap_or(Value::Null);
            (Value::Object(rest), batch)
        }
        other => (other.clone(), Value::Null),
    }
}
