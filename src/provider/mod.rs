//! Providers: OpenAI-compatible chat completions, the Anthropic Messages API, and
//! custom functions. A provider is immutable configuration; [`call`] makes one
//! attempt with it.

pub mod anthropic;
pub mod custom;
pub mod http;
pub mod openai;
pub mod sse;
#[cfg(test)]
mod call_tests;

use std::rc::Rc;

use serde_json::{json, Map, Value};

use crate::decode::{self, Obj, RefTable};
use crate::error::{Error, ProviderFailure, Redactor, Result};
use crate::transport::{Host, HostFunction, HostValue, Runtime};

/// The three kinds of provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An OpenAI-compatible `/chat/completions` endpoint.
    OpenAi,
    /// The Anthropic Messages API.
    Anthropic,
    /// A caller-supplied function.
    Custom,
}

impl Kind {
    /// The name used in errors and reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::OpenAi => "openai",
            Kind::Anthropic => "anthropic",
            Kind::Custom => "custom",
        }
    }
}

/// USD per million tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Price {
    /// Price of a million input tokens.
    pub input: f64,
    /// Price of a million output tokens.
    pub output: f64,
}

/// Default cap on a response body: 8 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Default `anthropic-version` header.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A provider's configuration.
pub struct Provider {
    /// Registry id; also keys rate-limit cool-downs.
    pub id: u32,
    /// Which API it speaks.
    pub kind: Kind,
    /// A name for reports: the model, or the custom function's `name`.
    pub name: String,
    /// The model sent with each request.
    pub model: Option<String>,
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// The API key. Never shown: see [`Provider::redactor`].
    pub api_key: Option<String>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Output token cap.
    pub max_tokens: Option<u64>,
    /// Base seed; sample `i` of a vote uses `seed + i`.
    pub seed: Option<i64>,
    /// Whether to stream responses.
    pub stream: bool,
    /// Fields merged into every request body.
    pub extra_body: Map<String, Value>,
    /// A fetch function that replaces the global one.
    pub fetch: Option<HostValue>,
    /// The custom function.
    pub function: Option<Rc<dyn HostFunction>>,
    /// Largest response body accepted.
    pub max_response_bytes: usize,
    /// Prices by model name.
    pub prices: Vec<(String, Price)>,
    /// `anthropic-version`.
    pub version: String,
    /// Whether the caller allowed direct Anthropic calls from a browser page.
    pub browser: bool,
    /// Removes the key and secret header values from anything shown.
    pub redactor: Redactor,
}

impl Provider {
    /// The URL of `path` (such as `/chat/completions`) under the base URL, in front of
    /// the base URL's query, if any (Azure OpenAI's `?api-version=`).
    pub fn endpoint(&self, path: &str) -> String {
        match self.base_url.split_once('?') {
            Some((base, query)) => format!("{base}{path}?{query}"),
            None => format!("{}{path}", self.base_url),
        }
    }

    /// The price of this provider's model, if configured.
    pub fn price(&self, model: Option<&str>) -> Option<Price> {
        let wanted = model.or(self.model.as_deref());
        self.prices
            .iter()
            .find(|(m, _)| Some(m.as_str()) == wanted || m == "*")
            .or_else(|| self.prices.iter().find(|(m, _)| Some(m.as_str()) == self.model.as_deref()))
            .map(|(_, p)| *p)
    }

    /// The highest input and output prices configured, for reserving budget before a
    /// call: the reply may name another model of the map, which is then what is charged.
    pub fn max_price(&self) -> Option<Price> {
        self.prices.iter().map(|(_, p)| *p).reduce(|a, b| Price { input: a.input.max(b.input), output: a.output.max(b.output) })
    }

    /// The provider as plain data for `console.log` and `JSON.stringify`: everything
    /// but the key and header values.
    pub fn public_json(&self) -> Value {
        json!({
            "type": self.kind.name(),
            "name": self.name,
            "model": self.model,
            "baseURL": if self.kind == Kind::Custom { Value::Null } else { json!(self.base_url) },
            "apiKey": if self.api_key.is_some() { json!("[REDACTED]") } else { Value::Null },
            "headers": self.headers.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            "temperature": self.temperature,
            "topP": self.top_p,
            "maxTokens": self.max_tokens,
            "seed": self.seed,
            "stream": self.stream,
        })
    }
}

