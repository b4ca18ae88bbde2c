//! Sectioning against the virtual-time host: the DAG timing, failure policies,
//! cancellation, merges, events and the report.

use std::rc::Rc;

use serde_json::{json, Value};

use super::section;
use crate::error::{Code, Error};
use crate::schedule::testing::{self, EventLog, Refs, TestSignal};
use crate::sim::{prompt_of, Action, Record, SimHost};

/// Returns a handler that responds `out:<prompt>` after `ms(prompt)` milliseconds.
fn echo(ms: impl Fn(&str) -> f64 + 'static) -> impl Fn(&Record) -> Action {
    move |r: &Record| {
        let prompt = prompt_of(r);
        Action::openai(&format!("out:{prompt}")).after(ms(&prompt))
    }
}

fn run_section(sim: &Rc<SimHost>, options: Value, refs: &Refs) -> Result<Value, Error> {
    let host = testing::host(sim);
    sim.run(section(host, &options, refs))
}

fn with_provider(mut options: Value) -> Value {
    let (_, marker) = testing::provider();
    options["provider"] = marker;
    options
}

fn subtasks(n: usize) -> Value {
    Value::Array((0..n).map(|i| json!({ "id": format!("s{i}"), "prompt": format!("p{i}") })).collect())
}

fn statuses(report: &Value) -> Vec<String> {
    report["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap().to_string()).collect()
}

/// Arrival time of the request whose prompt starts with `prefix`.
fn arrival(sim: &SimHost, prefix: &str) -> f64 {
    sim.records().iter().find(|r| prompt_of(r).starts_with(prefix)).map(|r| r.at).unwrap()
}

#[test]
fn three_waves_at_concurrency_four() {
    let sim = SimHost::new(echo(|_| 100.0));
    let options = with_provider(json!({ "concurrency": 4, "subtasks": subtasks(12) }));
    let report = run_section(&sim, options, &Refs::default()).unwrap();
    let at: Vec<f64> = sim.records().iter().map(|r| r.at).collect();
    assert_eq!(at, [[0.0; 4], [100.0; 4], [200.0; 4]].concat());
    assert_eq!(sim.max_open(), 4);
    let expected: Vec<String> = (0..12).map(|i| format!("out:p{i}")).collect();
    assert_eq!(report["output"], json!(expected.join("\n\n")));
    assert_eq!(report["metrics"]["wallMs"], json!(300.0));
    assert_eq!(report["metrics"]["parallelism"], json!(4.0));
}

#[test]
fn dependent_starts_when_its_own_dependencies_finish() {
    // `slow` takes 500 ms, but `next` depends only on `fast` (100 ms).
    let sim = SimHost::new(echo(|p| if p.starts_with("slow") { 500.0 } else { 100.0 }));
    let options = with_provider(json!({ "subtasks": [
        { "id": "fast", "prompt": "fast" },
        { "id": "slow", "prompt": "slow" },
        { "id": "next", "prompt": "next after {{fast}}" },
    ] }));
    let report = run_section(&sim, options, &Refs::default()).unwrap();
    assert_eq!(arrival(&sim, "next"), 100.0);
    assert_eq!(report["metrics"]["phases"], json!([["fast", "slow"], ["next"]]));
    assert_eq!(report["metrics"]["criticalPathMs"], json!(500.0));
    assert_eq!(report["metrics"]["criticalPath"], json!(["slow"]));
}

#[test]
fn diamond_runs_its_middle_pair_together() {
    let sim = SimHost::new(echo(|_| 100.0));
    let options = with_provider(json!({ "subtasks": [
        { "id": "top", "prompt": "top" },
        { "id": "left", "prompt": "left {{top}}" },
        { "id": "right", "prompt": "right {{top}}" },
        { "id": "bottom", "prompt": "bottom {{left}} {{right}}" },
    ] }));
    let report = run_section(&sim, options, &Refs::default()).unwrap();
    assert_eq!(arrival(&sim, "left"), 100.0);
    assert_eq!(arrival(&sim, "right"), 100.0);
    assert_eq!(arrival(&sim, "bottom"), 200.0);
    assert_eq!(report["metrics"]["phases"], json!([["top"], ["left", "right"], ["bottom"]]));
    assert_eq!(report["metrics"]["criticalPath"], json!(["top", "left", "bottom"]));
    let bottom = sim.records().into_iter().find(|r| prompt_of(r).starts_with("bottom")).unwrap();
    assert_eq!(prompt_of(&bottom), "bottom out:left out:top out:right out:top");
}

#[test]
fn placeholder_text_inside_an_output_stays_literal() {
    let sim = SimHost::new(|r: &Record| {
        let prompt = prompt_of(r);
        Action::openai(if prompt == "a" { "use {{b}} here" } else { "bee" })
    });
    let options = with_provider(json!({ "subtasks": [
        { "id": "a", "prompt": "a" },
        { "id": "b", "prompt": "b" },
        { "id": "c", "prompt": "A={{a}} B={{b}}" },
    ] }));
    run_section(&sim, options, &Refs::default()).unwrap();
    let c = sim.records().into_iter().find(|r| prompt_of(r).starts_with("A=")).unwrap();
    assert_eq!(prompt_of(&c), "A=use {{b}} here B=bee");
}

#[test]
fn invalid_plans_are_rejected_before_any_request() {
    let cases = [
        (json!([{ "id": "a", "prompt": "{{c}}" }, { "id": "b", "prompt": "{{a}}" }, { "id": "c", "prompt": "{{b}}" }]), Code::DependencyCycle),
        (json!([{ "id": "a", "prompt": "x" }, { "id": "b", "prompt": "{{zz}}" }]), Code::UnknownDependency),
        (json!([{ "id": "a", "prompt": "x" }, { "id": "b", "prompt": "y", "dependsOn": ["nope"] }]), Code::UnknownDependency),
        (json!([{ "id": "a", "prompt": "x" }, { "id": "a", "prompt": "y" }]), Code::InvalidOptions),
        (json!([{ "id": "a", "prompt": "{{a}}" }]), Code::DependencyCycle),
    ];
    for (list, code) in cases {
        let sim = SimHost::new(echo(|_| 1.0));
        let err = run_section(&sim, with_provider(json!({ "subtasks": list })), &Refs::default()).unwrap_err();
        assert_eq!(err.code, code, "{}", err.message);
        assert!(sim.records().is_empty());
    }
}

#[test]
fn cycle_error_names_the_cycle() {
    let sim = SimHost::new(echo(|_| 1.0));
    let list = json!([
        { "id": "x", "prompt": "free" },
        { "id": "a", "prompt": "{{c}}" },
        { "id": "b", "prompt": "{{a}}" },
        { "id": "c", "prompt": "{{b}}" },
    ]);
    let err = run_section(&sim, with_provider(json!({ "subtasks": list })), &Refs::default()).unwrap_err();
    assert_eq!(err.detail["cycle"], json!(["a", "c", "b", "a"]));
    assert!(err.message.contains("\"a\" depends on \"c\", \"c\" depends on \"b\", \"b\" depends on \"a\""), "{}", err.message);
}

#[test]
fn unknown_dependency_error_names_the_path_and_ids() {
    let sim = SimHost::new(echo(|_| 1.0));
    let list = json!([{ "id": "schema", "prompt": "x" }, { "id": "api", "messages": [{ "role": "user", "content": "use {{shema}}" }] }]);
    let err = run_section(&sim, with_provider(json!({ "subtasks": list })), &Refs::default()).unwrap_err();
    assert_eq!(err.detail["ids"], json!(["api", "shema"]));
    assert_eq!(err.detail["path"], json!("subtasks[1].messages[0].content ({{shema}} placeholder)"));
    assert!(err.message.contains("did you mean \"schema\""), "{}", err.message);
}

fn failing_s2(status: u16) -> impl Fn(&Record) -> Action {
    move |r: &Record| {
        let prompt = prompt_of(r);
        if prompt == "p2" {
            Action::status(status, "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>")
                .header("content-type", "text/html")
                .after(10.0)
        } else {
            Action::openai(&format!("part-{}", &prompt[1..])).after(50.0)
        }
    }
}

#[test]
fn settle_keeps_every_success_and_reports_the_failure() {
    let sim = SimHost::new(failing_s2(502));
    let options = with_provider(json!({ "subtasks": subtasks(5), "maxRetries": 2, "retry": { "baseDelayMs": 1 } }));
    let report = run_section(&sim, options, &Refs::default()).unwrap();
    assert_eq!(report["output"], json!("part-0\n\npart-1\n\npart-3\n\npart-4"));
    assert_eq!(statuses(&report), ["ok", "ok", "failed", "ok", "ok"]);
    let failed = &report["results"][2];
    assert_eq!(failed["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(failed["error"]["status"], json!(502));
    assert_eq!(failed["error"]["providerMessage"], json!("502 Bad Gateway"));
}

#[test]
fn fail_fast_rejects_with_the_partial_report() {
    let sim = SimHost::new(failing_s2(400));
    let options = with_provider(json!({ "subtasks": subtasks(5), "failure": "fail-fast" }));
    let err = run_section(&sim, options, &Refs::default()).unwrap_err();
    assert_eq!(err.detail["subtask"], json!("p2".replace('p', "s")));
    let report = err.report.expect("a rejection carries the report");
    // s2 failed at 10 ms, while the others were still in flight.
    assert_eq!(statuses(&report), ["cancelled", "cancelled", "failed", "cancelled", "cancelled"]);
    assert!(sim.records().iter().all(|r| r.closed_at == Some(10.0)), "every open request was aborted");
    assert_eq!(report["metrics"]["requests"], json!(5));
    assert_eq!(report["results"][0]["attempts"][0]["status"], json!("cancelled"));
}

#[test]
fn optional_subtask_failure_does_not_stop_fail_fast() {
    let sim = SimHost::new(failing_s2(400));
    let mut list = subtasks(5);
    list[2]["required"] = json!(false);
    let report = run_section(&sim, with_provider(json!({ "subtasks": list, "failure": "fail-fast" })), &Refs::default()).unwrap();
    assert_eq!(statuses(&report), ["ok", "ok", "failed", "ok", "ok"]);
}

#[test]
fn min_successes_keeps_outputs_or_rejects_early() {
    let sim = SimHost::new(failing_s2(400));
    let options = with_provider(json!({ "subtasks": subtasks(5), "failure": { "minSuccesses": 4 } }));
    let report = run_section(&sim, options, &Refs::default()).unwrap();
    assert_eq!(report["output"], json!("part-0\n\npart-1\n\npart-3\n\npart-4"));

    // With 5 required, the quorum is out of reach after the first failure.
    let sim = SimHost::new(failing_s2(400));
    let options = with_provider(json!({ "subtasks": subtasks(5), "failure": { "minSuccesses": 5 } }));
    let err = run_section(&sim, options, &Refs::default()).unwrap_err();
    assert_eq!(err.code, Code::QuorumNotMet);
    assert_eq!(err.errors.len(), 1);
    let report = err.report.unwrap();
    assert_eq!(statuses(&report), ["cancelled", "cancelled", "failed", "cancelled", "cancelled"]);
}

#[test]
fn dependents_of_a_failure_are_skipped() {
    let sim = SimHost::new(failing_s2(400));
    let options = with_provider(json!({ "subtasks": [
        { "id": "s2", "prompt": "p2" },
        { "id": "d1", "prompt": "p7 {{s2}}" },
        { "id": "d2", "prompt": "p8 {{d1}}" },
        { "id": "ok", "prompt": "p9" },
    ] }));
    let report = run_section(&sim, options, &Refs::default()).unwrap();
    assert_eq!(statuses(&report), ["failed", "skipped", "skipped", "ok"]);
    assert_eq!(report["results"][1]["error"]["skippedBecause"], json!(["s2"]));
    assert_eq!(report["results"][2]["error"]["skippedBecause"], json!(["d1"]));
    assert_eq!(sim.records().len(), 2);
}

#[test]
fn abort_stops_requests_and_sleeps() {
    let sim = SimHost::new(|r: &Record| match r.seq {
        1 => Action::status(503, "busy").after(10.0),
        _ => Action::stall(),
    });
    let signal = TestSignal::new();
    let refs = Refs { signal: Some(signal.clone()), ..Default::default() };
    let options = with_provider(json!({
        "subtasks": subtasks(3), "signal": testing::signal_marker(), "retry": { "baseDelayMs": 10000 },
    }));
    let host = testing::host(&sim);
    let trigger = signal.clone();
    let abort_later = {
        let host = host.clone();
        async move {
            host.sleep(100.0).await;
            trigger.abort(false);
        }
    };
    let (result, ()) = sim.run(futures_util::future::join(section(host, &options, &refs), abort_later));
    let err = result.unwrap_err();
    assert_eq!(err.code, Code::Aborted);
    assert_eq!(err.detail["timeout"], json!(false));
    assert!(sim.records()[1..].iter().all(|r| r.closed_at == Some(100.0)));
    assert!(sim.records()[1..].iter().all(|r| r.aborted));
    assert_eq!(statuses(err.report.as_ref().unwrap()), ["cancelled", "cancelled", "cancelled"]);
    assert_eq!((signal.adds(), signal.removes(), signal.attached()), (1, 1, 0));
}

#[test]
fn pre_aborted_signal_sends_nothing() {
    let sim = SimHost::new(echo(|_| 1.0));
    let signal = TestSignal::new();
    signal.abort(true);
    let refs = Refs { signal: Some(signal.clone()), ..Default::default() };
    let options = with_provider(json!({ "subtasks": subtasks(2), "signal": testing::signal_marker() }));
    let err = run_section(&sim, options, &refs).unwrap_err();
    assert_eq!(err.code, Code::Aborted);
    assert_eq!(err.detail["timeout"], json!(true));
    assert!(sim.records().is_empty());
    assert_eq!(signal.adds(), 0);
}

#[test]
fn deadline_rejects_with_the_report() {
    let sim = SimHost::new(echo(|p| if p == "p1" { 5000.0 } else { 10.0 }));
    let options = with_provider(json!({ "subtasks": subtasks(2), "deadlineMs": 300 }));
    let err = run_section(&sim, options, &Refs::default()).unwrap_err();
    assert_eq!(err.code, Code::DeadlineExceeded);
    let report = err.report.unwrap();
    assert_eq!(statuses(&report), ["ok", "cancelled"]);
    assert_eq!(report["metrics"]["wallMs"], json!(300.0));
    assert_eq!(sim.records()[1].closed_at, Some(300.0));
}

const W0: &str = "Here is `the` result:\n```json\n{\"title\": \"Q3 report\", \"risks\": [\"fx\"]}\n```";
const W1: &str = "{\"code\": \"use `print` function\", \"risks\": [\"supply\"]}";
const W2: &str = "```\n{\"title\": \"Q3 summary\", \"owner\": \"ops\"}\n```\nLet me know if you need more.";

fn json_workers(delays: [f64; 3]) -> impl Fn(&Record) -> Action {
    move |r: &Record| {
        let k: usize = prompt_of(r)[1..].parse().unwrap();
        Action::openai([W0, W1, W2][k]).after(delays[k])
    }
}

#[test]
fn json_merge_follows_declaration_order_not_arrival() {
    let mut outputs = Vec::new();
    for delays in [[30.0, 50.0, 10.0], [10.0, 20.0, 30.0], [50.0, 10.0, 30.0]] {
        let sim = SimHost::new(json_workers(delays));
        let options = with_provider(json!({ "subtasks": subtasks(3), "merge": "json", "conflicts": "first" }));
        let report = run_section(&sim, options, &Refs::default()).unwrap();
        outputs.push(report["output"].to_string());
        assert_eq!(report["output"]["risks"], json!(["fx", "supply"]));
        assert_eq!(report["output"]["code"], json!("use `print` function"));
        assert_eq!(report["output"]["title"], json!("Q3 report"));
        assert_eq!(report["conflicts"][0]["path"], json!("$.title"));
        assert_eq!(report["conflicts"][0]["resolution"], json!("first"));
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]), "{outputs:?}");
}

#[test]
fn json_merge_conflict_error_keeps_the_report() {
    let sim = SimHost::new(json_workers([10.0, 10.0, 10.0]));
    let options = with_provider(json!({ "subtasks": subtasks(3), "merge": "json", "conflicts": "error" }));
    let err = run_section(&sim, options, &Refs::default()).unwrap_err();
    assert_eq!(err.code, Code::MergeConflict);
    assert!(err.message.contains("$.title"), "{}", err.message);
    assert!(err.message.contains("\"s0\" and \"s2\""), "{}", err.message);
    let report = err.report.unwrap();
    assert_eq!(report["conflicts"][0]["values"][1]["value"], json!("Q3 summary"));
    assert_eq!(statuses(&report), ["ok", "ok", "ok"]);
}

#[test]
fn synthesize_is_told_which_outputs_are_missing() {
    let sim = SimHost::new(failing_s2(400));
    let options = with_provider(json!({
        "subtasks": subtasks(3),
        "merge": { "synthesize": { "prompt": "Combine:\n{{outputs}}" } },
    }));
    let report = run_section(&sim, options, &Refs::default()).unwrap();
    let synth = sim.records().into_iter().find(|r| prompt_of(r).starts_with("Combine")).unwrap();
    let prompt = prompt_of(&synth);
    assert!(prompt.contains("<output id=\"s0\">\npart-0\n</output>"), "{prompt}");
    assert!(prompt.contains("missing because their subtasks did not succeed: s2"), "{prompt}");
    assert_eq!(report["synthesis"]["missing"], json!(["s2"]));
}

#[test]
fn events_in_order_despite_throwing_listener() {
    let sim = SimHost::new(|r: &Record| match r.seq {
        1 => Action::status(429, "{}").header("retry-after", "1"),
        _ => Action::openai("ok").after(10.0),
    });
    let log = EventLog::throwing();
    let refs = Refs { on_event: Some(log.clone()), ..Default::default() };
    let options = with_provider(json!({ "subtasks": subtasks(2), "concurrency": 1, "onEvent": testing::on_event_marker() }));
    let report = run_section(&sim, options, &refs).unwrap();
    let types = log.types();
    assert_eq!(types.first().map(String::as_str), Some("run-start"));
    assert_eq!(types.last().map(String::as_str), Some("run-end"));
    assert_eq!(types[1], "warning", "the first throw is reported right away");
    let warnings: Vec<&Value> = report["warnings"].as_array().unwrap().iter().filter(|w| w["code"] == "on-event-threw").collect();
    assert_eq!(warnings.len(), 1);
    let order: Vec<&str> = types.iter().map(String::as_str).filter(|t| *t != "warning").collect();
    assert_eq!(
        order,
        [
            "run-start", "attempt-start", "attempt-end", "retry", "rate-limited", "attempt-start", "attempt-end",
            "subtask-end", "attempt-start", "attempt-end", "subtask-end", "merge", "run-end",
        ]
    );
}

#[test]
fn cancelled_subtasks_get_end_events() {
    let sim = SimHost::new(failing_s2(400));
    let log = EventLog::default();
    let refs = Refs { on_event: Some(log.clone()), ..Default::default() };
    let options = with_provider(json!({ "subtasks": subtasks(3), "failure": "fail-fast", "onEvent": testing::on_event_marker() }));
    run_section(&sim, options, &refs).unwrap_err();
    let starts = log.of("attempt-start").len();
    let ends = log.of("attempt-end").len();
    assert_eq!(starts, ends);
    assert_eq!(log.of("subtask-end").len(), 3);
    let cancelled: Vec<Value> = log.of("cancelled").iter().map(|e| e["subtask"].clone()).collect();
    assert_eq!(cancelled, [json!("s0"), json!("s1")]);
    assert_eq!(log.of("cancelled")[0]["reason"], json!("fail-fast"));
}

#[test]
fn low_parallelism_is_warned_about() {
    // Every subtask first gets a 503 asking for a 1 s wait, so the run spends most of
    // its time waiting instead of in flight.
    let sim = SimHost::new(|r: &Record| {
        if r.seq <= 4 {
            Action::status(503, "busy").header("retry-after", "1")
        } else {
            Action::openai("ok").after(50.0)
        }
    });
    let options = with_provider(json!({ "subtasks": subtasks(4) }));
    let report = run_section(&sim, options, &Refs::default()).unwrap();
    assert_eq!(report["metrics"]["expectedParallelism"], json!(4.0));
    assert!(report["metrics"]["parallelism"].as_f64().unwrap() < 1.5);
    assert!(report["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "low-parallelism"));

    let sim = SimHost::new(echo(|_| 50.0));
    let report = run_section(&sim, with_provider(json!({ "subtasks": subtasks(4) })), &Refs::default()).unwrap();
    assert!(report["warnings"].as_array().unwrap().is_empty(), "{}", report["warnings"]);
}

#[test]
fn min_successes_counts_required_subtasks_only() {
    // s2 fails; s3 and s4 are optional, so two of the three required succeed.
    let mut list = subtasks(5);
    list[3]["required"] = json!(false);
    list[4]["required"] = json!(false);
    let sim = SimHost::new(failing_s2(400));
    let options = with_provider(json!({ "subtasks": list.clone(), "failure": { "minSuccesses": 3 } }));
    let err = run_section(&sim, options, &Refs::default()).unwrap_err();
    assert_eq!(err.code, Code::QuorumNotMet);
    // s2's failure leaves at most two required successes, so the run stops at once.
    assert!(err.message.contains("of 3 required subtasks succeeded"), "{}", err.message);
    assert_eq!(statuses(err.report.as_ref().unwrap()), ["cancelled", "cancelled", "failed", "cancelled", "cancelled"]);

    let sim = SimHost::new(failing_s2(400));
    let options = with_provider(json!({ "subtasks": list.clone(), "failure": { "minSuccesses": 2 } }));
    let report = run_section(&sim, options, &Refs::default()).unwrap();
    assert_eq!(statuses(&report), ["ok", "ok", "failed", "ok", "ok"]);

    let sim = SimHost::new(failing_s2(400));
    let options = with_provider(json!({ "subtasks": list, "failure": { "minSuccesses": 4 } }));
    let err = run_section(&sim, options, &Refs::default()).unwrap_err();
    assert_eq!(err.code, Code::InvalidOptions);
    assert!(err.message.starts_with("failure.minSuccesses: is 4, but only 3 subtasks are required"), "{}", err.message);
    assert!(sim.records().is_empty());
}

#[test]
fn synthesize_notes_missing_parts_beside_named_outputs() {
    let sim = SimHost::new(failing_s2(400));
    let options = with_provider(json!({
        "subtasks": subtasks(3),
        "merge": { "synthesize": { "prompt": "Join {{s0}} with {{ s2 }}." } },
    }));
    run_section(&sim, options, &Refs::default()).unwrap();
    let synth = sim.records().into_iter().find(|r| prompt_of(r).starts_with("Join")).unwrap();
    let prompt = prompt_of(&synth);
    assert!(prompt.starts_with("Join part-0 with [missing: subtask \"s2\" did not succeed]."), "{prompt}");
    assert!(prompt.contains("did not succeed: s2"), "{prompt}");

    let sim = SimHost::new(failing_s2(400));
    let options = with_provider(json!({
        "subtasks": subtasks(3),
        "merge": { "synthesize": { "prompt": "All:\n{{ outputs }}" } },
    }));
    run_section(&sim, options, &Refs::default()).unwrap();
    let synth = sim.records().into_iter().find(|r| prompt_of(r).starts_with("All")).unwrap();
    assert_eq!(prompt_of(&synth).matches("did not succeed: s2").count(), 1, "the note appears once");
}

#[test]
fn abort_during_synthesis_keeps_the_outputs() {
    let sim = SimHost::new(|r: &Record| {
        if prompt_of(r).starts_with("Combine") {
            Action::stall()
        } else {
            Action::openai("part").after(10.0)
        }
    });
    let signal = TestSignal::new();
    let log = EventLog::default();
    let refs = Refs { signal: Some(signal.clone()), on_event: Some(log.clone()) };
    let options = with_provider(json!({
        "subtasks": subtasks(2),
        "merge": { "synthesize": { "prompt": "Combine {{outputs}}" } },
        "signal": testing::signal_marker(),
        "onEvent": testing::on_event_marker(),
    }));
    let host = testing::host(&sim);
    let trigger = signal.clone();
    let abort_later = {
        let host = host.clone();
        async move {
            host.sleep(100.0).await;
            trigger.abort(false);
        }
    };
    let (result, ()) = sim.run(futures_util::future::join(section(host, &options, &refs), abort_later));
    let err = result.unwrap_err();
    assert_eq!(err.code, Code::Aborted);
    let report = err.report.unwrap();
    assert_eq!(statuses(&report), ["ok", "ok"]);
    assert_eq!(report["synthesis"]["status"], json!("cancelled"));
    assert_eq!(report["synthesis"]["attempts"][0]["status"], json!("cancelled"));
    assert_eq!(sim.records()[2].closed_at, Some(100.0));
    assert_eq!(log.of("attempt-start").len(), log.of("attempt-end").len());
    assert_eq!(signal.attached(), 0);
}
