//! Cancellation for a run. A run owns one token; firing it wakes every future that
//! waits on it, and the run then drops its pending calls, which aborts their requests.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::transport::AbortReason;

/// Why a run, or a part of it, was cancelled.
#[derive(Clone)]
pub enum CancelReason {
    /// The caller's signal aborted.
    Aborted(AbortReason),
    /// The run's deadline passed.
    Deadline,
    /// A vote was settled, so the remaining samples cannot change it.
    Decided,
    /// A required subtask failed under `failure: "fail-fast"`, or a quorum became
    /// impossible.
    Stopped,
}

struct Inner {
    reason: Option<CancelReason>,
    wakers: Vec<Option<Waker>>,
    callbacks: Vec<Box<dyn FnOnce()>>,
}

/// A shared, single-threaded cancellation token.
#[derive(Clone)]
pub struct CancelToken(Rc<RefCell<Inner>>);

impl Default for CancelToken {
    fn default() -> Self {
        CancelToken::new()
    }
}

impl CancelToken {
    /// Creates a token that has not fired.
    pub fn new() -> CancelToken {
        CancelToken(Rc::new(RefCell::new(Inner {
            reason: None,
            wakers: Vec::new(),
            callbacks: Vec::new(),
        })))
    }

    /// Fires the token. Only the first reason is kept.
    pub fn cancel(&self, reason: CancelReason) {
        let (wakers, callbacks) = {
            let mut inner = self.0.borrow_mut();
            if inner.reason.is_some() {
                return;
            }
            inner.reason = Some(reason);
            (std::mem::take(&mut inner.wakers), std::mem::take(&mut inner.callbacks))
        };
        // Wake and call back outside the borrow: a callback may look at the token.
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
        for callback in callbacks {
            callback();
        }
    }

    /// The reason, once fired.
    pub fn reason(&self) -> Option<CancelReason> {
        self.0.borrow().reason.clone()
    }

    /// Whether the token has fired.
    pub fn is_cancelled(&self) -> bool {
        self.0.borrow().reason.is_some()
    }

    /// Runs `callback` when the token fires (at once if it already has).
    pub fn on_cancel(&self, callback: Box<dyn FnOnce()>) {
        if self.is_cancelled() {
            callback();
        } else {
            self.0.borrow_mut().callbacks.push(callback);
        }
    }

    /// A future that resolves when the token fires.
    pub fn cancelled(&self) -> Cancelled {
        Cancelled { token: self.clone(), slot: None }
    }
}

/// Resolves when its token fires.
#[must_use = "futures do nothing unless polled"]
pub struct Cancelled {
    token: CancelToken,
    slot: Option<usize>,
}

impl Future for Cancelled {
    type Output = CancelReason;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CancelReason> {
        let token = self.token.clone();
        let mut inner = token.0.borrow_mut();
        if let Some(reason) = &inner.reason {
            return Poll::Ready(reason.clone());
        }
        match self.slot {
            Some(slot) => inner.wakers[slot] = Some(cx.waker().clone()),
            None => {
                let slot = match inner.wakers.iter().position(Option::is_none) {
                    Some(free) => free,
                    None => {
                        inner.wakers.push(None);
                        inner.wakers.len() - 1
                    }
                };
                inner.wakers[slot] = Some(cx.waker().clone());
                drop(inner);
                self.slot = Some(slot);
            }
        }
        Poll::Pending
    }
}

impl Drop for Cancelled {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            if let Ok(mut inner) = self.token.0.try_borrow_mut() {
                if let Some(entry) = inner.wakers.get_mut(slot) {
                    *entry = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_executor::LocalPool;
    use futures_util::task::LocalSpawnExt;
    use std::cell::Cell;

    #[test]
    fn cancel_wakes_waiters_once() {
        let token = CancelToken::new();
        let woke = Rc::new(Cell::new(0));
        let mut pool = LocalPool::new();
        for _ in 0..3 {
            let t = token.clone();
            let w = woke.clone();
            pool.spawner()
                .spawn_local(async move {
                    t.cancelled().await;
                    w.set(w.get() + 1);
                })
                .unwrap();
        }
        pool.run_until_stalled();
        assert_eq!(woke.get(), 0);
        token.cancel(CancelReason::Decided);
        token.cancel(CancelReason::Deadline);
        pool.run_until_stalled();
        assert_eq!(woke.get(), 3);
        assert!(matches!(token.reason(), Some(CancelReason::Decided)));
    }

    #[test]
    fn callback_runs_at_once_when_already_cancelled() {
        let token = CancelToken::new();
        token.cancel(CancelReason::Stopped);
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        token.on_cancel(Box::new(move || r.set(true)));
        assert!(ran.get());
    }
}
