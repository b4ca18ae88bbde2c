//! Exports for runs that a durable engine drives one call at a time (Workflows,
//! queues, provider batches): plan, run one call, evaluate, finish.

use js_sys::{Array, Promise};
use serde_json::Value;
use wasm_bindgen::prelude::*;

use super::host::{JsHost, JsRegex};
use super::{error_to_js, parse, run_async, Refs};
use crate::voting::{external, VoteOptions};

fn vote_options(options: &str, refs: &Array) -> Result<VoteOptions, JsValue> {
    let options = parse(options, "options")?;
    VoteOptions::decode(&options, &Refs(refs.clone()), &JsRegex).map_err(error_to_js)
}

/// `planVote(options)`: the first round and limits, as JSON text.
#[wasm_bindgen(js_name = planVote)]
pub fn plan_vote(options: &str, refs: Array) -> Result<String, JsValue> {
    Ok(external::plan(&vote_options(options, &refs)?).to_string())
}

/// `runSample(options, index)`: resolves to the sample's outcome as JSON text.
#[wasm_bindgen(js_name = runSample)]
pub fn run_sample(options: &str, refs: Array, index: f64) -> Promise {
    let opts = match vote_options(options, &refs) {
        Ok(o) => o,
        Err(e) => return Promise::reject(&e),
    };
    // Checked as the number JS passed: a u32 parameter would wrap 2^32 to 0.
    if !(index >= 0.0 && index.fract() == 0.0 && index <= crate::decode::MAX_SAFE_INTEGER as f64) {
        let index_text = if index.is_nan() { "NaN".to_string() } else { index.to_string() };
        return Promise::reject(&error_to_js(crate::Error::range_error("index", format!("{index_text} is not a sample index; pass a non-negative integer"))));
    }
    run_async(async move { external::run_sample(JsHost::new(), &opts, index as usize).await })
}

/// `evaluateVote(options, outcomes, pending)`: whether the vote is settled and which
/// samples to draw next, as JSON text.
#[wasm_bindgen(js_name = evaluateVote)]
pub fn evaluate_vote(options: &str, refs: Array, outcomes: &str, pending: &str) -> Result<String, JsValue> {
    let opts = vote_options(options, &refs)?;
    let outcomes = parse(outcomes, "outcomes")?;
    // A pending index that is not read would let a running sample be drawn again.
    let pending: Vec<usize> = match parse(pending, "pending")? {
        Value::Null => Vec::new(),
        Value::Array(items) => {
            let mut list = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let n = item.as_u64().ok_or_else(|| {
                    error_to_js(crate::Error::type_error(
                        &crate::decode::index("pending", i),
                        format!("expected a sample index (a non-negative integer), got {}", crate::decode::describe(item)),
                    ))
                })?;
                list.push(n as usize);
            }
            list
        }
        other => {
            return Err(error_to_js(crate::Error::type_error(
                "pending",
                format!("expected an array of the sample indexes still running, got {}", crate::decode::describe(&other)),
            )))
        }
    };
    external::evaluate(&opts, &outcomes, &pending, &JsRegex).map(|v| v.to_string()).map_err(error_to_js)
}

/// `finishVote(options, outcomes)`: resolves to the vote result as JSON text.
#[wasm_bindgen(js_name = finishVote)]
pub fn finish_vote(options: &str, refs: Array, outcomes: &str) -> Promise {
    let opts = match vote_options(options, &refs) {
        Ok(o) => o,
        Err(e) => return Promise::reject(&e),
    };
    let outcomes = match parse(outcomes, "outcomes") {
        Ok(v) => v,
        Err(e) => return Promise::reject(&e),
    };
    run_async(async move { external::finish_report(JsHost::new(), &opts, &outcomes).await.map(|r| r.to_text()) })
}

fn section_options(options: &str, refs: &Array) -> Result<crate::sectioning::SectionOptions, JsValue> {
    let options = parse(options, "options")?;
    crate::sectioning::SectionOptions::decode(&options, &Refs(refs.clone())).map_err(error_to_js)
}

/// `planSection(options)`: the subtasks, dependencies and phases, as JSON text.
#[wasm_bindgen(js_name = planSection)]
pub fn plan_section(options: &str, refs: Array) -> Result<String, JsValue> {
    Ok(crate::sectioning::external::plan(&section_options(options, &refs)?).to_string())
}

/// `runSubtask(options, id, outputs)`: resolves to the subtask's outcome as JSON text.
#[wasm_bindgen(js_name = runSubtask)]
pub fn run_subtask(options: &str, refs: Array, id: String, outputs: &str) -> Promise {
    let opts = match section_options(options, &refs) {
        Ok(o) => o,
        Err(e) => return Promise::reject(&e),
    };
    let outputs = match parse(outputs, "outputs") {
        Ok(v) => v,
        Err(e) => return Promise::reject(&e),
    };
    run_async(async move { crate::sectioning::external::run_subtask(JsHost::new(), &opts, &id, &outputs).await })
}

/// `finishSection(options, outcomes)`: resolves to the merged report as JSON text.
#[wasm_bindgen(js_name = finishSection)]
pub fn finish_section(options: &str, refs: Array, outcomes: &str) -> Promise {
    let opts = match section_options(options, &refs) {
        Ok(o) => o,
        Err(e) => return Promise::reject(&e),
    };
    let outcomes = match parse(outcomes, "outcomes") {
        Ok(v) => v,
        Err(e) => return Promise::reject(&e),
    };
    run_async(async move { crate::sectioning::external::finish(JsHost::new(), &opts, &outcomes).await })
}
