//! Bounded concurrency: a first-in, first-out semaphore, the limiter that several runs
//! share (`createLimiter(n)` in JavaScript), and a notification for calls that wait
//! for budget to be given back.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::transport::WORKERS_MAX_OPEN_REQUESTS;

struct Waiter {
    id: u64,
    waker: Option<Waker>,
    granted: bool,
}

struct State {
    limit: usize,
    in_use: usize,
    max_in_use: usize,
    waiters: VecDeque<Waiter>,
    next_id: u64,
}

/// A first-in, first-out counting semaphore for one thread.
pub struct Semaphore {
    state: RefCell<State>,
}

impl Semaphore {
    /// Creates a semaphore with `limit` permits (at least 1).
    pub fn new(limit: usize) -> Rc<Semaphore> {
        Rc::new(Semaphore {
            state: RefCell::new(State {
                limit: limit.max(1),
                in_use: 0,
                max_in_use: 0,
                waiters: VecDeque::new(),
                next_id: 0,
            }),
        })
    }

    /// The number of permits.
    pub fn limit(&self) -> usize {
        self.state.borrow().limit
    }

    /// Permits held right now.
    pub fn in_use(&self) -> usize {
        self.state.borrow().in_use
    }

    /// The most permits ever held at once.
    pub fn max_in_use(&self) -> usize {
        self.state.borrow().max_in_use
    }

    /// Waits for a permit. Waiters are served in arrival order.
    pub fn acquire(self: &Rc<Self>) -> Acquire {
        Acquire { sem: self.clone(), id: None, done: false }
    }

