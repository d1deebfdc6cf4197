//! `spin-test-host`: runs the project's real `.wasm` components the way `spin up` would, for
//! tests on a machine without the `spin` CLI. It reads a Spin manifest, serves HTTP on
//! 127.0.0.1, and gives each request an instance with wasi:http, Spin's variables and key-value
//! (SQLite, or Redis through a runtime config), enforcing `allowed_outbound_hosts`: a fresh one
//! for a WASIp2 (Spin 3) component, a reused one for a WASIp3 (Spin 4) component, as Spin 4
//! does. [`mock`] holds the fake token endpoint and upstream API the
//! component tests talk to; [`RedisServer`] starts a real redis-server for them.
//!
//! The modules are layered, each using only those below it (see `ARCHITECTURE.md` in this
//! crate): the app description (`manifest`, `template`, `options`, `runtime_config`), `runtime` (wasmtime: compile,
//! logs, the WASI context), `spin` (the Spin host interfaces), `server` (routing, instances,
//! HTTP), and [`SpinHost`] on top. `build` compiles the wasm; `mock` stands apart. This file
//! only declares modules and re-exports the public entry points.

mod build;
mod host;
pub mod manifest;
pub mod mock;
mod options;
mod redis_server;
mod runtime;
mod runtime_config;
mod server;
mod spin;
mod template;

pub use build::{build_probe, build_probe_p3, build_wasm, build_wasm_p3, project_root};
pub use host::SpinHost;
pub use options::{
    HostOptions, DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT, DEFAULT_MAX_INSTANCE_REUSE_COUNT,
};
pub use redis_server::RedisServer;
pub use runtime::componentize;
pub use runtime_config::KeyValueStore;
pub use server::ServedRequest;
pub use spin::kv::KvFailures;
