//! What the host runs and with which settings: the manifest, app variable overrides, where the
//! key-value stores persist and where the wasm is found. Plain data, the role of `spin up`'s
//! command line; it does not load or validate anything.

use std::path::PathBuf;

/// What to run and with which settings.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The `spin.toml` to load.
    pub manifest: PathBuf,
    /// App variable overrides, the role of `SPIN_VARIABLE_<NAME>` / `spin up --variable`.
    pub variables: Vec<(String, String)>,
    /// Where the key-value stores persist (`<state_dir>/kv/<label>.json`).
    pub state_dir: PathBuf,
    /// When set, each component's `source` is looked up by file name in this directory.
    pub wasm_dir: Option<PathBuf>,
}

impl HostOptions {
    pub fn new(manifest: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Self {
        HostOptions {
            manifest: manifest.into(),
            variables: Vec::new(),
            state_dir: state_dir.into(),
            wasm_dir: None,
        }
    }

    /// Overrides app variable `name` (as `SPIN_VARIABLE_NAME=value` would).
    pub fn variable(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.push((name.into(), value.into()));
        self
    }

    pub fn wasm_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.wasm_dir = Some(dir.into());
        self
    }
}
