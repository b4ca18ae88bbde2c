//! Provider behaviour through the scheduler against the virtual-time host: request
//! bodies, every response shape, streams cut at every byte, secrets.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Value};

use super::test_refs::Refs;
use super::{from_options, CallRequest, FinishReason, Kind, Provider};
use crate::report::CallRecord;
use crate::schedule::call::{run_call, Label};
use crate::schedule::{Run, RunOptions};
use crate::sim::{Action, Record, SimHandle, SimHost};
use crate::transport::{Host, Runtime};

fn provider(kind: Kind, options: Value) -> Rc<Provider> {
    Rc::new(from_options(kind, None, &options, &Refs::default(), Runtime::Server, 7).unwrap())
}

fn run_options() -> RunOptions {
    RunOptions {
        concurrency: None,
        limiter: None,
        retry: crate::schedule::retry::RetryPolicy { base_delay_ms: 10.0, ..Default::default() },
        deadline_ms: None,
        max_requests: None,
        budget_tokens: None,
        budget_cost: None,
        signal: None,
        on_event: None,
    }
}

/// Makes one call through the scheduler and returns the result and the server's records.
fn call_once(
    handler: impl Fn(&Record) -> Action + 'static,
    p: Rc<Provider>,
    request: CallRequest,
) -> (crate::Result<super::CallResponse>, Vec<Record>, CallRecord) {
    let sim = SimHost::new(handler);
    let host: Rc<dyn Host> = Rc::new(SimHandle(sim.clone()));
    let record = RefCell::new(CallRecord::default());
    let run = Run::start(host, &run_options(), 1);
    let label = Label::new(json!({ "call": "test" }));
    let result = sim.run(run_call(&run, &p, &request, &label, &record, None));
    (result, sim.records(), record.into_inner())
}

const OPENAI_STREAM: &str = concat!(
    "data: {\"id\":\"\",\"object\":\"\",\"created\":0,\"model\":\"\",\"choices\":[],\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{}}]}\n\n",
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null}}]}\n\n",
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Caf\u{e9} \u{1F600} \"}}]}\n\n",
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"42\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1,\"total_tokens\":10}}\n\n",
    "data: [DONE]\n\n",
);

const ANTHROPIC_STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\":\"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"na\u{ef}ve \"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"answer\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

fn cut_stream(body: &str, cuts: &[usize]) -> Action {
    let bytes = body.as_bytes();
    let mut chunks = Vec::new();
    let mut last = 0;
    for &c in cuts {
        chunks.push((1.0, bytes[last..c].to_vec()));
        last = c;
    }
    chunks.push((1.0, bytes[last..].to_vec()));
    let mut a = Action::stream(vec![]);
    a.chunks = chunks;
    a
}

#[test]
fn openai_stream_cut_at_every_byte_gives_same_text() {
    let p = provider(Kind::OpenAi, json!({ "model": "m", "baseURL": "http://127.0.0.1:9/v1", "stream": true }));
    for cut in 0..=OPENAI_STREAM.len() {
        let (result, _, record) = call_once(move |_| cut_stream(OPENAI_STREAM, &[cut]), p.clone(), CallRequest::prompt("q"));
        let r = result.unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(r.text, "Caf\u{e9} \u{1F600} 42", "cut at {cut}");
        assert_eq!(r.finish_reason, FinishReason::Stop);
        assert_eq!(record.usage.input_tokens + record.usage.output_tokens, 10, "cut at {cut}");
    }
}

#[test]
fn anthropic_stream_cut_at_every_byte_gives_same_text() {
    let p = provider(Kind::Anthropic, json!({ "model": "c", "apiKey": "sk-ant-test-key", "maxTokens": 16, "baseURL": "http://127.0.0.1:9/v1", "stream": true }));
    for cut in 0..=ANTHROPIC_STREAM.len() {
        let (result, _, record) = call_once(move |_| cut_stream(ANTHROPIC_STREAM, &[cut, (cut + 7).min(ANTHROPIC_STREAM.len())]), p.clone(), CallRequest::prompt("q"));
        let r = result.unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(r.text, "na\u{ef}ve answer", "cut at {cut}");
        assert_eq!(record.usage.input_tokens, 12);
        assert_eq!(record.usage.output_tokens, 3);
    }
}

