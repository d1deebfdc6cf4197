//! Which backend serves each key-value label, opened on first use and shared by every request of
//! the host: a label the runtime config (or [`crate::HostOptions::key_value_store`]) names gets
//! that store; every other label lives in the default SQLite database
//! `<state_dir>/sqlite_key_value.db`, the file `spin up` uses under `.spin/`. Tests can make a
//! label's calls fail ([`KvFailures`]), as a store that is down would; and it counts the guests'
//! reads ([`KvStores::reads`]), for the bench. It does not check grants (see `mod.rs`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use tokio::sync::OnceCell;

use super::redis::RedisDb;
use super::sqlite::SqliteDb;
use crate::runtime_config::KeyValueStore;

/// The file Spin keeps its default store in, under its state directory.
pub const DEFAULT_DB_FILE: &str = "sqlite_key_value.db";

/// One open store: a label in a SQLite database, or a Redis server.
#[derive(Clone)]
pub enum Store {
    Sqlite { db: SqliteDb, label: Arc<str> },
    Redis(RedisDb),
}

/// Which calls on one label fail, as they would with its store down. Reads (`get`, `exists`,
/// `get-keys`) follow `get`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvFailures {
    pub open: bool,
    pub get: bool,
    pub set: bool,
    pub delete: bool,
}

impl KvFailures {
    /// Every call fails.
    pub const ALL: KvFailures = KvFailures {
        open: true,
        get: true,
        set: true,
        delete: true,
    };
}

/// Every store of one host.
pub struct KvStores {
    configured: HashMap<String, KeyValueStore>,
    default_db: SqliteDb,
    opened: Mutex<HashMap<String, Arc<OnceCell<Store>>>>,
    failures: Mutex<HashMap<String, KvFailures>>,
    /// Guest `get` calls so far, every label and both interface versions.
    reads: AtomicU64,
}

impl KvStores {
    pub fn new(state_dir: &Path, configured: Vec<(String, KeyValueStore)>) -> KvStores {
        KvStores {
            configured: configured.into_iter().collect(),
            default_db: SqliteDb::new(Some(state_dir.join(DEFAULT_DB_FILE))),
            opened: Mutex::default(),
            failures: Mutex::default(),
            reads: AtomicU64::new(0),
        }
    }

    /// Counts one guest `get` call, whether or not it then succeeds.
    pub fn count_read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    /// How many `get` calls the guests made so far (the host's own `kv_get` is not one).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// From now on, the calls `failures` names fail on `label`.
    pub fn set_failures(&self, label: &str, failures: KvFailures) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(label.to_string(), failures);
    }

    /// Fails when a test made this kind of call on `label` fail.
    pub fn check(&self, label: &str, failing: fn(&KvFailures) -> bool) -> Result<()> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.get(label).is_some_and(failing) {
            bail!("connection refused (failure injected by the test host)");
        }
        Ok(())
    }

    /// The store for `label`, connecting to Redis on first use; a SQLite store's database is
    /// reached in a blocking section on every open, as Spin's store manager does (and opened on
    /// the first). A failed open is retried by the next call, as Spin's store managers do.
    pub async fn open(&self, label: &str) -> Result<Store> {
        let cell = self
            .opened
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(label.to_string())
            .or_default()
            .clone();
        let store = cell.get_or_try_init(|| self.connect(label)).await.cloned();
        let store = match store {
            Ok(Store::Sqlite { db, label }) => {
                db.connect().await.map(|()| Store::Sqlite { db, label })
            }
            other => other,
        };
        store.with_context(|| format!("cannot open key-value store {label:?}"))
    }

    async fn connect(&self, label: &str) -> Result<Store> {
        let label: Arc<str> = label.into();
        let db = match self.configured.get(&*label) {
            Some(KeyValueStore::Redis { url }) => {
                return Ok(Store::Redis(RedisDb::connect(url).await?))
            }
            Some(KeyValueStore::Sqlite { path }) => SqliteDb::new(path.clone()),
            None => self.default_db.clone(),
        };
        Ok(Store::Sqlite { db, label })
    }
}

impl Store {
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Store::Sqlite { db, label } => db.get(label, key).await,
            Store::Redis(r) => r.get(key).await,
        }
    }

    pub async fn set(&self, key: &str, value: Vec<u8>) -> Result<()> {
        match self {
            Store::Sqlite { db, label } => db.set(label, key, value).await,
            Store::Redis(r) => r.set(key, value).await,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        match self {
            Store::Sqlite { db, label } => db.delete(label, key).await,
            Store::Redis(r) => r.delete(key).await,
        }
    }

    /// As Spin's SQLite store: a key exists when `get` finds it.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self {
            Store::Sqlite { .. } => Ok(self.get(key).await?.is_some()),
            Store::Redis(r) => r.exists(key).await,
        }
    }

    /// Every key, sorted.
    pub async fn keys(&self) -> Result<Vec<String>> {
        match self {
            Store::Sqlite { db, label } => db.keys(label).await,
            Store::Redis(r) => r.keys().await,
        }
    }
}
