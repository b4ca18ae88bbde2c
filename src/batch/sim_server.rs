//! A virtual-time batch server for native tests: both batch APIs on the scripted
//! host, with each batch's state computed from the virtual time of the request that
//! reads it. OpenAI batches validate for `validating_ms`, run their lines one after
//! another (`line_ms` each), finalize for `finalizing_ms` and complete. A cancel
//! stops the lines not yet done and ends the batch `cancel_ms` later. The lines not
//! done `expire_ms` after creation expire. Anthropic batches have no validating or
//! finalizing step.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Value};

use crate::sim::{Action, Record};

/// The upstream model's reply to one line.
pub enum Answer {
    /// A successful reply with this text.
    Text(String),
    /// An error response with this status and body.
    Status(u16, Value),
}

type Answerer = dyn Fn(&str, &Value) -> Answer;

/// Timing and faults of the simulated batches.
pub struct Config {
    pub validating_ms: f64,
    pub line_ms: f64,
    pub finalizing_ms: f64,
    pub cancel_ms: f64,
    pub expire_ms: Option<f64>,
    /// Write result lines in reverse input order.
    pub reverse: bool,
    /// OpenAI `errors.data` of a batch that fails validation.
    pub validation_errors: Vec<Value>,
    /// Raw lines appended to every output or results file.
    pub extra_lines: Vec<String>,
    /// Send OpenAI `response.body` as a JSON string.
    pub body_as_string: bool,
    pub answer: Rc<Answerer>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            validating_ms: 500.0,
            line_ms: 1000.0,
            finalizing_ms: 500.0,
            cancel_ms: 300.0,
            expire_ms: None,
            reverse: false,
            validation_errors: Vec::new(),
            extra_lines: Vec::new(),
            body_as_string: false,
            answer: Rc::new(|_, body| {
                let text = body["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["content"].as_str()).unwrap_or("");
                Answer::Text(format!("re:{text}"))
            }),
        }
    }
}

struct Batch {
    id: String,
    openai: bool,
    created: f64,
    lines: Vec<(String, Value)>,
    cancel_at: Option<f64>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Phase {
    Validating,
    Running,
    Finalizing,
    Completed,
    Failed,
    Expired,
    Cancelling,
    Cancelled,
}

/// The shared state of the simulated server.
pub struct SimServer {
    pub config: RefCell<Config>,
    batches: RefCell<Vec<Batch>>,
    files: RefCell<Vec<(String, String)>>,
}

impl SimServer {
    pub fn new(config: Config) -> Rc<SimServer> {
        Rc::new(SimServer { config: RefCell::new(config), batches: RefCell::new(Vec::new()), files: RefCell::new(Vec::new()) })
    }

    /// Lists the batches created so far: id and `custom_id`s.
    pub fn batches(&self) -> Vec<(String, Vec<String>)> {
        self.batches.borrow().iter().map(|b| (b.id.clone(), b.lines.iter().map(|(c, _)| c.clone()).collect())).collect()
    }

    fn start(&self, b: &Batch) -> f64 {
        b.created + if b.openai { self.config.borrow().validating_ms } else { 0.0 }
    }

    /// When line `i` finishes, if it ever does.
    fn done_at(&self, b: &Batch, i: usize) -> Option<f64> {
        let c = self.config.borrow();
        if b.openai && !c.validation_errors.is_empty() {
            return None;
        }
        let at = self.start(b) + (i as f64 + 1.0) * c.line_ms;
        let cut = [b.cancel_at, c.expire_ms.map(|e| b.created + e)].into_iter().flatten().fold(f64::INFINITY, f64::min);
        (at <= cut).then_some(at)
    }

    fn phase(&self, b: &Batch, now: f64) -> Phase {
        let c = self.config.borrow();
        let start = self.start(b);
        let all_done = start + b.lines.len() as f64 * c.line_ms;
        let expire_at = c.expire_ms.map(|e| b.created + e);
        if b.openai && now < start && b.cancel_at.is_none() {
            return Phase::Validating;
        }
        if b.openai && !c.validation_errors.is_empty() {
            return Phase::Failed;
        }
        if let Some(tc) = b.cancel_at {
            if tc < all_done && expire_at.is_none_or(|e| tc < e) {
                return if now < tc + c.cancel_ms { Phase::Cancelling } else { Phase::Cancelled };
            }
        }
        if let Some(e) = expire_at.filter(|e| *e < all_done) {
            return if now < e { Phase::Running } else { Phase::Expired };
        }
        if now < all_done {
            Phase::Running
        } else if b.openai && now < all_done + c.finalizing_ms {
            Phase::Finalizing
        } else {
            Phase::Completed
        }
    }

    fn ended(phase: Phase) -> bool {
        matches!(phase, Phase::Completed | Phase::Failed | Phase::Expired | Phase::Cancelled)
    }

