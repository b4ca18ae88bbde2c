//! Providers and limiters created from JavaScript live here, keyed by id; the JS
//! objects carry only the id, so an API key never sits in a JS object. The JS wrapper
//! releases an id once its object is garbage-collected.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value;

use crate::decode::{describe, marker};
use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::schedule::limiter::Limiter;
use crate::transport::Runtime;

#[derive(Default)]
struct Registry {
    next_id: u32,
    providers: HashMap<u32, Rc<Provider>>,
    limiters: HashMap<u32, Rc<Limiter>>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
    static RUNTIME: Cell<Runtime> = const { Cell::new(Runtime::Server) };
}

/// The runtime the module was loaded in.
pub fn runtime() -> Runtime {
    RUNTIME.with(Cell::get)
}

/// Records the runtime; each JS entry point calls this once.
pub fn set_runtime(runtime: Runtime) {
    RUNTIME.with(|r| r.set(runtime));
}

/// Reserves a fresh id.
pub fn next_id() -> u32 {
    REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        r.next_id += 1;
        r.next_id
    })
}

/// Stores a provider under its id.
pub fn add_provider(provider: Provider) -> Rc<Provider> {
    let provider = Rc::new(provider);
    REGISTRY.with(|r| r.borrow_mut().providers.insert(provider.id, provider.clone()));
    provider
}

/// Stores a limiter and returns its id.
pub fn add_limiter(limiter: Rc<Limiter>) -> u32 {
    let id = next_id();
    REGISTRY.with(|r| r.borrow_mut().limiters.insert(id, limiter));
    id
}

/// Forgets a provider or limiter. Runs that hold it keep their own reference.
pub fn release(id: u32) {
    REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        r.providers.remove(&id);
        r.limiters.remove(&id);
    });
}

/// The provider an option points to.
pub fn provider(path: &str, value: &Value) -> Result<Rc<Provider>> {
    let expected = || {
        Error::type_error(
            path,
            format!("expected a provider made by openai(), anthropic() or custom(), got {}", describe(value)),
        )
    };
    match marker(value) {
        Some(("provider", id)) => {
            let id = id.as_u64().ok_or_else(expected)? as u32;
            REGISTRY.with(|r| r.borrow().providers.get(&id).cloned()).ok_or_else(|| {
                Error::type_error(path, "this provider was released; create it again with openai(), anthropic() or custom()")
            })
        }
        _ => Err(expected()),
    }
}

/// The limiter an option points to.
pub fn limiter(path: &str, value: &Value) -> Result<Rc<Limiter>> {
    match marker(value) {
        Some(("limiter", id)) => id
            .as_u64()
            .and_then(|id| REGISTRY.with(|r| r.borrow().limiters.get(&(id as u32)).cloned()))
            .ok_or_else(|| Error::type_error(path, "this limiter was released; create it again with createLimiter(n)")),
        _ => Err(Error::type_error(path, format!("expected a limiter made by createLimiter(n), got {}", describe(value)))),
    }
}

/// Counts of live entries, for leak tests.
pub fn counts() -> (usize, usize) {
    REGISTRY.with(|r| {
        let r = r.borrow();
        (r.providers.len(), r.limiters.len())
    })
}
