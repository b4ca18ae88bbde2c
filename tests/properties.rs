//! Property tests: the parsers, extractors, merge, option decoders and exact
//! arithmetic never panic on arbitrary input, and keep their invariants (chunking
//! never changes SSE events, canonical forms are fixed points, a merge reports the
//! same conflicts under every policy).
//!
//! A panic in the wasm build fails the whole call with INTERNAL_ERROR (or traps the
//! module, in a panic=abort build), so "returns an error" is the only acceptable way
//! for any of these to reject input.

use std::any::Any;
use std::cmp::Ordering;
use std::rc::Rc;

use parallel_task_executor::decode::{RefTable, MARKER};
use parallel_task_executor::jsontext::{canonical, find_json};
use parallel_task_executor::provider::sse::SseParser;
use parallel_task_executor::provider::{self, Kind, ProviderRefs};
use parallel_task_executor::registry;
use parallel_task_executor::schedule::cancel::CancelToken;
use parallel_task_executor::schedule::limiter::Limiter;
use parallel_task_executor::sectioning::merge::{merge_json, Conflicts};
use parallel_task_executor::sectioning::SectionOptions;
use parallel_task_executor::transport::{HostError, HostFunction, HostValue, RegexEngine, Runtime, SignalSource};
use parallel_task_executor::voting::extract::{find_choice, find_number, find_ranking, parse_json_path, select_path, Extract};
use parallel_task_executor::voting::normalize::{canonical_decimal, canonical_f64, Ratio};
use parallel_task_executor::voting::rules::{evaluate, tally, Entry, Evaluation, LiveTally, Outlook, Rule, Vote};
use parallel_task_executor::voting::{aggregate, VoteOptions};
use parallel_task_executor::{Code, Error};
use proptest::prelude::*;
use serde_json::{json, Map, Number, Value};

// ---------------------------------------------------------------------------
// Host stand-ins
// ---------------------------------------------------------------------------

/// A host function that returns a fixed value, or throws when it has none.
struct Returns(Option<Value>);

impl HostFunction for Returns {
    fn call_sync(&self, _arg: &Value) -> Result<Value, HostError> {
        self.0.clone().ok_or_else(|| HostError::message("thrown by the test function"))
    }

    fn call_async(&self, _arg: &Value, _cancel: CancelToken) -> futures_util::future::LocalBoxFuture<'static, Result<Value, HostError>> {
        let result = self.call_sync(&Value::Null);
        Box::pin(std::future::ready(result))
    }
}

struct NeverAborts;

impl SignalSource for NeverAborts {
    fn aborted(&self) -> Option<parallel_task_executor::transport::AbortReason> {
        None
    }

    fn subscribe(&self, _on_abort: Box<dyn Fn(parallel_task_executor::transport::AbortReason)>) -> Box<dyn Any> {
        Box::new(())
    }
}

/// Two functions (index 0 returns `fn_result`, index 1 throws) and two signals; any
/// other index is missing, as a stale or forged reference would be.
struct Refs {
    fn_result: Value,
}

impl RefTable for Refs {
    fn function(&self, index: usize) -> Option<Rc<dyn HostFunction>> {
        match index {
            0 => Some(Rc::new(Returns(Some(self.fn_result.clone())))),
            1 => Some(Rc::new(Returns(None))),
            _ => None,
        }
    }

    fn signal(&self, index: usize) -> Option<Rc<dyn SignalSource>> {
        (index < 2).then(|| Rc::new(NeverAborts) as Rc<dyn SignalSource>)
    }
}

impl ProviderRefs for Refs {
    fn raw(&self, index: usize) -> Option<HostValue> {
        (index < 2).then(|| Rc::new(index) as HostValue)
    }
}

/// A regex engine with a tiny grammar: a pattern with unbalanced parentheses is
/// invalid, a pattern containing "!" fails at match time, and a match returns the
/// text after the pattern's literal prefix, up to 8 characters.
struct LiteralRegex;

impl RegexEngine for LiteralRegex {
    fn validate(&self, pattern: &str, _flags: &str) -> Result<(), String> {
        let open = pattern.matches('(').count();
        let close = pattern.matches(')').count();
        if open == close {
            Ok(())
        } else {
            Err("Unterminated group".into())
        }
    }

