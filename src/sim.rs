//! A virtual-time host for native tests: timers fire when the test's executor has
//! nothing left to do, and `fetch` is answered by a scripted handler that records
//! every request, how many were open at once, and when the client dropped one.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_executor::LocalPool;
use futures_util::future::LocalBoxFuture;
use serde_json::Value;

use crate::transport::{FetchError, Host, HostValue, HttpRequest, HttpResponse, RegexEngine, Runtime};

/// What the scripted server does with one request.
#[derive(Clone, Debug)]
pub struct Action {
    /// Wait before the headers.
    pub delay_ms: f64,
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Body chunks, each after its own delay from the previous one.
    pub chunks: Vec<(f64, Vec<u8>)>,
    /// Never send the headers.
    pub stall_before_headers: bool,
    /// After the chunks, keep the body open forever.
    pub stall_after_chunks: bool,
    /// Fail the fetch with a network error instead of answering.
    pub network_error: bool,
}

impl Action {
    /// A 200 JSON response.
    pub fn json(body: Value) -> Action {
        Action::status(200, body.to_string())
    }

    /// A response with a status and a body.
    pub fn status(status: u16, body: impl Into<String>) -> Action {
        Action {
            delay_ms: 0.0,
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            chunks: vec![(0.0, body.into().into_bytes())],
            stall_before_headers: false,
            stall_after_chunks: false,
            network_error: false,
        }
    }

