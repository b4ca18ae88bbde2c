//! The JavaScript host: `fetch` through JS promises, timers, `AbortController`,
//! `RegExp`, and the caller's functions and signals.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_util::future::LocalBoxFuture;
use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::bindings::{self, AbortController, Reader, Response};
use crate::registry;
use crate::schedule::cancel::CancelToken;
use crate::transport::{AbortReason, FetchError, Host, HostError, HostFunction, HostValue, HttpRequest, HttpResponse, RegexEngine, Runtime, SignalSource};

/// Wraps a JS value as an opaque host value.
pub fn host_value(value: JsValue) -> HostValue {
    Rc::new(value)
}

/// The JS value inside a host value.
pub fn js_of(value: &HostValue) -> Option<&JsValue> {
    value.downcast_ref::<JsValue>()
}

fn get(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// A readable message for a thrown JS value.
pub fn message_of(value: &JsValue) -> String {
    let message = get(value, "message");
    if let Some(m) = message.as_string() {
        let name = get(value, "name").as_string().unwrap_or_default();
        return if name.is_empty() || name == "Error" { m } else { format!("{name}: {m}") };
    }
    if let Some(text) = value.as_string() {
        return text;
    }
    // JavaScript may throw anything: null, a number, a plain object, a Response.
    if value.is_undefined() {
        return "undefined".into();
    }
    let kind = value.js_typeof().as_string().unwrap_or_default();
    let constructor = get(&get(value, "constructor"), "name").as_string().filter(|n| !n.is_empty() && n != "Object");
    match js_sys::JSON::stringify(value).ok().and_then(|s| s.as_string()) {
        Some(json) if json != "{}" => match constructor {
            Some(name) => format!("{name} {json}"),
            None => json,
        },
        _ => match constructor {
            Some(name) => format!("an instance of {name}"),
            None => format!("a thrown {kind} value"),
        },
    }
}

/// JSON text to a JS value.
pub fn json_to_js(value: &Value) -> JsValue {
    match value {
        Value::String(s) => JsValue::from_str(s),
        Value::Null => JsValue::NULL,
        Value::Bool(b) => JsValue::from_bool(*b),
        other => js_sys::JSON::parse(&other.to_string()).unwrap_or(JsValue::NULL),
    }
}

/// A JS value to JSON. Functions and other values JSON cannot carry become markers,
/// so they are reported by name instead of silently dropped.
pub fn js_to_json(value: &JsValue) -> Value {
    if let Some(s) = value.as_string() {
        return Value::String(s);
    }
    if value.is_null() || value.is_undefined() {
        return Value::Null;
    }
    if let Some(b) = value.as_bool() {
        return Value::Bool(b);
    }
    if let Some(n) = value.as_f64() {
        return match serde_json::Number::from_f64(n) {
            Some(num) => Value::Number(num),
            None => serde_json::json!({ "\u{0}": ["num", format!("{n}")] }),
        };
    }
    if value.is_function() {
        return serde_json::json!({ "\u{0}": ["fn", -1] });
    }
    match js_sys::JSON::stringify(value).ok().and_then(|s| s.as_string()) {
        Some(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
        None => Value::Null,
    }
}

thread_local! {
    /// `performance` and its `now`, looked up once: the scheduler reads the clock
    /// several times per call.
    static PERFORMANCE_NOW: (JsValue, Option<Function>) = {
        let performance = get(&js_sys::global(), "performance");
        let now = get(&performance, "now").dyn_into::<Function>().ok();
        (performance, now)
    };
}

/// The module's host.
pub struct JsHost;

impl JsHost {
    /// A host for one call.
    pub fn new() -> Rc<dyn Host> {
        Rc::new(JsHost)
    }
}

struct TimerState {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// A `setTimeout` future; dropping it clears the timer.
struct Sleep {
    state: Rc<TimerState>,
    id: JsValue,
    _callback: Closure<dyn FnMut()>,
}

impl Sleep {
    fn new(ms: f64) -> Sleep {
        let state = Rc::new(TimerState { fired: Cell::new(false), waker: RefCell::new(None) });
        let s = state.clone();
        let callback = Closure::<dyn FnMut()>::own_assert_unwind_safe(move || {
            s.fired.set(true);
            if let Some(w) = s.waker.borrow_mut().take() {
                w.wake();
            }
        });
        // Timer delays above 2^31 - 1 ms overflow to 1 ms in every host.
        let id = bindings::set_timeout(callback.as_ref().unchecked_ref(), ms.clamp(0.0, 2_147_483_647.0));
        Sleep { state, id, _callback: callback }
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.state.fired.get() {
            Poll::Ready(())
        } else {
            *self.state.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if !self.state.fired.get() {
            bindings::clear_timeout(&self.id);
        }
    }
}

/// Aborts its controller when dropped, unless disarmed.
struct AbortOnDrop {
    controller: Option<AbortController>,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.controller.take() {
            c.abort();
        }
    }
}

/// A response whose body is read chunk by chunk, or whole when that is cheaper.
struct JsResponse {
    status: u16,
    headers: JsValue,
    body: Body,
    abort: AbortOnDrop,
}

enum Body {
    /// Not read yet: the first read chooses how.
    Unread(Response),
    Stream(Reader),
    Whole(Option<Promise>),
    Done,
}

impl HttpResponse for JsResponse {
    fn status(&self) -> u16 {
        self.status
    }

    fn header(&self, name: &str) -> Option<String> {
        let get_fn = get(&self.headers, "get");
        let f = get_fn.dyn_ref::<Function>()?;
        f.call1(&self.headers, &JsValue::from_str(name)).ok()?.as_string()
    }

    fn read_whole(&mut self, limit: usize) -> Option<LocalBoxFuture<'_, Result<Vec<u8>, FetchError>>> {
        // arrayBuffer() is far cheaper than a reader loop in every runtime, but it
        // cannot stop early, so it is used only when the declared length fits.
        let length: usize = self.header("content-length")?.trim().parse().ok()?;
        let response = match &self.body {
            Body::Unread(response) if length <= limit && get(response, "arrayBuffer").is_function() => {
                JsValue::from(response).unchecked_into::<Response>()
            }
            _ => return None,
        };
        Some(Box::pin(async move {
            let promise = response.array_buffer().map_err(fetch_error)?;
            let buffer = JsFuture::from(promise).await.map_err(fetch_error)?;
            self.finish();
            Ok(Uint8Array::new(&buffer).to_vec())
        }))
    }

    fn next_chunk(&mut self) -> LocalBoxFuture<'_, Result<Option<Vec<u8>>, FetchError>> {
        Box::pin(async move {
            if let Body::Unread(response) = &self.body {
                self.body = open_body(response)?;
            }
            match &mut self.body {
                Body::Done | Body::Unread(_) => Ok(None),
                Body::Whole(promise) => {
                    let Some(p) = promise.take() else {
                        self.finish();
                        return Ok(None);
                    };
                    let buffer = JsFuture::from(p).await.map_err(fetch_error)?;
                    Ok(Some(Uint8Array::new(&buffer).to_vec()))
                }
                Body::Stream(reader) => {
                    let promise = reader.read().map_err(fetch_error)?;
                    let result = JsFuture::from(promise).await.map_err(fetch_error)?;
                    if get(&result, "done").as_bool() == Some(true) {
                        self.finish();
                        return Ok(None);
                    }
                    let value = get(&result, "value");
                    Ok(Some(Uint8Array::new(&value).to_vec()))
                }
            }
        })
    }
}

/// Opens a body for chunked reading: a stream reader, or for a response-like object
/// without a stream (from a custom fetch), one `arrayBuffer()`.
fn open_body(response: &Response) -> Result<Body, FetchError> {
    let body_stream = response.body();
    let get_reader = get(&body_stream, "getReader");
    match get_reader.dyn_ref::<Function>() {
        Some(f) => f.call0(&body_stream).map(|reader| Body::Stream(reader.unchecked_into())).map_err(fetch_error),
        None if body_stream.is_null() && get(response, "arrayBuffer").is_function() => {
            Ok(Body::Whole(Some(response.array_buffer().map_err(fetch_error)?)))
        }
        None => Ok(Body::Done),
    }
}

impl JsResponse {
    /// The body ended: nothing left to abort.
    fn finish(&mut self) {
        self.body = Body::Done;
        self.abort.controller = None;
    }
}

fn fetch_error(value: JsValue) -> FetchError {
    // Node's fetch rejects with "TypeError: fetch failed" and puts the reason (such as
    // "connect ECONNREFUSED 127.0.0.1:9") in `cause`, sometimes one level deeper, so
    // the causes are added to the message.
    let mut message = message_of(&value);
    let mut cause = get(&value, "cause");
    for _ in 0..3 {
        if cause.is_undefined() || cause.is_null() {
            break;
        }
        let text = message_of(&cause);
        if !text.is_empty() && !message.contains(&text) {
            message = format!("{message} ({text})");
        }
        cause = get(&cause, "cause");
    }
    FetchError { message, no_fetch: false, host: Some(host_value(value)) }
}

/// Builds the `RequestInit` object.
fn request_init(request: &HttpRequest, signal: &JsValue) -> JsValue {
    let init = Object::new();
    let headers = Object::new();
    for (name, value) in &request.headers {
        let _ = Reflect::set(&headers, &JsValue::from_str(name), &JsValue::from_str(value));
    }
    let _ = Reflect::set(&init, &"method".into(), &JsValue::from_str(request.method));
    let _ = Reflect::set(&init, &"headers".into(), &headers);
    // fetch rejects a GET or HEAD request that has a body, even an empty one.
    if request.method != "GET" && request.method != "HEAD" {
        let _ = Reflect::set(&init, &"body".into(), &JsValue::from_str(&request.body));
    }
    let _ = Reflect::set(&init, &"signal".into(), signal);
    init.into()
}

impl Host for JsHost {
    fn now(&self) -> f64 {
        PERFORMANCE_NOW.with(|cached| {
            let (performance, now) = cached;
            now.as_ref().and_then(|f| f.call0(performance).ok()).and_then(|v| v.as_f64()).unwrap_or_else(js_sys::Date::now)
        })
    }

    fn epoch_ms(&self) -> f64 {
        js_sys::Date::now()
    }

    fn random(&self) -> f64 {
        js_sys::Math::random()
    }

    fn sleep(&self, ms: f64) -> LocalBoxFuture<'static, ()> {
        Box::pin(Sleep::new(ms))
    }

    fn fetch(&self, request: HttpRequest, fetch_fn: Option<&HostValue>) -> LocalBoxFuture<'static, Result<Box<dyn HttpResponse>, FetchError>> {
        // The global fetch is looked up at call time, so a fetch installed after the
        // provider was created (a test counter, a polyfill) is used.
        let function = match fetch_fn.and_then(js_of) {
            Some(f) => f.clone(),
            None => get(&js_sys::global(), "fetch"),
        };
        Box::pin(async move {
            let Some(function) = function.dyn_ref::<Function>().cloned() else {
                return Err(FetchError { message: "fetch is not a function in this runtime".into(), no_fetch: true, host: None });
            };
            let controller = AbortController::new().map_err(fetch_error)?;
            let mut guard = AbortOnDrop { controller: Some(controller) };
            let signal = guard.controller.as_ref().expect("just set").signal();
            let init = request_init(&request, &signal);
            let returned = function.call2(&JsValue::UNDEFINED, &JsValue::from_str(&request.url), &init).map_err(fetch_error)?;
            let response = JsFuture::from(Promise::resolve(&returned)).await.map_err(fetch_error)?;
            let response: Response = response.unchecked_into();
            let status = response.status().as_f64().unwrap_or(0.0) as u16;
            let headers = response.headers();
            let abort = AbortOnDrop { controller: guard.controller.take() };
            Ok(Box::new(JsResponse { status, headers, body: Body::Unread(response), abort }) as Box<dyn HttpResponse>)
        })
    }

    fn runtime(&self) -> Runtime {
        registry::runtime()
    }

    fn regex(&self) -> &dyn RegexEngine {
        &JsRegex
    }
}