    fn find_answer(&self, pattern: &str, _flags: &str, text: &str) -> Result<Option<String>, String> {
        if pattern.contains('!') {
            return Err("matching failed".into());
        }
        let prefix = pattern.split('(').next().unwrap_or("");
        Ok(text.find(prefix).map(|at| text[at + prefix.len()..].chars().take(8).collect()))
    }
}

/// Ids of a registered provider and limiter, for options that point to them.
struct Handles {
    provider: u32,
    limiter: u32,
}

fn handles() -> Handles {
    thread_local! {
        static HANDLES: (u32, u32) = {
            let id = registry::next_id();
            let options = json!({ "baseURL": "http://127.0.0.1:9/v1", "model": "m", "apiKey": "sk-test" });
            let p = provider::from_options(Kind::OpenAi, None, &options, &Refs { fn_result: Value::Null }, Runtime::Server, id)
                .expect("a valid provider");
            registry::add_provider(p);
            (id, registry::add_limiter(Limiter::new(3)))
        };
    }
    HANDLES.with(|&(provider, limiter)| Handles { provider, limiter })
}

fn marker(kind: &str, payload: Value) -> Value {
    let mut map = Map::new();
    map.insert(MARKER.to_string(), json!([kind, payload]));
    Value::Object(map)
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Option names of every decoder, plus near misses, so generated objects reach deep
/// into the decoders instead of stopping at "unknown option".
const KEYS: &[&str] = &[
    "provider", "prompt", "messages", "system", "voters", "extract", "choices", "rule", "maxSamples", "tie", "redFlags",
    "criteria", "judge", "similarity", "subtasks", "failure", "merge", "separator", "conflicts", "concurrency", "limiter",
    "timeoutMs", "deadlineMs", "maxRetries", "retry", "maxRequests", "budget", "signal", "onEvent", "id", "dependsOn",
    "required", "temperature", "weight", "name", "role", "content", "regex", "flags", "jsonPath", "atLeast", "answer",
    "firstTo", "aheadBy", "threshold", "of", "score", "passScore", "minSuccesses", "synthesize", "maxOutputTokens",
    "requireFormat", "refusal", "baseDelayMs", "maxDelayMs", "maxRetryAfterMs", "tokens", "costUsd", "text", "voter",
    "scores", "baseURL", "model", "apiKey", "headers", "topP", "maxTokens", "seed", "stream", "extraBody", "fetch",
    "maxResponseBytes", "prices", "input", "output", "version", "browser", "max_tokens", "concurency", "",
];

/// String values that decoders treat specially.
const WORDS: &[&str] = &[
    "text", "number", "choice", "json", "ranking", "plurality", "majority", "borda", "fail-fast", "settle", "collect",
    "first", "last", "error", "none", "ordered", "keyed", "user", "assistant", "system", "valid", "samples", "a", "b",
    "s0", "{{a}}", "{{outputs}}", "$.a[0]", "$", "$[", "$.['x']", "(\\d+)", "(", "A", "yes", "42", "42.0", "",
    " ", "http://127.0.0.1:1/v1", "ftp://x", "Authorization", "\u{0}",
];

fn number_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |x| Number::from_f64(x).map(Value::Number)),
        prop::sample::select(vec![0.0, -0.0, 0.5, 1.0, 2.0, 3.0, 10.0, 100.0, 1e6, 9007199254740992.0, 1e300, -1.0, 0.1])
            .prop_map(|x| Value::Number(Number::from_f64(x).expect("finite"))),
        (0i64..12).prop_map(Value::from),
    ]
}

