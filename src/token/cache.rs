//! The token cache for one request: read the stored record and use it while fresh; otherwise
//! get a new token through the fleet's single flight (`flight`); after a 401, replace the refused
//! token the same way.
//!
//! [`TokenCache`] is built once per request, with its keys computed once, over three ports: the
//! store (get/set/delete; absent when it could not be opened), the token endpoint and the clock.
//! A store failure never fails the request: it is logged once and the token is fetched without
//! the cache. A stored record is only ever overwritten by a newer token, never deleted, so no
//! instance can remove a token another one just stored. This module does not send anything
//! upstream and does not decide on retries (`retry` does).

use std::cell::{Cell, OnceCell};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{parse_token_reply, token_request, Token, TokenEndpoint, TokenRecord, TokenSource};
use crate::config::TokenConfig;
use crate::error::Result;
use crate::port::Io;
use crate::secret::{hex_sha256, AccessToken};

/// The token cache's store: Spin's key-value store in production, a map in tests. Errors are
/// plain descriptions; the cache logs them and carries on without the store.
pub trait TokenStore {
    fn get<'a>(&'a self, key: &'a str) -> Io<'a, std::result::Result<Option<Vec<u8>>, String>>;
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> Io<'a, std::result::Result<(), String>>;
    fn delete<'a>(&'a self, key: &'a str) -> Io<'a, std::result::Result<(), String>>;
}

/// Wall-clock time, and waiting: the lease's settle delay and the waiters' backoff.
pub trait Clock {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> u64;

    /// Holds this request for `duration`.
    fn sleep(&self, duration: Duration) -> Io<'_, ()>;

    /// Unix time in seconds, the unit of token records.
    fn now(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// Unix milliseconds from std's wall clock (wasi:clocks in both builds): what each edge's clock
/// reads.
pub fn system_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A random id for a request's place in the lease election. std seeds `RandomState` from the
/// system's random source (wasi's `random_get` in both builds), so this needs no extra
/// dependency; the time is mixed in for good measure.
pub fn random_id() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}

/// The I/O a [`TokenCache`] runs on.
#[derive(Clone, Copy)]
pub struct TokenPorts<'a> {
    /// `None` when the store could not be opened: tokens are then fetched without the cache.
    pub store: Option<&'a dyn TokenStore>,
    pub endpoint: &'a dyn TokenEndpoint,
    pub clock: &'a dyn Clock,
    pub log: &'a dyn Fn(&str),
}

/// This request as a contender in the fleet-wide lease election (see `flight`). Its id is
/// resolved by the [`TokenCache`] it is given to, once: build one `TokenCache` per request, so a
/// request never stands under two ids.
#[derive(Debug, Clone, Copy)]
pub struct Contender {
    /// Unique across the fleet; the lease record names its owner by it.
    pub id: ContenderId,
    /// The longest a token fetch may take (`upstream_timeout_secs`): a lease lasts a little
    /// longer, so a fetcher that died is replaced soon after its fetch would have timed out.
    pub fetch_timeout: Duration,
}

impl Contender {
    /// A request of its own, its id drawn at random when first needed (`random_id`).
    pub fn random(fetch_timeout: Duration) -> Contender {
        Contender {
            id: ContenderId::Random(random_id),
            fetch_timeout,
        }
    }
}

/// A contender's id, or how to draw one. Only a request that joins an election needs it, and
/// most find a fresh token first, so a random id is drawn at most once, when first needed.
#[derive(Debug, Clone, Copy)]
pub enum ContenderId {
    Fixed(u64),
    Random(fn() -> u64),
}

/// The key-value key of the token for this endpoint and client. Hashed, so the key has a fixed
/// length (≤ 255 bytes on Fermyon Cloud) and no credential appears in a key name.
pub fn cache_key(cfg: &TokenConfig) -> String {
    keys(cfg).0
}

