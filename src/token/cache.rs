//! The token cache for one request: read the stored record, use it while fresh, otherwise fetch
//! and store a new one; drop a token the upstream refused.
//!
//! [`TokenCache`] is built once per request, with its key computed once, over three ports: the
//! store (get/set/delete), the token endpoint and the clock. A store failure never fails the
//! request: it is logged and the proxy carries on without the cache. This is the home of the
//! cache's semantics (freshness, fallback to a still-valid token, never deleting another
//! instance's newer token); it does not send anything upstream and does not decide on retries.

use sha2::{Digest, Sha256};

use super::{parse_token_reply, token_request, Token, TokenEndpoint, TokenRecord, TokenSource};
use crate::config::TokenConfig;
use crate::error::Result;

/// The token cache's store: Spin's key-value store in production, a map in tests. Errors are
/// plain descriptions; the cache logs them and carries on without the store.
pub trait TokenStore {
    fn get(&self, key: &str) -> std::result::Result<Option<Vec<u8>>, String>;
    fn set(&self, key: &str, value: &[u8]) -> std::result::Result<(), String>;
    fn delete(&self, key: &str) -> std::result::Result<(), String>;
}

/// Wall-clock time in Unix seconds.
pub trait Clock {
    fn now(&self) -> u64;
}

/// The I/O a [`TokenCache`] runs on.
#[derive(Clone, Copy)]
pub struct TokenPorts<'a> {
    pub store: &'a dyn TokenStore,
    pub endpoint: &'a dyn TokenEndpoint,
    pub clock: &'a dyn Clock,
    pub log: &'a dyn Fn(&str),
}

/// The key-value key of the token for this endpoint and client. Hashed, so the key has a fixed
/// length (≤ 255 bytes on Fermyon Cloud) and no credential appears in a key name.
pub fn cache_key(cfg: &TokenConfig) -> String {
    let mut hash = Sha256::new();
    for part in [
        cfg.url.as_str(),
        cfg.client_id.secret(),
        cfg.scope.as_deref().unwrap_or(""),
    ] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    let digest = hash.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("credential-proxy:token:v1:{hex}")
}

/// Cache-or-fetch for one request.
pub struct TokenCache<'a> {
    cfg: &'a TokenConfig,
    key: String,
    ports: TokenPorts<'a>,
}

impl<'a> TokenCache<'a> {
    pub fn new(cfg: &'a TokenConfig, ports: TokenPorts<'a>) -> TokenCache<'a> {
        TokenCache {
            cfg,
            key: cache_key(cfg),
            ports,
        }
    }

    /// A fresh cached token, or a new one. When the endpoint fails, a cached token that has not
    /// yet expired is still used (the skew is a margin, not a deadline); an expired one never is.
    pub fn get(&self) -> Result<Token> {
        let cached = match self.ports.store.get(&self.key) {
            Ok(bytes) => bytes.as_deref().and_then(TokenRecord::from_bytes),
            Err(e) => {
                self.log(&format!("token cache read failed, fetching instead: {e}"));
                None
            }
        };
        let now = self.ports.clock.now();
        if let Some(record) = &cached {
            if record.is_fresh(now, self.cfg.refresh_skew_secs) {
                return Ok(cached_token(record.clone()));
            }
        }
        match self.fetch() {
            Ok(token) => Ok(token),
            Err(err) => match cached {
                Some(record) if record.is_valid(now) => {
                    self.log(&format!(
                        "token refresh failed ({}); using the cached token until it expires",
                        err.code()
                    ));
                    Ok(cached_token(record))
                }
                _ => Err(err),
            },
        }
    }

    /// Drops the cached token if it is still `refused`: the upstream refused it, so nobody may
    /// use it again. A newer token that another instance stored meanwhile is kept.
    pub fn invalidate(&self, refused: &TokenRecord) {
        let still_cached = match self.ports.store.get(&self.key) {
            Ok(bytes) => bytes
                .as_deref()
                .and_then(TokenRecord::from_bytes)
                .is_some_and(|r| r.access_token == refused.access_token),
            // Unknown: delete, so a refused token is never reused.
            Err(_) => true,
        };
        if still_cached {
            if let Err(e) = self.ports.store.delete(&self.key) {
                self.log(&format!("token cache delete failed: {e}"));
            }
        }
    }

    /// Drops the refused token and fetches a new one.
    pub fn refresh(&self, refused: &TokenRecord) -> Result<Token> {
        self.invalidate(refused);
        self.fetch()
    }

    fn fetch(&self) -> Result<Token> {
        let (status, body) = self.ports.endpoint.send(&token_request(self.cfg))?;
        let now = self.ports.clock.now();
        let record = parse_token_reply(status, &body, now, self.cfg.default_ttl_secs)?;
        if let Err(e) = self.ports.store.set(&self.key, &record.to_bytes()) {
            self.log(&format!("token cache write failed: {e}"));
        }
        Ok(Token {
            record,
            source: TokenSource::Fetched,
        })
    }

    fn log(&self, line: &str) {
        (self.ports.log)(line)
    }
}

