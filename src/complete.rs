//! `complete`: one call through the scheduler, with retries, timeout, deadline and
//! abort.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Value};

use crate::decode::{Obj, RefTable};
use crate::error::{Error, Result};
use crate::registry;
use crate::report::{round_ms, CallRecord};
use crate::schedule::call::{run_call, usage_json, Label};
use crate::schedule::{check_budget_providers, Run, RunOptions, RUN_OPTIONS};
use crate::task::Input;
use crate::transport::Host;

/// Options of `complete` besides the run options.
const OPTIONS: &[&str] = &["provider", "prompt", "messages", "system", "temperature", "seed"];

/// Runs `complete(options)`.
pub async fn complete(host: Rc<dyn Host>, options: &Value, refs: &dyn RefTable) -> Result<Value> {
    let allowed: Vec<&str> = OPTIONS.iter().chain(RUN_OPTIONS).copied().collect();
    let o = Obj::new("", options, &allowed)?;
    let provider = registry::provider(
        &o.at("provider"),
        o.get("provider").ok_or_else(|| Error::type_error("provider", "is required; pass openai(...), anthropic(...) or custom(fn)"))?,
    )?;
    let input = Input::decode(&o, false)?.expect("input is required");
    let mut request = input.request();
    request.temperature = o.number("temperature", 0.0, 2.0)?;
    request.seed = o.integer("seed", -crate::decode::MAX_SAFE_INTEGER, crate::decode::MAX_SAFE_INTEGER)?;
    let run_options = RunOptions::decode(&o, refs)?;
    check_budget_providers(&run_options, &[("provider".into(), &provider)])?;

    let run = Run::start(host, &run_options, 1);
    run.events.emit("run-start", json!({ "kind": "complete" }));
    let record = RefCell::new(CallRecord::default());
    let label = Label::new(json!({ "call": "complete" }));
    let outcome = run.guard(run_call(&run, &provider, &request, &label, &record, None)).await;
    let wall = run.elapsed();
    let mut rec = record.into_inner();
    let result = match outcome {
        Ok(result) => result,
        Err(reason) => {
            rec.cancel_open_attempt(wall);
            let err = run.cancel_error(&reason);
            run.end_event(err.code.as_str());
            run.finish();
            return Err(err.with_report(report_json(&run, &rec, None, wall)));
        }
    };
    match result {
        Ok(response) => {
            let report = report_json(&run, &rec, Some(&response), wall);
            run.end_event("ok");
            run.finish();
            Ok(report)
        }
        Err(err) => {
            run.end_event("failed");
            run.finish();
            let report = report_json(&run, &rec, None, wall);
            Err(err.with_report(report))
        }
    }
}

fn report_json(run: &Run, record: &CallRecord, response: Option<&crate::provider::CallResponse>, wall: f64) -> Value {
    json!({
        "text": response.map(|r| r.text.clone()),
        "finishReason": response.map(|r| r.finish_reason.as_str().to_string()),
        "model": response.and_then(|r| r.model.clone()),
        "logprobs": response.and_then(|r| r.logprobs.clone()),
        "usage": usage_json(record),
        "attempts": record.attempts_json(),
        "metrics": { "wallMs": round_ms(wall) },
        "warnings": run.events.warnings(),
    })
}