/// One chat message in the neutral form every provider maps onto its API.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// What one call asks for.
#[derive(Clone, Debug, Default)]
pub struct CallRequest {
    /// The conversation.
    pub messages: Vec<Message>,
    /// The system prompt.
    pub system: Option<String>,
    /// Overrides the provider's temperature.
    pub temperature: Option<f64>,
    /// Overrides the provider's seed.
    pub seed: Option<i64>,
}

/// Input tokens a chat template may add to every request, in the input estimate.
const TEMPLATE_TOKENS: u64 = 32;

impl CallRequest {
    /// A request with one user message.
    pub fn prompt(text: &str) -> CallRequest {
        CallRequest { messages: vec![Message { role: "user".into(), content: text.into() }], ..Default::default() }
    }

    /// An estimate of the input tokens, used only to reserve budget before a call: it
    /// errs high, counting three ASCII characters a token (English runs about four),
    /// one token for every other character (CJK text runs about one each), 8 tokens
    /// per message for the chat format, and 32 for a chat template's own text. The
    /// llama.cpp server with SmolLM2 counted 37 input tokens for "What is 2+2?".
    pub fn estimate_input_tokens(&self) -> u64 {
        let texts = self.messages.iter().map(|m| m.content.as_str()).chain(self.system.as_deref());
        let mut ascii = 0u64;
        let mut other = 0u64;
        let mut messages = 0u64;
        for text in texts {
            messages += 1;
            for c in text.chars() {
                if c.is_ascii() {
                    ascii += 1;
                } else {
                    other += 1;
                }
            }
        }
        ascii.div_ceil(3) + other + 8 * messages + TEMPLATE_TOKENS
    }
}

/// Why generation stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// A natural stop.
    Stop,
    /// The output token limit cut it off.
    Length,
    /// A content filter removed or refused it.
    ContentFilter,
    /// The caller's stream observer stopped it (a red flag).
    Stopped(String),
    /// Another reason, as the provider named it.
    Other(String),
    /// The provider gave none.
    Unknown,
}

impl FinishReason {
    /// The reason as reports show it.
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Stopped(_) => "stopped",
            FinishReason::Other(s) => s,
            FinishReason::Unknown => "unknown",
        }
    }

    /// Maps a provider's finish or stop reason onto the neutral set.
    pub fn parse(reason: Option<&str>) -> FinishReason {
        match reason {
            None => FinishReason::Unknown,
            Some("stop" | "end_turn" | "stop_sequence" | "eos") => FinishReason::Stop,
            Some("length" | "max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
            Some("content_filter" | "refusal" | "safety") => FinishReason::ContentFilter,
            Some(other) => FinishReason::Other(other.to_string()),
        }
    }
}

/// Token counts of one call or of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    /// Input (prompt) tokens.
    pub input_tokens: u64,
    /// Output (completion) tokens.
    pub output_tokens: u64,
    /// Estimated cost, when prices are known.
    pub cost_usd: Option<f64>,
}

impl Usage {
    /// Adds another usage to this one.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        if let Some(cost) = other.cost_usd {
            self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + cost);
        }
    }

    /// The usage as report data.
    pub fn to_json(&self) -> Value {
        json!({
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "costUsd": self.cost_usd,
        })
    }

    /// Fills in the cost from a price.
    pub fn priced(mut self, price: Option<Price>) -> Usage {
        if let Some(p) = price {
            self.cost_usd =
                Some((self.input_tokens as f64 * p.input + self.output_tokens as f64 * p.output) / 1_000_000.0);
        }
        self
    }
}

/// What a successful attempt returned.
#[derive(Clone, Debug)]
pub struct CallResponse {
    /// The generated text, secrets removed.
    pub text: String,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// Token counts, when the provider reported them.
    pub usage: Option<Usage>,
    /// The provider's usage object as it came, for callers who need its details.
    pub raw_usage: Option<Value>,
    /// The provider's `logprobs`, when present.
    pub logprobs: Option<Value>,
    /// The model that answered.
    pub model: Option<String>,
}

