//! Spin 4's key-value store with every call bounded: a call that has not answered within
//! [`KV_TIMEOUT`] is given up and counts as a store failure, which the core already survives (the
//! token is taken from memory or fetched without the cache; the response cache misses). With
//! Redis down, Spin 4.0.2's own call waits minutes while its client reconnects; a request here
//! waits at most this long per call. After a call timed out, the instance does not ask the
//! store again for [`DOWN_FOR`]: its calls fail at once, so waits never add up within a request
//! or across the instance's requests.
//!
//! It does not decide what a failure means for the request (`token`, `response_cache` do).

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use futures::future::{select, Either};
use spin_sdk::key_value::{Error as KvError, Store};

use super::log;
use crate::error::{Error, Result};
use crate::port::Io;
use crate::response_cache::CacheStore;
use crate::token::{system_now_ms, TokenStore, REREAD_AFTER};

/// The longest one key-value call may take.
pub const KV_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an instance leaves a store alone after a call to it timed out: the held token's
/// re-read interval, so the next re-read is the next try.
pub const DOWN_FOR: Duration = REREAD_AFTER;

thread_local! {
    /// Until when (Unix ms) this instance treats the store as down.
    static DOWN_UNTIL_MS: Cell<u64> = const { Cell::new(0) };
}

/// Why a call was not made: the store timed out a moment ago.
fn down() -> Option<String> {
    (system_now_ms() < DOWN_UNTIL_MS.get()).then(|| {
        format!(
            "the store did not answer within {} s a moment ago; not asked again for {} s",
            KV_TIMEOUT.as_secs(),
            DOWN_FOR.as_secs()
        )
    })
}

fn timed_out(what: &str) -> String {
    DOWN_UNTIL_MS.set(system_now_ms().saturating_add(DOWN_FOR.as_millis() as u64));
    format!("the store did not {what} within {} s", KV_TIMEOUT.as_secs())
}

/// `call`, or an error once it has taken [`KV_TIMEOUT`] (or at once while the store is down:
/// the call is then never made).
async fn bounded<T>(
    call: impl Future<Output = std::result::Result<T, KvError>>,
) -> std::result::Result<T, String> {
    if let Some(why) = down() {
        return Err(why);
    }
    match select(pin!(call), pin!(spin_sdk::time::sleep(KV_TIMEOUT))).await {
        Either::Left((result, _)) => result.map_err(|e| kv_error(&e)),
        Either::Right(_) => Err(timed_out("answer")),
    }
}

/// A store opened with a bounded wait.
pub struct BoundedStore(Store);

impl BoundedStore {
    /// Opens `label`; `Err` says why not, in our own words (a timeout included).
    pub async fn open(label: &str) -> std::result::Result<BoundedStore, Unopened> {
        if let Some(why) = down() {
            return Err(Unopened::Down(why));
        }
        let open = pin!(Store::open(label));
        let timer = pin!(spin_sdk::time::sleep(KV_TIMEOUT));
        match select(open, timer).await {
            Either::Left((Ok(store), _)) => Ok(BoundedStore(store)),
            Either::Left((Err(KvError::AccessDenied), _)) => Err(Unopened::NotGranted),
            Either::Left((Err(KvError::NoSuchStore), _)) => Err(Unopened::NoSuchStore),
            Either::Left((Err(e), _)) => Err(Unopened::Down(kv_error(&e))),
            Either::Right(_) => Err(Unopened::Down(timed_out("open"))),
        }
    }

    /// The token cache's store, as the default build opens it: a label this component was not
    /// granted, or one the runtime does not define, is the configuration's fault
    /// (`config_invalid`); any other failure is the store's: logged, and `Ok(None)`.
    pub async fn for_tokens(label: &str) -> Result<Option<BoundedStore>> {
        match BoundedStore::open(label).await {
            Ok(store) => Ok(Some(store)),
            Err(Unopened::NotGranted) => Err(Error::config(
                "kv_store",
                "names a store this component may not use: add it to key_value_stores in \
                 spin.toml",
            )),
            Err(Unopened::NoSuchStore) => Err(Error::config(
                "kv_store",
                "names a store the runtime does not have: define it in the runtime config",
            )),
            Err(Unopened::Down(why)) => {
                log(&format!(
                    "token cache unavailable ({why}); fetching tokens without it"
                ));
                Ok(None)
            }
        }
    }
}

/// Why a store did not open.
pub enum Unopened {
    NotGranted,
    NoSuchStore,
    Down(String),
}

impl Unopened {
    pub fn describe(&self) -> &str {
        match self {
            Unopened::NotGranted => "access denied",
            Unopened::NoSuchStore => "no such store",
            Unopened::Down(why) => why,
        }
    }
}

impl TokenStore for BoundedStore {
    fn get<'a>(&'a self, key: &'a str) -> Io<'a, std::result::Result<Option<Vec<u8>>, String>> {
        Box::pin(bounded(self.0.get(key)))
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> Io<'a, std::result::Result<(), String>> {
        Box::pin(bounded(self.0.set(key, value)))
    }

    fn delete<'a>(&'a self, key: &'a str) -> Io<'a, std::result::Result<(), String>> {
        Box::pin(bounded(self.0.delete(key)))
    }
}

impl CacheStore for BoundedStore {
    fn get<'a>(&'a self, key: &'a str) -> Io<'a, std::result::Result<Option<Vec<u8>>, String>> {
        TokenStore::get(self, key)
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> Io<'a, std::result::Result<(), String>> {
        TokenStore::set(self, key, value)
    }
}

fn kv_error(e: &KvError) -> String {
    match e {
        KvError::StoreTableFull => "the store is full".into(),
        KvError::AccessDenied => "access denied".into(),
        KvError::NoSuchStore => "no such store".into(),
        KvError::Other(_) => "the store reported an error".into(),
    }
}