    fn object(&self, b: &Batch, now: f64) -> Value {
        let phase = self.phase(b, now);
        let done = (0..b.lines.len()).filter(|&i| self.done_at(b, i).is_some_and(|t| t <= now)).count();
        let failed = (0..b.lines.len())
            .filter(|&i| self.done_at(b, i).is_some_and(|t| t <= now))
            .filter(|&i| matches!((self.config.borrow().answer)(&b.lines[i].0, &b.lines[i].1), Answer::Status(..)))
            .count();
        if b.openai {
            let status = match phase {
                Phase::Validating => "validating",
                Phase::Running => "in_progress",
                Phase::Finalizing => "finalizing",
                Phase::Completed => "completed",
                Phase::Failed => "failed",
                Phase::Expired => "expired",
                Phase::Cancelling => "cancelling",
                Phase::Cancelled => "cancelled",
            };
            let ended = Self::ended(phase) && phase != Phase::Failed;
            json!({
                "id": b.id, "object": "batch", "endpoint": "/v1/chat/completions",
                "errors": if phase == Phase::Failed { json!({ "object": "list", "data": self.config.borrow().validation_errors }) } else { Value::Null },
                "input_file_id": format!("file-in-{}", b.id), "completion_window": "24h", "status": status,
                "output_file_id": if ended { json!(format!("file-out-{}", b.id)) } else { Value::Null },
                "error_file_id": if ended { json!(format!("file-err-{}", b.id)) } else { Value::Null },
                "created_at": 1_700_000_000, "request_counts": { "total": b.lines.len(), "completed": done - failed, "failed": failed },
                "metadata": null,
            })
        } else {
            let ended = Self::ended(phase);
            let status = match phase {
                Phase::Cancelling => "canceling",
                p if Self::ended(p) => "ended",
                _ => "in_progress",
            };
            let counts = if ended {
                json!({ "processing": 0, "succeeded": done - failed, "errored": failed, "canceled": if phase == Phase::Cancelled { b.lines.len() - done } else { 0 }, "expired": if phase == Phase::Expired { b.lines.len() - done } else { 0 } })
            } else {
                json!({ "processing": b.lines.len(), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0 })
            };
            json!({
                "id": b.id, "type": "message_batch", "processing_status": status, "request_counts": counts,
                "ended_at": if ended { json!("2024-01-01T00:00:00Z") } else { Value::Null },
                "created_at": "2024-01-01T00:00:00Z", "expires_at": "2024-01-02T00:00:00Z",
                "cancel_initiated_at": null, "archived_at": null,
                "results_url": if ended { json!(format!("https://api.example/v1/messages/batches/{}/results", b.id)) } else { Value::Null },
            })
        }
    }

