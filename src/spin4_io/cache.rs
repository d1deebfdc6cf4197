//! The response cache on Spin 4: the core's [`OpenedCache`] on a bounded key-value store opened
//! for it and the system clock.
//!
//! A store that cannot be opened, or does not answer in time, makes the lookup a miss and no
//! entry is written (one log line): the cache is an optimisation and must never fail or hold up
//! a request. This module decides nothing about cacheability.

use super::store::BoundedStore;
use super::{log, SystemClock};
use crate::config::Config;
use crate::decision::Forward;
use crate::response_cache::{OpenedCache, ResponseCache};
use crate::token::Clock;

/// One GET's response cache, with its store when it could be opened.
pub type SpinResponseCache = OpenedCache<BoundedStore>;

/// `None` when the cache is off or the request is not a GET.
pub async fn open_response_cache(cfg: &Config, forward: &Forward) -> Option<SpinResponseCache> {
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
    Some(OpenedCache::new(cache, store, || SystemClock.now(), log))
}
