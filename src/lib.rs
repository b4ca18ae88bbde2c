//! Runs LLM calls in parallel and combines their results by code.
//!
//! Two forms of the parallelization pattern:
//!
//! - **Sectioning** ([`sectioning`]): independent subtasks run concurrently and their
//!   outputs are merged; subtasks that depend on others run as a DAG, each as soon as
//!   its own dependencies finish.
//! - **Voting** ([`voting`]): the same task runs several times, or as several
//!   strategies, and the answers are aggregated by rules such as plurality, majority,
//!   k-of-n, first-to-k, ahead-by-k with early stopping, Borda and weighted scoring.
//!
//! The core is single-threaded futures. Every request goes through the [`transport`]
//! seam: in WebAssembly that is the host's `fetch`, `setTimeout` and `AbortController`
//! (see `src/wasm`); native tests use a scripted, virtual-time host. Nothing here
//! needs `Send`: a JavaScript isolate runs one thread, so everything is `Rc` and
//! `RefCell`.
//!
//! The JavaScript API (`section`, `vote`, `aggregate`, `complete` and the provider
//! constructors) is described in the npm package's `index.d.ts`.
#![deny(missing_docs)]

pub mod batch;
pub mod complete;
pub mod decode;
pub mod jsonout;
pub mod jsontext;
pub mod outcome;
pub mod error;
pub mod provider;
pub mod registry;
pub mod report;
pub mod schedule;
pub mod sectioning;
pub mod task;
pub mod transport;
pub mod voting;

#[cfg(test)]
pub mod sim;

#[cfg(target_arch = "wasm32")]
mod wasm;

pub use error::{Code, Error, Result};
