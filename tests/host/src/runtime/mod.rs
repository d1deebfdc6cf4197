//! The bottom layer: wasmtime itself. Compiling components ([`compile`]), the log buffer their
//! output goes to ([`logs`]) and the per-request WASI context ([`context`]). It knows nothing of
//! Spin's interfaces, manifests or HTTP routing.

pub mod compile;
pub mod context;
pub mod error_code;
pub mod logs;

pub use compile::{componentize, engine, load_component};
pub use context::WasiState;
pub use logs::{ComponentLog, LogSink};
