//! The response cache on Spin: the core's [`ResponseCache`] with a key-value store opened for
//! it and the system clock.
//!
//! Opening the store is part of the lookup: a store that cannot be opened makes every lookup a
//! miss and no entry is written (one log line), whatever the reason, because the cache is an
//! optimisation and must never fail a request. This module decides nothing about cacheability.

use spin_sdk::key_value::Store;

use super::{kv_error, log, SystemClock};
use crate::answer::{self, ResponseHead};
use crate::config::Config;
use crate::decision::Forward;
use crate::port::Io;
use crate::response_cache::{CacheStore, Fill, Hit, ResponseCache};
use crate::token::{Clock, Token};

/// One GET's response cache, with its store when it could be opened.
pub struct SpinResponseCache {
    cache: ResponseCache,
    store: Option<KvCacheStore>,
}

impl SpinResponseCache {
    /// `None` when the cache is off or the request is not a GET.
    pub async fn open(cfg: &Config, forward: &Forward) -> Option<SpinResponseCache> {
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
        Some(SpinResponseCache { cache, store })
    }

    /// The stored answer for this request, if fresh.
    pub async fn lookup(&self) -> Option<Hit> {
        let store = self.store.as_ref()?;
        self.cache.lookup(store, SystemClock.now(), &log).await
    }

    /// Whether to keep the upstream's answer, and how much of its body.
    pub fn fill(&self, cfg: &Config, token: Option<&Token>, head: &ResponseHead) -> Option<Fill> {
        self.store.as_ref()?;
        let headers = answer::storable_headers(cfg, token, head);
        self.cache.fill(head, headers.as_ref(), SystemClock.now())
    }

    /// Writes the entry: the one key-value write of a stored miss.
    pub async fn store(&self, cfg: &Config, token: Option<&Token>, fill: Fill, body: Vec<u8>) {
        if let Some(store) = &self.store {
            let secrets = answer::secrets(cfg, token);
            self.cache.store(store, fill, body, &secrets, &log).await;
        }
    }
}

struct KvCacheStore(Store);

impl CacheStore for KvCacheStore {
    fn get<'a>(&'a self, key: &'a str) -> Io<'a, std::result::Result<Option<Vec<u8>>, String>> {
        Box::pin(async move { self.0.get(key).map_err(|e| kv_error(&e)) })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> Io<'a, std::result::Result<(), String>> {
        Box::pin(async move { self.0.set(key, value).map_err(|e| kv_error(&e)) })
    }
}
