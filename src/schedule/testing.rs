//! Test support for the scheduler and sectioning tests: providers registered under a
//! marker, an abort signal that counts its listeners, and an event log for `onEvent`.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures_util::future::LocalBoxFuture;
use serde_json::{json, Value};

use super::cancel::CancelToken;
use crate::decode::RefTable;
use crate::provider::{from_options, test_refs, Kind, Provider};
use crate::registry;
use crate::sim::{SimHandle, SimHost};
use crate::transport::{AbortReason, Host, HostError, HostFunction, Runtime, SignalSource};

/// Registers an OpenAI provider with extra options and returns it with the marker
/// that options use to point at it.
pub fn provider_with(extra: Value) -> (Rc<Provider>, Value) {
    let mut options = json!({ "baseURL": "http://127.0.0.1:9/v1", "model": "m" });
    if let (Value::Object(base), Value::Object(more)) = (&mut options, extra) {
        base.extend(more);
    }
    let id = registry::next_id();
    let provider = from_options(Kind::OpenAi, None, &options, &test_refs::Refs::default(), Runtime::Server, id).unwrap();
    let provider = registry::add_provider(provider);
    (provider, json!({ "\u{0}": ["provider", id] }))
}

/// Registers a plain OpenAI provider.
pub fn provider() -> (Rc<Provider>, Value) {
    provider_with(json!({}))
}

/// Wraps a scripted host as a [`Host`].
pub fn host(sim: &Rc<SimHost>) -> Rc<dyn Host> {
    Rc::new(SimHandle(sim.clone()))
}

struct SignalState {
    reason: Option<AbortReason>,
    listeners: Vec<(u64, Rc<dyn Fn(AbortReason)>)>,
    next: u64,
    adds: usize,
    removes: usize,
}

/// An abort signal that counts `addEventListener` and `removeEventListener` calls.
#[derive(Clone)]
pub struct TestSignal(Rc<RefCell<SignalState>>);

impl TestSignal {
    /// Creates a signal that has not aborted.
    pub fn new() -> TestSignal {
        TestSignal(Rc::new(RefCell::new(SignalState { reason: None, listeners: Vec::new(), next: 0, adds: 0, removes: 0 })))
    }

    /// Aborts with a reason; `timeout` marks a `TimeoutError` reason.
    pub fn abort(&self, timeout: bool) {
        let reason = AbortReason {
            value: None,
            is_timeout: timeout,
            message: if timeout { "TimeoutError: signal timed out".into() } else { "AbortError: aborted".into() },
        };
        let listeners: Vec<Rc<dyn Fn(AbortReason)>> = {
            let mut state = self.0.borrow_mut();
            if state.reason.is_some() {
                return;
            }
            state.reason = Some(reason.clone());
            state.listeners.iter().map(|(_, l)| l.clone()).collect()
        };
        for listener in listeners {
            listener(reason.clone());
        }
    }

    /// Counts listener additions so far.
    pub fn adds(&self) -> usize {
        self.0.borrow().adds
    }

    /// Counts listener removals so far.
    pub fn removes(&self) -> usize {
        self.0.borrow().removes
    }

    /// Counts the listeners attached now.
    pub fn attached(&self) -> usize {
        self.0.borrow().listeners.len()
    }
}

struct ListenerGuard {
    signal: TestSignal,
    id: u64,
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        let mut state = self.signal.0.borrow_mut();
        state.listeners.retain(|(id, _)| *id != self.id);
        state.removes += 1;
    }
}

impl SignalSource for TestSignal {
    fn aborted(&self) -> Option<AbortReason> {
        self.0.borrow().reason.clone()
    }

    fn subscribe(&self, on_abort: Box<dyn Fn(AbortReason)>) -> Box<dyn Any> {
        let mut state = self.0.borrow_mut();
        state.next += 1;
        state.adds += 1;
        let id = state.next;
        state.listeners.push((id, Rc::from(on_abort)));
        Box::new(ListenerGuard { signal: self.clone(), id })
    }
}

/// An `onEvent` that records every event and, optionally, throws on each call.
#[derive(Clone, Default)]
pub struct EventLog {
    events: Rc<RefCell<Vec<Value>>>,
    throws: Rc<Cell<bool>>,
}

impl EventLog {
    /// A log whose function throws on every call after recording the event.
    pub fn throwing() -> EventLog {
        let log = EventLog::default();
        log.throws.set(true);
        log
    }

    /// Returns the event types in order.
    pub fn types(&self) -> Vec<String> {
        self.events.borrow().iter().map(|e| e["type"].as_str().unwrap_or("").to_string()).collect()
    }

    /// Returns the events of one type.
    pub fn of(&self, kind: &str) -> Vec<Value> {
        self.events.borrow().iter().filter(|e| e["type"] == kind).cloned().collect()
    }
}

impl HostFunction for EventLog {
    fn call_sync(&self, arg: &Value) -> Result<Value, HostError> {
        self.events.borrow_mut().push(arg.clone());
        if self.throws.get() {
            return Err(HostError::message("listener failed"));
        }
        Ok(Value::Null)
    }

    fn call_async(&self, _arg: &Value, _cancel: CancelToken) -> LocalBoxFuture<'static, Result<Value, HostError>> {
        Box::pin(async { Err(HostError::message("not a provider")) })
    }
}

/// Host references for options: `onEvent` is function 0 and `signal` is signal 0.
#[derive(Default)]
pub struct Refs {
    /// The event callback.
    pub on_event: Option<EventLog>,
    /// The abort signal.
    pub signal: Option<TestSignal>,
}

impl RefTable for Refs {
    fn function(&self, index: usize) -> Option<Rc<dyn HostFunction>> {
        (index == 0).then(|| self.on_event.clone().map(|f| Rc::new(f) as Rc<dyn HostFunction>)).flatten()
    }

    fn signal(&self, index: usize) -> Option<Rc<dyn SignalSource>> {
        (index == 0).then(|| self.signal.clone().map(|s| Rc::new(s) as Rc<dyn SignalSource>)).flatten()
    }
}

/// Returns the marker of function 0 (`onEvent`).
pub fn on_event_marker() -> Value {
    json!({ "\u{0}": ["fn", 0] })
}

/// Returns the marker of signal 0.
pub fn signal_marker() -> Value {
    json!({ "\u{0}": ["signal", 0] })
}
