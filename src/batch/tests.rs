//! Native tests of the batch mode: the parsers against recorded result files in the
//! documented formats, and the whole run (submit, poll with backoff, cancel, resume)
//! against a virtual-time batch server.

use std::collections::HashMap;
use std::rc::Rc;

use futures_util::future::join;
use serde_json::{json, Value};

use super::api::parse_state;
use super::options::Api;
use super::results::{anthropic_line, openai_line, Collected, LineResult, Source, Span};
use super::sim_server::{jsonl_of, Answer, Config, SimServer};
use crate::error::Code;
use crate::provider::{from_options, test_refs, Kind, Provider};
use crate::registry;
use crate::schedule::testing::{host, on_event_marker, signal_marker, EventLog, Refs, TestSignal};
use crate::sim::{Record, SimHost};
use crate::transport::Runtime;

const OPENAI_OUTPUT: &str = include_str!("../../tests/fixtures/batch/openai-output.jsonl");
const OPENAI_ERRORS: &str = include_str!("../../tests/fixtures/batch/openai-errors.jsonl");
const OPENAI_COMPLETED: &str = include_str!("../../tests/fixtures/batch/openai-batch-completed.json");
const OPENAI_FAILED: &str = include_str!("../../tests/fixtures/batch/openai-batch-failed.json");
const ANTHROPIC_RESULTS: &str = include_str!("../../tests/fixtures/batch/anthropic-results.jsonl");
const ANTHROPIC_ENDED: &str = include_str!("../../tests/fixtures/batch/anthropic-batch-ended.json");
const ANTHROPIC_RUNNING: &str = include_str!("../../tests/fixtures/batch/anthropic-batch-in-progress.json");
const OGX_OPENAI_OUTPUT: &str = include_str!("../../tests/fixtures/batch/ogx-openai-output.jsonl");
const OGX_OPENAI_ERRORS: &str = include_str!("../../tests/fixtures/batch/ogx-openai-errors.jsonl");
const OGX_ANTHROPIC_RESULTS: &str = include_str!("../../tests/fixtures/batch/ogx-anthropic-results.jsonl");

/// Registers a provider of `kind` pointing at the scripted host and returns it with
/// its options marker.
fn provider(kind: Kind, extra: Value) -> (Rc<Provider>, Value) {
    let mut options = json!({ "baseURL": "http://127.0.0.1:9/v1", "model": "m", "apiKey": "sk-test-key-123456" });
    if kind == Kind::Anthropic {
        options["maxTokens"] = json!(64);
    }
    if let (Value::Object(base), Value::Object(more)) = (&mut options, extra) {
        base.extend(more);
    }
    let id = registry::next_id();
    let p = from_options(kind, None, &options, &test_refs::Refs::default(), Runtime::Server, id).unwrap();
    (registry::add_provider(p), json!({ "\u{0}": ["provider", id] }))
}