/// The host's `RegExp`.
pub struct JsRegex;

impl RegexEngine for JsRegex {
    fn validate(&self, pattern: &str, flags: &str) -> Result<(), String> {
        bindings::RegExp::new(pattern, flags).map(|_| ()).map_err(|e| message_of(&e))
    }

    fn find_answer(&self, pattern: &str, flags: &str, text: &str) -> Result<Option<String>, String> {
        let re = bindings::RegExp::new(pattern, flags).map_err(|e| message_of(&e))?;
        let found = re.exec(text).map_err(|e| message_of(&e))?;
        if found.is_null() || found.is_undefined() {
            return Ok(None);
        }
        // A group that exists but took no part in the match means no answer: the
        // whole match is the answer only for patterns without capture groups.
        let groups = get(&found, "groups");
        if Reflect::has(&groups, &JsValue::from_str("answer")).unwrap_or(false) {
            return Ok(get(&groups, "answer").as_string());
        }
        if get(&found, "length").as_f64().unwrap_or(1.0) > 1.0 {
            return Ok(get(&found, "1").as_string());
        }
        Ok(get(&found, "0").as_string())
    }
}

/// A caller's JS function.
pub struct JsFunction(pub Function);

fn host_error(value: JsValue) -> HostError {
    let retryable = get(&value, "retryable").as_bool() == Some(true);
    let retry_after_ms = get(&value, "retryAfterMs").as_f64().filter(|n| n.is_finite() && *n >= 0.0);
    let status = get(&value, "status").as_f64().filter(|n| (100.0..600.0).contains(n)).map(|n| n as u16);
    let is_abort = get(&value, "name").as_string().as_deref() == Some("AbortError");
    HostError { message: message_of(&value), retryable, retry_after_ms, status, is_abort, invalid_return: false, value: Some(host_value(value)) }
}

