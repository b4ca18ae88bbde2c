//! The seam between the core and its host. In wasm the host is JavaScript (`fetch`,
//! `setTimeout`, `AbortController`, `RegExp`); in native tests it is a scripted,
//! virtual-time host. Everything above this module is host-agnostic.

use std::any::Any;
use std::rc::Rc;

use futures_util::future::LocalBoxFuture;
use serde_json::Value;

use crate::schedule::cancel::CancelToken;

/// An opaque value owned by the host (a JavaScript value in wasm).
pub type HostValue = Rc<dyn Any>;

/// Where the library runs. Workers has a cap on open connections per invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// Node, Deno, Bun or a native test host.
    Server,
    /// A browser page or worker.
    Browser,
    /// Cloudflare Workers (workerd).
    Workers,
}

/// Open requests allowed per Workers invocation.
pub const WORKERS_MAX_OPEN_REQUESTS: usize = 6;

/// One HTTP request.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// Absolute URL.
    pub url: String,
    /// HTTP method.
    pub method: &'static str,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: String,
}

/// Why a fetch failed before a response arrived, or while its body was read.
#[derive(Clone)]
pub struct FetchError {
    /// What happened, in the host's words (never shown raw if it may carry a secret).
    pub message: String,
    /// Whether no fetch function exists at all.
    pub no_fetch: bool,
    /// The host's original error value.
    pub host: Option<HostValue>,
}

impl FetchError {
    /// A network-level failure.
    pub fn network(message: impl Into<String>) -> FetchError {
        FetchError { message: message.into(), no_fetch: false, host: None }
    }
}

/// A response whose headers have arrived. Dropping it before the body is fully read
/// aborts the request, which closes its connection.
pub trait HttpResponse {
    /// The HTTP status.
    fn status(&self) -> u16;
    /// A header value by case-insensitive name.
    fn header(&self, name: &str) -> Option<String>;
    /// The next chunk of the body, or `None` at the end.
    fn next_chunk(&mut self) -> LocalBoxFuture<'_, Result<Option<Vec<u8>>, FetchError>>;

    /// The whole body in one read, when the host can do that cheaper than chunk by
    /// chunk and the response declares a `Content-Length` of at most `limit` bytes.
    /// `None` means the caller reads chunks instead.
    fn read_whole(&mut self, _limit: usize) -> Option<LocalBoxFuture<'_, Result<Vec<u8>, FetchError>>> {
        None
    }
}

/// A host-side regular expression engine (JavaScript `RegExp` in wasm), so patterns
/// have JavaScript syntax without shipping a regex engine in the module.
pub trait RegexEngine {
    /// Checks that `pattern` compiles, returning the engine's message if not.
    fn validate(&self, pattern: &str, flags: &str) -> Result<(), String>;
    /// Matches once: `Ok(None)` when there is no match, else the `answer` group, or
    /// group 1, or the whole match.
    fn find_answer(&self, pattern: &str, flags: &str, text: &str) -> Result<Option<String>, String>;
}

/// An error thrown by a host function (a custom provider, an extractor).
#[derive(Clone)]
pub struct HostError {
    /// The error's message.
    pub message: String,
    /// `retryable: true` on the thrown value.
    pub retryable: bool,
    /// `retryAfterMs` on the thrown value.
    pub retry_after_ms: Option<f64>,
    /// `status` on the thrown value.
    pub status: Option<u16>,
    /// Whether the thrown value is an abort (its `name` is `AbortError`).
    pub is_abort: bool,
    /// Whether the function returned normally but its value was unusable.
    pub invalid_return: bool,
    /// The thrown value itself.
    pub value: Option<HostValue>,
}

impl HostError {
    /// A plain error with a message.
    pub fn message(message: impl Into<String>) -> HostError {
        HostError {
            message: message.into(),
            retryable: false,
            retry_after_ms: None,
            status: None,
            is_abort: false,
            invalid_return: false,
            value: None,
        }
    }
}

/// A function supplied by the caller. One JS function can serve any role; each role
/// calls it with the arguments that role documents.
pub trait HostFunction {
    /// Calls the function synchronously with one JSON argument (`onEvent`, `extract`).
    fn call_sync(&self, arg: &Value) -> Result<Value, HostError>;
    /// Calls a custom provider function with the request and an abort signal that
    /// fires when `cancel` does. The future settles once the function's promise does.
    fn call_async(&self, arg: &Value, cancel: CancelToken)
        -> LocalBoxFuture<'static, Result<Value, HostError>>;
}

/// An `AbortSignal` supplied by the caller.
pub trait SignalSource {
    /// The abort reason, if the signal is already aborted.
    fn aborted(&self) -> Option<AbortReason>;
    /// Calls `on_abort` once when the signal aborts. The listener is removed when the
    /// returned guard is dropped.
    fn subscribe(&self, on_abort: Box<dyn Fn(AbortReason)>) -> Box<dyn Any>;
}

/// The reason of an aborted signal.
#[derive(Clone)]
pub struct AbortReason {
    /// The signal's `reason`.
    pub value: Option<HostValue>,
    /// Whether the reason is a `TimeoutError` (from `AbortSignal.timeout`).
    pub is_timeout: bool,
    /// A readable description of the reason.
    pub message: String,
}

/// Everything the core needs from its host.
pub trait Host {
    /// Milliseconds on a monotonic clock.
    fn now(&self) -> f64;
    /// Milliseconds since the Unix epoch, for HTTP dates.
    fn epoch_ms(&self) -> f64;
    /// A uniform random number in `[0, 1)`.
    fn random(&self) -> f64;
    /// A future that resolves after `ms` milliseconds; dropping it clears the timer.
    fn sleep(&self, ms: f64) -> LocalBoxFuture<'static, ()>;
    /// Starts a request with the global fetch, or with `fetch_fn` when given. Dropping
    /// the future aborts the request.
    fn fetch(
        &self,
        request: HttpRequest,
        fetch_fn: Option<&HostValue>,
    ) -> LocalBoxFuture<'static, Result<Box<dyn HttpResponse>, FetchError>>;
    /// The runtime the host is.
    fn runtime(&self) -> Runtime;
    /// The regular expression engine.
    fn regex(&self) -> &dyn RegexEngine;
}
