//! One token fetch for the whole fleet: a lease record in the same key-value store elects the
//! fetcher, and every other request that needs a new token waits for the record it stores.
//!
//! Spin gives each request its own instance, and several hosts may share one store (Redis), so
//! nothing in memory is shared. The store has plain get/set only here: `wasi:keyvalue/atomics` is
//! missing on Fermyon Cloud and Akamai Functions, and a component importing it does not start
//! there. So the election is last-writer-wins: a contender that sees no live lease writes its own,
//! waits a settle delay long enough for every other contender that read "no lease" at the same
//! time to write theirs, and reads the lease back; the one whose id is still there fetches. A
//! race can still elect two (a write slower than the settle delay), which costs one extra fetch,
//! never a wrong answer.
//!
//! Everyone else polls the token record with a bounded backoff, never past the lease's expiry: a
//! lease whose owner died expires and is taken over. A fetch that fails leaves a short-lived
//! failure notice, so the requests that waited for it share its error instead of each trying in
//! turn; a request that arrives later tries again. A still-valid token (stale only by the refresh
//! skew) is used at once rather than waited for. This module does not parse tokens or decide
//! freshness (`record`, `cache` do).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cache::{cached_token, TokenCache, TokenStore};
use super::{Token, TokenRecord};
use crate::error::{Error, Failure, Result, Target};
use crate::secret::AccessToken;

/// First and longest pause between two looks at the token record while another request fetches.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_millis(250);
/// The settle delay after writing a lease is a few times what that write took (under a burst the
/// store is slow for everyone, so contenders' writes are slow too), within these bounds.
const MIN_SETTLE: Duration = Duration::from_millis(15);
const MAX_SETTLE: Duration = Duration::from_millis(250);
/// A lease outlives the fetch it guards by this much: the settle delay and storing the record.
const LEASE_MARGIN: Duration = Duration::from_secs(2);
/// How long a failed fetch is remembered for the requests that waited on it.
const FAILURE_NOTICE: Duration = Duration::from_secs(2);
/// Elections one request takes part in before it fetches on its own (a store that loses writes).
const MAX_ELECTIONS: u32 = 4;

/// The lease record: who fetches, until when; or, after a failed fetch, that it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Lease {
    owner: u64,
    until_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed: Option<Failed>,
}

/// How the elected fetch failed, enough to give the waiters the same error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Failed {
    Timeout,
    NotAllowed,
    Other,
}

impl Failed {
    fn of(error: &Error) -> Failed {
        match error {
            Error::Outbound {
                failure: Failure::Timeout,
                ..
            } => Failed::Timeout,
            Error::Outbound {
                failure: Failure::NotAllowed { .. },
                ..
            } => Failed::NotAllowed,
            _ => Failed::Other,
        }
    }

    fn error(self, cache: &TokenCache) -> Error {
        let failure = match self {
            Failed::Timeout => Failure::Timeout,
            Failed::NotAllowed => Failure::NotAllowed {
                host: cache.cfg.url.host_str().unwrap_or("").to_string(),
            },
            Failed::Other => {
                return Error::token_endpoint("it failed for a concurrent request just now")
            }
        };
        Error::Outbound {
            target: Target::TokenEndpoint,
            failure,
        }
    }
}