fn lines(text: &str) -> Vec<Value> {
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn text_of(result: LineResult) -> String {
    match result {
        LineResult::Ok(r) => r.text,
        LineResult::Failed(e) => panic!("expected a reply, got a failure: {}", e.message),
        LineResult::Cancelled(e) => panic!("expected a reply, got a cancel: {}", e.message),
    }
}

fn failure_of(result: LineResult) -> crate::error::Error {
    match result {
        LineResult::Failed(e) => e,
        LineResult::Ok(r) => panic!("expected a failure, got {:?}", r.text),
        LineResult::Cancelled(e) => panic!("expected a failure, got a cancel: {}", e.message),
    }
}

#[test]
fn openai_output_fixture_parses_each_line() {
    let (p, _) = provider(Kind::OpenAi, json!({}));
    let parsed: Vec<Value> = lines(OPENAI_OUTPUT);
    assert_eq!(text_of(openai_line(&p, "b", &parsed[0])), "The answer is 42.");
    assert_eq!(text_of(openai_line(&p, "b", &parsed[1])), "42");
    match openai_line(&p, "b", &parsed[2]) {
        LineResult::Ok(r) => assert_eq!(r.finish_reason.as_str(), "length"),
        _ => panic!("the third line succeeded"),
    }
}

#[test]
fn openai_error_fixture_keeps_status_and_code() {
    let (p, _) = provider(Kind::OpenAi, json!({}));
    let parsed = lines(OPENAI_ERRORS);
    let bad = failure_of(openai_line(&p, "b", &parsed[0]));
    let f = bad.provider.as_ref().unwrap();
    assert_eq!(f.status, Some(400));
    assert!(!f.retryable);
    assert_eq!(f.provider_type.as_deref(), Some("invalid_request_error"));
    assert!(bad.message.contains("max_tokens is too large"), "{}", bad.message);
    let limited = failure_of(openai_line(&p, "b", &parsed[1]));
    assert_eq!(limited.provider.as_ref().unwrap().status, Some(429));
    assert!(limited.is_retryable());
    let expired = failure_of(openai_line(&p, "b", &parsed[2]));
    assert_eq!(expired.provider.as_ref().unwrap().provider_type.as_deref(), Some("batch_expired"));
    assert!(expired.is_retryable());
}

#[test]
fn anthropic_results_fixture_covers_every_type() {
    let (p, _) = provider(Kind::Anthropic, json!({}));
    let parsed = lines(ANTHROPIC_RESULTS);
    let errored = failure_of(anthropic_line(&p, "mb", &parsed[0]));
    let f = errored.provider.as_ref().unwrap();
    assert_eq!(f.provider_type.as_deref(), Some("invalid_request_error"));
    assert_eq!(f.provider_message.as_deref(), Some("max_tokens: Field required"));
    assert!(!f.retryable);
    assert_eq!(text_of(anthropic_line(&p, "mb", &parsed[1])), "CREATE TABLE products (id INTEGER PRIMARY KEY);");
    assert!(matches!(anthropic_line(&p, "mb", &parsed[2]), LineResult::Cancelled(_)));
    let expired = failure_of(anthropic_line(&p, "mb", &parsed[3]));
    assert_eq!(expired.provider.as_ref().unwrap().provider_type.as_deref(), Some("expired"));
}

#[test]
fn batch_object_fixtures_give_state_and_files() {
    let (p, _) = provider(Kind::OpenAi, json!({}));
    let done = parse_state(Api::OpenAi, &p, &serde_json::from_str(OPENAI_COMPLETED).unwrap()).unwrap();
    assert!(done.ended);
    assert_eq!(done.output_file_id.as_deref(), Some("file-out0001"));
    assert_eq!(done.error_file_id.as_deref(), Some("file-err0001"));
    assert_eq!(done.counts["failed"], 2);
    let failed = parse_state(Api::OpenAi, &p, &serde_json::from_str(OPENAI_FAILED).unwrap()).unwrap();
    assert!(failed.ended);
    assert_eq!(failed.errors[0]["line"], 2);
    let ended = parse_state(Api::Anthropic, &p, &serde_json::from_str(ANTHROPIC_ENDED).unwrap()).unwrap();
    assert!(ended.ended);
    assert_eq!(ended.status, "ended");
    let running = parse_state(Api::Anthropic, &p, &serde_json::from_str(ANTHROPIC_RUNNING).unwrap()).unwrap();
    assert!(!running.ended);
}

#[test]
fn ogx_files_parse_despite_their_shapes() {
    let (p, _) = provider(Kind::OpenAi, json!({}));
    // ogx sends response.body as a JSON string.
    for line in lines(OGX_OPENAI_OUTPUT) {
        assert!(line["response"]["body"].is_string(), "the recorded ogx body is a string");
        assert!(!text_of(openai_line(&p, "b", &line)).is_empty());
    }
    // ogx writes failures as { custom_id, error: { type, message } }.
    for line in lines(OGX_OPENAI_ERRORS) {
        let e = failure_of(openai_line(&p, "b", &line));
        assert_eq!(e.provider.as_ref().unwrap().provider_type.as_deref(), Some("request_failed"));
    }
    let (a, _) = provider(Kind::Anthropic, json!({}));
    let mut errored = 0;
    for line in lines(OGX_ANTHROPIC_RESULTS) {
        match anthropic_line(&a, "mb", &line) {
            LineResult::Failed(e) => {
                errored += 1;
                // ogx's flat error object still gives the type and message.
                assert_eq!(e.provider.as_ref().unwrap().provider_type.as_deref(), Some("api_error"));
                assert!(e.provider.as_ref().unwrap().provider_message.is_some());
            }
            LineResult::Ok(r) => assert!(!r.text.is_empty()),
            LineResult::Cancelled(_) => {}
        }
    }
    assert!(errored >= 1, "the recorded ogx results include an errored line");
}

#[test]
fn unknown_duplicate_and_unreadable_lines_are_not_counted() {
    let (p, _) = provider(Kind::OpenAi, json!({}));
    let expected: HashMap<String, usize> = [("sample-0".to_string(), 0)].into_iter().collect();
    let span = Span { started_ms: 0.0, finished_ms: 1.0 };
    let source = Source { api: Api::OpenAi, provider: &p, batch_id: "b", file: "output", expected: &expected, span };
    let mut c = Collected::default();
    let ok = lines(OPENAI_OUTPUT)[1].to_string();
    c.line(&source, 1, &ok);
    c.line(&source, 2, &ok);
    c.line(&source, 3, &lines(OPENAI_OUTPUT)[0].to_string());
    c.line(&source, 4, "{not json");
    c.line(&source, 5, "{\"response\":{}}");
    assert_eq!(c.outcomes.len(), 1);
    let reasons: Vec<&str> = c.unmatched.iter().map(|u| u["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, vec!["duplicate-custom-id", "unknown-custom-id", "unreadable-line", "missing-custom-id"]);
    assert_eq!(c.unmatched[1]["customId"], "sample-2");
    assert_eq!(c.unmatched[2]["line"], 4);
}

#[test]
fn batch_usage_is_priced_at_half() {
    let (p, _) = provider(Kind::OpenAi, json!({ "prices": { "input": 2.0, "output": 8.0 } }));
    let line = lines(OPENAI_OUTPUT)[0].clone();
    let outcome = super::results::outcome_json(&p, openai_line(&p, "b", &line), Span { started_ms: 0.0, finished_ms: 5.0 });
    // 31 input and 6 output tokens at $2 and $8 per million, halved.
    let expected = (31.0 * 2.0 + 6.0 * 8.0) / 1e6 / 2.0;
    assert!((outcome["usage"]["costUsd"].as_f64().unwrap() - expected).abs() < 1e-12, "{}", outcome["usage"]);
    assert_eq!(outcome["usage"]["inputTokens"], 31);
}

// ---------------------------------------------------------------------------
// Whole runs on the virtual-time server
// ---------------------------------------------------------------------------

struct Setup {
    sim: Rc<SimHost>,
    server: Rc<SimServer>,
}

fn setup(config: Config) -> Setup {
    let server = SimServer::new(config);
    let s = server.clone();
    let sim = SimHost::new(move |r| s.handle(r));
    Setup { sim, server }
}

fn vote_options(p: &Value, voters: usize, batch: Value) -> Value {
    json!({ "provider": p, "prompt": "What is 6 times 7?", "voters": voters, "extract": "number", "batch": batch })
}

fn run_vote(s: &Setup, options: &Value, refs: &Refs) -> crate::Result<Value> {
    s.sim.run(crate::voting::vote(host(&s.sim), options, refs))
}

fn requests(s: &Setup, method: &str, path_end: &str) -> Vec<Record> {
    s.sim.records().into_iter().filter(|r| r.method == method && r.url.ends_with(path_end)).collect()
}

fn header<'r>(record: &'r Record, name: &str) -> Option<&'r str> {
    record.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn status_checks(s: &Setup) -> Vec<Record> {
    s.sim.records().into_iter().filter(|r| r.method == "GET" && (r.url.contains("/batches/")) && !r.url.ends_with("/results")).collect()
}

#[test]
fn openai_states_and_poll_backoff() {
    let s = setup(Config { answer: Rc::new(|id, _| Answer::Text(if id == "sample-1" { "41".into() } else { "42".into() })), ..Config::default() });
    let (_, p) = provider(Kind::OpenAi, json!({ "stream": true }));
    let log = EventLog::default();
    let refs = Refs { on_event: Some(log.clone()), signal: None };
    let mut options = vote_options(&p, 3, json!({ "pollIntervalMs": 400, "maxPollIntervalMs": 1000 }));
    options["onEvent"] = on_event_marker();
    let report = run_vote(&s, &options, &refs).unwrap();

    assert_eq!(report["winner"], "42");
    assert_eq!(report["counts"], json!({ "42": 2.0, "41": 1.0 }));
    assert_eq!(report["usage"]["inputTokens"], 30);
    assert_eq!(report["batch"]["batches"][0]["status"], "completed");

    // One upload, then one create. The file contains one line per sample in the
    // documented shape, with streaming removed.
    let uploads = requests(&s, "POST", "/files");
    assert_eq!(uploads.len(), 1);
    let file = jsonl_of(&uploads[0]);
    let file_lines = lines(&file);
    assert_eq!(file_lines.len(), 3);
    for (i, line) in file_lines.iter().enumerate() {
        let keys: Vec<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, vec!["custom_id", "method", "url", "body"]);
        assert_eq!(line["custom_id"], format!("sample-{i}"));
        assert_eq!(line["method"], "POST");
        assert_eq!(line["url"], "/v1/chat/completions");
        assert_eq!(line["body"]["model"], "m");
        assert!(line["body"].get("stream").is_none(), "a batch line cannot stream");
        assert_eq!(line["body"]["messages"][0]["content"], "What is 6 times 7?");
    }
    let creates = requests(&s, "POST", "/batches");
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].body["endpoint"], "/v1/chat/completions");
    assert_eq!(creates[0].body["completion_window"], "24h");
    assert_eq!(creates[0].body["input_file_id"], "file-1");
    assert_eq!(header(&creates[0], "authorization"), Some("Bearer sk-test-key-123456"));

    // Waits of 400, 600, 900, then 1000 ms (the cap), counted between status checks.
    let times: Vec<f64> = status_checks(&s).iter().map(|r| r.at).collect();
    let created_at = creates[0].at;
    let mut gaps = vec![times[0] - created_at];
    gaps.extend(times.windows(2).map(|w| w[1] - w[0]));
    assert_eq!(&gaps[..4], &[400.0, 600.0, 900.0, 1000.0]);
    assert!(gaps[4..].iter().all(|g| *g == 1000.0), "{gaps:?}");

    let statuses: Vec<String> = log.of("batch-progress").iter().map(|e| e["status"].as_str().unwrap().to_string()).collect();
    for expected in ["validating", "in_progress", "finalizing", "completed"] {
        assert!(statuses.iter().any(|s| s == expected), "no {expected} in {statuses:?}");
    }
    let types = log.types();
    assert_eq!(types.first().map(String::as_str), Some("run-start"));
    assert_eq!(types.last().map(String::as_str), Some("run-end"));
    assert_eq!(log.of("batch-submitted").len(), 1);
    assert_eq!(log.of("batch-submitted")[0]["handle"]["batches"][0]["customIds"], json!(["sample-0", "sample-1", "sample-2"]));
    assert_eq!(log.of("batch-ended").len(), 1);
    assert_eq!(log.of("run-end")[0]["usage"]["inputTokens"], 30);
}