fn marker_value() -> impl Strategy<Value = Value> {
    let h = handles();
    prop_oneof![
        prop::sample::select(vec!["NaN", "Infinity", "-Infinity"]).prop_map(|s| marker("num", json!(s))),
        any::<i64>().prop_map(|n| marker("bigint", json!(format!("{n}0")))),
        (0u64..4).prop_map(|i| marker("fn", json!(i))),
        (0u64..4).prop_map(|i| marker("signal", json!(i))),
        prop_oneof![Just(h.provider as u64), Just(h.limiter as u64), any::<u64>()].prop_map(|id| marker("provider", json!(id))),
        prop_oneof![Just(h.limiter as u64), Just(h.provider as u64), any::<u64>()].prop_map(|id| marker("limiter", json!(id))),
        Just(marker("object", json!("Date"))),
        Just(marker("symbol", Value::Null)),
        Just(marker("circular", Value::Null)),
        Just(marker("mystery", json!(1))),
        Just(json!({ MARKER: "not a list" })),
        Just(json!({ MARKER: [] })),
    ]
}

fn leaf_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number_value(),
        prop::sample::select(WORDS).prop_map(|s| Value::String(s.to_string())),
        ".{0,12}".prop_map(Value::String),
        marker_value(),
    ]
}

/// Arbitrary JSON trees whose object keys come mostly from the option names.
fn option_tree() -> impl Strategy<Value = Value> {
    leaf_value().prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![4 => prop::sample::select(KEYS).prop_map(str::to_string), 1 => "[a-z_]{0,8}"];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..6).prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// Arbitrary JSON data (no markers), as model outputs and merges see it.
fn json_data() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number_value(),
        "[a-c]{0,2}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-d]{1,2}", inner), 0..5).prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// Number-like text: signs, currency, separators, points, exponents of any size
/// (including i32::MIN and values past i32), very long digit runs.
fn numberish_text() -> impl Strategy<Value = String> {
    let sign = prop::sample::select(vec!["", "-", "+", "\u{2212}", "$", "-$", "\u{20ac}"]);
    let digits = prop_oneof![
        "[0-9]{0,6}",
        "[0-9]{1,3}(,[0-9]{3}){0,4}",
        "[0-9]{300,600}",
        Just(String::new()),
    ];
    let exponent = prop_oneof![
        Just(String::new()),
        (prop::sample::select(vec!["e", "E"]), prop::sample::select(vec!["", "-", "+"]), "[0-9]{1,4}")
            .prop_map(|(e, s, d)| format!("{e}{s}{d}")),
        prop::sample::select(vec![
            "e-2147483648", "e2147483647", "e-2147483647", "e2147483648", "e400", "e-400", "e401", "e-401",
            "e99999999999", "e-", "e+", "e",
        ])
        .prop_map(str::to_string),
    ];
    (sign, digits.clone(), prop::option::of(digits), exponent, prop::sample::select(vec!["", ".", " apples", "%", "x"]))
        .prop_map(|(s, i, f, e, tail)| match f {
            Some(f) => format!("{s}{i}.{f}{e}{tail}"),
            None => format!("{s}{i}{e}{tail}"),
        })
}

/// Model-reply-like text: prose, numbers, fences, braces, option labels and markers.
fn reply_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<String>(),
        numberish_text(),
        prop::sample::select(vec![
            "```json\n", "```\n", "````", "\n```", "{", "}", "[", "]", "\"", ":", ",", "The answer is ", "answer: ",
            "#### ", "\\boxed{", "= ", "equals ", " is ", "(B)", "**C**", "A) ", "option D", "four", "twenty-one",
            " > ", "\n1. ", "{\"a\": [1, 2]}", "[\"x\", \"y\"]", "\u{1F600}", "\u{301}", "\u{0}", "\r\n", "null",
        ])
        .prop_map(str::to_string),
        json_data().prop_map(|v| v.to_string()),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

/// Bytes that look like an event stream: fields, line endings of every kind,
/// comments, multi-byte characters, and raw bytes that are not UTF-8.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "data: ", "data:", "event: ", "id: 1", ": comment", "retry: 5", "\n", "\r", "\r\n", "\n\n", "[DONE]",
            "{\"a\":1}", "h\u{e9}llo", "\u{1F600}", " ", ":", "data", "event",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..6),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

fn all_events(chunks: &[&[u8]]) -> Vec<(Option<String>, String)> {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(parser.feed(chunk));
    }
    out.extend(parser.finish());
    out.into_iter().map(|e| (e.event, e.data)).collect()
}

