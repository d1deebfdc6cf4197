//! Spin's runtime config file (`spin up --runtime-config-file`), the parts the host honours:
//! - `[key_value_store.<label>]` tables with `type = "spin"` (SQLite; optional `path`, relative
//!   to the file's directory; no path = in memory) or `type = "redis"` (`url = "redis://..."`),
//!   as Spin's `crates/runtime-config` and `crates/factor-key-value/src/runtime_config/spin.rs`
//!   read them; an unknown store type or a missing field is an error naming the label, as
//!   `spin up` refuses to start;
//! - `[outbound_http]` with `connection_pooling` and `max_concurrent_requests`, as
//!   `crates/factor-outbound-http/src/runtime_config/spin.rs` reads it: an unknown key is an
//!   error, and a table without `connection_pooling` turns pooling off (Spin's serde default),
//!   while no table at all leaves it on.
//!
//! Other tables (`[sqlite_database.*]`, `[variables_provider]`, ...) are ignored. It only parses:
//! opening the stores is `spin/kv/stores.rs`'s job, the client `spin/http_client.rs`'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Spin's `[outbound_http]` table, for the app's outbound client (`spin/http_client.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundHttpConfig {
    /// `connection_pooling`: keep idle connections for later requests.
    pub connection_pooling: bool,
    /// `max_concurrent_requests`: at most this many + 1 plain-HTTP connections at once.
    pub max_concurrent_requests: Option<usize>,
}

impl Default for OutboundHttpConfig {
    /// Spin's when the runtime config has no `[outbound_http]` table: pooling on, no limit.
    fn default() -> Self {
        OutboundHttpConfig {
            connection_pooling: true,
            max_concurrent_requests: None,
        }
    }
}

/// What a runtime config file sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub key_value_stores: Vec<(String, KeyValueStore)>,
    pub outbound_http: OutboundHttpConfig,
}

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
    outbound_http: Option<RawOutboundHttp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutboundHttp {
    #[serde(default)]
    connection_pooling: bool,
    max_concurrent_requests: Option<usize>,
}

#[derive(Deserialize)]
struct RawStore {
    #[serde(rename = "type")]
    kind: String,
    path: Option<PathBuf>,
    url: Option<String>,
}

/// Reads the runtime config file at `path`.
pub fn load(path: &Path) -> Result<RuntimeConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read runtime config file '{}'", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse(&text, dir).with_context(|| format!("invalid runtime config file '{}'", path.display()))
}

/// Parses runtime config text; relative SQLite paths resolve against `dir`.
pub fn parse(text: &str, dir: &Path) -> Result<RuntimeConfig> {
    let raw: RawRuntimeConfig =
        toml::from_str(text).context("not TOML with the tables Spin reads")?;
    let outbound_http = match raw.outbound_http {
        Some(table) => OutboundHttpConfig {
            connection_pooling: table.connection_pooling,
            max_concurrent_requests: table.max_concurrent_requests,
        },
        None => OutboundHttpConfig::default(),
    };
    let key_value_stores = raw
        .key_value_store
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
        .collect::<Result<_>>()?;
    Ok(RuntimeConfig {
        key_value_stores,
        outbound_http,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_projects_runtime_config_shapes() {
        let dir = Path::new("/app");
        let spin = "[key_value_store.default]\ntype = \"spin\"\npath = \".spin/kv.db\"\n";
        assert_eq!(
            parse(spin, dir).unwrap().key_value_stores,
            vec![("default".into(), KeyValueStore::sqlite("/app/.spin/kv.db"))]
        );
        let redis = "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\n\
                     [key_value_store.mem]\ntype = \"spin\"\n[variables_provider]\ntype = \"env\"\n";
        assert_eq!(
            parse(redis, dir).unwrap().key_value_stores,
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
    fn reads_outbound_http_as_spin_does() {
        let dir = Path::new("/app");
        let pooling = |text: &str| parse(text, dir).map(|c| c.outbound_http);
        assert_eq!(pooling("").unwrap(), OutboundHttpConfig::default());
        assert!(OutboundHttpConfig::default().connection_pooling);
        // A table without the key turns pooling off, as Spin's `#[serde(default)] bool` does.
        let empty = pooling("[outbound_http]\n").unwrap();
        assert!(!empty.connection_pooling);
        let set =
            pooling("[outbound_http]\nconnection_pooling = true\nmax_concurrent_requests = 4\n")
                .unwrap();
        assert_eq!(
            set,
            OutboundHttpConfig {
                connection_pooling: true,
                max_concurrent_requests: Some(4),
            }
        );
        let typo = "[outbound_http]\nconnection_pool = true\n";
        let err = format!("{:#}", pooling(typo).unwrap_err());
        assert!(err.contains("unknown field `connection_pool`"), "{err}");
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
