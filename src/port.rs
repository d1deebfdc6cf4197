//! What the core's I/O ports return: [`Io`], a boxed future, so a port stays a `dyn` trait that
//! each edge implements its own way and tests fake without a runtime.
//!
//! The default build's ports finish without ever waiting on the executor (Spin gives each of its
//! requests an instance of its own, so a blocking call holds up nobody); the Spin 4 build's really
//! wait, and its instance serves other requests meanwhile. The core is written once for both.
//! This module holds no I/O itself.

use std::future::Future;
use std::pin::Pin;

/// A port's pending answer, borrowing from the port and its arguments.
pub type Io<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// An answer the port already has: the default build's ports do their work when called and
/// return this, which keeps a state machine per port out of its size-budgeted wasm.
pub use std::future::ready;

/// Runs a future to its end on this thread: the unit tests' executor.
#[cfg(test)]
pub fn block_on<F: Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}