/// The key of the lease record that elects the one fetcher for [`cache_key`]'s token.
pub fn lease_key(cfg: &TokenConfig) -> String {
    keys(cfg).1
}

/// Both keys from one hash: every request on the token path builds them.
fn keys(cfg: &TokenConfig) -> (String, String) {
    let hash = client_hash(cfg);
    (
        format!("credential-proxy:token:v1:{hash}"),
        format!("credential-proxy:lease:v1:{hash}"),
    )
}

fn client_hash(cfg: &TokenConfig) -> String {
    hex_sha256(&[
        cfg.url.as_str(),
        cfg.client_id.secret(),
        cfg.scope.as_deref().unwrap_or(""),
    ])
}

/// Cache-or-fetch for one request.
pub struct TokenCache<'a> {
    pub(super) cfg: &'a TokenConfig,
    pub(super) key: String,
    pub(super) lease_key: String,
    pub(super) ports: TokenPorts<'a>,
    pub(super) me: Contender,
    id: OnceCell<u64>,
    store_failure_logged: Cell<bool>,
}

impl<'a> TokenCache<'a> {
    pub fn new(cfg: &'a TokenConfig, ports: TokenPorts<'a>, me: Contender) -> TokenCache<'a> {
        let (key, lease_key) = keys(cfg);
        TokenCache {
            cfg,
            key,
            lease_key,
            ports,
            me,
            id: OnceCell::new(),
            store_failure_logged: Cell::new(false),
        }
    }

    /// This request's id in the lease election, the same every time it is asked.
    pub(super) fn my_id(&self) -> u64 {
        *self.id.get_or_init(|| match self.me.id {
            ContenderId::Fixed(id) => id,
            ContenderId::Random(draw) => draw(),
        })
    }

    /// A fresh cached token, or a new one through the single flight. When no new token can be
    /// had, a cached token that has not yet expired is still used (the skew is a margin, not a
    /// deadline); an expired one never is.
    pub async fn get(&self) -> Result<Token> {
        self.get_or(None).await
    }

    /// [`TokenCache::get`] for an instance that holds a token of its own (`held`, the Spin 4
    /// build): while fresh it stands in when the store cannot be read, and while unexpired it is
    /// the fallback when no new token can be had, like a stored token.
    pub async fn get_or(&self, held: Option<TokenRecord>) -> Result<Token> {
        let now = self.ports.clock.now();
        let held = held.filter(|r| r.is_valid(now));
        let Some(store) = self.ports.store else {
            return self.held_or_fetch(held).await;
        };
        let Ok(cached) = self.read_record(store).await else {
            return self.held_or_fetch(held).await;
        };
        if let Some(record) = &cached {
            if self.is_fresh(record) {
                return Ok(cached_token(record.clone()));
            }
        }
        let current = cached.filter(|r| r.is_valid(now)).or(held);
        self.refresh(store, current, None).await
    }

    /// Without a store: a fresh held token, else a fetch that falls back to it.
    async fn held_or_fetch(&self, held: Option<TokenRecord>) -> Result<Token> {
        match held {
            Some(record) if self.is_fresh(&record) => Ok(cached_token(record)),
            valid => self.fetch_alone(valid).await,
        }
    }

    /// A token to use instead of `refused`, which the upstream just answered 401 to: another
    /// unexpired token that is already stored (another request replaced it first), or a new one
    /// through the same single flight, so a revocation seen by a burst costs one fetch.
    pub async fn replace(&self, refused: &TokenRecord) -> Result<Token> {
        let Some(store) = self.ports.store else {
            return self.fetch_alone(None).await;
        };
        let Ok(cached) = self.read_record(store).await else {
            return self.fetch_alone(None).await;
        };
        let other = cached.filter(|r| r.access_token != refused.access_token);
        if let Some(record) = &other {
            if record.is_valid(self.ports.clock.now()) {
                return Ok(cached_token(record.clone()));
            }
        }
        self.refresh(store, other, Some(&refused.access_token))
            .await
    }

    /// Like [`TokenCache::replace`] for a request that cannot be retried (its body was
    /// streamed): the next request finds the new token. A failure is logged, not returned: the
    /// upstream's 401 is this request's answer.
    pub async fn retire(&self, refused: &TokenRecord) {
        if let Err(e) = self.replace(refused).await {
            self.log(&format!(
                "replacing a refused token failed ({}); the next request tries again",
                e.code()
            ));
        }
    }

    pub(super) fn is_fresh(&self, record: &TokenRecord) -> bool {
        record.is_fresh(self.ports.clock.now(), self.cfg.refresh_skew_secs)
    }

    /// The stored record; `Err` (logged) when the store failed. A record that does not parse
    /// counts as absent.
    pub(super) async fn read_record(
        &self,
        store: &dyn TokenStore,
    ) -> std::result::Result<Option<TokenRecord>, ()> {
        match store.get(&self.key).await {
            Ok(bytes) => Ok(bytes.as_deref().and_then(TokenRecord::from_bytes)),
            Err(e) => {
                self.store_failed(&format!(
                    "token cache read failed ({e}); fetching without the cache"
                ));
                Err(())
            }
        }
    }

    /// Asks the token endpoint, stores the answer when `store` is given, and falls back to
    /// `valid` (a cached token not yet expired) when the endpoint fails.
    pub(super) async fn fetch(
        &self,
        store: Option<&dyn TokenStore>,
        valid: Option<TokenRecord>,
    ) -> Result<Token> {
        let request = token_request(self.cfg);
        let fetched = self
            .ports
            .endpoint
            .send(&request)
            .await
            .and_then(|(status, body)| {
                parse_token_reply(
                    status,
                    &body,
                    self.ports.clock.now(),
                    self.cfg.default_ttl_secs,
                )
            });
        let record = match fetched {
            Ok(record) => record,
            Err(err) => {
                return match valid.filter(|r| r.is_valid(self.ports.clock.now())) {
                    Some(record) => {
                        self.log(&format!(
                            "token refresh failed ({}); using the cached token until it expires",
                            err.code()
                        ));
                        Ok(cached_token(record))
                    }
                    None => Err(err),
                }
            }
        };
        if record.skew_is_clamped(self.cfg.refresh_skew_secs) {
            self.log(&format!(
                "the token lives {} s, less than twice token_refresh_skew_secs ({} s): it is \
                 refreshed {} s before it expires instead",
                record
                    .expires_at
                    .saturating_sub(record.issued_at.unwrap_or(0)),
                self.cfg.refresh_skew_secs,
                record.effective_skew(self.cfg.refresh_skew_secs)
            ));
        }
        if let Some(store) = store {
            if let Err(e) = store.set(&self.key, &record.to_bytes()).await {
                self.store_failed(&format!("token cache write failed: {e}"));
            }
        }
        Ok(Token {
            record,
            source: TokenSource::Fetched,
        })
    }

    /// Without a usable store there is no lease either: each request fetches its own token.
    async fn fetch_alone(&self, valid: Option<TokenRecord>) -> Result<Token> {
        self.fetch(None, valid).await
    }

    pub(super) fn usable(&self, record: &TokenRecord, refused: Option<&AccessToken>) -> bool {
        self.is_fresh(record) && Some(&record.access_token) != refused
    }

    pub(super) fn log(&self, line: &str) {
        (self.ports.log)(line)
    }

    /// Logs a failure of the store, once per request: after the first, the request goes on
    /// without the store's help and every later failure is the same news.
    pub(super) fn store_failed(&self, line: &str) {
        if !self.store_failure_logged.replace(true) {
            self.log(line);
        }
    }
}

