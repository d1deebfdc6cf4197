//! The Spin host interfaces a component can import, each independent of the others and of the
//! HTTP server: `fermyon:spin/variables` ([`variables`]), `fermyon:spin/key-value` ([`kv`]), and
//! outbound wasi:http limited by `allowed_outbound_hosts` ([`outbound`], [`allowed_hosts`]).
//!
//! Each one holds its own per-instance state and links itself into a wasmtime `Linker` through a
//! view function, the way Spin's factors each own their part of the instance state; the server
//! puts the parts together (`server/instance.rs`). Nothing here routes or serves HTTP.

pub mod allowed_hosts;
pub mod kv;
pub mod outbound;
pub mod variables;