    /// An OpenAI chat completion with `text`.
    pub fn openai(text: &str) -> Action {
        Action::json(serde_json::json!({
            "id": "c", "object": "chat.completion", "model": "sim",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10 }
        }))
    }

    /// Waits `ms` before the headers.
    pub fn after(mut self, ms: f64) -> Action {
        self.delay_ms = ms;
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Action {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// A streamed body from chunks and their delays.
    pub fn stream(chunks: Vec<(f64, &str)>) -> Action {
        let mut a = Action::status(200, "");
        a.headers = vec![("content-type".into(), "text/event-stream".into())];
        a.chunks = chunks.into_iter().map(|(d, c)| (d, c.as_bytes().to_vec())).collect();
        a
    }

    /// Never answers.
    pub fn stall() -> Action {
        let mut a = Action::status(200, "");
        a.stall_before_headers = true;
        a
    }

    /// Fails at the network level.
    pub fn network_error() -> Action {
        let mut a = Action::status(0, "");
        a.network_error = true;
        a
    }
}

/// One request the scripted server saw.
#[derive(Clone, Debug)]
pub struct Record {
    /// 1-based arrival number.
    pub seq: usize,
    /// The URL.
    pub url: String,
    /// The HTTP method.
    pub method: &'static str,
    /// Headers as sent.
    pub headers: Vec<(String, String)>,
    /// The parsed JSON body, or `null` when the body is not JSON.
    pub body: Value,
    /// The body as sent.
    pub body_text: String,
    /// Virtual time of arrival.
    pub at: f64,
    /// When the response finished or the client dropped it.
    pub closed_at: Option<f64>,
    /// Whether the client dropped it before the body ended.
    pub aborted: bool,
}

type Handler = dyn Fn(&Record) -> Action;

struct Timer {
    at: f64,
    seq: u64,
    waker: Option<Waker>,
    fired: bool,
}

struct SimState {
    now: f64,
    timers: Vec<Rc<RefCell<Timer>>>,
    timer_seq: u64,
    records: Vec<Record>,
    open: usize,
    max_open: usize,
    random: u64,
}

/// The virtual-time host.
pub struct SimHost {
    state: RefCell<SimState>,
    handler: RefCell<Rc<Handler>>,
    runtime: Cell<Runtime>,
    no_fetch: Cell<bool>,
}

impl SimHost {
    /// A host whose server answers every request with `handler`.
    pub fn new(handler: impl Fn(&Record) -> Action + 'static) -> Rc<SimHost> {
        Rc::new(SimHost {
            state: RefCell::new(SimState {
                now: 0.0,
                timers: Vec::new(),
                timer_seq: 0,
                records: Vec::new(),
                open: 0,
                max_open: 0,
                random: 0x2545_f491_4f6c_dd1d,
            }),
            handler: RefCell::new(Rc::new(handler)),
            runtime: Cell::new(Runtime::Server),
            no_fetch: Cell::new(false),
        })
    }

    /// Pretends to be another runtime.
    pub fn set_runtime(&self, runtime: Runtime) {
        self.runtime.set(runtime);
    }

    /// Makes fetch unavailable, like a host without a global fetch.
    pub fn remove_fetch(&self) {
        self.no_fetch.set(true);
    }

    /// Every request so far.
    pub fn records(&self) -> Vec<Record> {
        self.state.borrow().records.clone()
    }

    /// The most requests open at once.
    pub fn max_open(&self) -> usize {
        self.state.borrow().max_open
    }

    /// Requests open now.
    pub fn open(&self) -> usize {
        self.state.borrow().open
    }

    /// Runs `future` to completion, advancing virtual time whenever nothing else can
    /// happen. Panics if the future waits with no timer left (a hang).
    pub fn run<F: Future>(self: &Rc<Self>, future: F) -> F::Output {
        let mut pool = LocalPool::new();
        let mut future = Box::pin(future);
        let waker = futures_util::task::noop_waker();
        loop {
            let mut cx = Context::from_waker(&waker);
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            pool.run_until_stalled();
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            if !self.advance() {
                panic!("the future is waiting, but no timer is pending: it would hang");
            }
        }
    }

    /// Fires the earliest timer. Returns false when none is pending.
    fn advance(&self) -> bool {
        let timer = {
            let mut s = self.state.borrow_mut();
            s.timers.retain(|t| !t.borrow().fired && Rc::strong_count(t) > 1);
            let Some(next) = s.timers.iter().min_by(|a, b| {
                let (a, b) = (a.borrow(), b.borrow());
                a.at.partial_cmp(&b.at).unwrap().then(a.seq.cmp(&b.seq))
            }) else {
                return false;
            };
            let next = next.clone();
            s.now = s.now.max(next.borrow().at);
            next
        };
        let waker = {
            let mut t = timer.borrow_mut();
            t.fired = true;
            t.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    fn timer(&self, ms: f64) -> SimSleep {
        let mut s = self.state.borrow_mut();
        s.timer_seq += 1;
        let timer = Rc::new(RefCell::new(Timer { at: s.now + ms.max(0.0), seq: s.timer_seq, waker: None, fired: false }));
        s.timers.push(timer.clone());
        SimSleep { timer }
    }
}

/// A virtual-time sleep.
pub struct SimSleep {
    timer: Rc<RefCell<Timer>>,
}

impl Future for SimSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut t = self.timer.borrow_mut();
        if t.fired {
            Poll::Ready(())
        } else {
            t.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

struct SimResponse {
    host: Rc<SimHost>,
    seq: usize,
    status: u16,
    headers: Vec<(String, String)>,
    chunks: std::collections::VecDeque<(f64, Vec<u8>)>,
    stall_after: bool,
    done: bool,
}

impl HttpResponse for SimResponse {
    fn status(&self) -> u16 {
        self.status
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }
    fn next_chunk(&mut self) -> LocalBoxFuture<'_, Result<Option<Vec<u8>>, FetchError>> {
        Box::pin(async move {
            match self.chunks.pop_front() {
                Some((delay, bytes)) => {
                    if delay > 0.0 {
                        self.host.timer(delay).await;
                    }
                    Ok(Some(bytes))
                }
                None if self.stall_after => {
                    futures_util::future::pending::<()>().await;
                    unreachable!()
                }
                None => {
                    if !self.done {
                        self.done = true;
                        self.host.close(self.seq, false);
                    }
                    Ok(None)
                }
            }
        })
    }
}

impl Drop for SimResponse {
    fn drop(&mut self) {
        if !self.done {
            self.host.close(self.seq, true);
        }
    }
}

impl SimHost {
    fn close(&self, seq: usize, aborted: bool) {
        let mut s = self.state.borrow_mut();
        let now = s.now;
        let rec = &mut s.records[seq - 1];
        if rec.closed_at.is_none() {
            rec.closed_at = Some(now);
            rec.aborted = aborted;
            s.open -= 1;
        }
    }
}

/// Closes a request that was dropped before its headers arrived.
struct PendingGuard {
    host: Rc<SimHost>,
    seq: usize,
    armed: bool,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if self.armed {
            self.host.close(self.seq, true);
        }
    }
}

/// A trivial regex engine for tests: supports only a literal prefix before `(\d+)`.
pub struct TestRegex;

impl RegexEngine for TestRegex {
    fn validate(&self, pattern: &str, _flags: &str) -> Result<(), String> {
        if pattern.contains("(?<") && !pattern.contains('>') {
            return Err("invalid group".into());
        }
        Ok(())
    }
    fn find_answer(&self, pattern: &str, _flags: &str, text: &str) -> Result<Option<String>, String> {
        let prefix = pattern.split('(').next().unwrap_or("");
        let Some(start) = text.find(prefix) else { return Ok(None) };
        let digits: String = text[start + prefix.len()..].chars().take_while(|c| c.is_ascii_digit()).collect();
        Ok((!digits.is_empty()).then_some(digits))
    }
}

/// A shareable handle that implements [`Host`].
#[derive(Clone)]
pub struct SimHandle(pub Rc<SimHost>);

impl Host for SimHandle {
    fn now(&self) -> f64 {
        self.0.state.borrow().now
    }
    fn epoch_ms(&self) -> f64 {
        1_700_000_000_000.0 + self.now()
    }
    fn random(&self) -> f64 {
        // xorshift64*: deterministic across runs.
        let mut s = self.0.state.borrow_mut();
        let mut x = s.random;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.random = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn sleep(&self, ms: f64) -> LocalBoxFuture<'static, ()> {
        Box::pin(self.0.timer(ms))
    }
    fn fetch(&self, request: HttpRequest, _fetch_fn: Option<&HostValue>) -> LocalBoxFuture<'static, Result<Box<dyn HttpResponse>, FetchError>> {
        let host = self.0.clone();
        Box::pin(async move {
            if host.no_fetch.get() {
                return Err(FetchError { message: "fetch is not defined".into(), no_fetch: true, host: None });
            }
            let record = {
                let mut s = host.state.borrow_mut();
                let seq = s.records.len() + 1;
                let record = Record {
                    seq,
                    url: request.url.clone(),
                    method: request.method,
                    headers: request.headers.clone(),
                    body: serde_json::from_str(&request.body).unwrap_or(Value::Null),
                    body_text: request.body.clone(),
                    at: s.now,
                    closed_at: None,
                    aborted: false,
                };
                s.records.push(record.clone());
                s.open += 1;
                s.max_open = s.max_open.max(s.open);
                record
            };
            let mut guard = PendingGuard { host: host.clone(), seq: record.seq, armed: true };
            let handler = host.handler.borrow().clone();
            let action = handler(&record);
            if action.delay_ms > 0.0 {
                host.timer(action.delay_ms).await;
            }
            if action.stall_before_headers {
                futures_util::future::pending::<()>().await;
            }
            if action.network_error {
                guard.armed = false;
                host.close(record.seq, false);
                return Err(FetchError::network("connection refused"));
            }
            guard.armed = false;
            Ok(Box::new(SimResponse {
                host: host.clone(),
                seq: record.seq,
                status: action.status,
                headers: action.headers,
                chunks: action.chunks.into(),
                stall_after: action.stall_after_chunks,
                done: false,
            }) as Box<dyn HttpResponse>)
        })
    }
    fn runtime(&self) -> Runtime {
        self.0.runtime.get()
    }
    fn regex(&self) -> &dyn RegexEngine {
        &TestRegex
    }
}

/// The text of the last user message of a recorded OpenAI or Anthropic request.
pub fn prompt_of(record: &Record) -> String {
    record.body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string()
}