pub(super) fn cached_token(record: TokenRecord) -> Token {
    Token {
        record,
        source: TokenSource::Cached,
    }
}

/// In-memory ports for unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    pub(crate) struct MapStore(RefCell<HashMap<String, Vec<u8>>>);

    impl TokenStore for MapStore {
        fn get<'a>(&'a self, key: &'a str) -> Io<'a, std::result::Result<Option<Vec<u8>>, String>> {
            Box::pin(async move { Ok(self.0.borrow().get(key).cloned()) })
        }
        fn set<'a>(
            &'a self,
            key: &'a str,
            value: &'a [u8],
        ) -> Io<'a, std::result::Result<(), String>> {
            Box::pin(async move {
                self.0.borrow_mut().insert(key.into(), value.to_vec());
                Ok(())
            })
        }
        fn delete<'a>(&'a self, key: &'a str) -> Io<'a, std::result::Result<(), String>> {
            Box::pin(async move {
                self.0.borrow_mut().remove(key);
                Ok(())
            })
        }
    }

    /// A clock stopped at one instant (Unix seconds); sleeping does not move it.
    pub(crate) struct At(pub u64);

    impl Clock for At {
        fn now_ms(&self) -> u64 {
            self.0 * 1000
        }
        fn sleep(&self, _: Duration) -> Io<'_, ()> {
            Box::pin(async {})
        }
    }

    /// A client-credentials config with a space in the id and `&` in the secret, so tests see
    /// the encoding.
    pub(crate) fn token_config(client_auth: crate::config::ClientAuth) -> TokenConfig {
        TokenConfig {
            url: url::Url::parse("https://auth.example.com/oauth2/token").unwrap(),
            client_id: crate::secret::ClientId::new("my id"),
            client_secret: crate::secret::ClientSecret::new("s&cret"),
            scope: None,
            client_auth,
            refresh_skew_secs: 60,
            default_ttl_secs: 300,
        }
    }

    pub(crate) fn ports<'a>(
        store: &'a dyn TokenStore,
        endpoint: &'a dyn TokenEndpoint,
        clock: &'a dyn Clock,
    ) -> TokenPorts<'a> {
        TokenPorts {
            store: Some(store),
            endpoint,
            clock,
            log: &|_| {},
        }
    }

    /// A record of the token `tok` that expires at `expires_at`, with no issue time.
    pub(crate) fn record(expires_at: u64) -> TokenRecord {
        TokenRecord {
            access_token: crate::secret::AccessToken::new("tok"),
            token_type: "Bearer".into(),
            expires_at,
            issued_at: None,
        }
    }

    /// The one contender of a single-request unit test.
    pub(crate) const ME: Contender = Contender {
        id: ContenderId::Fixed(1),
        fetch_timeout: Duration::from_secs(30),
    };
}

