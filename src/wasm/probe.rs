//! Deliberate panics for the test that proves a panic settles every pending call and
//! leaves the module usable. Compiled only with the `panic-probe` feature, which the
//! shipped build never turns on.

use std::cell::Cell;
use std::future::Future;

use futures_util::future::{select, Either, LocalBoxFuture};
use futures_util::FutureExt;
use wasm_bindgen::prelude::*;

use super::host::JsHost;

thread_local! {
    /// Milliseconds after which the next run panics, once armed.
    static ARMED_MS: Cell<Option<f64>> = const { Cell::new(None) };
}

/// Makes the next `complete`, `section` or `vote` panic `afterMs` milliseconds after
/// it starts, while its requests are in flight, and the next `aggregate` panic at once.
#[wasm_bindgen(js_name = armPanicProbe)]
pub fn arm_panic_probe(after_ms: f64) {
    ARMED_MS.with(|armed| armed.set(Some(after_ms)));
}

/// Panics inside a synchronous export if the probe is armed.
pub fn panic_if_armed() {
    if ARMED_MS.with(Cell::take).is_some() {
        panic!("panic probe: a deliberate panic inside a synchronous export");
    }
}

/// Wraps a run so that it panics after the armed delay, if the probe is armed.
pub fn wrap<F>(future: F) -> LocalBoxFuture<'static, F::Output>
where
    F: Future + 'static,
{
    let Some(after_ms) = ARMED_MS.with(Cell::take) else {
        return future.boxed_local();
    };
    let timer = JsHost::new().sleep(after_ms);
    async move {
        match select(Box::pin(future), timer).await {
            Either::Left((output, _)) => output,
            Either::Right(((), _run)) => panic!("panic probe: a deliberate panic inside a running future"),
        }
    }
    .boxed_local()
}
