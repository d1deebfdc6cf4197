//! The response cache on Spin 4: the core's [`ResponseCache`] with a bounded key-value store
//! opened for it and the system clock.
//!
//! A store that cannot be opened, or does not answer in time, makes the lookup a miss and no
//! entry is written (one log line): the cache is an optimisation and must never fail or hold up
//! a request. This module decides nothing about cacheability.

use super::store::BoundedStore;
use super::{log, SystemClock};
use crate::answer::{self, ResponseHead};
use crate::config::Config;
use crate::decision::Forward;
use crate::response_cache::{Fill, Hit, ResponseCache};
use crate::token::{Clock, Token};

/// One GET's response cache, with its store when it could be opened.
pub struct SpinResponseCache {
    cache: ResponseCache,
    store: Option<BoundedStore>,
}

impl SpinResponseCache {
    /// `None` when the cache is off or the request is not a GET.
    pub async fn open(cfg: &Config, forward: &Forward) -> Option<SpinResponseCache> {
        let cache = ResponseCache::for_request(cfg, forward)?;
        // Any failure is a miss, as in the default build.
        let store = match BoundedStore::open(&cfg.kv_store).await {
            Ok(store) => Some(store),
            Err(why) => {
                log(&format!(
                    "response cache unavailable ({}); asking the upstream",
                    why.describe()
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
