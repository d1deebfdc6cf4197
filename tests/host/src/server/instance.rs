//! One request's instance: the store data that puts the WASI context and each Spin interface's
//! per-instance state together, and the linker that wires them into a component (the role of
//! Spin's `RuntimeFactors`, which aggregates each factor's instance state).
//!
//! This is the only place that knows every interface at once. It does not run the instance
//! (see `invoke.rs`) and holds no state that outlives one request.

use std::sync::Arc;

use anyhow::{anyhow, Result};
use wasmtime::component::{Component, Linker};
use wasmtime_wasi::{WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::{WasiHttpCtxView, WasiHttpView};

use crate::runtime::{engine, LogSink, WasiState};
use crate::spin::kv::{self, KvAccess, KvView};
use crate::spin::outbound::OutboundHooks;
use crate::spin::variables::{self, ComponentVariables, VariablesView};

/// Store data for one request's instance.
pub struct InstanceState {
    wasi: WasiState,
    outbound: OutboundHooks,
    kv: KvAccess,
    vars: Arc<ComponentVariables>,
}

impl InstanceState {
    pub fn new(
        outbound: OutboundHooks,
        kv: KvAccess,
        vars: Arc<ComponentVariables>,
        logs: &LogSink,
    ) -> InstanceState {
        InstanceState {
            wasi: WasiState::new(logs),
            outbound,
            kv,
            vars,
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi.wasi,
            table: &mut self.wasi.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.wasi.http,
            table: &mut self.wasi.table,
            hooks: &mut self.outbound,
        }
    }
}

/// Links everything a Spin http component may import and pre-instantiates it.
pub fn prepare(component: &Component) -> Result<ProxyPre<InstanceState>> {
    let mut linker: Linker<InstanceState> = Linker::new(engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow!("{e:?}"))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| anyhow!("{e:?}"))?;
    kv::add_to_linker(&mut linker, |s| KvView {
        table: &mut s.wasi.table,
        access: &s.kv,
    })?;
    variables::add_to_linker(&mut linker, |s| VariablesView(&s.vars))?;
    // Spin links more interfaces (sqlite, redis, llm, ...); a component importing one of those
    // fails here with wasmtime's "matching implementation was not found" naming it.
    // (`define_unknown_imports_as_traps` is not used: it shadows the semver-matched wasi 0.2.x
    // resources the preview1 adapter imports and breaks type checking.)
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| anyhow!("{e:?}"))?;
    ProxyPre::new(pre).map_err(|e| anyhow!("component is not a wasi:http proxy: {e:?}"))
}