impl TokenCache<'_> {
    /// A new token through the lease, for a request whose cached token (`current`) is stale,
    /// missing, or (`refused`) was just refused by the upstream.
    pub(super) async fn refresh(
        &self,
        store: &dyn TokenStore,
        current: Option<TokenRecord>,
        refused: Option<&AccessToken>,
    ) -> Result<Token> {
        let clock = self.ports.clock;
        let valid = current.filter(|r| r.is_valid(clock.now()));
        // Our own bound on waiting, on our own clock: a lease written by a host whose clock runs
        // ahead (or a damaged one) must not hold this request until the runtime kills it.
        let give_up_at = clock
            .now_ms()
            .saturating_add(2 * self.lease_for().as_millis() as u64);
        let mut watched: Option<u64> = None;
        let mut backoff = FIRST_BACKOFF;
        let mut elections = 0;
        loop {
            if clock.now_ms() > give_up_at {
                self.log("waited a whole lease for a new token; fetching without the lease");
                return self.fetch(Some(store), valid).await;
            }
            // A token that was valid when this request came in may have expired while it took
            // part in elections: check again before it is ever used.
            let valid = valid.clone().filter(|r| r.is_valid(clock.now()));
            let lease = match self.read_lease(store).await {
                Ok(lease) => lease,
                Err(e) => {
                    self.store_failed(&format!(
                        "token lease read failed ({e}); fetching without the lease"
                    ));
                    return self.fetch(Some(store), valid).await;
                }
            };
            let now_ms = clock.now_ms();
            match lease {
                Some(lease)
                    if lease.owner != self.my_id()
                        && lease.until_ms > now_ms
                        && lease.failed.is_none() =>
                {
                    // Another request is fetching. A token that still works is used meanwhile.
                    if let Some(record) = valid {
                        return Ok(cached_token(record));
                    }
                    watched = Some(lease.owner);
                    let until_expiry = Duration::from_millis(lease.until_ms - now_ms);
                    clock
                        .sleep(backoff.min(until_expiry).min(self.lease_for()))
                        .await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    match self.read_record(store).await {
                        Ok(Some(record)) if self.usable(&record, refused) => {
                            return Ok(cached_token(record))
                        }
                        Ok(_) => {}
                        Err(()) => return self.fetch(None, valid).await,
                    }
                }
                Some(Lease {
                    owner,
                    until_ms,
                    failed: Some(failed),
                }) if watched == Some(owner) && until_ms > now_ms => {
                    // The fetch this request waited for failed: share its outcome rather than
                    // have every waiter try again in turn.
                    return match valid {
                        Some(record) => Ok(cached_token(record)),
                        None => Err(failed.error(self)),
                    };
                }
                _ => {
                    // No live lease: absent, expired (its owner died), released, or a failure
                    // notice for other waiters. Stand for election.
                    elections += 1;
                    if elections > MAX_ELECTIONS {
                        return self.fetch(Some(store), valid).await;
                    }
                    if self.elect(store).await {
                        return self.fetch_as_leader(store, valid, refused).await;
                    }
                }
            }
        }
    }

    /// Writes our lease, lets the other contenders write theirs, and reads back whether we won.
    async fn elect(&self, store: &dyn TokenStore) -> bool {
        let clock = self.ports.clock;
        let lease_for = self.lease_for();
        let started = clock.now_ms();
        let mine = Lease {
            owner: self.my_id(),
            until_ms: started.saturating_add(lease_for.as_millis() as u64),
            failed: None,
        };
        if let Err(e) = store.set(&self.lease_key, &lease_bytes(&mine)).await {
            // A write reported as failed may still have landed (the Spin 4 build gives up on a
            // call after 1 s, and Redis may apply it later): act as the lease's owner, so the
            // token we fetch is stored and the lease released, rather than leave the fleet
            // waiting on a lease nobody serves until it expires.
            self.store_failed(&format!(
                "token lease write failed ({e}); fetching as the lease's owner"
            ));
            return true;
        }
        let write = Duration::from_millis(clock.now_ms().saturating_sub(started));
        clock.sleep((write * 4).clamp(MIN_SETTLE, MAX_SETTLE)).await;
        match self.read_lease(store).await {
            Ok(lease) => lease.is_some_and(|l| l.owner == self.my_id()),
            Err(e) => {
                // Our lease is written and cannot be read back: act as its owner, so the token
                // we fetch is stored and the lease released, rather than leave waiters polling
                // for a lease nobody serves.
                self.store_failed(&format!(
                    "token lease read failed ({e}); fetching as the lease's owner"
                ));
                true
            }
        }
    }

    /// How long a lease lasts: the fetch it guards, the settle delay and storing the record.
    fn lease_for(&self) -> Duration {
        self.me.fetch_timeout + LEASE_MARGIN
    }

    async fn fetch_as_leader(
        &self,
        store: &dyn TokenStore,
        valid: Option<TokenRecord>,
        refused: Option<&AccessToken>,
    ) -> Result<Token> {
        // Another leader may have stored a token while we settled.
        if let Ok(Some(record)) = self.read_record(store).await {
            if self.usable(&record, refused) {
                self.release(store, None).await;
                return Ok(cached_token(record));
            }
        }
        let result = self.fetch(Some(store), valid).await;
        match &result {
            Ok(token) if token.source == super::TokenSource::Fetched => {
                self.release(store, None).await
            }
            // The fetch failed and a still-valid token stood in: waiters fall back the same way.
            Ok(_) => self.release(store, Some(Failed::Other)).await,
            Err(e) => self.release(store, Some(Failed::of(e))).await,
        }
        result
    }

    /// Ends our lease: deleted when the fetch worked (the waiters find the record), or turned into
    /// a short-lived failure notice for them when it did not. A lease another request has since
    /// taken over is left alone.
    async fn release(&self, store: &dyn TokenStore, failed: Option<Failed>) {
        let result = match failed {
            None => match self.read_lease(store).await {
                Ok(Some(lease)) if lease.owner == self.my_id() => {
                    store.delete(&self.lease_key).await
                }
                _ => Ok(()),
            },
            // Only our own lease becomes a notice: one another request took over (ours expired
            // during a slow fetch) is left alone.
            Some(failed) => match self.read_lease(store).await {
                Ok(Some(lease)) if lease.owner == self.my_id() => {
                    let notice = Lease {
                        owner: self.my_id(),
                        until_ms: self
                            .ports
                            .clock
                            .now_ms()
                            .saturating_add(FAILURE_NOTICE.as_millis() as u64),
                        failed: Some(failed),
                    };
                    store.set(&self.lease_key, &lease_bytes(&notice)).await
                }
                _ => Ok(()),
            },
        };
        if let Err(e) = result {
            self.store_failed(&format!("token lease release failed: {e}"));
        }
    }

    /// The lease record; one that does not parse counts as absent.
    async fn read_lease(
        &self,
        store: &dyn TokenStore,
    ) -> std::result::Result<Option<Lease>, String> {
        store
            .get(&self.lease_key)
            .await
            .map(|bytes| bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }
}

