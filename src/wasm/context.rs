//! Keeps every wake-up of a run inside the Workers request that started it.
//!
//! In workerd each incoming request has its own I/O context, and JavaScript that runs
//! while one request's code is executing acts on behalf of that request. A fetch
//! started there belongs to it and is cancelled when it ends; touching that fetch's
//! response from another request fails with "Cannot perform I/O on behalf of a
//! different request". The executor of `wasm-bindgen-futures` runs a woken task in
//! whatever JavaScript turn woke it. So when request A releases a permit of a
//! limiter it shares with request B, A's code would run B's task and start B's
//! fetches.
//!
//! [`InRequestContext`] gives the inner future a waker that does not wake the task
//! itself. It resolves a promise that the run created during its own last poll, and
//! that promise's continuation wakes the task. workerd runs a continuation in the
//! request that created the promise, even when another request resolved it. The flag
//! table in the workerd binary lists this behaviour as
//! `handle_cross_request_promise_resolution`, enabled from compatibility date
//! 2024-10-14.
//!
//! NOTE: a worker with an older compatibility date, or with
//! `no_handle_cross_request_promise_resolution`, still runs the woken task in the
//! waking request, so a limiter shared across requests is unsafe there.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The wake-up state of one run.
#[derive(Default)]
struct Slot {
    /// The executor's waker from the run's last poll.
    task: Option<Waker>,
    /// Resolves the promise whose continuation wakes `task`. Set while the run waits.
    resolve: Option<Function>,
    /// Whether a wake-up arrived while no promise was armed (during a poll).
    woken: bool,
}

thread_local! {
    static SLOTS: RefCell<HashMap<u64, Slot>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

/// The waker handed to the inner future. It holds only the slot id, so it is `Send`
/// and `Sync` as `Waker` requires. The slots live in a thread-local map because a
/// wasm module runs on one thread.
struct SlotWaker(u64);

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let resolve = SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            let slot = slots.get_mut(&self.0)?;
            let resolve = slot.resolve.take();
            if resolve.is_none() {
                slot.woken = true;
            }
            resolve
        });
        // Resolving only queues the continuation, so nothing runs re-entrantly here.
        if let Some(resolve) = resolve {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }
}

/// Takes a slot out of the map and resolves its armed promise, if any, so the
/// promise's continuation runs once, finds no slot, and frees its closure.
fn retire(id: u64) {
    let resolve = SLOTS.with(|slots| slots.borrow_mut().remove(&id).and_then(|slot| slot.resolve));
    if let Some(resolve) = resolve {
        let _ = resolve.call0(&JsValue::UNDEFINED);
    }
}

/// Creates the promise that wakes the run's task, from within the run's own poll.
fn arm(id: u64) {
    let mut resolve = None;
    // Promise::new runs the executor at once, so nothing can observe `resolve` half-set
    // if it panicked.
    let mut slot = AssertUnwindSafe(&mut resolve);
    let promise = Promise::new(&mut move |resolve_fn, _reject| {
        let target: &mut Option<Function> = &mut slot;
        *target = Some(resolve_fn);
    });
    let continuation = Closure::once_into_js(move |_: JsValue| {
        let task = SLOTS.with(|slots| slots.borrow_mut().get_mut(&id).and_then(|slot| slot.task.take()));
        if let Some(task) = task {
            task.wake();
        }
    });
    let then = Reflect::get(&promise, &JsValue::from_str("then")).ok().and_then(|f| f.dyn_into::<Function>().ok());
    if let Some(then) = then {
        let _ = then.call1(&promise, &continuation);
    }
    SLOTS.with(|slots| {
        if let Some(slot) = slots.borrow_mut().get_mut(&id) {
            slot.resolve = resolve;
        }
    });
}

/// A future whose wake-ups always return to the JavaScript context that polls it.
pub struct InRequestContext<F: Future> {
    inner: Pin<Box<F>>,
    id: u64,
    waker: Waker,
}

impl<F: Future> InRequestContext<F> {
    /// Wraps `inner`.
    pub fn new(inner: F) -> InRequestContext<F> {
        let id = NEXT_ID.with(|next| {
            let id = next.get();
            next.set(id + 1);
            id
        });
        SLOTS.with(|slots| slots.borrow_mut().insert(id, Slot::default()));
        InRequestContext { inner: Box::pin(inner), id, waker: Waker::from(Arc::new(SlotWaker(id))) }
    }
}

impl<F: Future> Future for InRequestContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let id = this.id;
        SLOTS.with(|slots| {
            if let Some(slot) = slots.borrow_mut().get_mut(&id) {
                slot.task = Some(cx.waker().clone());
                slot.woken = false;
            }
        });

        let mut inner_cx = Context::from_waker(&this.waker);
        if let Poll::Ready(output) = this.inner.as_mut().poll(&mut inner_cx) {
            retire(id);
            return Poll::Ready(output);
        }

        // A wake-up during the poll came from this run's own code, so the task may be
        // woken directly. Otherwise a promise made here waits for the next one.
        let (woken, armed) = SLOTS.with(|slots| {
            slots.borrow().get(&id).map_or((false, true), |slot| (slot.woken, slot.resolve.is_some()))
        });
        if woken {
            cx.waker().wake_by_ref();
        } else if !armed {
            arm(id);
        }
        Poll::Pending
    }
}

impl<F: Future> Drop for InRequestContext<F> {
    fn drop(&mut self) {
        retire(self.id);
    }
}