#[cfg(test)]
mod tests {
    use super::test_support::{ports, record, token_config, At, MapStore, ME};
    use super::*;
    use crate::config::ClientAuth;
    use crate::error::Error;
    use crate::port::{block_on, Io};
    use crate::secret::AccessToken;
    use crate::token::TokenRequest;
    use std::cell::RefCell;

    fn cfg() -> TokenConfig {
        token_config(ClientAuth::Body)
    }

    struct Endpoint {
        calls: RefCell<u32>,
        fail: bool,
    }
    impl TokenEndpoint for Endpoint {
        fn send<'a>(&'a self, _: &'a TokenRequest) -> Io<'a, Result<(u16, Vec<u8>)>> {
            Box::pin(async move {
                *self.calls.borrow_mut() += 1;
                if self.fail {
                    return Err(Error::token_endpoint("down"));
                }
                let n = *self.calls.borrow();
                Ok((
                    200,
                    format!(r#"{{"access_token":"t{n}","expires_in":100}}"#).into_bytes(),
                ))
            })
        }
    }

    fn endpoint(fail: bool) -> Endpoint {
        Endpoint {
            calls: RefCell::new(0),
            fail,
        }
    }

    fn run(store: &MapStore, endpoint: &Endpoint, now: u64) -> Result<(TokenRecord, TokenSource)> {
        let c = cfg();
        let token = block_on(TokenCache::new(&c, ports(store, endpoint, &At(now)), ME).get())?;
        Ok((token.record, token.source))
    }

