//! What the host runs and with which settings: the manifest, app variable overrides, the state
//! directory, the runtime config and key-value stores, where the wasm is found, and how far
//! WASIp3 instances are reused. Plain data, the role of `spin up`'s command line; it does not
//! load or validate anything.

use std::path::PathBuf;

use crate::runtime_config::KeyValueStore;

/// What to run and with which settings.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The `spin.toml` to load.
    pub manifest: PathBuf,
    /// App variable overrides, the role of `spin up --variable` (Spin's first provider, before
    /// the process's `SPIN_VARIABLE_<NAME>` and the defaults).
    pub variables: Vec<(String, String)>,
    /// Spin's `.spin` directory: the default key-value store is
    /// `<state_dir>/sqlite_key_value.db`.
    pub state_dir: PathBuf,
    /// `spin up --runtime-config-file`: its `[key_value_store.*]` tables choose each label's
    /// store (SQLite or Redis), its `[outbound_http]` table the outbound connection pool.
    pub runtime_config: Option<PathBuf>,
    /// Stores chosen in code; for the same label they win over the runtime config file.
    pub key_value_stores: Vec<(String, KeyValueStore)>,
    /// When set, each component's `source` is looked up by file name in this directory.
    pub wasm_dir: Option<PathBuf>,
    /// `spin up --max-instance-reuse-count`: how many requests one instance of a WASIp3
    /// component serves before it is dropped (WASIp2 components always get a fresh instance).
    pub max_instance_reuse_count: usize,
    /// `spin up --max-instance-concurrent-reuse-count`: how many requests one instance of a
    /// WASIp3 component serves at the same time.
    pub max_instance_concurrent_reuse_count: usize,
    /// Whether accepted connections keep Nagle's algorithm (default: off, `TCP_NODELAY` set).
    /// Spin 4.0.2 sets no socket option, so this is a calibration, not a copy: under a real
    /// Spin 4.0.2 on this kind of machine a WASIp3 hello world answers 13.3k requests/s, 2.0x a
    /// WASIp2 one, so its answers do not wait on the client's delayed ACK. In this host, with
    /// Nagle on, hyper writes such an answer's head before the guest's body reaches it, and the
    /// body then waits for that ACK (about 40 ms on Linux): every WASIp3 hello world took 44 ms
    /// (190 requests/s). With `TCP_NODELAY` it does not wait (the bench reports the pair as
    /// (h4) and (k0) in every run with the Spin 4 build). On shows that wait.
    pub nagle: bool,
}

/// Spin 4's default `--max-instance-reuse-count` for WASIp3 components.
pub const DEFAULT_MAX_INSTANCE_REUSE_COUNT: usize = 128;
/// Spin 4's default `--max-instance-concurrent-reuse-count` for WASIp3 components.
pub const DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT: usize = 16;

impl HostOptions {
    pub fn new(manifest: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Self {
        HostOptions {
            manifest: manifest.into(),
            variables: Vec::new(),
            state_dir: state_dir.into(),
            runtime_config: None,
            key_value_stores: Vec::new(),
            wasm_dir: None,
            max_instance_reuse_count: DEFAULT_MAX_INSTANCE_REUSE_COUNT,
            max_instance_concurrent_reuse_count: DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT,
            nagle: false,
        }
    }

    /// As `spin up --max-instance-reuse-count N` (at least 1; 1 gives every request of a
    /// WASIp3 component a fresh instance).
    pub fn max_instance_reuse_count(mut self, n: usize) -> Self {
        self.max_instance_reuse_count = n;
        self
    }

    /// As `spin up --max-instance-concurrent-reuse-count N` (at least 1).
    pub fn max_instance_concurrent_reuse_count(mut self, n: usize) -> Self {
        self.max_instance_concurrent_reuse_count = n;
        self
    }

    /// Keeps Nagle's algorithm on accepted connections (see [`HostOptions::nagle`]).
    pub fn nagle(mut self, on: bool) -> Self {
        self.nagle = on;
        self
    }

    /// Overrides app variable `name` (as `spin up --variable name=value` would).
    pub fn variable(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.push((name.into(), value.into()));
        self
    }

    pub fn wasm_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.wasm_dir = Some(dir.into());
        self
    }

    /// Reads key-value store settings from a runtime config file, as
    /// `spin up --runtime-config-file` does.
    pub fn runtime_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.runtime_config = Some(path.into());
        self
    }

    /// Puts key-value label `label` in `store`, e.g.
    /// `.key_value_store("default", KeyValueStore::redis(redis.url()))`; two hosts given the
    /// same Redis share one store, as two `spin up` processes would.
    pub fn key_value_store(mut self, label: impl Into<String>, store: KeyValueStore) -> Self {
        self.key_value_stores.push((label.into(), store));
        self
    }
}
