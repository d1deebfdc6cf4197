//! The proxy's pure core, compiled natively for libFuzzer: its modules are included by path
//! under the same names, so their `crate::` paths resolve here as in the proxy, and the proxy
//! itself stays a `cdylib` (a crate type the fuzz targets could not link). Only the pure
//! modules the properties need; nothing here touches Spin.
//!
//! `checks` holds the properties, shared with the proxy's unit tests (`src/properties.rs`).

#![allow(dead_code)]

#[path = "../../src/config.rs"]
pub mod config;
#[path = "../../src/error.rs"]
pub mod error;
#[path = "../../src/origins.rs"]
pub mod origins;
#[path = "../../src/path.rs"]
pub mod path;
#[path = "../../src/routes.rs"]
pub mod routes;
#[path = "../../src/scrub.rs"]
pub mod scrub;
#[path = "../../src/secret.rs"]
pub mod secret;
#[path = "../../src/target.rs"]
pub mod target;
#[path = "../../src/token/mod.rs"]
pub mod token;

#[path = "../../tests/properties/checks.rs"]
pub mod checks;