impl CallResponse {
    /// Removes `redactor`'s secrets from every field.
    pub fn scrub(&mut self, redactor: &Redactor) {
        if redactor.is_empty() {
            return;
        }
        self.text = redactor.redact(&self.text);
        if let FinishReason::Other(reason) | FinishReason::Stopped(reason) = &mut self.finish_reason {
            *reason = redactor.redact(reason);
        }
        if let Some(model) = self.model.as_mut() {
            *model = redactor.redact(model);
        }
        for value in [self.raw_usage.as_mut(), self.logprobs.as_mut()].into_iter().flatten() {
            redactor.scrub_value(value);
        }
    }
}

/// Watches a streamed response. It gets each new piece of text and the text so far,
/// and returns a reason to stop reading early, or `None` to go on.
pub type StreamObserver<'a> = &'a dyn Fn(&str, &str) -> Option<String>;

/// What an attempt learned besides its result.
#[derive(Clone, Debug, Default)]
pub struct AttemptInfo {
    /// Epoch ms before which rate-limit headers say no request should start.
    pub pace_until: Option<f64>,
}

/// Makes one attempt. Dropping the future aborts its request.
pub async fn call(
    provider: &Provider,
    host: &Rc<dyn Host>,
    request: &CallRequest,
    observer: Option<StreamObserver<'_>>,
    cancel: &crate::schedule::cancel::CancelToken,
) -> (Result<CallResponse>, AttemptInfo) {
    let (mut result, info) = match provider.kind {
        Kind::OpenAi => openai::call(provider, host, request, observer).await,
        Kind::Anthropic => anthropic::call(provider, host, request, observer).await,
        Kind::Custom => (custom::call(provider, request, cancel).await, AttemptInfo::default()),
    };
    // A server may echo the key in any field, so every text of the outcome is scrubbed
    // here, once, whatever the parser already removed.
    match &mut result {
        Ok(response) => response.scrub(&provider.redactor),
        Err(err) => provider.redactor.scrub_error(err),
    }
    (result, info)
}

/// Sends one HTTP attempt and reads its response: an error status becomes a provider
/// error, a success is read as a stream (when asked for and not answered with JSON) or
/// as one JSON body, in the provider's own format.
async fn exchange(
    provider: &Provider,
    host: &Rc<dyn Host>,
    request: crate::transport::HttpRequest,
    observer: Option<StreamObserver<'_>>,
) -> (Result<CallResponse>, AttemptInfo) {
    let mut response = match host.fetch(request, provider.fetch.as_ref()).await {
        Ok(r) => r,
        Err(e) => return (Err(network_error(provider, &e)), AttemptInfo::default()),
    };
    let epoch = host.epoch_ms();
    let info = AttemptInfo { pace_until: http::pace_until(response.as_ref(), epoch) };
    let status = response.status();
    if !(200..300).contains(&status) {
        return (Err(openai::read_error(provider, response.as_mut(), status, epoch).await), info);
    }
    let is_json =
        response.header("content-type").is_some_and(|t| t.to_ascii_lowercase().contains("application/json"));
    let result = if provider.stream && !is_json {
        match provider.kind {
            Kind::Anthropic => anthropic::read_stream(provider, response.as_mut(), observer).await,
            _ => openai::read_stream(provider, response.as_mut(), observer).await,
        }
    } else {
        match http::read_body(response.as_mut(), provider.max_response_bytes).await {
            Err(e) => Err(openai::body_error(provider, e)),
            Ok(body) => {
                let text = String::from_utf8_lossy(&body);
                // JSON allows a parser to skip a byte order mark, and fetch's json() does.
                let json_text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
                match serde_json::from_str::<Value>(json_text) {
                    Ok(json) if provider.kind == Kind::Anthropic => anthropic::parse_message(provider, &json),
                    Ok(json) => openai::parse_body(provider, &json),
                    Err(_) => Err(bad_response(provider, "the body is not JSON", true, Some(&text))),
                }
            }
        }
    };
    (result, info)
}

/// A network-level failure of an attempt, retryable.
pub fn network_error(provider: &Provider, err: &crate::transport::FetchError) -> Error {
    if err.no_fetch {
        let mut e = Error::new(
            crate::error::Code::ProviderError,
            format!(
                "{}: no fetch function is available in this runtime; pass one as the provider's `fetch` option",
                provider.kind.name()
            ),
        );
        e.provider = Some(Box::new(ProviderFailure {
            retryable: false,
            provider_type: Some("no_fetch".into()),
            provider: Some(provider.kind.name()),
            ..Default::default()
        }));
        return e;
    }
    let message = provider.redactor.redact(&err.message);
    let mut e = Error::provider(
        format!("{} request failed before a response arrived: {message}", provider.kind.name()),
        ProviderFailure {
            retryable: true,
            provider_type: Some("network".into()),
            provider_message: Some(message),
            provider: Some(provider.kind.name()),
            ..Default::default()
        },
    );
    e.host_cause = err.host.clone();
    e
}