#[test]
fn anthropic_section_runs_one_batch_per_phase() {
    let s = setup(Config::default());
    let (_, p) = provider(Kind::Anthropic, json!({}));
    let options = json!({
        "provider": p,
        "merge": "keyed",
        "subtasks": [
            { "id": "schema", "prompt": "Design the table." },
            { "id": "ui", "prompt": "Sketch the page." },
            { "id": "api", "prompt": "Routes for {{schema}}." },
        ],
        "batch": { "pollIntervalMs": 500 },
    });
    let report = s.sim.run(crate::sectioning::section(host(&s.sim), &options, &Refs::default())).unwrap();
    assert_eq!(report["output"], json!({ "schema": "re:Design the table.", "ui": "re:Sketch the page.", "api": "re:Routes for re:Design the table.." }));

    let creates = requests(&s, "POST", "/messages/batches");
    assert_eq!(creates.len(), 2, "one batch per phase");
    let first: Vec<&str> = creates[0].body["requests"].as_array().unwrap().iter().map(|r| r["custom_id"].as_str().unwrap()).collect();
    assert_eq!(first, vec!["subtask-schema", "subtask-ui"]);
    for r in creates[0].body["requests"].as_array().unwrap() {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, vec!["custom_id", "params"]);
        assert_eq!(r["params"]["max_tokens"], 64);
        assert_eq!(r["params"]["model"], "m");
    }
    assert_eq!(creates[1].body["requests"][0]["custom_id"], "subtask-api");
    // The second phase starts only after the first phase's results were read.
    let first_results = requests(&s, "GET", "/results")[0].at;
    assert!(creates[1].at >= first_results);
    assert_eq!(header(&creates[0], "x-api-key"), Some("sk-test-key-123456"));
    assert_eq!(header(&creates[0], "anthropic-version"), Some("2023-06-01"));
    assert_eq!(report["batch"]["batches"].as_array().unwrap().len(), 2);
    assert_eq!(report["batch"]["batches"][1]["phase"], 1);
}

