//! `spin:key-value/key-value@3.0.0`, the interface Spin 4 (spin-sdk 6) components import: the
//! same stores, grants and failures as the 2.0.0 interface in `mod.rs`, with every call an
//! `async func`. Each call runs as its own task of the instance, with the store reached through
//! an [`Accessor`] only for the moments it reads the table or the grants, so a call that waits
//! (Redis down: minutes, as in Spin) holds nothing the instance's other requests need, and a
//! guest that gives up on it (drops the future after its own timeout) cancels it: wasmtime
//! aborts the host future, which drops the Redis command or leaves the SQLite statement to finish
//! on the blocking pool.
//!
//! As in Spin's `crates/factor-key-value/src/host.rs`: `open` of a label the component may not
//! use is `access-denied`; a handle this instance does not hold is `no-such-store`; a store that
//! cannot be opened or fails a call is `other(message)`. `get-keys` answers a stream of keys and
//! a future of the outcome; here the keys are read before the stream is handed over.

use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

use super::{KvData, KvFailures, KvStore};
use crate::spin::kv::Store;

pub(super) mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "fermyon:spin/key-value-v3-host",
        imports: {
            // Creating the stream and future can fail (a full table): a trap, as in Spin.
            "spin:key-value/key-value.[method]store.get-keys": async | store | trappable,
        },
        with: {
            "spin:key-value/key-value.store": crate::spin::kv::KvStore,
        },
    });
}

pub(super) use bindings::spin::key_value::key_value as v3;
use v3::Error;

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

fn other_chain(e: anyhow::Error) -> Error {
    Error::Other(format!("{e:#}"))
}

/// The store behind `handle`, unless a test made calls of this kind fail on its label.
fn store_of<T>(
    accessor: &Accessor<T, KvData>,
    handle: &Resource<KvStore>,
    failing: fn(&KvFailures) -> bool,
) -> Result<Store, Error> {
    accessor.with(|mut access| {
        let view = access.get();
        let open = view.table.get(handle).map_err(|_| Error::NoSuchStore)?;
        view.access
            .stores
            .check(&open.label, failing)
            .map_err(other_chain)?;
        Ok(open.store.clone())
    })
}

impl v3::Host for super::KvView<'_> {}

impl v3::HostStore for super::KvView<'_> {
    fn drop(&mut self, s: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(s)?;
        Ok(())
    }
}

impl v3::HostStoreWithStore for KvData {
    async fn open<T>(
        accessor: &Accessor<T, Self>,
        label: String,
    ) -> Result<Resource<KvStore>, Error> {
        let access = accessor.with(|mut access| access.get().access.clone());
        if !access.allowed.contains(&label) {
            return Err(Error::AccessDenied);
        }
        access
            .stores
            .check(&label, |f| f.open)
            .map_err(other_chain)?;
        let store = access.stores.open(&label).await.map_err(other_chain)?;
        accessor.with(|mut access| {
            access
                .get()
                .table
                .push(KvStore { store, label })
                .map_err(other)
        })
    }

    async fn get<T>(
        accessor: &Accessor<T, Self>,
        s: Resource<KvStore>,
        key: String,
    ) -> Result<Option<Vec<u8>>, Error> {
        accessor.with(|mut access| access.get().access.stores.count_read());
        let store = store_of(accessor, &s, |f| f.get)?;
        store.get(&key).await.map_err(other_chain)
    }

    async fn set<T>(
        accessor: &Accessor<T, Self>,
        s: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        let store = store_of(accessor, &s, |f| f.set)?;
        store.set(&key, value).await.map_err(other_chain)
    }

    async fn delete<T>(
        accessor: &Accessor<T, Self>,
        s: Resource<KvStore>,
        key: String,
    ) -> Result<(), Error> {
        let store = store_of(accessor, &s, |f| f.delete)?;
        store.delete(&key).await.map_err(other_chain)
    }

    async fn exists<T>(
        accessor: &Accessor<T, Self>,
        s: Resource<KvStore>,
        key: String,
    ) -> Result<bool, Error> {
        let store = store_of(accessor, &s, |f| f.get)?;
        store.exists(&key).await.map_err(other_chain)
    }

    async fn get_keys<T>(
        accessor: &Accessor<T, Self>,
        s: Resource<KvStore>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), Error>>)> {
        let keys = match store_of(accessor, &s, |f| f.get) {
            Ok(store) => store.keys().await.map_err(other_chain),
            Err(e) => Err(e),
        };
        let (keys, outcome) = match keys {
            Ok(keys) => (keys, Ok(())),
            Err(e) => (Vec::new(), Err(e)),
        };
        accessor.with(|mut access| {
            let keys = StreamReader::new(&mut access, keys)?;
            let outcome =
                FutureReader::new(
                    &mut access,
                    async move { wasmtime::Result::<_>::Ok(outcome) },
                )?;
            Ok((keys, outcome))
        })
    }
}