/// A streamed response that broke off after its headers: the connection failed or
/// closed before the stream's end. Retryable, like a network error.
pub fn stream_cut(provider: &Provider, detail: &str, host: Option<HostValue>) -> Error {
    let detail = provider.redactor.redact(detail);
    let mut e = Error::provider(
        format!("{} stream ended before the response was complete: {detail}", provider.kind.name()),
        ProviderFailure {
            retryable: true,
            provider_type: Some("network".into()),
            provider_message: Some(detail),
            provider: Some(provider.kind.name()),
            ..Default::default()
        },
    );
    e.host_cause = host;
    e
}

/// A failure to read or parse a successful response's body.
pub fn bad_response(provider: &Provider, message: &str, retryable: bool, body: Option<&str>) -> Error {
    Error::provider(
        format!("{} returned an unusable response: {message}", provider.kind.name()),
        ProviderFailure {
            retryable,
            provider_type: Some("invalid_response".into()),
            provider_message: Some(message.to_string()),
            body_excerpt: body.map(|b| http::excerpt(b, &provider.redactor)),
            provider: Some(provider.kind.name()),
            ..Default::default()
        },
    )
}

/// Header names whose values are credentials.
fn is_secret_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["auth", "key", "token", "secret", "cookie", "password", "signature"].iter().any(|w| lower.contains(w))
}

/// The options each provider kind accepts.
const OPENAI_OPTIONS: &[&str] = &[
    "baseURL", "model", "apiKey", "headers", "temperature", "topP", "maxTokens", "seed", "stream", "extraBody",
    "fetch", "maxResponseBytes", "prices", "name",
];
const ANTHROPIC_OPTIONS: &[&str] = &[
    "apiKey", "model", "maxTokens", "baseURL", "version", "browser", "temperature", "topP", "stream", "extraBody",
    "fetch", "maxResponseBytes", "prices", "headers", "name",
];
const CUSTOM_OPTIONS: &[&str] = &["name", "model", "temperature", "topP", "maxTokens", "seed", "prices"];

/// The reference table also exposes raw host values, for a provider's `fetch`.
pub trait ProviderRefs: RefTable {
    /// The raw host value at `index`.
    fn raw(&self, index: usize) -> Option<HostValue>;
}