/// Splits `bytes` at the given cut points (taken modulo the length, sorted).
fn split_at_cuts<'b>(bytes: &'b [u8], cuts: &[usize]) -> Vec<&'b [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| if bytes.is_empty() { 0 } else { c % (bytes.len() + 1) }).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for p in points {
        out.push(&bytes[last..p]);
        last = p;
    }
    out.push(&bytes[last..]);
    out
}

fn extractors(labels: Vec<String>, fn_result: Value) -> Vec<Extract> {
    let path = |p: &str| parse_json_path("extract.jsonPath", p).expect("a valid path");
    vec![
        Extract::Text,
        Extract::Number,
        Extract::Choice(labels),
        Extract::Json,
        Extract::Ranking,
        Extract::Regex { pattern: "answer: (\\d+)".into(), flags: String::new() },
        Extract::Regex { pattern: "(fail!)".into(), flags: "i".into() },
        Extract::JsonPath(path("$.a[0]")),
        Extract::JsonPath(path("$['b c'].d")),
        Extract::Function(Rc::new(Returns(Some(fn_result)))),
        Extract::Function(Rc::new(Returns(None))),
    ]
}

/// Checks that a decoder error is one a caller can act on.
fn assert_usable_error(err: &Error) {
    assert!(!err.message.trim().is_empty(), "an error with no message: {:?}", err.code);
    let known = matches!(
        err.code,
        Code::InvalidOptions | Code::UnknownDependency | Code::DependencyCycle | Code::Tie | Code::AllFailed | Code::QuorumNotMet
    );
    assert!(known, "unexpected code {} for a decoding error: {}", err.code.as_str(), err.message);
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sse_chunking_never_changes_events(bytes in sse_bytes(), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let whole = all_events(&[&bytes]);
        let split = all_events(&split_at_cuts(&bytes, &cuts));
        prop_assert_eq!(&split, &whole);
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(all_events(&single), whole);
    }

    #[test]
    fn sse_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let whole = all_events(&[&bytes]);
        prop_assert_eq!(all_events(&split_at_cuts(&bytes, &cuts)), whole);
    }

    #[test]
    fn canonical_decimal_is_a_fixed_point(text in prop_oneof![numberish_text(), any::<String>()]) {
        if let Some(canonical) = canonical_decimal(&text) {
            prop_assert_eq!(canonical_decimal(&canonical), Some(canonical.clone()), "from {:?}", text);
            prop_assert!(!canonical.starts_with('+') && !canonical.ends_with('.'), "{}", canonical);
            if let (Ok(a), Ok(b)) = (text.trim().parse::<f64>(), canonical.parse::<f64>()) {
                prop_assert!(a == b || (a == 0.0 && b == 0.0), "{:?} is {} but its canonical form {:?} is {}", text, a, canonical, b);
            }
        }
    }

    #[test]
    fn canonical_f64_round_trips(x in any::<f64>()) {
        let text = canonical_f64(x);
        if x.is_finite() {
            prop_assert_eq!(text.parse::<f64>().ok(), Some(if x == 0.0 { 0.0 } else { x }), "{}", text);
        }
    }

    #[test]
    fn find_number_returns_canonical_numbers(text in reply_text()) {
        if let Some(found) = find_number(&text) {
            prop_assert_eq!(canonical_decimal(&found), Some(found.clone()), "in {:?}", text);
        }
    }

    #[test]
    fn number_forms_never_panic(text in numberish_text(), prose in any::<String>()) {
        let _ = find_number(&text);
        let _ = find_number(&format!("{prose} The answer is {text}"));
        let _ = Extract::Number.canonicalize(&Value::String(text.clone()));
    }

    #[test]
    fn extractors_accept_any_reply(
        text in reply_text(),
        labels in prop::collection::vec(prop_oneof![Just("A".to_string()), Just("B".to_string()), "[^\\s]{1,6}"], 1..5),
        fn_result in prop_oneof![json_data(), marker_value()],
    ) {
        for extract in extractors(labels.clone(), fn_result.clone()) {
            if let Ok(answer) = extract.extract(&text, &LiteralRegex) {
                prop_assert!(!answer.key.is_empty() || matches!(extract, Extract::Json | Extract::JsonPath(_) | Extract::Function(_)),
                    "an empty answer key from {:?}", text);
            }
        }
        let _ = find_choice(&text, &labels);
        let _ = find_ranking(&text);
    }

    #[test]
    fn canonicalize_accepts_any_value(value in json_data(), labels in prop::collection::vec("[A-Za-z]{1,3}", 1..4)) {
        for extract in extractors(labels.clone(), Value::Null) {
            let _ = extract.canonicalize(&value);
        }
    }

    #[test]
    fn json_paths_parse_or_reject(path in prop_oneof![any::<String>(), "\\$[.\\[\\]'\"a-c0-9 ]{0,16}"], root in json_data()) {
        if let Ok(steps) = parse_json_path("extract.jsonPath", &path) {
            let _ = select_path(&root, &steps);
        }
    }

    #[test]
    fn find_json_round_trips_canonical_text(value in json_data(), prose in any::<String>()) {
        let text = canonical(&value);
        let direct: Value = serde_json::from_str(&text).expect("canonical text is JSON");
        prop_assert_eq!(find_json(&text), Some(direct));
        let fenced = format!("{prose}\n```json\n{text}\n```\n{prose}");
        let _ = find_json(&fenced);
    }

    #[test]
    fn find_json_accepts_any_text(text in reply_text()) {
        if let Some(value) = find_json(&text) {
            let once = canonical(&value);
            prop_assert!(serde_json::from_str::<Value>(&once).is_ok(), "canonical text is not JSON: {}", once);
        }
    }

    #[test]
    fn merge_reports_the_same_conflicts_under_every_policy(parts in prop::collection::vec(json_data(), 0..5)) {
        let parts: Vec<(String, Value)> = parts.into_iter().enumerate().map(|(i, v)| (format!("s{i}"), v)).collect();
        let (_, collected) = merge_json(&parts, Conflicts::Collect).expect("collect never fails");
        for policy in [Conflicts::First, Conflicts::Last] {
            let (_, conflicts) = merge_json(&parts, policy).expect("first and last never fail");
            let paths: Vec<&str> = conflicts.iter().map(|c| c.path.as_str()).collect();
            let expected: Vec<&str> = collected.iter().map(|c| c.path.as_str()).collect();
            prop_assert_eq!(paths, expected);
        }
        match merge_json(&parts, Conflicts::Error) {
            Ok(_) => prop_assert!(collected.is_empty()),
            Err(err) => {
                prop_assert!(!collected.is_empty());
                prop_assert_eq!(err.code, Code::MergeConflict);
            }
        }
    }

    #[test]
    fn ratio_arithmetic_never_panics(
        values in prop::collection::vec(prop_oneof![
            any::<f64>().prop_map(Ratio::from_f64),
            any::<i64>().prop_map(Ratio::int),
            prop::sample::select(vec![i64::MIN, i64::MAX, -1, 0, 1, 2, -2]).prop_map(Ratio::int),
            prop::sample::select(vec![0.1, 0.2, 0.3, 1e-300, 1e300, 123456789.123456789]).prop_map(Ratio::from_f64),
        ], 1..8),
        ops in prop::collection::vec((0u8..5, any::<prop::sample::Index>()), 0..16),
    ) {
        let mut acc = values[0];
        for (op, pick) in ops {
            let other = values[pick.index(values.len())];
            acc = match op {
                0 => acc.add(other),
                1 => acc.sub(other),
                2 => acc.mul(other),
                3 => acc.div(other).unwrap_or(acc),
                _ => other.sub(acc).mul(acc),
            };
            let forward = acc.compare(other);
            prop_assert_eq!(other.compare(acc), forward.reverse());
            let _ = acc.to_f64();
            let _ = acc.is_zero();
        }
    }

    #[test]
    fn ratio_addition_is_exact_for_decimals(a in -1_000_000i64..1_000_000, b in -1_000_000i64..1_000_000, scale in 0u32..6) {
        let d = 10f64.powi(scale as i32);
        let (x, y) = (a as f64 / d, b as f64 / d);
        let sum = Ratio::from_f64(x).add(Ratio::from_f64(y));
        let expected = Ratio::int(a + b).div(Ratio::int(10i64.pow(scale))).expect("non-zero");
        prop_assert_eq!(sum.compare(expected), Ordering::Equal, "{} + {}", x, y);
    }

    #[test]
    fn vote_options_decode_never_panics(options in option_tree(), fn_result in json_data()) {
        let refs = Refs { fn_result };
        if let Err(err) = VoteOptions::decode(&options, &refs, &LiteralRegex) {
            assert_usable_error(&err);
        }
    }

    #[test]
    fn vote_options_with_valid_base_never_panic(extra in prop::collection::vec((prop::sample::select(KEYS), option_tree()), 0..4)) {
        let h = handles();
        let mut options = json!({ "provider": marker("provider", json!(h.provider)), "prompt": "task", "voters": 3 });
        for (key, value) in extra {
            options[key] = value;
        }
        if let Err(err) = VoteOptions::decode(&options, &Refs { fn_result: Value::Null }, &LiteralRegex) {
            assert_usable_error(&err);
        }
    }

    #[test]
    fn section_options_decode_never_panics(options in option_tree()) {
        if let Err(err) = SectionOptions::decode(&options, &Refs { fn_result: Value::Null }) {
            assert_usable_error(&err);
        }
    }

    #[test]
    fn section_options_with_valid_base_never_panic(
        subtasks in prop::collection::vec(option_tree(), 0..5),
        extra in prop::collection::vec((prop::sample::select(KEYS), option_tree()), 0..3),
    ) {
        let h = handles();
        let mut list: Vec<Value> = vec![json!({ "id": "a", "prompt": "first" }), json!({ "id": "b", "prompt": "uses {{a}}" })];
        list.extend(subtasks);
        let mut options = json!({ "provider": marker("provider", json!(h.provider)), "subtasks": list });
        for (key, value) in extra {
            options[key] = value;
        }
        if let Err(err) = SectionOptions::decode(&options, &Refs { fn_result: Value::Null }) {
            assert_usable_error(&err);
        }
    }

    #[test]
    fn provider_options_never_panic(options in option_tree(), kind in prop::sample::select(vec![Kind::OpenAi, Kind::Anthropic, Kind::Custom])) {
        let refs = Refs { fn_result: Value::Null };
        let function: Option<Rc<dyn HostFunction>> = (kind == Kind::Custom).then(|| Rc::new(Returns(None)) as Rc<dyn HostFunction>);
        for runtime in [Runtime::Server, Runtime::Browser, Runtime::Workers] {
            if let Err(err) = provider::from_options(kind, function.clone(), &options, &refs, runtime, 0) {
                assert_usable_error(&err);
            }
        }
    }

    #[test]
    fn aggregate_never_panics(answers in option_tree(), options in option_tree()) {
        let refs = Refs { fn_result: Value::Null };
        match aggregate(&answers, &options, &refs, &LiteralRegex) {
            Ok(result) => {
                let given = answers.as_array().map_or(0, Vec::len);
                let samples = result["samples"].as_array().map_or(0, Vec::len);
                prop_assert_eq!(samples, given, "every answer is one sample");
            }
            Err(err) => assert_usable_error(&err),
        }
    }

    #[test]
    fn aggregate_of_answer_lists_keeps_every_sample(
        answers in prop::collection::vec(prop_oneof![
            reply_text().prop_map(Value::String),
            (json_data(), prop::option::of(number_value()), prop::option::of(json_data())).prop_map(|(answer, weight, scores)| {
                let mut item = json!({ "answer": answer });
                if let Some(w) = weight { item["weight"] = w; }
                if let Some(s) = scores { item["scores"] = s; }
                item
            }),
        ], 0..8),
        extract in prop::sample::select(vec!["text", "number", "choice", "json", "ranking"]),
        rule in prop_oneof![
            prop::sample::select(vec!["plurality", "majority", "borda"]).prop_map(|r| json!(r)),
            (0.0f64..12.0).prop_map(|k| json!({ "atLeast": k })),
            (0.0f64..1.5).prop_map(|t| json!({ "threshold": t })),
            (prop::collection::vec(-2.0f64..50.0, 1..4), -10.0f64..120.0).prop_map(|(weights, pass)| json!({
                "score": {
                    "criteria": weights.iter().enumerate().map(|(i, w)| json!({ "name": format!("c{i}"), "weight": w })).collect::<Vec<_>>(),
                    "passScore": pass,
                }
            })),
        ],
        tie in prop::sample::select(vec!["none", "first", "error"]),
    ) {
        let count = answers.len();
        let options = json!({ "extract": extract, "rule": rule, "tie": tie });
        match aggregate(&Value::Array(answers), &options, &Refs { fn_result: Value::Null }, &LiteralRegex) {
            Ok(result) => {
                let samples = result["samples"].as_array().expect("samples is an array");
                prop_assert_eq!(samples.len(), count);
                for (i, sample) in samples.iter().enumerate() {
                    prop_assert_eq!(sample["index"].as_u64(), Some(i as u64));
                }
            }
            Err(err) => {
                assert_usable_error(&err);
                if let Some(report) = &err.report {
                    let samples = report["samples"].as_array().map_or(0, Vec::len);
                    prop_assert_eq!(samples, count, "a rejection's report keeps every sample");
                }
            }
        }
    }
}