    fn release(&self) {
        let waker = {
            let mut state = self.state.borrow_mut();
            state.in_use -= 1;
            Self::grant_next(&mut state)
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Hands a free permit to the first waiter that has not been granted one yet.
    fn grant_next(state: &mut State) -> Option<Waker> {
        if state.in_use >= state.limit {
            return None;
        }
        let waiter = state.waiters.iter_mut().find(|w| !w.granted)?;
        waiter.granted = true;
        state.in_use += 1;
        state.max_in_use = state.max_in_use.max(state.in_use);
        waiter.waker.take()
    }
}

/// Held while a request is open; dropping it frees the slot.
pub struct Permit {
    sem: Rc<Semaphore>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.sem.release();
    }
}

/// Resolves to a [`Permit`].
#[must_use = "futures do nothing unless polled"]
pub struct Acquire {
    sem: Rc<Semaphore>,
    id: Option<u64>,
    done: bool,
}

impl Future for Acquire {
    type Output = Permit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        let sem = self.sem.clone();
        let mut state = sem.state.borrow_mut();
        match self.id {
            None => {
                if state.in_use < state.limit && state.waiters.is_empty() {
                    state.in_use += 1;
                    state.max_in_use = state.max_in_use.max(state.in_use);
                    drop(state);
                    self.done = true;
                    return Poll::Ready(Permit { sem });
                }
                let id = state.next_id;
                state.next_id += 1;
                state.waiters.push_back(Waiter { id, waker: Some(cx.waker().clone()), granted: false });
                drop(state);
                self.id = Some(id);
                Poll::Pending
            }
            Some(id) => {
                let pos = state.waiters.iter().position(|w| w.id == id).expect("waiter is queued");
                if state.waiters[pos].granted {
                    state.waiters.remove(pos);
                    drop(state);
                    self.done = true;
                    self.id = None;
                    Poll::Ready(Permit { sem })
                } else {
                    state.waiters[pos].waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let Some(id) = self.id else { return };
        let waker = {
            let mut state = self.sem.state.borrow_mut();
            let Some(pos) = state.waiters.iter().position(|w| w.id == id) else { return };
            let waiter = state.waiters.remove(pos).expect("position is valid");
            if waiter.granted {
                // The permit was handed over but never taken: pass it on.
                state.in_use -= 1;
                Semaphore::grant_next(&mut state)
            } else {
                None
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// When each provider may be called again after a rate limit, shared by every call
/// that sees it.
#[derive(Default)]
pub struct Cooldowns {
    until: RefCell<Vec<(u32, f64)>>,
}

impl Cooldowns {
    /// The time before which calls to `provider` must wait, if any.
    pub fn until(&self, provider: u32) -> Option<f64> {
        self.until.borrow().iter().find(|(id, _)| *id == provider).map(|(_, t)| *t)
    }

    /// Pushes the cool-down of `provider` out to `until` (never pulls it in).
    pub fn extend(&self, provider: u32, until: f64) {
        let mut list = self.until.borrow_mut();
        match list.iter_mut().find(|(id, _)| *id == provider) {
            Some(entry) => entry.1 = entry.1.max(until),
            None => list.push((provider, until)),
        }
    }
}

/// A limit on open requests shared by several runs, with their shared cool-downs.
pub struct Limiter {
    /// The open-request permits.
    pub semaphore: Rc<Semaphore>,
    /// On Cloudflare Workers, the connection cap shared by every run that uses this
    /// limiter, so runs that share a limiter never open more than
    /// [`WORKERS_MAX_OPEN_REQUESTS`] requests together.
    pub workers_cap: Rc<Semaphore>,
    /// Rate-limit cool-downs seen by any run using this limiter.
    pub cooldowns: Cooldowns,
    /// Runs currently using the limiter.
    pub runs: Cell<usize>,
}

impl Limiter {
    /// Creates a limiter with `limit` open requests.
    pub fn new(limit: usize) -> Rc<Limiter> {
        Rc::new(Limiter {
            semaphore: Semaphore::new(limit),
            workers_cap: Semaphore::new(WORKERS_MAX_OPEN_REQUESTS),
            cooldowns: Cooldowns::default(),
            runs: Cell::new(0),
        })
    }
}

/// Wakes every waiter when something they wait for may have changed (budget given
/// back). A waiter that starts after a notification waits for the next one.
#[derive(Default)]
pub struct Notify {
    generation: Cell<u64>,
    wakers: RefCell<Vec<Waker>>,
}

impl Notify {
    /// Wakes every current waiter.
    pub fn notify_all(&self) {
        self.generation.set(self.generation.get() + 1);
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for waker in wakers {
            waker.wake();
        }
    }

    /// Returns a future that resolves at the next [`Notify::notify_all`].
    pub fn notified(&self) -> Notified<'_> {
        Notified { notify: self, generation: self.generation.get() }
    }
}

/// Resolves at the first notification after it was created.
#[must_use = "futures do nothing unless polled"]
pub struct Notified<'a> {
    notify: &'a Notify,
    generation: u64,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.generation.get() != self.generation {
            return Poll::Ready(());
        }
        let mut wakers = self.notify.wakers.borrow_mut();
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_executor::LocalPool;
    use futures_util::task::LocalSpawnExt;

    #[test]
    fn semaphore_caps_and_serves_in_order() {
        let sem = Semaphore::new(2);
        let order = Rc::new(RefCell::new(Vec::new()));
        let mut pool = LocalPool::new();
        let gate = crate::schedule::cancel::CancelToken::new();
        for i in 0..5 {
            let sem = sem.clone();
            let order = order.clone();
            let gate = gate.clone();
            pool.spawner()
                .spawn_local(async move {
                    let _permit = sem.acquire().await;
                    order.borrow_mut().push(i);
                    gate.cancelled().await;
                })
                .unwrap();
        }
        pool.run_until_stalled();
        assert_eq!(*order.borrow(), vec![0, 1]);
        assert_eq!(sem.in_use(), 2);
        gate.cancel(crate::schedule::cancel::CancelReason::Decided);
        pool.run_until_stalled();
        assert_eq!(*order.borrow(), vec![0, 1, 2, 3, 4]);
        assert_eq!(sem.max_in_use(), 2);
        assert_eq!(sem.in_use(), 0);
    }

    #[test]
    fn dropped_waiter_passes_its_grant_on() {
        let sem = Semaphore::new(1);
        let first = sem.acquire();
        let mut pool = LocalPool::new();
        let permit = pool.run_until(first);
        let mut second = Box::pin(sem.acquire());
        let third_done = Rc::new(Cell::new(false));
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(second.as_mut().poll(&mut cx).is_pending());
        let s = sem.clone();
        let t = third_done.clone();
        pool.spawner()
            .spawn_local(async move {
                let _p = s.acquire().await;
                t.set(true);
            })
            .unwrap();
        pool.run_until_stalled();
        drop(permit);
        // The grant went to `second`, which is dropped without taking it.
        drop(second);
        pool.run_until_stalled();
        assert!(third_done.get());
        assert_eq!(sem.in_use(), 0);
    }

    #[test]
    fn cooldown_only_grows() {
        let c = Cooldowns::default();
        c.extend(1, 100.0);
        c.extend(1, 50.0);
        assert_eq!(c.until(1), Some(100.0));
        assert_eq!(c.until(2), None);
    }
}