#[test]
fn results_matched_in_any_order() {
    let s = setup(Config {
        reverse: true,
        body_as_string: true,
        answer: Rc::new(|id, _| match id {
            "sample-2" => Answer::Status(400, json!({ "error": { "message": "bad request", "type": "invalid_request_error" } })),
            "sample-3" => Answer::Text("7".into()),
            _ => Answer::Text("42".into()),
        }),
        ..Config::default()
    });
    let (_, p) = provider(Kind::OpenAi, json!({}));
    let report = run_vote(&s, &vote_options(&p, 5, json!({ "pollIntervalMs": 1000 })), &Refs::default()).unwrap();
    let samples = report["samples"].as_array().unwrap();
    let statuses: Vec<&str> = samples.iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["ok", "ok", "failed", "ok", "ok"]);
    assert_eq!(samples[3]["answer"], "7");
    assert_eq!(samples[2]["error"]["status"], 400);
    assert_eq!(samples[2]["error"]["providerMessage"], "bad request");
    assert_eq!(report["winner"], "42");
    assert_eq!(report["failed"], 1);
}

#[test]
fn failed_validation_fails_each_request() {
    let errors = vec![json!({ "code": "invalid_request", "message": "Model parameter is required", "param": "body.model", "line": 2 })];
    let s = setup(Config { validation_errors: errors, ..Config::default() });
    let (_, p) = provider(Kind::OpenAi, json!({}));
    let err = run_vote(&s, &vote_options(&p, 3, json!({ "pollIntervalMs": 1000 })), &Refs::default()).unwrap_err();
    assert_eq!(err.code, Code::AllFailed);
    let report = err.report.unwrap();
    let samples = report["samples"].as_array().unwrap();
    assert!(samples.iter().all(|x| x["status"] == "failed"));
    // Line 2 is sample-1's own line; the others name the batch's errors.
    assert!(samples[1]["error"]["message"].as_str().unwrap().contains("because of this request"), "{}", samples[1]["error"]);
    assert_eq!(samples[1]["error"]["retryable"], false);
    assert!(samples[0]["error"]["message"].as_str().unwrap().contains("line 2: invalid_request"), "{}", samples[0]["error"]);
    assert_eq!(report["batch"]["batches"][0]["status"], "failed");
    assert!(requests(&s, "GET", "/content").is_empty(), "a failed batch has no files to read");
}