#[test]
fn openai_request_body_has_every_field() {
    let p = provider(
        Kind::OpenAi,
        json!({ "model": "gpt", "baseURL": "http://127.0.0.1:9/v1/", "apiKey": "sk-abcdef123", "temperature": 0.5, "topP": 0.9, "maxTokens": 33, "seed": 7, "stream": true, "extraBody": { "logprobs": true }, "headers": { "X-Title": "t" } }),
    );
    let mut request = CallRequest::prompt("hi");
    request.system = Some("be brief".into());
    let (_, records, _) = call_once(|_| Action::stream(vec![(0.0, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")]), p, request);
    let r = &records[0];
    assert_eq!(r.url, "http://127.0.0.1:9/v1/chat/completions");
    let b = &r.body;
    assert_eq!(b["model"], "gpt");
    assert_eq!(b["messages"], json!([{ "role": "system", "content": "be brief" }, { "role": "user", "content": "hi" }]));
    assert_eq!(b["temperature"], 0.5);
    assert_eq!(b["top_p"], 0.9);
    assert_eq!(b["max_tokens"], 33);
    assert_eq!(b["seed"], 7);
    assert_eq!(b["stream"], true);
    assert_eq!(b["stream_options"], json!({ "include_usage": true }));
    assert_eq!(b["logprobs"], true);
    let header = |n: &str| r.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    assert_eq!(header("authorization").as_deref(), Some("Bearer sk-abcdef123"));
    assert_eq!(header("x-title").as_deref(), Some("t"));
}

#[test]
fn openai_request_leaves_unset_fields_out() {
    let p = provider(Kind::OpenAi, json!({ "model": "gpt", "baseURL": "http://127.0.0.1:9/v1" }));
    let (_, records, _) = call_once(|_| Action::openai("x"), p, CallRequest::prompt("hi"));
    let b = records[0].body.as_object().unwrap();
    for key in ["temperature", "top_p", "max_tokens", "seed", "stream", "stream_options"] {
        assert!(!b.contains_key(key), "{key} should be absent, body {b:?}");
    }
    assert!(records[0].headers.iter().all(|(k, _)| !k.eq_ignore_ascii_case("authorization")));
}

#[test]
fn anthropic_request_body_and_headers() {
    let p = provider(Kind::Anthropic, json!({ "model": "claude", "apiKey": "sk-ant-xyz123", "maxTokens": 64, "baseURL": "http://127.0.0.1:9/v1", "temperature": 1.5 }));
    let mut request = CallRequest::prompt("hi");
    request.system = Some("sys".into());
    let (result, records, _) = call_once(
        |_| Action::json(json!({ "type": "message", "role": "assistant", "model": "claude", "content": [{ "type": "text", "text": "hello" }], "stop_reason": "end_turn", "usage": { "input_tokens": 5, "output_tokens": 1 } })),
        p,
        request,
    );
    assert_eq!(result.unwrap().text, "hello");
    let r = &records[0];
    assert_eq!(r.url, "http://127.0.0.1:9/v1/messages");
    assert_eq!(r.body["max_tokens"], 64);
    assert_eq!(r.body["system"], "sys");
    assert_eq!(r.body["messages"], json!([{ "role": "user", "content": "hi" }]));
    assert_eq!(r.body["temperature"], 1.0, "the Messages API caps temperature at 1");
    let header = |n: &str| r.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    assert_eq!(header("x-api-key").as_deref(), Some("sk-ant-xyz123"));
    assert_eq!(header("anthropic-version").as_deref(), Some("2023-06-01"));
    assert_eq!(header("anthropic-dangerous-direct-browser-access"), None);
}

#[test]
fn shapes_that_are_not_answers() {
    let p = provider(Kind::OpenAi, json!({ "model": "m", "baseURL": "http://127.0.0.1:9/v1" }));
    // Truncated output is an answer with finish reason "length".
    let (r, _, _) = call_once(
        |_| Action::json(json!({ "choices": [{ "index": 0, "message": { "content": "The answer is 4" }, "finish_reason": "length" }] })),
        p.clone(),
        CallRequest::prompt("q"),
    );
    assert_eq!(r.unwrap().finish_reason, FinishReason::Length);
    // A content filter with null content: no crash, empty text, the reason kept.
    let (r, records, _) = call_once(
        |_| Action::json(json!({ "id": "c4", "object": "chat.completion", "choices": [{ "index": 0, "finish_reason": "content_filter", "message": { "role": "assistant", "content": null } }] })),
        p.clone(),
        CallRequest::prompt("q"),
    );
    let r = r.unwrap();
    assert_eq!(r.finish_reason, FinishReason::ContentFilter);
    assert_eq!(r.text, "");
    assert_eq!(records.len(), 1, "a content filter is not retried");
    // Empty choices in a whole response: an unusable response, retried.
    let (r, records, _) = call_once(|_| Action::json(json!({ "choices": [] })), p.clone(), CallRequest::prompt("q"));
    let err = r.unwrap_err();
    assert!(err.message.contains("no choices"), "{}", err.message);
    assert_eq!(records.len(), 3, "retried twice");
    // Anthropic's empty content with end_turn is a legitimate empty answer.
    let a = provider(Kind::Anthropic, json!({ "model": "c", "apiKey": "sk-ant-123456", "maxTokens": 5, "baseURL": "http://127.0.0.1:9/v1" }));
    let (r, records, _) = call_once(
        |_| Action::json(json!({ "type": "message", "role": "assistant", "content": [], "stop_reason": "end_turn", "usage": { "input_tokens": 5, "output_tokens": 0 } })),
        a,
        CallRequest::prompt("q"),
    );
    let r = r.unwrap();
    assert_eq!(r.text, "");
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert_eq!(records.len(), 1);
}

#[test]
fn body_over_the_limit_fails_without_retry() {
    let p = provider(Kind::OpenAi, json!({ "model": "m", "baseURL": "http://127.0.0.1:9/v1", "maxResponseBytes": 2048 }));
    let big = "x".repeat(5000);
    let (r, records, _) = call_once(move |_| Action::openai(&big), p, CallRequest::prompt("q"));
    let err = r.unwrap_err();
    assert!(err.message.contains("maxResponseBytes"), "{}", err.message);
    assert_eq!(err.provider.as_ref().unwrap().provider_type.as_deref(), Some("response_too_large"));
    assert_eq!(records.len(), 1);
    assert!(records[0].aborted, "the oversized body is abandoned, which closes the request");
}

#[test]
fn anthropic_error_event_in_a_200_stream_is_retried() {
    let p = provider(Kind::Anthropic, json!({ "model": "c", "apiKey": "sk-ant-123456", "maxTokens": 5, "baseURL": "http://127.0.0.1:9/v1", "stream": true }));
    let partial = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"partial\"}}\n\n",
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    );
    let (r, records, record) = call_once(
        move |rec| if rec.seq == 1 { Action::stream(vec![(1.0, partial)]) } else { Action::stream(vec![(1.0, ANTHROPIC_STREAM)]) },
        p,
        CallRequest::prompt("q"),
    );
    let r = r.unwrap();
    assert_eq!(r.text, "na\u{ef}ve answer", "the partial text never counts");
    assert_eq!(records.len(), 2);
    let first = record.attempts[0].error.as_ref().unwrap();
    assert_eq!(first.provider.as_ref().unwrap().provider_type.as_deref(), Some("overloaded_error"));
    assert!(first.is_retryable());
}

#[test]
fn openai_error_body_inside_stream_is_retryable() {
    let p = provider(Kind::OpenAi, json!({ "model": "m", "baseURL": "http://127.0.0.1:9/v1", "stream": true }));
    let (r, records, _) = call_once(
        |rec| {
            if rec.seq == 1 {
                Action::stream(vec![(1.0, "data: {\"choices\":[{\"delta\":{\"content\":\"4\"}}]}\n\ndata: {\"error\":{\"message\":\"upstream died\",\"type\":\"server_error\"}}\n\n")])
            } else {
                Action::stream(vec![(1.0, OPENAI_STREAM)])
            }
        },
        p,
        CallRequest::prompt("q"),
    );
    assert_eq!(r.unwrap().text, "Caf\u{e9} \u{1F600} 42");
    assert_eq!(records.len(), 2);
}

#[test]
fn stream_that_stops_early_is_a_network_error() {
    let p = provider(Kind::OpenAi, json!({ "model": "m", "baseURL": "http://127.0.0.1:9/v1", "stream": true }));
    let (r, records, _) = call_once(
        |_| Action::stream(vec![(1.0, "data: {\"choices\":[{\"delta\":{\"content\":\"4\"}}]}\n\n")]),
        p,
        CallRequest::prompt("q"),
    );
    let err = r.unwrap_err();
    assert_eq!(err.provider.as_ref().unwrap().provider_type.as_deref(), Some("network"));
    assert_eq!(records.len(), 3, "retried: the stream ended early");
}

#[test]
fn stalled_stream_times_out_and_closes() {
    let p = provider(Kind::OpenAi, json!({ "model": "m", "baseURL": "http://127.0.0.1:9/v1", "stream": true }));
    let sim = SimHost::new(|_| {
        let mut a = Action::stream(vec![(1.0, "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n")]);
        a.stall_after_chunks = true;
        a
    });
    let host: Rc<dyn Host> = Rc::new(SimHandle(sim.clone()));
    let mut options = run_options();
    options.retry.timeout_ms = 1000.0;
    options.retry.max_retries = 0;
    let run = Run::start(host, &options, 1);
    let record = RefCell::new(CallRecord::default());
    let label = Label::new(json!({ "call": "test" }));
    let err = sim.run(run_call(&run, &p, &CallRequest::prompt("q"), &label, &record, None)).unwrap_err();
    assert_eq!(err.provider.as_ref().unwrap().provider_type.as_deref(), Some("timeout"));
    let records = sim.records();
    assert!(records[0].aborted);
    assert_eq!(records[0].closed_at, Some(1000.0));
}

#[test]
fn echoed_secrets_never_come_back() {
    let key = "sk-live-SENTINEL-0123456789";
    let p = provider(Kind::OpenAi, json!({ "model": "m", "baseURL": "http://127.0.0.1:9/v1", "apiKey": key, "stream": true }));
    // The server echoes the key in a streamed answer, split across chunks.
    let body = format!(
        "data: {{\"choices\":[{{\"delta\":{{\"content\":\"your key is {}\"}}}}]}}\n\ndata: {{\"choices\":[{{\"delta\":{{\"content\":\"{} ok\"}},\"finish_reason\":\"stop\"}}]}}\n\ndata: [DONE]\n\n",
        &key[..10],
        &key[10..]
    );
    let (r, _, _) = call_once(move |_| Action::stream(vec![(1.0, &body)]), p.clone(), CallRequest::prompt("q"));
    let text = r.unwrap().text;
    assert!(!text.contains(key), "{text}");
    assert!(text.contains("[REDACTED]"));
    // And in an error body.
    let (r, _, record) = call_once(
        move |_| Action::status(401, format!("{{\"error\":{{\"message\":\"Incorrect API key provided: {key}\",\"type\":\"invalid_request_error\"}}}}")),
        p,
        CallRequest::prompt("q"),
    );
    let err = r.unwrap_err();
    let all = format!("{} {} {}", err.message, err.to_json(), record.attempts_json());
    assert!(!all.contains(key), "{all}");
    assert!(!err.is_retryable());
}

#[test]
fn rate_limit_headers_pace_the_next_request() {
    let p = provider(Kind::OpenAi, json!({ "model": "m", "baseURL": "http://127.0.0.1:9/v1" }));
    let sim = SimHost::new(|rec| {
        if rec.seq == 1 {
            Action::openai("a").header("x-ratelimit-remaining-requests", "0").header("x-ratelimit-reset-requests", "1.5s")
        } else {
            Action::openai("b")
        }
    });
    let host: Rc<dyn Host> = Rc::new(SimHandle(sim.clone()));
    let run = Run::start(host, &run_options(), 1);
    let label = Label::new(json!({ "call": "test" }));
    let r1 = RefCell::new(CallRecord::default());
    let r2 = RefCell::new(CallRecord::default());
    sim.run(async {
        run_call(&run, &p, &CallRequest::prompt("1"), &label, &r1, None).await.unwrap();
        run_call(&run, &p, &CallRequest::prompt("2"), &label, &r2, None).await.unwrap();
    });
    let records = sim.records();
    assert!(records[1].at >= 1500.0, "second request at {}", records[1].at);
}

#[test]
fn prices_give_a_cost() {
    let p = provider(Kind::OpenAi, json!({ "model": "m", "baseURL": "http://127.0.0.1:9/v1", "prices": { "input": 1.0, "output": 2.0 } }));
    let (r, _, record) = call_once(|_| Action::openai("x"), p, CallRequest::prompt("q"));
    r.unwrap();
    let cost = record.usage.cost_usd.unwrap();
    assert!((cost - (9.0 * 1.0 + 1.0 * 2.0) / 1e6).abs() < 1e-15, "{cost}");
}

#[test]
fn no_fetch_is_a_clear_error() {
    let p = provider(Kind::OpenAi, json!({ "model": "m", "baseURL": "http://127.0.0.1:9/v1" }));
    let sim = SimHost::new(|_| Action::openai("x"));
    sim.remove_fetch();
    let host: Rc<dyn Host> = Rc::new(SimHandle(sim.clone()));
    let run = Run::start(host, &run_options(), 1);
    let record = RefCell::new(CallRecord::default());
    let label = Label::new(json!({ "call": "test" }));
    let err = sim.run(run_call(&run, &p, &CallRequest::prompt("q"), &label, &record, None)).unwrap_err();
    assert!(err.message.contains("no fetch function"), "{}", err.message);
    assert!(err.message.contains("`fetch` option"), "{}", err.message);
    assert_eq!(record.borrow().attempts.len(), 1, "not retried");
}