/// Converts what a caller's function returned to JSON. `JSON.stringify` would turn a
/// Map or Set into `{}` and throw on a BigInt or a cycle, so those become an error
/// that names the value instead of arriving as `{}` or `null`.
fn returned_json(value: &JsValue) -> Result<Value, HostError> {
    if !value.is_object() && !value.is_bigint() {
        return Ok(js_to_json(value));
    }

    let problem: Rc<RefCell<Option<String>>> = Rc::default();
    let found = problem.clone();
    let replacer = Closure::<dyn FnMut(JsValue, JsValue) -> JsValue>::own_assert_unwind_safe(move |key: JsValue, item: JsValue| {
        let kind = if item.is_bigint() {
            "a BigInt"
        } else if item.is_instance_of::<js_sys::Map>() {
            "a Map"
        } else if item.is_instance_of::<js_sys::Set>() {
            "a Set"
        } else {
            return item;
        };
        let mut found = found.borrow_mut();
        if found.is_none() {
            let key = key.as_string().unwrap_or_default();
            *found = Some(if key.is_empty() { kind.to_string() } else { format!("{kind} at key {key:?}") });
        }
        JsValue::NULL
    });
    let text = js_sys::JSON::stringify_with_replacer(value, replacer.as_ref());
    let fix = "return plain objects, arrays, strings and numbers";
    if let Some(what) = problem.borrow_mut().take() {
        return Err(HostError { invalid_return: true, ..HostError::message(format!("the returned value contains {what}, which JSON cannot represent; {fix}")) });
    }
    match text {
        Ok(text) => Ok(text.as_string().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null)),
        Err(e) => Err(HostError { invalid_return: true, ..HostError::message(format!("the returned value cannot be converted to JSON ({}); {fix}", message_of(&e))) }),
    }
}