#[test]
fn expired_batch_keeps_finished_results() {
    let s = setup(Config { expire_ms: Some(2600.0), answer: Rc::new(|_, _| Answer::Text("42".into())), ..Config::default() });
    let (_, p) = provider(Kind::OpenAi, json!({}));
    let report = run_vote(&s, &vote_options(&p, 4, json!({ "pollIntervalMs": 1000, "maxPollIntervalMs": 1000 })), &Refs::default()).unwrap();
    let samples = report["samples"].as_array().unwrap();
    // Validation takes 500 ms and each line 1000 ms: two lines end before 2600 ms.
    let statuses: Vec<&str> = samples.iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["ok", "ok", "failed", "failed"]);
    assert_eq!(samples[2]["error"]["providerType"], "batch_expired");
    assert_eq!(report["batch"]["batches"][0]["status"], "expired");
}

#[test]
fn abort_cancels_the_batch_and_keeps_partial_results() {
    let s = setup(Config { answer: Rc::new(|_, _| Answer::Text("42".into())), ..Config::default() });
    let (_, p) = provider(Kind::Anthropic, json!({}));
    let signal = TestSignal::new();
    let refs = Refs { on_event: None, signal: Some(signal.clone()) };
    let mut options = vote_options(&p, 5, json!({ "pollIntervalMs": 500, "maxPollIntervalMs": 500 }));
    options["signal"] = signal_marker();
    let h = host(&s.sim);
    let abort_later = {
        let h = h.clone();
        let signal = signal.clone();
        async move {
            h.sleep(2500.0).await;
            signal.abort(false);
        }
    };
    let (result, ()) = s.sim.run(join(crate::voting::vote(h, &options, &refs), abort_later));
    let err = result.unwrap_err();
    assert_eq!(err.code, Code::Aborted);
    let cancels = requests(&s, "POST", "/cancel");
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].at, 2500.0);
    let report = err.report.unwrap();
    let statuses: Vec<&str> = report["samples"].as_array().unwrap().iter().map(|x| x["status"].as_str().unwrap()).collect();
    // Lines end at 1000 and 2000 ms; the cancel at 2500 ms stops the rest.
    assert_eq!(statuses, vec!["ok", "ok", "cancelled", "cancelled", "cancelled"]);
    assert_eq!(report["winner"], "42");
    assert_eq!(report["batch"]["batches"][0]["status"], "ended");
    assert_eq!(signal.attached(), 0, "the run removed its abort listener");
}

