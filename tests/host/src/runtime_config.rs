//! Spin's runtime config file (`spin up --runtime-config-file`), the part the host honours:
//! `[key_value_store.<label>]` tables with `type = "spin"` (SQLite; optional `path`, relative to
//! the file's directory; no path = in memory) or `type = "redis"` (`url = "redis://..."`), as
//! Spin's `crates/runtime-config` and `crates/factor-key-value/src/runtime_config/spin.rs` read
//! them. Other tables (`[sqlite_database.*]`, `[variables_provider]`, ...) are ignored; an unknown
//! store type or a missing field is an error naming the label, as `spin up` refuses to start.
//! It only parses: opening the stores is `spin/kv/stores.rs`'s job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Where one key-value label lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValueStore {
    /// Spin's `spin` type: SQLite at `path`, or in memory when `None`.
    Sqlite { path: Option<PathBuf> },
    /// Spin's `redis` type.
    Redis { url: String },
}

impl KeyValueStore {
    /// A Redis store at `url` (`redis://127.0.0.1:6379`).
    pub fn redis(url: impl Into<String>) -> KeyValueStore {
        KeyValueStore::Redis { url: url.into() }
    }

    /// A SQLite store in the file at `path`.
    pub fn sqlite(path: impl Into<PathBuf>) -> KeyValueStore {
        KeyValueStore::Sqlite {
            path: Some(path.into()),
        }
    }
}

#[derive(Deserialize)]
struct RawRuntimeConfig {
    #[serde(default)]
    key_value_store: BTreeMap<String, RawStore>,
}

#[derive(Deserialize)]
struct RawStore {
    #[serde(rename = "type")]
    kind: String,
    path: Option<PathBuf>,
    url: Option<String>,
}

/// Reads the key-value stores of the runtime config file at `path`.
pub fn load(path: &Path) -> Result<Vec<(String, KeyValueStore)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read runtime config file '{}'", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse(&text, dir).with_context(|| format!("invalid runtime config file '{}'", path.display()))
}

/// Parses runtime config text; relative SQLite paths resolve against `dir`.
pub fn parse(text: &str, dir: &Path) -> Result<Vec<(String, KeyValueStore)>> {
    let raw: RawRuntimeConfig = toml::from_str(text).context("not valid TOML")?;
    raw.key_value_store
        .into_iter()
        .map(|(label, store)| {
            let store = match (store.kind.as_str(), store.path, store.url) {
                // Like Spin's serde structs, each type ignores fields it does not know.
                ("spin", path, _) => KeyValueStore::Sqlite {
                    path: path.map(|p| dir.join(p)),
                },
                ("redis", _, Some(url)) => KeyValueStore::Redis { url },
                ("redis", _, None) => {
                    bail!("key-value store {label:?}: type \"redis\" needs a `url`")
                }
                (other, _, _) => bail!(
                    "could not configure key-value store with label '{label}': \
                     the store type '{other}' is not supported by the test host"
                ),
            };
            Ok((label, store))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_projects_runtime_config_shapes() {
        let dir = Path::new("/app");
        let spin = "[key_value_store.default]\ntype = \"spin\"\npath = \".spin/kv.db\"\n";
        assert_eq!(
            parse(spin, dir).unwrap(),
            vec![("default".into(), KeyValueStore::sqlite("/app/.spin/kv.db"))]
        );
        let redis = "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\n\
                     [key_value_store.mem]\ntype = \"spin\"\n[variables_provider]\ntype = \"env\"\n";
        assert_eq!(
            parse(redis, dir).unwrap(),
            vec![
                (
                    "default".into(),
                    KeyValueStore::redis("redis://127.0.0.1:6379")
                ),
                ("mem".into(), KeyValueStore::Sqlite { path: None }),
            ]
        );
        let shipped = crate::project_root().join("runtime-config.toml");
        load(&shipped).unwrap();
    }

    #[test]
    fn refuses_unknown_types_and_missing_urls() {
        let dir = Path::new("/app");
        let azure = "[key_value_store.default]\ntype = \"azure_cosmos\"\n";
        assert!(format!("{:#}", parse(azure, dir).unwrap_err()).contains("azure_cosmos"));
        let no_url = "[key_value_store.cache]\ntype = \"redis\"\n";
        assert!(format!("{:#}", parse(no_url, dir).unwrap_err()).contains("cache"));
    }
}
