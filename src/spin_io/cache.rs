//! The response cache on Spin: the core's [`OpenedCache`] on a key-value store opened for it and
//! the system clock.
//!
//! Opening the store is part of the lookup: a store that cannot be opened makes every lookup a
//! miss and no entry is written (one log line), whatever the reason, because the cache is an
//! optimisation and must never fail a request. This module decides nothing about cacheability.

use spin_sdk::key_value::Store;

use super::{kv_error, log, SystemClock};
use crate::config::Config;
use crate::decision::Forward;
use crate::port::{ready, Io};
use crate::response_cache::{CacheStore, OpenedCache, ResponseCache};
use crate::token::Clock;

/// One GET's response cache, with its store when it could be opened.
pub type SpinResponseCache = OpenedCache<KvCacheStore>;

/// `None` when the cache is off or the request is not a GET.
pub async fn open_response_cache(cfg: &Config, forward: &Forward) -> Option<SpinResponseCache> {
    let cache = ResponseCache::for_request(cfg, forward)?;
    let store = match Store::open(&cfg.kv_store) {
        Ok(store) => Some(KvCacheStore(store)),
        Err(e) => {
            log(&format!(
                "response cache unavailable ({}); asking the upstream",
                kv_error(&e)
            ));
            None
        }
    };
    Some(OpenedCache::new(cache, store, || SystemClock.now(), log))
}

pub struct KvCacheStore(Store);

impl CacheStore for KvCacheStore {
    fn get<'a>(&'a self, key: &'a str) -> Io<'a, std::result::Result<Option<Vec<u8>>, String>> {
        Box::pin(ready(self.0.get(key).map_err(|e| kv_error(&e))))
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> Io<'a, std::result::Result<(), String>> {
        Box::pin(ready(self.0.set(key, value).map_err(|e| kv_error(&e))))
    }
}
