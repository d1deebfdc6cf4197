//! The key-value store behind `fermyon:spin/key-value@2.0.0`: file-backed, one JSON file per
//! store label under `<state_dir>/kv/`, rewritten atomically (temp file + rename) on every
//! `set`/`delete`, so values survive across requests and across host restarts on the same
//! `state_dir`, as `spin up`'s SQLite default store does.
//!
//! Access rules follow Spin's `crates/factor-key-value/src/host.rs`: `open(label)` for a label not
//! in the component's `key_value_stores` is `access-denied` (whether or not such a store exists).
//! Deviation: Spin needs runtime config for any label other than `default`; here every granted
//! label gets its own file. No size or key-count limits are applied.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use base64::Engine as _;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "fermyon:spin/key-value-host",
        imports: { default: async },
        with: {
            "fermyon:spin/key-value.store": super::KvStore,
        },
    });
}

use bindings::fermyon::spin::key_value::{self, Error};

/// One store label's data and its backing file.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    data: Mutex<BTreeMap<String, Vec<u8>>>,
}

/// All stores of one host, opened lazily and shared by every request.
#[derive(Debug)]
pub struct KvManager {
    dir: PathBuf,
    stores: Mutex<HashMap<String, Arc<FileStore>>>,
}

/// The guest's handle to an open store (the `store` resource).
pub struct KvStore {
    store: Arc<FileStore>,
}

/// What one component instance may open.
#[derive(Clone)]
pub struct KvAccess {
    pub allowed: Arc<HashSet<String>>,
    pub manager: Arc<KvManager>,
}

impl FileStore {
    fn open(path: PathBuf) -> Result<FileStore> {
        let data = match std::fs::read(&path) {
            Ok(bytes) => {
                let encoded: BTreeMap<String, String> = serde_json::from_slice(&bytes)
                    .with_context(|| format!("corrupt key-value file {}", path.display()))?;
                let mut data = BTreeMap::new();
                for (k, v) in encoded {
                    let v = base64::engine::general_purpose::STANDARD
                        .decode(v)
                        .with_context(|| format!("corrupt value in {}", path.display()))?;
                    data.insert(k, v);
                }
                data
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(FileStore {
            path,
            data: Mutex::new(data),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-updated (every mutation is
        // one insert/remove), so a poisoned lock is still usable.
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the whole map to a temp file and renames it over the old one.
    fn persist(&self, data: &BTreeMap<String, Vec<u8>>) -> Result<()> {
        let encoded: BTreeMap<&String, String> = data
            .iter()
            .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
            .collect();
        let json = serde_json::to_vec_pretty(&encoded)?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, json).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("cannot replace {}", self.path.display()))?;
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().get(key).cloned()
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        let mut data = self.lock();
        data.insert(key.to_string(), value.to_vec());
        self.persist(&data)
    }

    pub fn delete(&self, key: &str) -> Result<()> {
        let mut data = self.lock();
        if data.remove(key).is_some() {
            self.persist(&data)?;
        }
        Ok(())
    }

    pub fn exists(&self, key: &str) -> bool {
        self.lock().contains_key(key)
    }

    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

impl KvManager {
    /// Stores live in `<state_dir>/kv/`; the directory is created when missing.
    pub fn new(state_dir: &Path) -> Result<KvManager> {
        let dir = state_dir.join("kv");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create key-value dir {}", dir.display()))?;
        Ok(KvManager {
            dir,
            stores: Mutex::new(HashMap::new()),
        })
    }

    /// The store for `label`, loading its file on first use.
    pub fn store(&self, label: &str) -> Result<Arc<FileStore>> {
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = stores.get(label) {
            return Ok(s.clone());
        }
        let store = Arc::new(FileStore::open(self.dir.join(file_name(label)))?);
        stores.insert(label.to_string(), store.clone());
        Ok(store)
    }
}

/// A file name that cannot escape the directory, whatever the label holds.
fn file_name(label: &str) -> String {
    let safe: String = label
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{safe}.json")
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

/// What one instance's key-value calls work on: its resource table and its grants.
pub struct KvView<'a> {
    pub table: &'a mut ResourceTable,
    pub access: &'a KvAccess,
}

struct KvData;

impl HasData for KvData {
    type Data<'a> = KvView<'a>;
}

/// Links `fermyon:spin/key-value` into `linker`; `view` picks the instance's table and grants.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> KvView<'_>,
) -> Result<()> {
    key_value::add_to_linker::<T, KvData>(linker, view).map_err(|e| anyhow::anyhow!("{e:?}"))
}

impl KvView<'_> {
    fn kv_store(&self, handle: &Resource<KvStore>) -> Result<Arc<FileStore>, Error> {
        self.table
            .get(handle)
            .map(|s| s.store.clone())
            .map_err(other)
    }
}

impl key_value::Host for KvView<'_> {}

impl key_value::HostStore for KvView<'_> {
    async fn open(&mut self, label: String) -> Result<Resource<KvStore>, Error> {
        if !self.access.allowed.contains(&label) {
            return Err(Error::AccessDenied);
        }
        let store = self.access.manager.store(&label).map_err(other)?;
        self.table.push(KvStore { store }).map_err(other)
    }
    async fn get(&mut self, s: Resource<KvStore>, key: String) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.kv_store(&s)?.get(&key))
    }

    async fn set(
        &mut self,
        s: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        self.kv_store(&s)?.set(&key, &value).map_err(other)
    }

    async fn delete(&mut self, s: Resource<KvStore>, key: String) -> Result<(), Error> {
        self.kv_store(&s)?.delete(&key).map_err(other)
    }

    async fn exists(&mut self, s: Resource<KvStore>, key: String) -> Result<bool, Error> {
        Ok(self.kv_store(&s)?.exists(&key))
    }

    async fn get_keys(&mut self, s: Resource<KvStore>) -> Result<Vec<String>, Error> {
        Ok(self.kv_store(&s)?.keys())
    }

    async fn drop(&mut self, s: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(s)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_persist_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let m = KvManager::new(dir.path()).unwrap();
            let s = m.store("default").unwrap();
            s.set("a", b"1").unwrap();
            s.set("b", &[0, 255, 7]).unwrap();
            s.set("gone", b"x").unwrap();
            s.delete("gone").unwrap();
        }
        let m = KvManager::new(dir.path()).unwrap();
        let s = m.store("default").unwrap();
        assert_eq!(s.get("a").unwrap(), b"1");
        assert_eq!(s.get("b").unwrap(), vec![0, 255, 7]);
        assert!(!s.exists("gone"));
        assert_eq!(s.keys(), vec!["a", "b"]);
        assert!(m.store("other").unwrap().keys().is_empty());
    }

    #[test]
    fn labels_cannot_escape_the_directory() {
        assert_eq!(file_name("default"), "default.json");
        assert_eq!(file_name("../x"), "%2E%2E%2Fx.json");
    }
}