/// Builds a provider from `openai(options)`, `anthropic(options)` or
/// `custom(fn, options)`, validating every option.
pub fn from_options(
    kind: Kind,
    function: Option<Rc<dyn HostFunction>>,
    options: &Value,
    refs: &dyn ProviderRefs,
    runtime: Runtime,
    id: u32,
) -> Result<Provider> {
    let path = kind.name();
    let empty = Value::Object(Map::new());
    let options = if options.is_null() { &empty } else { options };
    let allowed = match kind {
        Kind::OpenAi => OPENAI_OPTIONS,
        Kind::Anthropic => ANTHROPIC_OPTIONS,
        Kind::Custom => CUSTOM_OPTIONS,
    };
    let o = Obj::new(path, options, allowed)?;
    let model = match kind {
        Kind::Custom => o.nonempty_str("model")?.map(str::to_string),
        _ => Some(o.required_str("model")?.to_string()),
    };
    let api_key = match kind {
        Kind::Anthropic => Some(o.required_str("apiKey")?.to_string()),
        Kind::OpenAi => o.str("apiKey")?.filter(|k| !k.is_empty()).map(str::to_string),
        Kind::Custom => None,
    };
    let base_url = match (kind, o.str("baseURL")?) {
        (Kind::Custom, _) => String::new(),
        (_, Some(url)) => validate_base_url(&o.at("baseURL"), url)?,
        (Kind::OpenAi, None) => "https://api.openai.com/v1".into(),
        (Kind::Anthropic, None) => "https://api.anthropic.com/v1".into(),
    };
    let mut headers = Vec::new();
    if let Some(h) = o.get("headers") {
        let hp = o.at("headers");
        let map = h.as_object().filter(|_| decode::marker(h).is_none()).ok_or_else(|| {
            Error::type_error(&hp, format!("expected an object of header names to strings, got {}", decode::describe(h)))
        })?;
        for (name, value) in map {
            if value.is_null() {
                continue;
            }
            let at = decode::join(&hp, name);
            let v = decode::string(&at, value)?;
            if !is_header_name(name) {
                return Err(Error::type_error(&at, format!("{name:?} is not a valid HTTP header name; use letters, digits and !#$%&'*+-.^_`|~ only")));
            }
            if v.contains(['\r', '\n', '\0']) {
                return Err(Error::type_error(&at, "the value contains a line break or NUL, which HTTP header values cannot carry"));
            }
            headers.push((name.clone(), v.to_string()));
        }
    }
    let max_tokens = o.integer("maxTokens", 1, 10_000_000)?.map(|n| n as u64);
    if kind == Kind::Anthropic && max_tokens.is_none() {
        return Err(Error::type_error(
            &o.at("maxTokens"),
            "is required by the Anthropic Messages API; pass the output token limit, for example 1024",
        ));
    }
    let browser = o.bool("browser")?.unwrap_or(false);
    if kind == Kind::Anthropic && runtime == Runtime::Browser && !browser {
        return Err(Error::type_error(
            &o.at("browser"),
            "calling the Anthropic API from a browser page exposes the API key to the page; pass `browser: true` to allow it, or call through your own server",
        ));
    }
    let extra_body = match o.get("extraBody") {
        None => Map::new(),
        Some(v) => match decode::plain_json(&o.at("extraBody"), v)? {
            Value::Object(map) => map,
            other => {
                return Err(Error::type_error(&o.at("extraBody"), format!("expected an object, got {}", decode::describe(&other))))
            }
        },
    };
    let fetch = match o.get("fetch") {
        None => None,
        Some(v) => match decode::marker(v) {
            Some(("fn", idx)) => Some(
                idx.as_u64()
                    .and_then(|i| refs.raw(i as usize))
                    .ok_or_else(|| Error::type_error(&o.at("fetch"), "the function reference is invalid"))?,
            ),
            _ => return Err(Error::type_error(&o.at("fetch"), format!("expected a function, got {}", decode::describe(v)))),
        },
    };
    let prices = decode_prices(&o, model.as_deref())?;
    let max_response_bytes =
        o.integer("maxResponseBytes", 1024, 1 << 30)?.map_or(DEFAULT_MAX_RESPONSE_BYTES, |n| n as usize);
    let mut secrets: Vec<String> = api_key.iter().cloned().collect();
    secrets.extend(headers.iter().filter(|(n, _)| is_secret_header(n)).map(|(_, v)| {
        v.strip_prefix("Bearer ").unwrap_or(v).to_string()
    }));
    let name = o
        .nonempty_str("name")?
        .map(str::to_string)
        .or_else(|| model.clone())
        .unwrap_or_else(|| kind.name().to_string());
    Ok(Provider {
        id,
        kind,
        name,
        model,
        base_url,
        api_key,
        headers,
        temperature: o.number("temperature", 0.0, 2.0)?,
        top_p: o.number("topP", 0.0, 1.0)?,
        max_tokens,
        seed: o.integer("seed", -decode::MAX_SAFE_INTEGER, decode::MAX_SAFE_INTEGER)?,
        stream: o.bool("stream")?.unwrap_or(false),
        extra_body,
        fetch,
        function,
        max_response_bytes,
        prices,
        version: o.nonempty_str("version")?.unwrap_or(ANTHROPIC_VERSION).to_string(),
        browser,
        redactor: Redactor::new(secrets),
    })
}

fn validate_base_url(path: &str, url: &str) -> Result<String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    let Some(rest) = rest.filter(|r| !r.is_empty()) else {
        return Err(Error::type_error(
            path,
            format!("expected an absolute http(s) URL such as \"http://127.0.0.1:8080/v1\", got {url:?}"),
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        // The URL itself is not repeated: the part before `@` is a password.
        return Err(Error::type_error(
            path,
            "must not contain user:password@ (fetch rejects such URLs, and credentials would show in errors); pass the key as apiKey or in headers",
        ));
    }
    if url.contains('#') {
        return Err(Error::type_error(path, format!("must not contain a fragment (#...), got {url:?}")));
    }
    // Trim a trailing slash of the path, also in front of a query (`/v1/?api-version=`).
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base.trim_end_matches('/'), Some(query)),
        None => (url.trim_end_matches('/'), None),
    };
    Ok(match query {
        Some(q) => format!("{base}?{q}"),
        None => base.to_string(),
    })
}

