//! The wasmtime side: one shared `Engine`, turning a wasip1 core module into a component with the
//! preview1 *reactor* adapter (what Spin does at load time), compiling and caching components,
//! the linker with wasi:cli/io/clocks/random (p2), wasi:http and the two Spin interfaces, and the
//! per-request store data `Ctx` with its stdout/stderr captured into the host's log buffer.
//!
//! Compiled components are cached in the process (by path, mtime and size) and on disk next to
//! the wasm (`.spin-test-host-cache/*.cwasm`, keyed by a hash of the component bytes and the
//! engine's compatibility hash), because every test binary is its own process and Cranelift on
//! 2 cores takes seconds per component. It does not route or serve HTTP (see `server.rs`).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::SystemTime;

use anyhow::{anyhow, Context, Result};
use tokio::io::AsyncWrite;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::kv::KvAccess;
use crate::outbound::OutboundHooks;
use crate::variables::ComponentVariables;

/// Store data for one request's instance.
pub struct Ctx {
    pub table: ResourceTable,
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub hooks: OutboundHooks,
    pub kv: KvAccess,
    pub vars: Arc<ComponentVariables>,
}

impl Ctx {
    pub fn new(
        hooks: OutboundHooks,
        kv: KvAccess,
        vars: Arc<ComponentVariables>,
        logs: &LogSink,
    ) -> Ctx {
        // Spin gives a component no args, no host env and no preopened dirs unless the manifest
        // asks (`environment`, `files`), which this project does not use.
        let wasi = WasiCtxBuilder::new()
            .stdout(logs.clone())
            .stderr(logs.clone())
            .build();
        Ctx {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            hooks,
            kv,
            vars,
        }
    }
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Ctx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The process-wide engine (async is always on in this wasmtime).
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let config = Config::new();
        Engine::new(&config).unwrap_or_else(|e| panic!("cannot create wasmtime engine: {e:?}"))
    })
}

/// Wraps a core wasm module into a component with the wasi preview1 reactor adapter; component
/// bytes pass through unchanged.
pub fn componentize(bytes: &[u8]) -> Result<Vec<u8>> {
    // Core modules have version 1 in the preamble; components use a different layer/version.
    let is_core_module =
        bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0];
    if !is_core_module {
        return Ok(bytes.to_vec());
    }
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(bytes)
        .context("cannot read core module")?
        .adapter(
            "wasi_snapshot_preview1",
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .context("cannot add the preview1 reactor adapter")?
        .encode()
        .context("cannot encode the component")
}

/// Loads, componentizes and compiles the wasm at `path`, using the in-process and disk caches.
pub fn load_component(path: &Path) -> Result<Component> {
    type Key = (PathBuf, SystemTime, u64);
    static CACHE: OnceLock<Mutex<HashMap<Key, Component>>> = OnceLock::new();
    let meta = std::fs::metadata(path)
        .with_context(|| format!("component source {} not found", path.display()))?;
    let key = (
        path.to_path_buf(),
        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        meta.len(),
    );
    let cache = CACHE.get_or_init(Default::default);
    if let Some(c) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(c.clone());
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bytes =
        componentize(&bytes).with_context(|| format!("componentizing {}", path.display()))?;
    let component = compile_cached(path, &bytes)?;
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, component.clone());
    Ok(component)
}

fn compile_cached(path: &Path, bytes: &[u8]) -> Result<Component> {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    engine().precompile_compatibility_hash().hash(&mut h);
    let dir = path
        .parent()
        .unwrap_or(Path::new("."))
        .join(".spin-test-host-cache");
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = dir.join(format!("{stem}-{:016x}.cwasm", h.finish()));
    if file.exists() {
        // SAFETY: the file was written by `Component::serialize` below for this engine
        // configuration (its compatibility hash is part of the name); wasmtime also checks the
        // header and refuses incompatible artifacts.
        if let Ok(c) = unsafe { Component::deserialize_file(engine(), &file) } {
            return Ok(c);
        }
    }
    let component = Component::new(engine(), bytes)
        .map_err(|e| anyhow!("{e:?}"))
        .with_context(|| format!("compiling {}", path.display()))?;
    // The disk cache is an optimisation: failing to write it is not an error.
    if let Ok(serialized) = component.serialize() {
        let tmp = file.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::create_dir_all(&dir).is_ok() && std::fs::write(&tmp, serialized).is_ok() {
            remove_stale(&dir, &stem);
            let _ = std::fs::rename(&tmp, &file);
        }
    }
    Ok(component)
}

/// Drops earlier compilations of the same wasm file so the cache does not grow per rebuild.
fn remove_stale(dir: &Path, stem: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rest = name.strip_prefix(stem).and_then(|r| r.strip_prefix('-'));
        if rest.is_some_and(|r| r.len() == 16 + ".cwasm".len() && r.ends_with(".cwasm")) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Links everything a Spin http component may import and pre-instantiates it.
pub fn prepare(component: &Component) -> Result<ProxyPre<Ctx>> {
    let mut linker: Linker<Ctx> = Linker::new(engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow!("{e:?}"))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| anyhow!("{e:?}"))?;
    crate::bindings::fermyon::spin::key_value::add_to_linker::<Ctx, HasSelf<Ctx>>(
        &mut linker,
        |c| c,
    )
    .map_err(|e| anyhow!("{e:?}"))?;
    crate::bindings::fermyon::spin::variables::add_to_linker::<Ctx, HasSelf<Ctx>>(
        &mut linker,
        |c| c,
    )
    .map_err(|e| anyhow!("{e:?}"))?;
    // Spin links more interfaces (sqlite, redis, llm, ...); a component importing one of those
    // fails here with wasmtime's "matching implementation was not found" naming it.
    // (`define_unknown_imports_as_traps` is not used: it shadows the semver-matched wasi 0.2.x
    // resources the preview1 adapter imports and breaks type checking.)
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| anyhow!("{e:?}"))?;
    ProxyPre::new(pre).map_err(|e| anyhow!("component is not a wasi:http proxy: {e:?}"))
}

/// The shared buffer all instances' stdout and stderr go to.
#[derive(Clone, Default)]
pub struct LogSink {
    buf: Arc<Mutex<Vec<u8>>>,
    echo: bool,
}

impl LogSink {
    /// `SPIN_TEST_HOST_ECHO=1` also copies everything to the real stderr.
    pub fn new() -> LogSink {
        LogSink {
            buf: Arc::default(),
            echo: std::env::var("SPIN_TEST_HOST_ECHO").is_ok_and(|v| v == "1"),
        }
    }

    pub fn write(&self, bytes: &[u8]) {
        self.buf
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        if self.echo {
            let _ = std::io::stderr().write_all(bytes);
        }
    }

    /// Appends a host-side line (guest traps, request errors).
    pub fn host_line(&self, line: &str) {
        self.write(format!("[spin-test-host] {line}\n").as_bytes());
    }

    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl IsTerminal for LogSink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogSink {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for LogSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_pass_through_componentize() {
        let component_preamble = b"\0asm\x0d\0\x01\0".to_vec();
        assert_eq!(
            componentize(&component_preamble).unwrap(),
            component_preamble
        );
        assert!(componentize(b"\0asm\x01\0\0\0garbage").is_err());
    }

    #[test]
    fn log_sink_collects_writes() {
        let sink = LogSink::new();
        sink.write(b"hello ");
        sink.clone().write(b"world");
        assert_eq!(sink.contents(), "hello world");
    }
}