    /// Builds the result lines of an ended batch: OpenAI output and error files, or
    /// Anthropic results.
    fn files_of(&self, b: &Batch, now: f64) -> (Vec<String>, Vec<String>) {
        let c = self.config.borrow();
        let phase = self.phase(b, now);
        let mut order: Vec<usize> = (0..b.lines.len()).collect();
        if c.reverse {
            order.reverse();
        }
        let (mut out, mut err) = (Vec::new(), Vec::new());
        for i in order {
            let (custom_id, body) = &b.lines[i];
            let done = self.done_at(b, i).is_some_and(|t| t <= now);
            if b.openai {
                let id = format!("batch_req_{i}");
                if !done {
                    let code = if phase == Phase::Expired { "batch_expired" } else { "batch_cancelled" };
                    err.push(json!({ "id": id, "custom_id": custom_id, "response": null, "error": { "code": code, "message": "not run" } }).to_string());
                    continue;
                }
                match (c.answer)(custom_id, body) {
                    Answer::Text(text) => {
                        let reply = json!({
                            "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                            "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
                            "usage": { "prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12 },
                        });
                        let reply = if c.body_as_string { json!(reply.to_string()) } else { reply };
                        out.push(json!({ "id": id, "custom_id": custom_id, "response": { "status_code": 200, "request_id": "r", "body": reply }, "error": null }).to_string());
                    }
                    Answer::Status(status, body) => {
                        err.push(json!({ "id": id, "custom_id": custom_id, "response": { "status_code": status, "request_id": "r", "body": body }, "error": null }).to_string());
                    }
                }
            } else {
                let result = if !done {
                    json!({ "type": if phase == Phase::Expired { "expired" } else { "canceled" } })
                } else {
                    match (c.answer)(custom_id, body) {
                        Answer::Text(text) => json!({ "type": "succeeded", "message": {
                            "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                            "content": [{ "type": "text", "text": text }], "stop_reason": "end_turn", "stop_sequence": null,
                            "usage": { "input_tokens": 10, "output_tokens": 2 },
                        } }),
                        Answer::Status(_, body) => json!({ "type": "errored", "error": body }),
                    }
                };
                out.push(json!({ "custom_id": custom_id, "result": result }).to_string());
            }
        }
        out.extend(c.extra_lines.iter().cloned());
        (out, err)
    }

    /// Responds to one request of the scripted host.
    pub fn handle(&self, r: &Record) -> Action {
        let path = r.url.split_once("/v1").map_or(r.url.as_str(), |(_, p)| p).to_string();
        let now = r.at;
        let not_found = || Action::status(404, json!({ "error": { "message": "not found", "type": "invalid_request_error" } }).to_string());
        let find = |id: &str| self.batches.borrow().iter().position(|b| b.id == id);
        match (r.method, path.as_str()) {
            ("POST", "/files") => {
                let text = jsonl_of(r);
                let id = format!("file-{}", self.files.borrow().len() + 1);
                self.files.borrow_mut().push((id.clone(), text));
                Action::json(json!({ "id": id, "object": "file", "purpose": "batch", "filename": "batch.jsonl" }))
            }
            ("POST", "/batches") => {
                let file_id = r.body["input_file_id"].as_str().unwrap_or("");
                let Some(text) = self.files.borrow().iter().find(|(id, _)| id == file_id).map(|(_, t)| t.clone()) else {
                    return not_found();
                };
                let lines = text.lines().filter(|l| !l.is_empty()).map(|l| {
                    let v: Value = serde_json::from_str(l).unwrap();
                    (v["custom_id"].as_str().unwrap().to_string(), v["body"].clone())
                });
                let b = Batch { id: format!("batch_{}", self.batches.borrow().len() + 1), openai: true, created: now, lines: lines.collect(), cancel_at: None };
                let object = self.object(&b, now);
                self.batches.borrow_mut().push(b);
                Action::json(object)
            }
            ("POST", "/messages/batches") => {
                let lines = r.body["requests"].as_array().unwrap().iter().map(|q| (q["custom_id"].as_str().unwrap().to_string(), q["params"].clone()));
                let b = Batch { id: format!("msgbatch_{}", self.batches.borrow().len() + 1), openai: false, created: now, lines: lines.collect(), cancel_at: None };
                let object = self.object(&b, now);
                self.batches.borrow_mut().push(b);
                Action::json(object)
            }
            (method, p) => {
                let parts: Vec<&str> = p.trim_start_matches('/').split('/').collect();
                match (method, parts.as_slice()) {
                    ("GET", ["batches", id]) | ("GET", ["messages", "batches", id]) => match find(id) {
                        Some(i) => Action::json(self.object(&self.batches.borrow()[i], now)),
                        None => not_found(),
                    },
                    ("POST", ["batches", id, "cancel"]) | ("POST", ["messages", "batches", id, "cancel"]) => match find(id) {
                        Some(i) => {
                            let ended = Self::ended(self.phase(&self.batches.borrow()[i], now));
                            if ended {
                                return Action::status(400, json!({ "error": { "message": "already ended", "type": "invalid_request_error" } }).to_string());
                            }
                            self.batches.borrow_mut()[i].cancel_at.get_or_insert(now);
                            Action::json(self.object(&self.batches.borrow()[i], now))
                        }
                        None => not_found(),
                    },
                    ("GET", ["messages", "batches", id, "results"]) => match find(id) {
                        Some(i) => {
                            let (out, _) = self.files_of(&self.batches.borrow()[i], now);
                            Action::status(200, out.iter().map(|l| format!("{l}\n")).collect::<String>())
                        }
                        None => not_found(),
                    },
                    ("GET", ["files", file, "content"]) => {
                        let (kind, id) = if let Some(id) = file.strip_prefix("file-out-") { (0, id) } else if let Some(id) = file.strip_prefix("file-err-") { (1, id) } else { return not_found() };
                        match find(id) {
                            Some(i) => {
                                let (out, err) = self.files_of(&self.batches.borrow()[i], now);
                                let lines = if kind == 0 { out } else { err };
                                Action::status(200, lines.iter().map(|l| format!("{l}\n")).collect::<String>())
                            }
                            None => not_found(),
                        }
                    }
                    _ => not_found(),
                }
            }
        }
    }
}

/// Extracts the JSONL file from a `multipart/form-data` upload.
pub fn jsonl_of(r: &Record) -> String {
    let content_type = r.headers.iter().find(|(n, _)| n == "content-type").map(|(_, v)| v.clone()).unwrap_or_default();
    let boundary = content_type.split("boundary=").nth(1).unwrap_or("").to_string();
    let body = &r.body_text;
    let start = body.find("filename=\"batch.jsonl\"").expect("a file part");
    let start = start + body[start..].find("\r\n\r\n").expect("the part's headers end") + 4;
    let end = body.rfind(&format!("\r\n--{boundary}--")).expect("the closing boundary");
    body[start..end].to_string()
}