fn cached_token(record: TokenRecord) -> Token {
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
        fn get(&self, key: &str) -> std::result::Result<Option<Vec<u8>>, String> {
            Ok(self.0.borrow().get(key).cloned())
        }
        fn set(&self, key: &str, value: &[u8]) -> std::result::Result<(), String> {
            self.0.borrow_mut().insert(key.into(), value.to_vec());
            Ok(())
        }
        fn delete(&self, key: &str) -> std::result::Result<(), String> {
            self.0.borrow_mut().remove(key);
            Ok(())
        }
    }

    /// A clock stopped at one instant.
    pub(crate) struct At(pub u64);

    impl Clock for At {
        fn now(&self) -> u64 {
            self.0
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
            store,
            endpoint,
            clock,
            log: &|_| {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{ports, token_config, At, MapStore};
    use super::*;
    use crate::config::ClientAuth;
    use crate::error::Error;
    use crate::secret::AccessToken;
    use crate::token::TokenRequest;
    use std::cell::RefCell;

    fn cfg() -> TokenConfig {
        token_config(ClientAuth::Body)
    }

    fn record(expires_at: u64) -> TokenRecord {
        TokenRecord {
            access_token: AccessToken::new("tok"),
            token_type: "Bearer".into(),
            expires_at,
        }
    }

    struct Endpoint {
        calls: RefCell<u32>,
        fail: bool,
    }
    impl TokenEndpoint for Endpoint {
        fn send(&self, _: &TokenRequest) -> Result<(u16, Vec<u8>)> {
            *self.calls.borrow_mut() += 1;
            if self.fail {
                return Err(Error::token_endpoint("down"));
            }
            let n = *self.calls.borrow();
            Ok((
                200,
                format!(r#"{{"access_token":"t{n}","expires_in":100}}"#).into_bytes(),
            ))
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
        let token = TokenCache::new(&c, ports(store, endpoint, &At(now))).get()?;
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
    fn invalidate_keeps_a_newer_token_stored_meanwhile() {
        let store = MapStore::default();
        let c = cfg();
        let ep = endpoint(false);
        let tokens = TokenCache::new(&c, ports(&store, &ep, &At(0)));
        let mut refused = record(100);
        refused.access_token = AccessToken::new("old");
        store.set(&cache_key(&c), &record(100).to_bytes()).unwrap();
        tokens.invalidate(&refused);
        assert!(
            store.get(&cache_key(&c)).unwrap().is_some(),
            "another token is kept"
        );
        tokens.invalidate(&record(100));
        assert!(
            store.get(&cache_key(&c)).unwrap().is_none(),
            "the refused one goes"
        );
    }

    #[test]
    fn reuses_a_fresh_token_and_refreshes_a_stale_one() {
        let store = MapStore::default();
        let ep = endpoint(false);
        let (first, src) = run(&store, &ep, 0).unwrap();
        assert_eq!(src, TokenSource::Fetched);
        assert_eq!(first.expires_at, 100);
        let (again, src) = run(&store, &ep, 39).unwrap();
        assert_eq!(
            (again.access_token.secret(), src),
            ("t1", TokenSource::Cached)
        );
        let (next, src) = run(&store, &ep, 40).unwrap();
        assert_eq!(
            (next.access_token.secret(), src),
            ("t2", TokenSource::Fetched)
        );
        assert_eq!(*ep.calls.borrow(), 2);
    }

    #[test]
    fn failing_endpoint_falls_back_to_a_still_valid_token_only() {
        let store = MapStore::default();
        store
            .set(&cache_key(&cfg()), &record(100).to_bytes())
            .unwrap();
        let down = endpoint(true);
        let (r, src) = run(&store, &down, 99).unwrap();
        assert_eq!((r.expires_at, src), (100, TokenSource::Cached));
        let err = run(&store, &down, 100).unwrap_err();
        assert_eq!(err.code(), "token_endpoint_failed");
    }

    #[test]
    fn refresh_drops_the_cached_token() {
        let store = MapStore::default();
        let ep = endpoint(false);
        run(&store, &ep, 0).unwrap();
        let c = cfg();
        let stored = store.get(&cache_key(&c)).unwrap().unwrap();
        let fresh = TokenCache::new(&c, ports(&store, &ep, &At(1)))
            .refresh(&TokenRecord::from_bytes(&stored).unwrap())
            .unwrap();
        assert_eq!(fresh.record.access_token.secret(), "t2");
        assert_eq!(fresh.source, TokenSource::Fetched);
        let stored = TokenRecord::from_bytes(&store.get(&cache_key(&c)).unwrap().unwrap());
        assert_eq!(stored.unwrap().access_token.secret(), "t2");
    }
}
