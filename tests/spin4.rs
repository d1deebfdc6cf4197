//! The whole component suite against the Spin 4 native build (`wasm32-wasip2`, a WASIp3
//! component that the test host serves as Spin 4 does, reusing instances). Each file is the
//! same file the default build's test binary runs; `common::spin4()` tells them apart by this
//! crate's name. A test whose expectation differs between the builds says so where it asserts.

// Each file declares its own `mod common` (it is a crate of its own under the default build),
// so here the shared helpers are compiled once per file, which lets the files stay unchanged.
// Their statics are once per file too: `common::wasm_dir` is written so that several first
// calls at once are safe.
#![allow(clippy::duplicate_mod)]

#[path = "access_log.rs"]
mod access_log;
#[path = "browser.rs"]
mod browser;
#[path = "fleet.rs"]
mod fleet;
#[path = "flotiq_routes.rs"]
mod flotiq_routes;
#[path = "hostile.rs"]
mod hostile;
#[path = "policy.rs"]
mod policy;
#[path = "response_cache.rs"]
mod response_cache;
#[path = "streaming.rs"]
mod streaming;
#[path = "token_flow.rs"]
mod token_flow;

// Only the Spin 4 build can bound a dead store's wait.
#[path = "spin4_only/redis_outage.rs"]
mod redis_outage;
