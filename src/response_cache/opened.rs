//! One GET's response cache with what an edge opened for it: the store (or none, when it could
//! not be opened: every lookup is then a miss and nothing is written), and the edge's clock and
//! log. Both builds' edges hand out this same type; they differ only in how they open the store.
//!
//! It decides nothing about cacheability (`policy`) or keys (`entry`).

use super::{CacheStore, Fill, Hit, ResponseCache};
use crate::answer::{self, ResponseHead};
use crate::config::Config;
use crate::token::Token;

/// [`ResponseCache`] on an opened store.
pub struct OpenedCache<S: CacheStore> {
    cache: ResponseCache,
    store: Option<S>,
    /// Unix seconds.
    now: fn() -> u64,
    log: fn(&str),
}

impl<S: CacheStore> OpenedCache<S> {
    pub fn new(cache: ResponseCache, store: Option<S>, now: fn() -> u64, log: fn(&str)) -> Self {
        OpenedCache {
            cache,
            store,
            now,
            log,
        }
    }

    /// The stored answer for this request, if fresh.
    pub async fn lookup(&self) -> Option<Hit> {
        let store = self.store.as_ref()?;
        self.cache.lookup(store, (self.now)(), &self.log).await
    }

    /// Whether to keep the upstream's answer, and how much of its body.
    pub fn fill(&self, cfg: &Config, token: Option<&Token>, head: &ResponseHead) -> Option<Fill> {
        self.store.as_ref()?;
        let headers = answer::storable_headers(cfg, token, head);
        self.cache.fill(head, headers.as_ref(), (self.now)())
    }

    /// Writes the entry: the one key-value write of a stored miss.
    pub async fn store(&self, cfg: &Config, token: Option<&Token>, fill: Fill, body: Vec<u8>) {
        if let Some(store) = &self.store {
            let secrets = answer::secrets(cfg, token);
            self.cache
                .store(store, fill, body, &secrets, &self.log)
                .await;
        }
    }
}
