//! Exports for the provider batch mode of `section` and `vote`. The runs themselves
//! go through the `section` and `vote` exports with `batch` in their options; these
//! exports serve `resumeBatch` and callers who size their jobs.

use serde_json::json;
use wasm_bindgen::prelude::*;

use super::{error_to_js, parse};
use crate::batch::handle::Handle;
use crate::batch::options::Api;

/// `batchLimits()`: the requests and bytes one batch may hold, per provider, as JSON
/// text.
#[wasm_bindgen(js_name = batchLimits)]
pub fn batch_limits() -> String {
    let limits = |api: Api| {
        let l = api.limits();
        json!({ "maxRequests": l.max_requests, "maxBytes": l.max_bytes })
    };
    json!({ "openai": limits(Api::OpenAi), "anthropic": limits(Api::Anthropic) }).to_string()
}

/// `checkBatchHandle(handle)`: checks a batch handle and returns its kind, `section`
/// or `vote`.
#[wasm_bindgen(js_name = checkBatchHandle)]
pub fn check_batch_handle(handle: &str) -> Result<String, JsValue> {
    let value = parse(handle, "handle")?;
    Handle::from_json("handle", &value).map(|h| h.kind).map_err(error_to_js)
}