impl HostFunction for JsFunction {
    fn call_sync(&self, arg: &Value) -> Result<Value, HostError> {
        match self.0.call1(&JsValue::UNDEFINED, &json_to_js(arg)) {
            // A synchronous hook (an extract function) that returns a promise, such as an
            // async function, has no value yet: JSON would turn the promise into {}.
            Ok(result) if get(&result, "then").is_function() => {
                // Its rejection, if any, is handled here, so it is never unhandled.
                if let Some(promise) = result.dyn_ref::<Promise>() {
                    let ignore = Closure::<dyn FnMut(JsValue)>::new(|_: JsValue| {});
                    let _ = promise.catch(&ignore);
                    ignore.forget();
                }
                Err(HostError {
                    invalid_return: true,
                    ..HostError::message("the function returned a promise, but it must return its value at once; use a function that is not async")
                })
            }
            Ok(result) => returned_json(&result),
            Err(e) => Err(host_error(e)),
        }
    }

    fn call_async(&self, arg: &Value, _cancel: CancelToken) -> LocalBoxFuture<'static, Result<Value, HostError>> {
        let function = self.0.clone();
        let arg = json_to_js(arg);
        Box::pin(async move {
            let controller = AbortController::new().map_err(host_error)?;
            let context = Object::new();
            let _ = Reflect::set(&context, &"signal".into(), &controller.signal());
            // Dropping this future aborts the signal the function was given.
            let _abort = AbortOnDrop { controller: Some(controller) };
            let returned = function.call2(&JsValue::UNDEFINED, &arg, &context).map_err(host_error)?;
            let value = JsFuture::from(Promise::resolve(&returned)).await.map_err(host_error)?;
            returned_json(&value)
        })
    }
}

/// A caller's `AbortSignal`.
pub struct JsSignal(pub JsValue);

fn abort_reason(signal: &JsValue) -> AbortReason {
    let reason = get(signal, "reason");
    let is_timeout = get(&reason, "name").as_string().as_deref() == Some("TimeoutError");
    let message = if reason.is_undefined() { "the signal was aborted".to_string() } else { message_of(&reason) };
    AbortReason { value: (!reason.is_undefined()).then(|| host_value(reason)), is_timeout, message }
}

/// Removes the abort listener when dropped.
struct ListenerGuard {
    signal: JsValue,
    callback: Closure<dyn FnMut()>,
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        let remove = get(&self.signal, "removeEventListener");
        if let Some(f) = remove.dyn_ref::<Function>() {
            let _ = f.call2(&self.signal, &JsValue::from_str("abort"), self.callback.as_ref());
        }
    }
}

impl SignalSource for JsSignal {
    fn aborted(&self) -> Option<AbortReason> {
        (get(&self.0, "aborted").as_bool() == Some(true)).then(|| abort_reason(&self.0))
    }

    fn subscribe(&self, on_abort: Box<dyn Fn(AbortReason)>) -> Box<dyn Any> {
        let signal = self.0.clone();
        let s = signal.clone();
        let callback = Closure::<dyn FnMut()>::own_assert_unwind_safe(move || on_abort(abort_reason(&s)));
        let add = get(&signal, "addEventListener");
        if let Some(f) = add.dyn_ref::<Function>() {
            let _ = f.call2(&signal, &JsValue::from_str("abort"), callback.as_ref());
        }
        Box::new(ListenerGuard { signal, callback })
    }
}
