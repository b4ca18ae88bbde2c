//! What a run returns and reports while it goes: per-call records with their attempts,
//! the event stream for `onEvent`, and warnings.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde_json::{json, Map, Value};

use crate::error::Error;
use crate::provider::Usage;
use crate::transport::{Host, HostFunction};

/// How an attempt or a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It succeeded.
    Ok,
    /// It failed.
    Failed,
    /// The run stopped it (abort, deadline, a settled vote, fail-fast).
    Cancelled,
    /// It never ran because something it depends on failed.
    Skipped,
}

impl Status {
    /// The status as reports show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::Skipped => "skipped",
        }
    }
}

/// One attempt of a call.
#[derive(Clone)]
pub struct Attempt {
    /// Set once the attempt ends; `None` while it runs.
    pub status: Option<Status>,
    /// Why it failed.
    pub error: Option<Error>,
    /// Start, in ms from the run's start.
    pub started_ms: f64,
    /// End, in ms from the run's start.
    pub finished_ms: Option<f64>,
}

/// Everything one logical call did, across its attempts.
#[derive(Clone, Default)]
pub struct CallRecord {
    /// The attempts in order.
    pub attempts: Vec<Attempt>,
    /// Token usage summed over the attempts that reported it.
    pub usage: Usage,
    /// The provider's raw usage object of the successful attempt.
    pub raw_usage: Option<Value>,
}

impl CallRecord {
    /// When the first attempt started.
    pub fn started_ms(&self) -> Option<f64> {
        self.attempts.first().map(|a| a.started_ms)
    }

    /// When the last attempt ended.
    pub fn finished_ms(&self) -> Option<f64> {
        self.attempts.last().and_then(|a| a.finished_ms)
    }

    /// Time spent inside attempts (not in backoff sleeps or queues).
    pub fn busy_ms(&self) -> f64 {
        self.attempts.iter().map(|a| a.finished_ms.unwrap_or(a.started_ms) - a.started_ms).sum()
    }

    /// Marks an attempt still running as cancelled at `at_ms`.
    pub fn cancel_open_attempt(&mut self, at_ms: f64) {
        if let Some(last) = self.attempts.last_mut() {
            if last.status.is_none() {
                last.status = Some(Status::Cancelled);
                last.finished_ms = Some(at_ms);
            }
        }
    }

    /// The attempts as report data.
    pub fn attempts_json(&self) -> Value {
        Value::Array(
            self.attempts
                .iter()
                .map(|a| {
                    json!({
                        "status": a.status.unwrap_or(Status::Cancelled).as_str(),
                        "error": a.error.as_ref().map(Error::to_json),
                        "startedMs": round_ms(a.started_ms),
                        "finishedMs": a.finished_ms.map(round_ms),
                    })
                })
                .collect(),
        )
    }
}

/// Rounds a time to a tenth of a millisecond for reports.
pub fn round_ms(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// The event stream of one run. A throwing `onEvent` is reported once as a warning
/// and the run goes on.
pub struct Events {
    sink: Option<Rc<dyn HostFunction>>,
    run_id: String,
    host: Rc<dyn Host>,
    started: f64,
    sink_failed: Cell<bool>,
    warnings: RefCell<Vec<Value>>,
    /// Whether `run-start` has been emitted. Warnings raised before it, while the run
    /// is set up, wait in `pending_warnings`, so `run-start` is always the first event.
    run_started: Cell<bool>,
    pending_warnings: RefCell<Vec<Value>>,
}

impl Events {
    /// Creates the stream for a run.
    pub fn new(sink: Option<Rc<dyn HostFunction>>, run_id: String, host: Rc<dyn Host>, started: f64) -> Events {
        Events {
            sink,
            run_id,
            host,
            started,
            sink_failed: Cell::new(false),
            warnings: RefCell::new(Vec::new()),
            run_started: Cell::new(false),
            pending_warnings: RefCell::new(Vec::new()),
        }
    }

    /// Whether anyone listens (so callers can skip building costly events).
    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// Emits an event of `kind` with extra fields.
    pub fn emit(&self, kind: &str, fields: Value) {
        if kind == "run-start" && !self.run_started.replace(true) {
            self.send(kind, fields);
            let pending = std::mem::take(&mut *self.pending_warnings.borrow_mut());
            for warning in pending {
                self.send("warning", warning);
            }
            return;
        }
        self.send(kind, fields);
    }

    fn send(&self, kind: &str, fields: Value) {
        let Some(sink) = &self.sink else { return };
        let mut event = Map::new();
        event.insert("type".into(), json!(kind));
        event.insert("runId".into(), json!(self.run_id));
        event.insert("at".into(), json!(round_ms(self.host.now() - self.started)));
        if let Value::Object(extra) = fields {
            event.extend(extra);
        }
        if let Err(thrown) = sink.call_sync(&Value::Object(event)) {
            if !self.sink_failed.replace(true) {
                self.warn(
                    "on-event-threw",
                    &format!(
                        "onEvent threw, but the run goes on and later events are still sent (later throws are not reported): {}",
                        thrown.message
                    ),
                );
            }
        }
    }

    /// Records a warning in the report and emits it as a `warning` event.
    pub fn warn(&self, code: &str, message: &str) {
        let warning = json!({ "code": code, "message": message });
        self.warnings.borrow_mut().push(warning.clone());
        if self.run_started.get() {
            self.send("warning", warning);
        } else {
            self.pending_warnings.borrow_mut().push(warning);
        }
    }

    /// The warnings so far.
    pub fn warnings(&self) -> Vec<Value> {
        self.warnings.borrow().clone()
    }
}
