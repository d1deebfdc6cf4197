//! The Spin host interfaces a component can import, each independent of the others and of the
//! HTTP server: variables ([`variables`]: `fermyon:spin/variables@2.0.0` and Spin 4's
//! `spin:variables/variables@3.0.0`), key-value ([`kv`]: `fermyon:spin/key-value@2.0.0` and
//! `spin:key-value/key-value@3.0.0`), and outbound wasi:http limited by `allowed_outbound_hosts`
//! ([`outbound`] for p2 and the policy, [`outbound_p3`] for p3, [`allowed_hosts`]), sent on
//! the app's pooled connections ([`http_client`]).
//!
//! Each one holds its own per-instance state and links itself into a wasmtime `Linker` through a
//! view function, the way Spin's factors each own their part of the instance state; the server
//! puts the parts together (`server/instance.rs`). Nothing here routes or serves HTTP.
//!
//! Where Spin's host code blocks a thread (its SQLite store, its environment variables
//! provider), this code does so the same way, through [`blocking`].

pub mod allowed_hosts;
pub mod http_client;
pub mod kv;
pub mod outbound;
pub mod outbound_p3;
pub mod variables;

use anyhow::{Context, Result};

/// Runs `f` where it may block: in place on a multi-threaded runtime (`block_in_place`, which on
/// a worker hands the worker's other tasks to another thread), as Spin's SQLite store and
/// environment variables provider do, and on the blocking pool under a current-thread runtime
/// (the host's own unit tests), where blocking in place would panic.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => Ok(tokio::task::block_in_place(f)),
        _ => tokio::task::spawn_blocking(f)
            .await
            .context("blocking task failed"),
    }
}