    #[test]
    fn cache_key_is_short_and_has_no_credentials() {
        let key = cache_key(&cfg());
        assert!(key.len() <= 255);
        assert!(!key.contains("my id") && !key.contains("s&cret"));
        let mut other = cfg();
        other.scope = Some("x".into());
        assert_ne!(key, cache_key(&other));
    }

    #[test]
    fn replace_uses_a_newer_token_stored_meanwhile_and_never_deletes_it() {
        let store = MapStore::default();
        let c = cfg();
        let ep = endpoint(false);
        let tokens = TokenCache::new(&c, ports(&store, &ep, &At(0)), ME);
        let mut refused = record(100);
        refused.access_token = AccessToken::new("old");
        block_on(store.set(&cache_key(&c), &record(100).to_bytes())).unwrap();
        let token = block_on(tokens.replace(&refused)).unwrap();
        assert_eq!(
            (token.record.access_token.secret(), token.source),
            ("tok", TokenSource::Cached),
            "another request's token is used"
        );
        assert_eq!(*ep.calls.borrow(), 0, "no fetch");
        assert!(
            block_on(store.get(&cache_key(&c))).unwrap().is_some(),
            "another token is kept"
        );
        let token = block_on(tokens.replace(&record(100))).unwrap();
        assert_eq!(
            (token.record.access_token.secret(), token.source),
            ("t1", TokenSource::Fetched),
            "the refused one is replaced"
        );
        let stored =
            TokenRecord::from_bytes(&block_on(store.get(&cache_key(&c))).unwrap().unwrap());
        assert_eq!(stored.unwrap().access_token.secret(), "t1");
    }

    #[test]
    fn the_lease_key_is_apart_from_the_token_key_and_has_no_credentials() {
        let (token, lease) = (cache_key(&cfg()), lease_key(&cfg()));
        assert_ne!(token, lease);
        assert!(lease.len() <= 255);
        assert!(!lease.contains("my id") && !lease.contains("s&cret"));
    }

    #[test]
    fn without_a_store_every_request_fetches_and_nothing_is_kept() {
        let ep = endpoint(false);
        let c = cfg();
        let unused = MapStore::default();
        let mut p = ports(&unused, &ep, &At(0));
        p.store = None;
        for _ in 0..2 {
            let token = block_on(TokenCache::new(&c, p, ME).get()).unwrap();
            assert_eq!(token.source, TokenSource::Fetched);
        }
        assert_eq!(*ep.calls.borrow(), 2);
    }

