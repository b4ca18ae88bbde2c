//! The only `#[wasm_bindgen]` boundary. The JS wrapper (`pkg/core.js`) encodes
//! options as JSON plus a table of host references (functions and signals), calls
//! these exports, and turns the plain error objects they reject with into `Error`s.

mod batch;
mod bindings;
mod context;
mod durable;
mod host;
#[cfg(feature = "panic-probe")]
mod probe;

use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use js_sys::{Array, Function, Promise, Reflect};
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use crate::decode::RefTable;
use crate::error::{Error, JsClass};
use crate::provider::{self, Kind, ProviderRefs};
use crate::registry;
use crate::schedule::limiter::Limiter;
use crate::transport::{HostFunction, HostValue, Runtime, SignalSource};
use context::InRequestContext;
use host::{host_value, js_of, JsFunction, JsHost, JsRegex, JsSignal};

/// Host references passed next to the options JSON.
struct Refs(Array);

impl RefTable for Refs {
    fn function(&self, index: usize) -> Option<Rc<dyn HostFunction>> {
        let value = self.0.get(index as u32);
        value.dyn_into::<Function>().ok().map(|f| Rc::new(JsFunction(f)) as Rc<dyn HostFunction>)
    }

    fn signal(&self, index: usize) -> Option<Rc<dyn SignalSource>> {
        let value = self.0.get(index as u32);
        (!value.is_undefined()).then(|| Rc::new(JsSignal(value)) as Rc<dyn SignalSource>)
    }
}

impl ProviderRefs for Refs {
    fn raw(&self, index: usize) -> Option<HostValue> {
        let value = self.0.get(index as u32);
        value.is_function().then(|| host_value(value))
    }
}

/// The plain object a failed call rejects with; the wrapper builds the `Error`.
fn error_to_js(err: Error) -> JsValue {
    let mut json = err.to_json();
    json["class"] = Value::from(match err.class {
        JsClass::Error => "Error",
        JsClass::TypeError => "TypeError",
        JsClass::RangeError => "RangeError",
    });
    if let Some(report) = &err.report {
        json["report"] = report.clone();
    }
    let object = js_sys::JSON::parse(&json.to_string()).unwrap_or_else(|_| JsValue::from_str(&err.message));
    let cause = err.host_cause.as_ref().and_then(js_of).cloned().or_else(|| err.cause.as_ref().and_then(|c| c.host_cause.as_ref()).and_then(js_of).cloned());
    if let Some(cause) = cause {
        let _ = Reflect::set(&object, &JsValue::from_str("hostCause"), &cause);
    }
    object
}

fn parse(text: &str, what: &str) -> Result<Value, JsValue> {
    serde_json::from_str(text).map_err(|e| error_to_js(Error::type_error(what, format!("could not be read: {e}"))))
}

/// A run's result as the JSON text the wrapper parses.
trait IntoJsonText {
    fn into_json_text(self) -> String;
}

impl IntoJsonText for Value {
    fn into_json_text(self) -> String {
        self.to_string()
    }
}

impl IntoJsonText for String {
    fn into_json_text(self) -> String {
        self
    }
}

fn run_async<F, T>(future: F) -> Promise
where
    F: std::future::Future<Output = crate::Result<T>> + 'static,
    T: IntoJsonText + 'static,
{
    #[cfg(feature = "panic-probe")]
    let future = probe::wrap(future);
    let run = async move {
        match future.await {
            Ok(value) => Ok(JsValue::from_str(&value.into_json_text())),
            Err(err) => Err(error_to_js(err)),
        }
    };
    // With panic=unwind, future_to_promise catches a panic of the run and rejects the
    // promise with a PanicError. Dropping the panicked run releases its permits and
    // aborts its requests.
    // NOTE: a panic in the middle of an update to state that other runs share, such
    // as a shared limiter's counts, could leave that state wrong for them.
    let run = AssertUnwindSafe(run);
    // On Workers a shared limiter can wake this run from another request's code.
    if registry::runtime() == Runtime::Workers {
        future_to_promise(AssertUnwindSafe(InRequestContext::new(run)))
    } else {
        future_to_promise(run)
    }
}

/// Records which runtime loaded the module: `node`, `browser` or `workerd`.
#[wasm_bindgen(js_name = setRuntime)]
pub fn set_runtime(name: &str) {
    crate::voting::normalize::set_nfc(|text| String::from(js_sys::JsString::from(text).normalize("NFC")));
    registry::set_runtime(match name {
        "workerd" => Runtime::Workers,
        "browser" => Runtime::Browser,
        _ => Runtime::Server,
    });
}