/// Whether `name` is an HTTP header name (a token of RFC 9110).
fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn decode_prices(o: &Obj<'_>, model: Option<&str>) -> Result<Vec<(String, Price)>> {
    let Some(value) = o.get("prices") else { return Ok(Vec::new()) };
    let path = o.at("prices");
    let read = |p: &str, v: &Value| -> Result<Price> {
        let po = Obj::new(p, v, &["input", "output"])?;
        Ok(Price {
            input: po.number("input", 0.0, 1e9)?.ok_or_else(|| Error::type_error(&po.at("input"), "is required (USD per million input tokens)"))?,
            output: po.number("output", 0.0, 1e9)?.ok_or_else(|| Error::type_error(&po.at("output"), "is required (USD per million output tokens)"))?,
        })
    };
    let map = value
        .as_object()
        .ok_or_else(|| Error::type_error(&path, format!("expected an object, got {}", decode::describe(value))))?;
    if map.contains_key("input") || map.contains_key("output") {
        return Ok(vec![(model.unwrap_or("*").to_string(), read(&path, value)?)]);
    }
    let mut out = Vec::new();
    for (name, v) in map {
        out.push((name.clone(), read(&decode::join(&path, name), v)?));
    }
    Ok(out)
}

/// Reads the `usage` object of either API into token counts.
pub fn parse_usage(usage: &Value) -> Option<Usage> {
    let input = usage.get("prompt_tokens").or_else(|| usage.get("input_tokens")).or_else(|| usage.get("inputTokens"));
    let output =
        usage.get("completion_tokens").or_else(|| usage.get("output_tokens")).or_else(|| usage.get("outputTokens"));
    if input.is_none() && output.is_none() {
        return None;
    }
    let count = |v: Option<&Value>| v.and_then(Value::as_f64).filter(|n| *n >= 0.0).map_or(0, |n| n as u64);
    let mut input_tokens = count(input);
    // Anthropic reports cached input separately from `input_tokens`.
    input_tokens += count(usage.get("cache_creation_input_tokens")) + count(usage.get("cache_read_input_tokens"));
    Some(Usage { input_tokens, output_tokens: count(output), cost_usd: None })
}

#[cfg(test)]
pub(crate) mod test_refs {
    use super::*;
    use crate::transport::SignalSource;

    /// A reference table for native tests.
    #[derive(Default)]
    pub struct Refs {
        pub functions: Vec<Rc<dyn HostFunction>>,
    }

    impl RefTable for Refs {
        fn function(&self, index: usize) -> Option<Rc<dyn HostFunction>> {
            self.functions.get(index).cloned()
        }
        fn signal(&self, _: usize) -> Option<Rc<dyn SignalSource>> {
            None
        }
    }