#[test]
fn deadline_then_resume_finishes() {
    let s = setup(Config { answer: Rc::new(|_, _| Answer::Text("42".into())), ..Config::default() });
    let (_, p) = provider(Kind::OpenAi, json!({}));
    let mut options = vote_options(&p, 4, json!({ "pollIntervalMs": 1000, "maxPollIntervalMs": 1000 }));
    options["deadlineMs"] = json!(2000);
    let err = run_vote(&s, &options, &Refs::default()).unwrap_err();
    assert_eq!(err.code, Code::DeadlineExceeded);
    assert!(err.message.contains("resumeBatch"), "{}", err.message);
    assert!(requests(&s, "POST", "/cancel").is_empty(), "a deadline does not cancel the batch");
    let report = err.report.unwrap();
    assert!(report["samples"].as_array().unwrap().iter().all(|x| x["status"] == "cancelled"));
    let handle = report["batch"].clone();
    assert_eq!(handle["batches"][0]["status"], "in_progress");

    // A fresh call with the handle polls the same batch and submits nothing new.
    let before = s.sim.records().len();
    let mut resumed = vote_options(&p, 4, json!({ "pollIntervalMs": 1000, "resume": handle }));
    resumed["deadlineMs"] = Value::Null;
    let report = run_vote(&s, &resumed, &Refs::default()).unwrap();
    let later = &s.sim.records()[before..];
    assert!(later.iter().all(|r| r.method == "GET"), "resuming only reads");
    assert_eq!(report["winner"], "42");
    assert_eq!(report["valid"], 4);
    assert_eq!(report["batch"]["batches"][0]["id"], handle["batches"][0]["id"]);
}

#[test]
fn resume_submits_what_the_handle_lacks() {
    let s = setup(Config::default());
    let (_, p) = provider(Kind::Anthropic, json!({}));
    let subtasks = json!([{ "id": "a", "prompt": "A" }, { "id": "b", "prompt": "B" }, { "id": "c", "prompt": "C after {{a}}" }]);
    let first = json!({ "provider": p, "subtasks": subtasks, "batch": { "pollIntervalMs": 500, "maxRequestsPerBatch": 1 }, "deadlineMs": 100 });
    let err = s.sim.run(crate::sectioning::section(host(&s.sim), &first, &Refs::default())).unwrap_err();
    assert_eq!(err.code, Code::DeadlineExceeded);
    let mut handle = err.report.unwrap()["batch"].clone();
    // Keep only the batch of "a", as if the run had stopped after submitting it.
    handle["batches"] = json!([handle["batches"][0].clone()]);
    assert_eq!(handle["batches"][0]["customIds"], json!(["subtask-a"]));
    let before = requests(&s, "POST", "/messages/batches").len();
    let resumed = json!({ "provider": p, "subtasks": subtasks, "batch": { "pollIntervalMs": 500, "resume": handle } });
    let report = s.sim.run(crate::sectioning::section(host(&s.sim), &resumed, &Refs::default())).unwrap();
    let creates = &requests(&s, "POST", "/messages/batches")[before..];
    let submitted: Vec<Vec<&str>> = creates
        .iter()
        .map(|c| c.body["requests"].as_array().unwrap().iter().map(|r| r["custom_id"].as_str().unwrap()).collect())
        .collect();
    assert_eq!(submitted, vec![vec!["subtask-b"], vec!["subtask-c"]]);
    assert_eq!(report["output"], "re:A\n\nre:B\n\nre:C after re:A");
}

#[test]
fn split_respects_lowered_limits_and_split_false_rejects() {
    let s = setup(Config::default());
    let (_, p) = provider(Kind::OpenAi, json!({}));
    let report = run_vote(&s, &vote_options(&p, 5, json!({ "pollIntervalMs": 1000, "maxRequestsPerBatch": 2 })), &Refs::default()).unwrap();
    let sizes: Vec<usize> = s.server.batches().iter().map(|(_, ids)| ids.len()).collect();
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(report["valid"], 5);
    let ids: Vec<String> = s.server.batches().into_iter().flat_map(|(_, ids)| ids).collect();
    assert_eq!(ids, (0..5).map(|i| format!("sample-{i}")).collect::<Vec<_>>());

    let before = s.sim.records().len();
    let err = run_vote(&s, &vote_options(&p, 5, json!({ "split": false, "maxRequestsPerBatch": 2 })), &Refs::default()).unwrap_err();
    assert_eq!(err.code, Code::InvalidOptions);
    assert!(err.message.starts_with("batch.split"), "{}", err.message);
    assert!(err.message.contains("above the limit of 2 requests per OpenAI batch"), "{}", err.message);
    assert_eq!(s.sim.records().len(), before, "rejected before any request");
}

