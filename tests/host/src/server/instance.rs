//! One instance's state: the store data that puts the WASI context and each Spin interface's
//! per-instance state together, and the linker that wires them into a component (the role of
//! Spin's `RuntimeFactors`, which aggregates each factor's instance state). The linker offers both
//! worlds, WASIp2 with the 2.0.0 Spin interfaces and WASIp3 with the 3.0.0 ones (and the p2 WASI
//! interfaces a p3 component also imports); [`prepare`] tells the two kinds of component apart by
//! their export, as Spin's trigger does.
//!
//! This is the only place that knows every interface at once. It does not run the instance
//! (see `invoke.rs`, `invoke_p3.rs`) and holds no state of its own.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use wasmtime::component::{Component, Linker};
use wasmtime_wasi::{WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::{WasiHttpCtxView, WasiHttpView};
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::{p2, p3};

use crate::runtime::{engine, ComponentLog, LogSink, WasiState};
use crate::spin::kv::{self, KvAccess, KvView};
use crate::spin::outbound::OutboundHooks;
use crate::spin::variables::{self, ComponentVariables, VariablesView};

/// Store data for one instance (one request's for p2, possibly many for p3).
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
        log_dir: Option<&Path>,
        component: &str,
    ) -> InstanceState {
        let stream = |name| ComponentLog::open(logs, log_dir, component, name);
        InstanceState {
            wasi: WasiState::new(stream("stdout"), stream("stderr")),
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

impl p3::WasiHttpView for InstanceState {
    fn http(&mut self) -> p3::WasiHttpCtxView<'_> {
        p3::WasiHttpCtxView {
            ctx: &mut self.wasi.http,
            table: &mut self.wasi.table,
            hooks: &mut self.outbound,
        }
    }
}

/// A component ready to instantiate, by the wasi:http world it exports.
pub enum Prepared {
    /// `wasi:http/incoming-handler@0.2.x`: Spin 3 components (spin-sdk 5).
    P2(ProxyPre<InstanceState>),
    /// `wasi:http/handler@0.3.0-rc-2026-03-15`: Spin 4 components (spin-sdk 6).
    P3(ServicePre<InstanceState>),
}

/// The WASIp3 handler interface this host serves (the one wasmtime 45 and spin-sdk 6 share).
const P3_HANDLER: &str = "wasi:http/handler@0.3.0-rc-2026-03-15";
const P2_HANDLER_PREFIX: &str = "wasi:http/incoming-handler@0.2.";

/// Links everything a Spin http component may import and pre-instantiates it.
pub fn prepare(component: &Component) -> Result<Prepared> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine())
        .map(|(name, _)| name.to_string())
        .collect();
    let is_p3 = exports.iter().any(|e| e == P3_HANDLER);
    if !is_p3 && !exports.iter().any(|e| e.starts_with(P2_HANDLER_PREFIX)) {
        bail!(
            "component is not a wasi:http handler: it exports {exports:?}, not \
             {P2_HANDLER_PREFIX}x nor {P3_HANDLER}"
        );
    }
    let mut linker: Linker<InstanceState> = Linker::new(engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow!("{e:?}"))?;
    p2::add_only_http_to_linker_async(&mut linker).map_err(|e| anyhow!("{e:?}"))?;
    wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(|e| anyhow!("{e:?}"))?;
    p3::add_to_linker(&mut linker).map_err(|e| anyhow!("{e:?}"))?;
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
    if is_p3 {
        let pre = ServicePre::new(pre).map_err(|e| anyhow!("not a {P3_HANDLER} service: {e:?}"))?;
        return Ok(Prepared::P3(pre));
    }
    let pre =
        ProxyPre::new(pre).map_err(|e| anyhow!("component is not a wasi:http proxy: {e:?}"))?;
    Ok(Prepared::P2(pre))
}