    impl ProviderRefs for Refs {
        fn raw(&self, _: usize) -> Option<HostValue> {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(kind: Kind, v: Value) -> Result<Provider> {
        from_options(kind, None, &v, &test_refs::Refs::default(), Runtime::Server, 1)
    }

    #[test]
    fn openai_requires_model() {
        let err = build(Kind::OpenAi, json!({ "baseURL": "http://127.0.0.1:1/v1" })).err().unwrap();
        assert!(err.message.starts_with("openai.model"), "{}", err.message);
    }

    #[test]
    fn anthropic_requires_max_tokens_and_key() {
        let err = build(Kind::Anthropic, json!({ "model": "m", "apiKey": "k" })).err().unwrap();
        assert!(err.message.contains("maxTokens"), "{}", err.message);
        let err = build(Kind::Anthropic, json!({ "model": "m", "maxTokens": 5 })).err().unwrap();
        assert!(err.message.contains("apiKey"), "{}", err.message);
    }

    #[test]
    fn anthropic_in_browser_needs_opt_in() {
        let v = json!({ "model": "m", "apiKey": "sk-ant-123456", "maxTokens": 5 });
        let err = from_options(Kind::Anthropic, None, &v, &test_refs::Refs::default(), Runtime::Browser, 1);
        assert!(err.err().unwrap().message.contains("browser: true"));
    }

    #[test]
    fn public_json_hides_secrets() {
        let p = build(
            Kind::OpenAi,
            json!({ "model": "m", "apiKey": "sk-hidden-key", "headers": { "X-Api-Key": "other-secret" } }),
        )
        .unwrap();
        let s = p.public_json().to_string();
        assert!(!s.contains("sk-hidden-key"));
        assert!(!s.contains("other-secret"));
        assert_eq!(p.redactor.redact("other-secret sk-hidden-key"), "[REDACTED] [REDACTED]");
    }

    #[test]
    fn snake_case_option_gets_hint() {
        let err = build(Kind::OpenAi, json!({ "model": "m", "max_tokens": 5 })).err().unwrap();
        assert!(err.message.contains("did you mean `maxTokens`?"), "{}", err.message);
    }

    #[test]
    fn bad_base_url_is_named() {
        let err = build(Kind::OpenAi, json!({ "model": "m", "baseURL": "localhost:8080" })).err().unwrap();
        assert!(err.message.starts_with("openai.baseURL"), "{}", err.message);
    }

    #[test]
    fn prices_flat_and_by_model() {
        let p = build(Kind::OpenAi, json!({ "model": "m", "prices": { "input": 1.0, "output": 2.0 } })).unwrap();
        assert_eq!(p.price(None), Some(Price { input: 1.0, output: 2.0 }));
        let p = build(Kind::OpenAi, json!({ "model": "m", "prices": { "m": { "input": 3.0, "output": 4.0 } } })).unwrap();
        assert_eq!(p.price(Some("m")), Some(Price { input: 3.0, output: 4.0 }));
    }

    #[test]
    fn usage_of_both_apis() {
        let u = parse_usage(&json!({ "prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10 })).unwrap();
        assert_eq!((u.input_tokens, u.output_tokens), (9, 1));
        let u = parse_usage(&json!({ "input_tokens": 5, "output_tokens": 0 })).unwrap();
        assert_eq!((u.input_tokens, u.output_tokens), (5, 0));
        assert!(parse_usage(&json!({})).is_none());
    }
}

/// Accumulates streamed text and passes safe pieces to the observer: with secrets to
/// hide, the tail that could be the start of a secret is held back until the next
/// piece shows it is not.
pub struct StreamText<'a> {
    raw: String,
    emitted: usize,
    redactor: &'a Redactor,
    observer: Option<StreamObserver<'a>>,
}

impl<'a> StreamText<'a> {
    /// Starts an empty text.
    pub fn new(redactor: &'a Redactor, observer: Option<StreamObserver<'a>>) -> StreamText<'a> {
        StreamText { raw: String::new(), emitted: 0, redactor, observer }
    }

    /// Appends a piece; returns the observer's reason to stop, if any.
    pub fn push(&mut self, piece: &str) -> Option<String> {
        if piece.is_empty() {
            return None;
        }
        self.raw.push_str(piece);
        let observer = self.observer?;
        if self.redactor.is_empty() {
            return observer(piece, &self.raw);
        }
        let safe_end = self.raw.len() - self.redactor.unsafe_tail_len(&self.raw);
        let safe = self.redactor.redact(&self.raw[..safe_end]);
        if safe.len() <= self.emitted {
            return None;
        }
        let new = safe[self.emitted..].to_string();
        self.emitted = safe.len();
        observer(&new, &safe)
    }

    /// The text of a stream stopped before its end: only what the observer already saw.
    /// The tail held back may be the start of a secret that never arrived whole, so it
    /// is dropped rather than shown.
    pub fn finish_stopped(self) -> String {
        if self.redactor.is_empty() {
            return self.raw;
        }
        let safe_end = self.raw.len() - self.redactor.unsafe_tail_len(&self.raw);
        self.redactor.redact(&self.raw[..safe_end])
    }

    /// The whole text, secrets removed. The tail held back in case it started a secret
    /// goes to the observer now, so the pieces it saw add up to the whole text.
    pub fn finish(self) -> String {
        let text = self.redactor.redact(&self.raw);
        if let Some(observer) = self.observer {
            if !self.redactor.is_empty() && text.len() > self.emitted && text.is_char_boundary(self.emitted) {
                // The reply is complete, so a stop reason no longer matters.
                let _ = observer(&text[self.emitted..], &text);
            }
        }
        text
    }
}