#[test]
fn byte_limit_splits_by_size() {
    let s = setup(Config::default());
    let (_, p) = provider(Kind::Anthropic, json!({}));
    let mut options = vote_options(&p, 6, json!({ "pollIntervalMs": 1000, "maxBytesPerBatch": 1024 }));
    options["prompt"] = json!(format!("{} What is 6 times 7?", "Think it through. ".repeat(16)));
    let report = run_vote(&s, &options, &Refs::default()).unwrap();
    let creates = requests(&s, "POST", "/messages/batches");
    assert!(creates.len() >= 3, "1 KiB holds at most two of these requests, got {} batches", creates.len());
    for c in &creates {
        assert!(c.body_text.len() <= 1024, "{} bytes", c.body_text.len());
    }
    assert_eq!(report["valid"], 6);
}

#[test]
fn unmatched_result_lines_are_reported() {
    let extra = vec![
        json!({ "custom_id": "sample-9", "result": { "type": "succeeded", "message": { "content": [{ "type": "text", "text": "1" }] } } }).to_string(),
        json!({ "custom_id": "sample-0", "result": { "type": "succeeded", "message": { "content": [{ "type": "text", "text": "1" }] } } }).to_string(),
    ];
    let s = setup(Config { extra_lines: extra, answer: Rc::new(|_, _| Answer::Text("42".into())), ..Config::default() });
    let (_, p) = provider(Kind::Anthropic, json!({}));
    let report = run_vote(&s, &vote_options(&p, 2, json!({ "pollIntervalMs": 1000 })), &Refs::default()).unwrap();
    assert_eq!(report["counts"], json!({ "42": 2.0 }), "the extra lines are not counted");
    let reasons: Vec<&str> = report["batch"]["unmatched"].as_array().unwrap().iter().map(|u| u["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, vec!["unknown-custom-id", "duplicate-custom-id"]);
    assert!(report["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "batch-unmatched-results"));
}

#[test]
fn adaptive_rules_and_custom_providers_are_rejected() {
    let s = setup(Config::default());
    let (_, p) = provider(Kind::OpenAi, json!({}));
    let mut options = vote_options(&p, 3, json!(true));
    options["rule"] = json!({ "aheadBy": 2 });
    let err = run_vote(&s, &options, &Refs::default()).unwrap_err();
    assert!(err.message.starts_with("rule:"), "{}", err.message);
    assert!(err.message.contains("cannot stop early"), "{}", err.message);

    let id = registry::next_id();
    let custom = from_options(Kind::Custom, None, &json!({ "name": "mine" }), &test_refs::Refs::default(), Runtime::Server, id).unwrap();
    registry::add_provider(custom);
    let marker = json!({ "\u{0}": ["provider", id] });
    let options = json!({ "provider": p, "subtasks": [{ "id": "a", "prompt": "A" }, { "id": "b", "prompt": "B", "provider": marker }], "batch": true });
    let err = s.sim.run(crate::sectioning::section(host(&s.sim), &options, &Refs::default())).unwrap_err();
    assert!(err.message.starts_with("subtasks[1].provider"), "{}", err.message);
    assert!(s.sim.records().is_empty());
}

#[test]
fn request_budget_is_checked_before_submitting() {
    let s = setup(Config::default());
    let (_, p) = provider(Kind::OpenAi, json!({}));
    let mut options = vote_options(&p, 5, json!(true));
    options["maxRequests"] = json!(4);
    let err = run_vote(&s, &options, &Refs::default()).unwrap_err();
    assert_eq!(err.code, Code::BudgetExceeded);
    assert!(s.sim.records().is_empty(), "nothing was submitted");
    let report = err.report.unwrap();
    assert!(report["samples"].as_array().unwrap().iter().all(|x| x["status"] == "cancelled"));
}

#[test]
fn batch_false_runs_in_process() {
    let sim = SimHost::new(|_| crate::sim::Action::openai("42"));
    let (_, p) = provider(Kind::OpenAi, json!({}));
    let options = json!({ "provider": p, "prompt": "q", "voters": 2, "extract": "number", "batch": false });
    let report = sim.run(crate::voting::vote(host(&sim), &options, &Refs::default())).unwrap();
    assert_eq!(report["winner"], "42");
    assert!(report.get("batch").is_none());
    assert!(sim.records().iter().all(|r| r.url.ends_with("/chat/completions")));
}

#[test]
fn lost_batch_fails_its_requests_with_the_error() {
    let s = setup(Config::default());
    let (_, p) = provider(Kind::OpenAi, json!({}));
    let handle = json!({ "version": 1, "kind": "vote", "batches": [{ "provider": "openai", "id": "batch_missing", "phase": 0, "customIds": ["sample-0", "sample-1"] }] });
    let err = run_vote(&s, &vote_options(&p, 2, json!({ "resume": handle })), &Refs::default()).unwrap_err();
    assert_eq!(err.code, Code::AllFailed);
    let report = err.report.unwrap();
    assert_eq!(report["samples"][0]["error"]["status"], 404);
    assert!(report["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "batch-lost"));
}

#[test]
fn handle_from_other_options_is_rejected_by_path() {
    let s = setup(Config::default());
    let (_, p) = provider(Kind::OpenAi, json!({}));
    let handle = json!({ "kind": "vote", "batches": [{ "provider": "openai", "id": "b", "customIds": ["sample-7"] }] });
    let err = run_vote(&s, &vote_options(&p, 2, json!({ "resume": handle })), &Refs::default()).unwrap_err();
    assert!(err.message.starts_with("batch.resume.batches[0].customIds[0]"), "{}", err.message);
    let handle = json!({ "kind": "vote", "batches": [{ "provider": "anthropic", "id": "b", "customIds": ["sample-0"] }] });
    let err = run_vote(&s, &vote_options(&p, 2, json!({ "resume": handle })), &Refs::default()).unwrap_err();
    assert!(err.message.starts_with("batch.resume.batches[0].provider"), "{}", err.message);
    let handle = json!({ "kind": "section", "batches": [] });
    let err = run_vote(&s, &vote_options(&p, 2, json!({ "resume": handle })), &Refs::default()).unwrap_err();
    assert!(err.message.starts_with("batch.resume.kind"), "{}", err.message);
    assert!(s.sim.records().is_empty());
}


#[test]
fn judge_is_skipped_after_abort() {
    let s = setup(Config { answer: Rc::new(|_, _| Answer::Text("42".into())), ..Config::default() });
    let (_, p) = provider(Kind::OpenAi, json!({}));
    let signal = TestSignal::new();
    let refs = Refs { on_event: None, signal: Some(signal.clone()) };
    let mut options = vote_options(&p, 3, json!({ "pollIntervalMs": 500, "cancelWaitMs": 0 }));
    options["extract"] = json!("text");
    options["rule"] = json!({ "score": { "criteria": [{ "name": "clarity", "weight": 1 }], "passScore": 50 } });
    options["judge"] = p.clone();
    options["signal"] = signal_marker();
    let h = host(&s.sim);
    let abort_later = {
        let (h, signal) = (h.clone(), signal.clone());
        async move {
            h.sleep(1200.0).await;
            signal.abort(false);
        }
    };
    let (result, ()) = s.sim.run(join(crate::voting::vote(h, &options, &refs), abort_later));
    let err = result.unwrap_err();
    assert_eq!(err.code, Code::Aborted);
    let report = err.report.expect("the rejection carries the report");
    assert_eq!(report["samples"].as_array().unwrap().len(), 3);
    assert!(s.sim.records().iter().all(|r| !r.url.ends_with("/chat/completions")), "no judge call after the abort");
}

#[test]
fn fail_fast_submits_no_later_phase() {
    let s = setup(Config {
        answer: Rc::new(|id, _| {
            if id == "subtask-a" {
                Answer::Status(500, json!({ "error": { "message": "boom", "type": "server_error" } }))
            } else {
                Answer::Text("fine".into())
            }
        }),
        ..Config::default()
    });
    let (_, p) = provider(Kind::OpenAi, json!({}));
    let options = json!({
        "provider": p,
        "failure": "fail-fast",
        "subtasks": [{ "id": "a", "prompt": "A" }, { "id": "b", "prompt": "B" }, { "id": "c", "prompt": "C", "dependsOn": ["b"] }],
        "batch": { "pollIntervalMs": 1000 },
    });
    let err = s.sim.run(crate::sectioning::section(host(&s.sim), &options, &Refs::default())).unwrap_err();
    assert_eq!(err.code, Code::ProviderError);
    assert!(err.message.contains("fail-fast"), "{}", err.message);
    assert_eq!(requests(&s, "POST", "/batches").len(), 1, "the second phase is not submitted");
    let statuses: Vec<&str> = err.report.as_ref().unwrap()["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["failed", "ok", "cancelled"]);
}