fn lease_bytes(lease: &Lease) -> Vec<u8> {
    // A struct of numbers and a unit enum always serialises.
    serde_json::to_vec(lease).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    //! Real threads and a real clock against one shared store: each thread is one request in its
    //! own instance, as under Spin.

    use super::*;
    use crate::config::{ClientAuth, TokenConfig};
    use crate::port::{block_on, Io};
    use crate::token::test_support::token_config;
    use crate::token::{
        cache_key, Clock, Contender, ContenderId, TokenEndpoint, TokenPorts, TokenRequest,
    };
    use crate::token::{TokenSource, TokenStore};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Barrier, Mutex};

    /// A shared store whose calls take a little time, like a real one.
    #[derive(Default)]
    struct Shared(Mutex<HashMap<String, Vec<u8>>>);

    impl TokenStore for Shared {
        fn get<'a>(&'a self, key: &'a str) -> Io<'a, std::result::Result<Option<Vec<u8>>, String>> {
            Box::pin(async move {
                std::thread::sleep(Duration::from_micros(200));
                Ok(self.0.lock().unwrap().get(key).cloned())
            })
        }
        fn set<'a>(
            &'a self,
            key: &'a str,
            value: &'a [u8],
        ) -> Io<'a, std::result::Result<(), String>> {
            Box::pin(async move {
                std::thread::sleep(Duration::from_micros(500));
                self.0.lock().unwrap().insert(key.into(), value.to_vec());
                Ok(())
            })
        }
        fn delete<'a>(&'a self, key: &'a str) -> Io<'a, std::result::Result<(), String>> {
            Box::pin(async move {
                self.0.lock().unwrap().remove(key);
                Ok(())
            })
        }
    }

    struct Wall;

    impl Clock for Wall {
        fn now_ms(&self) -> u64 {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        }
        fn sleep(&self, duration: Duration) -> Io<'_, ()> {
            Box::pin(async move { std::thread::sleep(duration) })
        }
    }

    /// Issues `t1`, `t2`, … after `delay`; or fails, when `down`.
    struct Endpoint {
        calls: AtomicUsize,
        delay: Duration,
        down: bool,
    }

    impl TokenEndpoint for Endpoint {
        fn send<'a>(&'a self, _: &'a TokenRequest) -> Io<'a, Result<(u16, Vec<u8>)>> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                std::thread::sleep(self.delay);
                if self.down {
                    return Ok((503, Vec::new()));
                }
                Ok((
                    200,
                    format!(r#"{{"access_token":"t{n}","expires_in":1800}}"#).into_bytes(),
                ))
            })
        }
    }

    fn endpoint(delay_ms: u64, down: bool) -> Endpoint {
        Endpoint {
            calls: AtomicUsize::new(0),
            delay: Duration::from_millis(delay_ms),
            down,
        }
    }

    fn cfg() -> TokenConfig {
        token_config(ClientAuth::Body)
    }

    /// `n` requests at once, each with its own contender id; `refused` makes them replace that
    /// token (a burst right after a revocation) instead of getting one.
    fn burst(
        store: &Shared,
        endpoint: &Endpoint,
        n: usize,
        refused: Option<&TokenRecord>,
    ) -> Vec<Result<Token>> {
        static IDS: AtomicU64 = AtomicU64::new(1);
        let cfg = cfg();
        let start = Barrier::new(n);
        std::thread::scope(|s| {
            let requests: Vec<_> = (0..n)
                .map(|_| {
                    let (cfg, start) = (&cfg, &start);
                    s.spawn(move || {
                        let ports = TokenPorts {
                            store: Some(store),
                            endpoint,
                            clock: &Wall,
                            log: &|_| {},
                        };
                        let me = Contender {
                            id: ContenderId::Fixed(IDS.fetch_add(1, Ordering::SeqCst)),
                            fetch_timeout: Duration::from_secs(5),
                        };
                        let cache = TokenCache::new(cfg, ports, me);
                        start.wait();
                        match refused {
                            None => block_on(cache.get()),
                            Some(record) => block_on(cache.replace(record)),
                        }
                    })
                })
                .collect();
            requests.into_iter().map(|r| r.join().unwrap()).collect()
        })
    }

    #[test]
    fn a_cold_burst_fetches_one_token() {
        let store = Shared::default();
        let ep = endpoint(100, false);
        let tokens = burst(&store, &ep, 64, None);
        assert!(tokens.iter().all(Result::is_ok));
        let calls = ep.calls.load(Ordering::SeqCst);
        assert!((1..=2).contains(&calls), "{calls} fetches for 64 requests");
        let fetched = tokens
            .iter()
            .filter(|t| t.as_ref().unwrap().source == TokenSource::Fetched)
            .count();
        assert_eq!(fetched, calls, "everyone else got the stored token");
        assert!(
            block_on(store.get(&lease_key_of())).unwrap().is_none(),
            "the lease is released"
        );
    }

    #[test]
    fn a_burst_after_a_revocation_replaces_the_token_once() {
        let store = Shared::default();
        let ep = endpoint(50, false);
        let first = burst(&store, &ep, 1, None).remove(0).unwrap().record;
        let tokens = burst(&store, &ep, 64, Some(&first));
        assert!(tokens
            .iter()
            .all(|t| t.as_ref().unwrap().record.access_token != first.access_token));
        let calls = ep.calls.load(Ordering::SeqCst) - 1;
        assert!((1..=2).contains(&calls), "{calls} fetches after revocation");
        let stored =
            TokenRecord::from_bytes(&block_on(store.get(&cache_key(&cfg()))).unwrap().unwrap());
        assert_ne!(stored.unwrap().access_token, first.access_token);
    }

    #[test]
    fn waiters_share_a_failed_fetch_instead_of_each_trying() {
        let store = Shared::default();
        let ep = endpoint(100, true);
        let tokens = burst(&store, &ep, 32, None);
        for token in &tokens {
            assert_eq!(token.as_ref().unwrap_err().code(), "token_endpoint_failed");
        }
        let calls = ep.calls.load(Ordering::SeqCst);
        assert!(
            calls <= 3,
            "{calls} fetches for 32 requests to a failing endpoint"
        );
    }

    #[test]
    fn a_lease_whose_owner_died_is_taken_over() {
        let store = Shared::default();
        let dead = Lease {
            owner: 999,
            until_ms: Wall.now_ms() + 300,
            failed: None,
        };
        block_on(store.set(&lease_key_of(), &lease_bytes(&dead))).unwrap();
        let ep = endpoint(0, false);
        let started = std::time::Instant::now();
        let token = burst(&store, &ep, 1, None).remove(0).unwrap();
        assert_eq!(token.source, TokenSource::Fetched);
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "waited for the lease"
        );
        assert_eq!(ep.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_lease_far_in_the_future_does_not_hold_a_waiter_past_its_own_bound() {
        // Written by a host whose clock runs an hour ahead, say.
        let store = Shared::default();
        let ahead = Lease {
            owner: 999,
            until_ms: Wall.now_ms() + 3_600_000,
            failed: None,
        };
        block_on(store.set(&lease_key_of(), &lease_bytes(&ahead))).unwrap();
        let ep = endpoint(0, false);
        let cfg = cfg();
        let ports = TokenPorts {
            store: Some(&store),
            endpoint: &ep,
            clock: &Wall,
            log: &|_| {},
        };
        let me = Contender {
            id: ContenderId::Fixed(1),
            fetch_timeout: Duration::ZERO,
        };
        let started = std::time::Instant::now();
        let token = block_on(TokenCache::new(&cfg, ports, me).get()).unwrap();
        assert_eq!(token.source, TokenSource::Fetched);
        // Two leases of its own length (2 s each with a zero fetch timeout), not an hour.
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{:?}",
            started.elapsed()
        );
        assert!(
            block_on(store.get(&cache_key(&cfg))).unwrap().is_some(),
            "the token it fetched is stored"
        );
    }

    #[test]
    fn a_valid_token_is_used_while_another_request_refreshes_it() {
        let store = Shared::default();
        let now = Wall.now();
        let stale = TokenRecord {
            access_token: AccessToken::new("old"),
            token_type: "Bearer".into(),
            expires_at: now + 30,
            issued_at: Some(now - 3000),
        };
        block_on(store.set(&cache_key(&cfg()), &stale.to_bytes())).unwrap();
        let busy = Lease {
            owner: 999,
            until_ms: Wall.now_ms() + 5000,
            failed: None,
        };
        block_on(store.set(&lease_key_of(), &lease_bytes(&busy))).unwrap();
        let ep = endpoint(0, false);
        let token = burst(&store, &ep, 1, None).remove(0).unwrap();
        assert_eq!(token.record.access_token.secret(), "old");
        assert_eq!(ep.calls.load(Ordering::SeqCst), 0, "no wait, no fetch");
    }

    fn lease_key_of() -> String {
        crate::token::lease_key(&cfg())
    }
}