    #[test]
    fn a_failing_store_read_is_logged_once_and_the_token_fetched() {
        struct Broken;
        impl TokenStore for Broken {
            fn get<'a>(
                &'a self,
                _: &'a str,
            ) -> Io<'a, std::result::Result<Option<Vec<u8>>, String>> {
                Box::pin(async move { Err("down".into()) })
            }
            fn set<'a>(
                &'a self,
                _: &'a str,
                _: &'a [u8],
            ) -> Io<'a, std::result::Result<(), String>> {
                Box::pin(async move { Err("down".into()) })
            }
            fn delete<'a>(&'a self, _: &'a str) -> Io<'a, std::result::Result<(), String>> {
                Box::pin(async move { Err("down".into()) })
            }
        }
        let ep = endpoint(false);
        let c = cfg();
        let lines = RefCell::new(Vec::new());
        let log = |line: &str| lines.borrow_mut().push(line.to_string());
        let p = TokenPorts {
            store: Some(&Broken),
            endpoint: &ep,
            clock: &At(0),
            log: &log,
        };
        let token = block_on(TokenCache::new(&c, p, ME).get()).unwrap();
        assert_eq!(token.source, TokenSource::Fetched);
        let about_the_store = lines
            .borrow()
            .iter()
            .filter(|l| l.contains("token cache") || l.contains("token lease"))
            .count();
        assert_eq!(about_the_store, 1, "{:?}", lines.borrow());
    }

    #[test]
    fn reuses_a_fresh_token_and_refreshes_a_stale_one() {
        let store = MapStore::default();
        let ep = endpoint(false);
        let (first, src) = run(&store, &ep, 0).unwrap();
        assert_eq!(src, TokenSource::Fetched);
        assert_eq!(first.expires_at, 100);
        // A 100 s token: the 60 s skew is clamped to half its life, so it is fresh until 50.
        let (again, src) = run(&store, &ep, 49).unwrap();
        assert_eq!(
            (again.access_token.secret(), src),
            ("t1", TokenSource::Cached)
        );
        let (next, src) = run(&store, &ep, 50).unwrap();
        assert_eq!(
            (next.access_token.secret(), src),
            ("t2", TokenSource::Fetched)
        );
        assert_eq!(*ep.calls.borrow(), 2);
    }

    #[test]
    fn a_held_token_stands_in_when_the_store_has_none_and_the_endpoint_fails() {
        let c = cfg();
        let store = MapStore::default();
        let down = endpoint(true);
        // Fresh, the store emptied (a Redis restart): the endpoint fails, the held token answers.
        let p = ports(&store, &down, &At(1000));
        let token = block_on(TokenCache::new(&c, p, ME).get_or(Some(record(5000)))).unwrap();
        assert_eq!(token.source, TokenSource::Cached);
        // Without a store, stale but unexpired: a fetch is tried, and the held token stands in.
        let p = TokenPorts { store: None, ..p };
        let token = block_on(TokenCache::new(&c, p, ME).get_or(Some(record(1030)))).unwrap();
        assert_eq!(token.record.expires_at, 1030);
        assert_eq!(*down.calls.borrow(), 2);
        // Expired: never.
        let err = block_on(TokenCache::new(&c, p, ME).get_or(Some(record(999)))).unwrap_err();
        assert_eq!(err.code(), "token_endpoint_failed");
    }

    #[test]
    fn failing_endpoint_falls_back_to_a_still_valid_token_only() {
        let store = MapStore::default();
        block_on(store.set(&cache_key(&cfg()), &record(100).to_bytes())).unwrap();
        let down = endpoint(true);
        let (r, src) = run(&store, &down, 99).unwrap();
        assert_eq!((r.expires_at, src), (100, TokenSource::Cached));
        let err = run(&store, &down, 100).unwrap_err();
        assert_eq!(err.code(), "token_endpoint_failed");
    }

    #[test]
    fn a_short_token_is_reused_and_its_clamped_skew_logged_once() {
        struct Short(RefCell<u32>);
        impl TokenEndpoint for Short {
            fn send<'a>(&'a self, _: &'a TokenRequest) -> Io<'a, Result<(u16, Vec<u8>)>> {
                Box::pin(async move {
                    *self.0.borrow_mut() += 1;
                    Ok((200, br#"{"access_token":"t","expires_in":30}"#.to_vec()))
                })
            }
        }
        let store = MapStore::default();
        let ep = Short(RefCell::new(0));
        let c = cfg();
        let lines = RefCell::new(Vec::new());
        let log = |line: &str| lines.borrow_mut().push(line.to_string());
        for now in [0, 5, 10, 14] {
            let clock = At(now);
            let mut p = ports(&store, &ep, &clock);
            p.log = &log;
            block_on(TokenCache::new(&c, p, ME).get()).unwrap();
        }
        assert_eq!(*ep.0.borrow(), 1, "a 30 s token is reused for 15 s");
        assert_eq!(lines.borrow().len(), 1);
        assert!(lines.borrow()[0].contains("refreshed 15 s before it expires"));
    }
}
