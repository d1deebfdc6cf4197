//! The Spin host interfaces a component can import, each independent of the others and of the
//! HTTP server: variables ([`variables`]: `fermyon:spin/variables@2.0.0` and Spin 4's
//! `spin:variables/variables@3.0.0`), key-value ([`kv`]: `fermyon:spin/key-value@2.0.0` and
//! `spin:key-value/key-value@3.0.0`), and outbound wasi:http limited by `allowed_outbound_hosts`
//! ([`outbound`] for p2 and the policy, [`outbound_p3`] for p3, [`allowed_hosts`]).
//!
//! Each one holds its own per-instance state and links itself into a wasmtime `Linker` through a
//! view function, the way Spin's factors each own their part of the instance state; the server
//! puts the parts together (`server/instance.rs`). Nothing here routes or serves HTTP.

pub mod allowed_hosts;
pub mod kv;
pub mod outbound;
pub mod outbound_p3;
pub mod variables;
