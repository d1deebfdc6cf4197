//! The WASI context every instance (one request's for p2, several requests' for p3) starts
//! from: its resource table, a `WasiCtx` with stdout and stderr going to the component's log
//! files and the host's log buffer ([`ComponentLog`]), and a `WasiHttpCtx`.
//!
//! Spin gives a component no args, no host environment and no preopened directories unless the
//! manifest asks (`environment`, `files`), which this project does not use; neither does this.
//! The Spin interfaces' own per-instance state lives with each interface (`spin/`), not here.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

use super::logs::ComponentLog;

/// WASI state for one instance.
pub struct WasiState {
    pub table: ResourceTable,
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
}

impl WasiState {
    pub fn new(stdout: ComponentLog, stderr: ComponentLog) -> WasiState {
        let wasi = WasiCtxBuilder::new().stdout(stdout).stderr(stderr).build();
        WasiState {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
        }
    }
}
