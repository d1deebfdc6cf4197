//! The WASI context every instance (one request's for p2, several requests' for p3) starts
//! from: its resource table, a `WasiCtx` with stdout and stderr captured into the host's
//! [`LogSink`], and a `WasiHttpCtx`.
//!
//! Spin gives a component no args, no host environment and no preopened directories unless the
//! manifest asks (`environment`, `files`), which this project does not use; neither does this.
//! The Spin interfaces' own per-instance state lives with each interface (`spin/`), not here.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

use super::logs::LogSink;

/// WASI state for one instance.
pub struct WasiState {
    pub table: ResourceTable,
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
}

impl WasiState {
    pub fn new(logs: &LogSink) -> WasiState {
        let wasi = WasiCtxBuilder::new()
            .stdout(logs.clone())
            .stderr(logs.clone())
            .build();
        WasiState {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
        }
    }
}