#[test]
fn exponent_at_i32_min_is_not_written_out() {
    // Writing 2^31 zeros would exhaust memory, so the form stays scientific.
    assert_eq!(canonical_decimal("1e-2147483648").as_deref(), Some("1e-2147483648"));
    assert_eq!(find_number("The answer is 5e-2147483648").as_deref(), Some("5e-2147483648"));
    assert_eq!(canonical_decimal("0e-2147483648").as_deref(), Some("0"));
    assert!(canonical_decimal("1e2147483648").is_none());
}

#[test]
fn ratio_at_i128_min_does_not_overflow() {
    // i64::MIN * i64::MIN * -2 is exactly i128::MIN.
    let min = Ratio::int(i64::MIN).mul(Ratio::int(i64::MIN)).mul(Ratio::int(-2));
    assert_eq!(min.compare(Ratio::ZERO), Ordering::Less);
    assert_eq!(Ratio::ZERO.sub(min).compare(Ratio::ZERO), Ordering::Greater);
    assert!(Ratio::int(1).div(min).is_some());
    assert_eq!(min.add(min).compare(min), Ordering::Less);
}

#[test]
fn point_after_a_letter_ends_the_number_scan() {
    // A point glued to a letter once kept the scanner at the same position forever.
    assert_eq!(find_number("x.5"), None);
    assert_eq!(find_number("Use v.2, then add 3"), Some("3".to_string()));
}

