//! The JavaScript functions the module imports. Every import that can throw is
//! declared `catch`: an exception that crossed into wasm uncaught would leave the
//! module's state half-updated.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `setTimeout`, present in browsers, Node and workerd.
    #[wasm_bindgen(js_name = setTimeout)]
    pub fn set_timeout(handler: &js_sys::Function, ms: f64) -> JsValue;

    /// `clearTimeout`.
    #[wasm_bindgen(js_name = clearTimeout)]
    pub fn clear_timeout(id: &JsValue);

    /// `AbortController`.
    pub type AbortController;

    #[wasm_bindgen(constructor, catch)]
    pub fn new() -> Result<AbortController, JsValue>;

    #[wasm_bindgen(method, getter)]
    pub fn signal(this: &AbortController) -> JsValue;

    #[wasm_bindgen(method)]
    pub fn abort(this: &AbortController);

    /// A `Response` (or anything shaped like one that a custom fetch returns).
    pub type Response;

    #[wasm_bindgen(method, getter)]
    pub fn status(this: &Response) -> JsValue;

    #[wasm_bindgen(method, getter)]
    pub fn headers(this: &Response) -> JsValue;

    #[wasm_bindgen(method, getter)]
    pub fn body(this: &Response) -> JsValue;

    #[wasm_bindgen(method, catch, js_name = arrayBuffer)]
    pub fn array_buffer(this: &Response) -> Result<js_sys::Promise, JsValue>;

    /// A `ReadableStreamDefaultReader`.
    pub type Reader;

    #[wasm_bindgen(method, catch)]
    pub fn read(this: &Reader) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    pub fn cancel(this: &Reader) -> Result<js_sys::Promise, JsValue>;

    /// A `RegExp`.
    pub type RegExp;

    #[wasm_bindgen(constructor, catch)]
    pub fn new(pattern: &str, flags: &str) -> Result<RegExp, JsValue>;

    #[wasm_bindgen(method, catch)]
    pub fn exec(this: &RegExp, text: &str) -> Result<JsValue, JsValue>;
}