/// Creates a provider and returns its public description as JSON, with its `id`.
#[wasm_bindgen(js_name = createProvider)]
pub fn create_provider(kind: &str, options: &str, refs: Array, function: JsValue) -> Result<String, JsValue> {
    let kind = match kind {
        "openai" => Kind::OpenAi,
        "anthropic" => Kind::Anthropic,
        _ => Kind::Custom,
    };
    let options = parse(options, kind.name())?;
    let function = match kind {
        Kind::Custom => match function.dyn_into::<Function>() {
            Ok(f) => Some(Rc::new(JsFunction(f)) as Rc<dyn HostFunction>),
            Err(v) => {
                let got = crate::decode::describe(&host::js_to_json(&v));
                return Err(error_to_js(Error::type_error("custom", format!("expected a function (request, {{ signal }}) => {{ text }}, got {got}"))));
            }
        },
        _ => None,
    };
    let id = registry::next_id();
    let provider = provider::from_options(kind, function, &options, &Refs(refs), registry::runtime(), id).map_err(error_to_js)?;
    let mut public = provider.public_json();
    public["id"] = Value::from(id);
    registry::add_provider(provider);
    Ok(public.to_string())
}

/// Creates a limiter of `concurrency` open requests shared by the runs it is passed to.
#[wasm_bindgen(js_name = createLimiter)]
pub fn create_limiter(concurrency: f64) -> Result<u32, JsValue> {
    let n = crate::decode::integer("createLimiter(concurrency)", &Value::from(concurrency), 1, 100_000).map_err(error_to_js)?;
    Ok(registry::add_limiter(Limiter::new(n as usize)))
}

/// Forgets a provider or limiter whose JS object was garbage-collected.
#[wasm_bindgen(js_name = releaseHandle)]
pub fn release_handle(id: u32) {
    registry::release(id);
}

/// Live providers and limiters, for leak tests.
#[wasm_bindgen(js_name = liveHandles)]
pub fn live_handles() -> String {
    let (providers, limiters) = registry::counts();
    format!("{{\"providers\":{providers},\"limiters\":{limiters}}}")
}

/// `complete(options)`: resolves to the report as JSON text.
#[wasm_bindgen]
pub fn complete(options: &str, refs: Array) -> Promise {
    let options = match parse(options, "options") {
        Ok(v) => v,
        Err(e) => return Promise::reject(&e),
    };
    run_async(async move { crate::complete::complete(JsHost::new(), &options, &Refs(refs)).await })
}

/// `section(options)`: resolves to the report as JSON text.
#[wasm_bindgen]
pub fn section(options: &str, refs: Array) -> Promise {
    let options = match parse(options, "options") {
        Ok(v) => v,
        Err(e) => return Promise::reject(&e),
    };
    run_async(async move { crate::sectioning::section(JsHost::new(), &options, &Refs(refs)).await })
}

/// `vote(options)`: resolves to the result as JSON text.
#[wasm_bindgen]
pub fn vote(options: &str, refs: Array) -> Promise {
    let options = match parse(options, "options") {
        Ok(v) => v,
        Err(e) => return Promise::reject(&e),
    };
    run_async(async move { crate::voting::vote_text(JsHost::new(), &options, &Refs(refs)).await })
}

/// `aggregate(answers, options)`: returns the result as JSON text.
#[wasm_bindgen]
pub fn aggregate(answers: &str, options: &str, refs: Array) -> Result<String, JsValue> {
    #[cfg(feature = "panic-probe")]
    probe::panic_if_armed();
    let answers = parse(answers, "answers")?;
    let options = parse(options, "options")?;
    crate::voting::aggregate_report(&answers, &options, &Refs(refs), &JsRegex).map(|r| r.to_text()).map_err(error_to_js)
}

/// `aheadByFor({ accuracy, target })`: the smallest k that reaches the target.
#[wasm_bindgen(js_name = aheadByFor)]
pub fn ahead_by_for(options: &str) -> Result<u32, JsValue> {
    let options = parse(options, "options")?;
    let o = crate::decode::Obj::new("aheadByFor", &options, &["accuracy", "target"]).map_err(error_to_js)?;
    let accuracy = o.number("accuracy", f64::MIN, f64::MAX).map_err(error_to_js)?;
    let target = o.number("target", f64::MIN, f64::MAX).map_err(error_to_js)?;
    let (Some(accuracy), Some(target)) = (accuracy, target) else {
        return Err(error_to_js(Error::type_error("aheadByFor", "needs { accuracy, target }, both numbers between 0 and 1")));
    };
    crate::voting::rules::ahead_by_for(accuracy, target).map_err(error_to_js)
}