#[test]
fn adaptive_rule_with_null_count_is_rejected() {
    let h = handles();
    for rule in [json!({ "firstTo": null }), json!({ "aheadBy": null }), json!({ "score": null })] {
        let options = json!({ "provider": marker("provider", json!(h.provider)), "prompt": "task", "voters": 3, "rule": rule });
        let err = VoteOptions::decode(&options, &Refs { fn_result: Value::Null }, &LiteralRegex).err().expect("rejected");
        assert_eq!(err.code, Code::InvalidOptions);
        assert!(err.message.starts_with("rule."), "{}", err.message);
    }
}

// ---------------------------------------------------------------------------
// The live tally
// ---------------------------------------------------------------------------

fn live_rules() -> Vec<Rule> {
    let decode = |v: Value| Rule::decode(Some(&v), None).expect("a valid rule");
    vec![
        decode(json!("plurality")),
        decode(json!("majority")),
        decode(json!({ "threshold": 0.6, "of": "samples" })),
        decode(json!({ "atLeast": 3 })),
        decode(json!({ "atLeast": 2, "answer": "b" })),
        decode(json!({ "firstTo": 3 })),
        decode(json!({ "aheadBy": 2 })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// After every vote, the tally kept vote by vote decides exactly as a recount of
    /// every vote does: same settled and decided flags, tie, pass, top-up and winner.
    #[test]
    fn live_tally_decides_as_a_recount(
        cast in prop::collection::vec((0usize..4, 0usize..3, 0usize..6), 1..40),
        remaining in 0i64..6,
        is_final in any::<bool>(),
    ) {
        let keys = ["a", "b", "c", "d"];
        let weights = [1.0, 2.0, 0.5];
        for rule in live_rules() {
            let mut live = LiveTally::new(&rule);
            let mut votes: Vec<Vote> = Vec::new();
            for (order, &(k, w, voter)) in cast.iter().enumerate() {
                // Sample indexes out of order, as when later samples finish first.
                let vote = Vote {
                    sample: (order * 7) % 41,
                    voter,
                    order,
                    key: Rc::from(keys[k]),
                    display: Rc::from(keys[k]),
                    value: Rc::new(json!(keys[k])),
                    weight: Ratio::from_f64(weights[w]),
                };
                live.push(&vote);
                votes.push(vote);
                let all = votes.iter().fold(Ratio::ZERO, |a, v| a.add(v.weight));
                let outlook = Outlook { remaining: Ratio::int(remaining), is_final, all_weight: all.add(Ratio::int(remaining)), max_weight: Ratio::int(2) };
                let full = tally(&votes);
                let expected = evaluate(&rule, &full, &votes, outlook);
                let (got, snapshot) = live.evaluate(&rule, outlook);
                let winner = |e: &Evaluation, t: &[Entry]| e.winner.map(|i| t[i].key.clone());
                prop_assert_eq!(winner(&got, &snapshot), winner(&expected, &full), "rule {}", rule.name());
                prop_assert_eq!(
                    (got.settled, got.decided, got.tie, got.passed, got.top_up),
                    (expected.settled, expected.decided, expected.tie, expected.passed, expected.top_up),
                    "rule {} after {} votes", rule.name(), votes.len()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Number forms
// ---------------------------------------------------------------------------

/// Writes the digits of `n` in groups of three joined by `separator`.
fn grouped(n: u64, separator: &str) -> String {
    let digits = n.to_string();
    let head = digits.len() % 3;
    let mut groups: Vec<&str> = Vec::new();
    if head > 0 {
        groups.push(&digits[..head]);
    }
    groups.extend((head..digits.len()).step_by(3).map(|i| &digits[i..i + 3]));
    groups.join(separator)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// One number reads the same in every grouping style: "1,234.5", "1.234,5" and
    /// "1 234,5" with a thin space, in a reply or as a regex capture.
    #[test]
    fn grouping_styles_agree(n in 1_000u64..10_000_000_000, decimals in "[0-9]{1,4}") {
        let plain = canonical_decimal(&format!("{n}.{decimals}")).expect("a decimal");
        let regex = Extract::Regex { pattern: "x".into(), flags: String::new() };
        for text in [
            format!("{}.{decimals}", grouped(n, ",")),
            format!("{},{decimals}", grouped(n, ".")),
            format!("{},{decimals}", grouped(n, "\u{2009}")),
            format!("{}.{decimals}", grouped(n, "\u{202F}")),
        ] {
            prop_assert_eq!(find_number(&text), Some(plain.clone()), "{:?}", text);
            prop_assert_eq!(find_number(&format!("The answer is {text} units")), Some(plain.clone()), "{:?}", text);
            let captured = regex.canonicalize(&Value::String(text.clone())).map(|a| a.key);
            prop_assert_eq!(captured, Some(plain.clone()), "capture {:?}", text);
        }
    }

    /// A fraction gets one answer however a reply writes it, and that answer is its value.
    #[test]
    fn fraction_forms_agree(numerator in 0u64..100_000, denominator in 1u64..100_000) {
        let bare = find_number(&format!("{numerator}/{denominator}")).expect("a number");
        for text in [
            format!("The answer is {numerator}/{denominator}"),
            format!("Final answer: \\boxed{{\\frac{{{numerator}}}{{{denominator}}}}}"),
            format!("{}/{}", numerator * 3, denominator * 3),
        ] {
            prop_assert_eq!(find_number(&text), Some(bare.clone()), "{:?}", text);
        }
        let value: f64 = bare.parse().expect("a decimal");
        prop_assert_eq!(value, numerator as f64 / denominator as f64, "{}", bare);
    }
}
