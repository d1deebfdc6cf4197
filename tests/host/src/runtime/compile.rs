//! Turning a `.wasm` file into a compiled wasmtime `Component`: the one process-wide `Engine`,
//! wrapping a wasip1 core module into a component with the preview1 *reactor* adapter (what Spin
//! does at load time), and compiling with two caches.
//!
//! Compiled components are cached in the process (by path, mtime and size) and on disk next to
//! the wasm (`.spin-test-host-cache/*.cwasm`, keyed by a hash of the component bytes and the
//! engine's compatibility hash), because every test binary is its own process and Cranelift on
//! 2 cores takes seconds per component. It does not link or run anything (see
//! `server/instance.rs`).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use anyhow::{anyhow, Context, Result};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The process-wide engine (async is always on in this wasmtime). The component model's async
/// ABI is enabled, as in Spin 4's engine, so WASIp3 components load next to WASIp2 ones; and
/// instances come from wasmtime's pooling allocator with `spin up`'s default limits, as in Spin
/// (`crates/core`) wherever the machine can reserve the address space for it. What a fresh
/// instance per request costs depends on it: without the pool every instance maps and unmaps
/// its memory and stack.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.wasm_component_model_async(true);
        if pool_fits() {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(spin_pool()));
        }
        Engine::new(&config).unwrap_or_else(|e| panic!("cannot create wasmtime engine: {e:?}"))
    })
}

/// `spin up`'s pool (Spin 4.0.2, none of its `SPIN_WASMTIME_*` overrides set): room for 1,000
/// instances at once, each with up to 4 GiB of memory, keeping 2 MiB of a freed memory and
/// 512 KiB of a freed table resident for the next instance.
fn spin_pool() -> PoolingAllocationConfig {
    const MIB: usize = 1 << 20;
    const INSTANCES: u32 = 1_000;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(INSTANCES)
        .total_memories(INSTANCES)
        .total_tables(2 * INSTANCES)
        .total_stacks(INSTANCES)
        .total_core_instances(4 * INSTANCES)
        .table_elements(100_000)
        .max_component_instance_size(10 * MIB)
        .max_core_instance_size(10 * MIB)
        .max_core_instances_per_component(200)
        .max_tables_per_component(64)
        .max_memories_per_component(32)
        .max_tables_per_module(2)
        .max_memories_per_module(2)
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(2 * MIB)
        .table_keep_resident(MIB / 2);
    pool
}

/// Whether this machine can reserve a 2^42-byte memory: Spin's own test before it turns the
/// pool on (a machine with a small address-space limit runs without it, as Spin does).
fn pool_fits() -> bool {
    const BITS: u32 = 42;
    let mut config = Config::new();
    config.wasm_memory64(true);
    config.memory_reservation(1 << BITS);
    let Ok(engine) = Engine::new(&config) else {
        return false;
    };
    let mut store = wasmtime::Store::new(&engine, ());
    let ty = wasmtime::MemoryType::new64(0, Some(1 << (BITS - 16)));
    wasmtime::Memory::new(&mut store, ty).is_ok()
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
}
