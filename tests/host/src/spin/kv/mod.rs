//! `fermyon:spin/key-value@2.0.0`: the guest-facing interface and which stores a component may
//! open; [`v3`] is the same over Spin 4's async `spin:key-value/key-value@3.0.0`. The stores themselves are Spin's two common types, chosen per label by runtime config:
//! SQLite ([`sqlite`], Spin's default `spin` type, table `spin_key_value`) and Redis
//! ([`redis`]); [`stores`] maps labels to them.
//!
//! Access rules follow Spin's `crates/factor-key-value/src/host.rs`: `open(label)` for a label
//! not in the component's `key_value_stores` is `access-denied` (whether or not such a store
//! exists); a store that cannot be opened or fails a call is `other(message)`. Every call is its
//! own operation, so a read sees the last completed write, and none runs on the async workers.
//! Deviations: Spin needs runtime config for any label other than `default` (here an unconfigured
//! label gets its own rows in the default database); no size or key-count limits are applied.

pub mod redis;
pub mod sqlite;
pub mod stores;
mod v3;

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Result;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

pub use stores::{KvFailures, KvStores, Store};

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

/// The guest's handle to an open store (the `store` resource).
pub struct KvStore {
    store: Store,
    label: String,
}

/// What one component instance may open.
#[derive(Clone)]
pub struct KvAccess {
    pub allowed: Arc<HashSet<String>>,
    pub stores: Arc<KvStores>,
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

/// Links `fermyon:spin/key-value@2.0.0` and `spin:key-value/key-value@3.0.0` into `linker`;
/// `view` picks the instance's table and grants.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> KvView<'_>,
) -> Result<()> {
    key_value::add_to_linker::<T, KvData>(linker, view).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    v3::v3::add_to_linker::<T, KvData>(linker, view).map_err(|e| anyhow::anyhow!("{e:?}"))
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

fn other_chain(e: anyhow::Error) -> Error {
    Error::Other(format!("{e:#}"))
}

impl KvView<'_> {
    /// The store behind `handle`, unless a test made calls of this kind fail.
    fn store(
        &self,
        handle: &Resource<KvStore>,
        failing: fn(&KvFailures) -> bool,
    ) -> Result<Store, Error> {
        let open = self.table.get(handle).map_err(other)?;
        self.access
            .stores
            .check(&open.label, failing)
            .map_err(other_chain)?;
        Ok(open.store.clone())
    }
}

impl key_value::Host for KvView<'_> {}

impl key_value::HostStore for KvView<'_> {
    async fn open(&mut self, label: String) -> Result<Resource<KvStore>, Error> {
        if !self.access.allowed.contains(&label) {
            return Err(Error::AccessDenied);
        }
        let stores = &self.access.stores;
        stores.check(&label, |f| f.open).map_err(other_chain)?;
        let store = stores.open(&label).await.map_err(other_chain)?;
        self.table.push(KvStore { store, label }).map_err(other)
    }

    async fn get(&mut self, s: Resource<KvStore>, key: String) -> Result<Option<Vec<u8>>, Error> {
        self.access.stores.count_read();
        self.store(&s, |f| f.get)?
            .get(&key)
            .await
            .map_err(other_chain)
    }

    async fn set(
        &mut self,
        s: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        self.store(&s, |f| f.set)?
            .set(&key, value)
            .await
            .map_err(other_chain)
    }

    async fn delete(&mut self, s: Resource<KvStore>, key: String) -> Result<(), Error> {
        self.store(&s, |f| f.delete)?
            .delete(&key)
            .await
            .map_err(other_chain)
    }

    async fn exists(&mut self, s: Resource<KvStore>, key: String) -> Result<bool, Error> {
        self.store(&s, |f| f.get)?
            .exists(&key)
            .await
            .map_err(other_chain)
    }

    async fn get_keys(&mut self, s: Resource<KvStore>) -> Result<Vec<String>, Error> {
        self.store(&s, |f| f.get)?.keys().await.map_err(other_chain)
    }

    async fn drop(&mut self, s: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(s)?;
        Ok(())
    }
}
