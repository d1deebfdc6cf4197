//! OAuth2 client-credentials tokens: the cached record, its freshness math, the token endpoint's
//! request and reply, and the cache-or-fetch decision.
//!
//! The record stored in the key-value store is `{access_token, token_type, expires_at}` with an
//! absolute expiry in Unix seconds, because Spin's key-value store has no TTL of its own. The
//! I/O (clock, store, HTTP) comes in through the small ports below, so all of this runs in native
//! unit tests. Nothing here ever formats a token, the client secret or the endpoint's reply text
//! into an error or a log line.

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{ClientAuth, TokenConfig};
use crate::error::{Error, Result};
use crate::secret::AccessToken;

/// What the proxy keeps in the key-value store.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    #[serde(with = "token_serde")]
    pub access_token: AccessToken,
    /// Kept as the endpoint said, for whoever reads the cache; the proxy always sends `Bearer`
    /// (RFC 6750), the only type client credentials issue in practice.
    pub token_type: String,
    /// Unix seconds after which the token must not be sent.
    pub expires_at: u64,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

mod token_serde {
    use super::AccessToken;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(token: &AccessToken, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(token.secret())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<AccessToken, D::Error> {
        String::deserialize(d).map(AccessToken::new)
    }
}

impl TokenRecord {
    /// Fresh enough to use without asking for a new one: `now < expires_at - skew`.
    pub fn is_fresh(&self, now: u64, skew_secs: u64) -> bool {
        now < self.expires_at.saturating_sub(skew_secs)
    }

    /// Still accepted by the upstream: `now < expires_at`. A token past this is never sent.
    pub fn is_valid(&self, now: u64) -> bool {
        now < self.expires_at
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising a struct of strings and a number cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A record that does not parse (an older format, a hand edit) counts as absent.
    pub fn from_bytes(bytes: &[u8]) -> Option<TokenRecord> {
        serde_json::from_slice(bytes).ok()
    }

    /// The `Authorization` value. RFC 6750 §2.1 defines only `Bearer`; servers answer `bearer`
    /// or `BEARER` as often, so the scheme is written in its canonical case.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.access_token.secret())
    }
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

/// A ready-to-send token request: POST `url` with these headers and form body.
#[derive(Clone)]
pub struct TokenRequest {
    pub url: url::Url,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("url", &self.url.as_str())
            .field("body", &"[redacted]")
            .finish()
    }
}

/// The client-credentials grant request (RFC 6749 §4.4.2).
pub fn token_request(cfg: &TokenConfig) -> TokenRequest {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if let Some(scope) = &cfg.scope {
        form.append_pair("scope", scope);
    }
    let mut headers = vec![
        (
            "content-type".to_string(),
            b"application/x-www-form-urlencoded".to_vec(),
        ),
        ("accept".to_string(), b"application/json".to_vec()),
    ];
    match cfg.client_auth {
        ClientAuth::Body => {
            form.append_pair("client_id", cfg.client_id.secret());
            form.append_pair("client_secret", cfg.client_secret.secret());
        }
        ClientAuth::Basic => {
            // RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and
            // base64-encoded; servers that follow the RFC decode them again.
            let encode =
                |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!(
                "{}:{}",
                encode(cfg.client_id.secret()),
                encode(cfg.client_secret.secret())
            );
            let value = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            );
            headers.push(("authorization".to_string(), value.into_bytes()));
        }
    }
    TokenRequest {
        url: cfg.url.clone(),
        headers,
        body: form.finish().into_bytes(),
    }
}

/// The token endpoint's success reply (RFC 6749 §5.1).
#[derive(Deserialize)]
struct TokenReply {
    access_token: Option<String>,
    token_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_seconds")]
    expires_in: Option<u64>,
}

/// `expires_in` as a number (RFC) or a string of digits (Getty sometimes sends `"1800"`).
fn lenient_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Number(serde_json::Number),
        Text(String),
    }
    Ok(match Option::<Seconds>::deserialize(d)? {
        None => None,
        Some(Seconds::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Some(Seconds::Text(s)) => s.trim().parse::<u64>().ok(),
    })
}

/// Turns the endpoint's answer into a record. The reason in an error is ours (status, shape),
/// never the endpoint's own text, which may echo credentials.
pub fn parse_token_reply(
    status: u16,
    body: &[u8],
    now: u64,
    default_ttl_secs: u64,
) -> Result<TokenRecord> {
    if !(200..300).contains(&status) {
        return Err(Error::TokenEndpointFailed {
            reason: format!("it answered HTTP {status}"),
        });
    }
    let reply: TokenReply =
        serde_json::from_slice(body).map_err(|_| Error::TokenEndpointFailed {
            reason: "its reply is not a JSON token response".into(),
        })?;
    let access_token = reply
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::TokenEndpointFailed {
            reason: "its reply has no access_token".into(),
        })?;
    if access_token
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ')
    {
        return Err(Error::TokenEndpointFailed {
            reason: "its access_token cannot be sent in a header".into(),
        });
    }
    let lifetime = reply.expires_in.unwrap_or(default_ttl_secs);
    if lifetime == 0 {
        return Err(Error::TokenEndpointFailed {
            reason: "its token expires immediately (expires_in 0)".into(),
        });
    }
    Ok(TokenRecord {
        access_token: AccessToken::new(access_token),
        token_type: reply.token_type.unwrap_or_else(|| "Bearer".into()),
        // A lifetime beyond a year is a server bug or a joke; cap it so no token is "forever".
        expires_at: now.saturating_add(lifetime.min(MAX_LIFETIME_SECS)),
    })
}

const MAX_LIFETIME_SECS: u64 = 366 * 24 * 3600;

/// Whether the token came from the cache or was just fetched; shown to the browser in the
/// `x-credential-proxy-token` header (the token itself never is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Cached,
    Fetched,
}

impl TokenSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenSource::Cached => "cached",
            TokenSource::Fetched => "fetched",
        }
    }
}

/// The token cache port: Spin's key-value store in production, a map in tests. Errors are
/// plain descriptions; the caller logs them and carries on without the cache.
pub trait TokenStore {
    fn load(&self, key: &str) -> std::result::Result<Option<Vec<u8>>, String>;
    fn save(&self, key: &str, value: &[u8]) -> std::result::Result<(), String>;
    fn remove(&self, key: &str) -> std::result::Result<(), String>;
}

/// The token endpoint port: sends the request, returns status and body.
pub trait TokenEndpoint {
    fn send(&self, request: &TokenRequest) -> Result<(u16, Vec<u8>)>;
}

/// Cache-or-fetch for one request.
pub struct Tokens<'a> {
    pub cfg: &'a TokenConfig,
    pub store: &'a dyn TokenStore,
    pub endpoint: &'a dyn TokenEndpoint,
    pub now: u64,
    pub log: &'a dyn Fn(&str),
}

impl Tokens<'_> {
    /// A fresh cached token, or a new one. When the endpoint fails, a cached token that has not
    /// yet expired is still used (the skew is a margin, not a deadline); an expired one never is.
    pub fn get(&self) -> Result<(TokenRecord, TokenSource)> {
        let key = cache_key(self.cfg);
        let cached = match self.store.load(&key) {
            Ok(bytes) => bytes.as_deref().and_then(TokenRecord::from_bytes),
            Err(e) => {
                (self.log)(&format!("token cache read failed, fetching instead: {e}"));
                None
            }
        };
        if let Some(record) = &cached {
            if record.is_fresh(self.now, self.cfg.refresh_skew_secs) {
                return Ok((record.clone(), TokenSource::Cached));
            }
        }
        match self.fetch(&key) {
            Ok(record) => Ok((record, TokenSource::Fetched)),
            Err(err) => match cached {
                Some(record) if record.is_valid(self.now) => {
                    (self.log)(&format!(
                        "token refresh failed ({}); using the cached token until it expires",
                        err.code()
                    ));
                    Ok((record, TokenSource::Cached))
                }
                _ => Err(err),
            },
        }
    }

    /// Drops the cached token if it is still `refused`: the upstream refused it, so nobody may
    /// use it again. A newer token that another instance stored meanwhile is kept.
    pub fn invalidate(&self, refused: &TokenRecord) {
        let key = cache_key(self.cfg);
        let still_cached = match self.store.load(&key) {
            Ok(bytes) => bytes
                .as_deref()
                .and_then(TokenRecord::from_bytes)
                .is_some_and(|r| r.access_token == refused.access_token),
            // Unknown: delete, so a refused token is never reused.
            Err(_) => true,
        };
        if still_cached {
            if let Err(e) = self.store.remove(&key) {
                (self.log)(&format!("token cache delete failed: {e}"));
            }
        }
    }

    /// Drops the refused token and fetches a new one.
    pub fn refresh(&self, refused: &TokenRecord) -> Result<TokenRecord> {
        self.invalidate(refused);
        self.fetch(&cache_key(self.cfg))
    }

    fn fetch(&self, key: &str) -> Result<TokenRecord> {
        let (status, body) = self.endpoint.send(&token_request(self.cfg))?;
        let record = parse_token_reply(status, &body, self.now, self.cfg.default_ttl_secs)?;
        if let Err(e) = self.store.save(key, &record.to_bytes()) {
            (self.log)(&format!("token cache write failed: {e}"));
        }
        Ok(record)
    }
}

/// An in-memory token cache for unit tests.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct MapStore(std::cell::RefCell<std::collections::HashMap<String, Vec<u8>>>);

#[cfg(test)]
impl TokenStore for MapStore {
    fn load(&self, key: &str) -> std::result::Result<Option<Vec<u8>>, String> {
        Ok(self.0.borrow().get(key).cloned())
    }
    fn save(&self, key: &str, value: &[u8]) -> std::result::Result<(), String> {
        self.0.borrow_mut().insert(key.into(), value.to_vec());
        Ok(())
    }
    fn remove(&self, key: &str) -> std::result::Result<(), String> {
        self.0.borrow_mut().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{ClientId, ClientSecret};
    use std::cell::RefCell;
    use std::collections::HashMap;

    fn cfg(auth: ClientAuth) -> TokenConfig {
        TokenConfig {
            url: url::Url::parse("https://auth.example.com/oauth2/token").unwrap(),
            client_id: ClientId::new("my id"),
            client_secret: ClientSecret::new("s&cret"),
            scope: None,
            client_auth: auth,
            refresh_skew_secs: 60,
            default_ttl_secs: 300,
        }
    }

    fn record(expires_at: u64) -> TokenRecord {
        TokenRecord {
            access_token: AccessToken::new("tok"),
            token_type: "Bearer".into(),
            expires_at,
        }
    }

    #[test]
    fn freshness_boundaries() {
        let r = record(1000);
        assert!(r.is_fresh(939, 60));
        assert!(!r.is_fresh(940, 60), "exactly expires_at - skew is stale");
        assert!(!r.is_fresh(941, 60));
        assert!(r.is_valid(999));
        assert!(!r.is_valid(1000), "a token at expires_at is expired");
        assert!(
            record(30).is_valid(0) && !record(30).is_fresh(0, 60),
            "skew > lifetime"
        );
        assert!(r.is_fresh(999, 0));
    }

    #[test]
    fn parses_numeric_string_and_missing_expires_in() {
        let n = parse_token_reply(
            200,
            br#"{"access_token":"a","token_type":"Bearer","expires_in":1800}"#,
            100,
            300,
        )
        .unwrap();
        assert_eq!(n.expires_at, 1900);
        let s = parse_token_reply(
            200,
            br#"{"access_token":"a","expires_in":"1800"}"#,
            100,
            300,
        )
        .unwrap();
        assert_eq!(s.expires_at, 1900);
        let missing = parse_token_reply(200, br#"{"access_token":"a"}"#, 100, 300).unwrap();
        assert_eq!(missing.expires_at, 400, "the stated default, never forever");
        assert_eq!(missing.token_type, "Bearer");
        let junk = parse_token_reply(
            200,
            br#"{"access_token":"a","expires_in":"soon"}"#,
            100,
            300,
        )
        .unwrap();
        assert_eq!(junk.expires_at, 400);
    }

    #[test]
    fn zero_lifetime_is_refused_and_huge_ones_are_capped() {
        let err = parse_token_reply(200, br#"{"access_token":"a","expires_in":0}"#, 100, 300)
            .unwrap_err();
        assert_eq!(err.code(), "token_endpoint_failed");
        let huge = parse_token_reply(200, br#"{"access_token":"a","expires_in":1e300}"#, 100, 300)
            .unwrap();
        assert_eq!(huge.expires_at, 100 + MAX_LIFETIME_SECS);
    }

    #[test]
    fn invalidate_keeps_a_newer_token_stored_meanwhile() {
        let store = MapStore::default();
        let c = cfg(ClientAuth::Body);
        let ep = Endpoint {
            calls: RefCell::new(0),
            fail: false,
        };
        let tokens = Tokens {
            cfg: &c,
            store: &store,
            endpoint: &ep,
            now: 0,
            log: &|_| {},
        };
        let mut refused = record(100);
        refused.access_token = AccessToken::new("old");
        store.save(&cache_key(&c), &record(100).to_bytes()).unwrap();
        tokens.invalidate(&refused);
        assert!(
            store.load(&cache_key(&c)).unwrap().is_some(),
            "another token is kept"
        );
        tokens.invalidate(&record(100));
        assert!(
            store.load(&cache_key(&c)).unwrap().is_none(),
            "the refused one goes"
        );
    }

    #[test]
    fn refuses_replies_without_a_usable_token() {
        for (status, body) in [
            (200, &b"{}"[..]),
            (200, br#"{"access_token":""}"#),
            (200, br#"{"access_token":null}"#),
            (200, b"<html>oops</html>"),
            (200, b""),
            (200, br#"{"access_token":"a b"}"#),
            (500, br#"{"access_token":"a"}"#),
            (
                401,
                br#"{"error":"invalid_client","error_description":"secret=s&cret"}"#,
            ),
        ] {
            let err = parse_token_reply(status, body, 0, 300).unwrap_err();
            assert_eq!(err.code(), "token_endpoint_failed");
            assert!(!err.to_string().contains("s&cret"));
        }
    }

    #[test]
    fn body_client_auth_sends_form_fields() {
        let req = token_request(&cfg(ClientAuth::Body));
        let form: HashMap<String, String> =
            form_urlencoded::parse(&req.body).into_owned().collect();
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["client_id"], "my id");
        assert_eq!(form["client_secret"], "s&cret");
        assert!(!req.headers.iter().any(|(n, _)| n == "authorization"));
        assert!(!format!("{req:?}").contains("s&cret"));
    }

    #[test]
    fn basic_client_auth_encodes_per_rfc6749() {
        let mut c = cfg(ClientAuth::Basic);
        c.scope = Some("read write".into());
        let req = token_request(&c);
        let form: HashMap<String, String> =
            form_urlencoded::parse(&req.body).into_owned().collect();
        assert!(!form.contains_key("client_secret"));
        assert_eq!(form["scope"], "read write");
        let auth = req
            .headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap();
        let b64 = std::str::from_utf8(&auth.1)
            .unwrap()
            .strip_prefix("Basic ")
            .unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(decoded, b"my+id:s%26cret");
    }

    #[test]
    fn cache_key_is_short_and_has_no_credentials() {
        let key = cache_key(&cfg(ClientAuth::Body));
        assert!(key.len() <= 255);
        assert!(!key.contains("my id") && !key.contains("s&cret"));
        let mut other = cfg(ClientAuth::Body);
        other.scope = Some("x".into());
        assert_ne!(key, cache_key(&other));
    }

    #[test]
    fn record_round_trips_and_debug_is_redacted() {
        let r = record(5);
        assert_eq!(TokenRecord::from_bytes(&r.to_bytes()), Some(r.clone()));
        assert!(!format!("{r:?}").contains("tok\""));
        assert_eq!(TokenRecord::from_bytes(b"garbage"), None);
    }

    struct Endpoint {
        calls: RefCell<u32>,
        fail: bool,
    }
    impl TokenEndpoint for Endpoint {
        fn send(&self, _: &TokenRequest) -> Result<(u16, Vec<u8>)> {
            *self.calls.borrow_mut() += 1;
            if self.fail {
                return Err(Error::TokenEndpointFailed {
                    reason: "down".into(),
                });
            }
            let n = *self.calls.borrow();
            Ok((
                200,
                format!(r#"{{"access_token":"t{n}","expires_in":100}}"#).into_bytes(),
            ))
        }
    }

    fn run(store: &MapStore, endpoint: &Endpoint, now: u64) -> Result<(TokenRecord, TokenSource)> {
        let c = cfg(ClientAuth::Body);
        Tokens {
            cfg: &c,
            store,
            endpoint,
            now,
            log: &|_| {},
        }
        .get()
    }

    #[test]
    fn reuses_a_fresh_token_and_refreshes_a_stale_one() {
        let store = MapStore::default();
        let ep = Endpoint {
            calls: RefCell::new(0),
            fail: false,
        };
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
        let c = cfg(ClientAuth::Body);
        store.save(&cache_key(&c), &record(100).to_bytes()).unwrap();
        let down = Endpoint {
            calls: RefCell::new(0),
            fail: true,
        };
        let (r, src) = run(&store, &down, 99).unwrap();
        assert_eq!((r.expires_at, src), (100, TokenSource::Cached));
        let err = run(&store, &down, 100).unwrap_err();
        assert_eq!(err.code(), "token_endpoint_failed");
    }

    #[test]
    fn refresh_drops_the_cached_token() {
        let store = MapStore::default();
        let ep = Endpoint {
            calls: RefCell::new(0),
            fail: false,
        };
        run(&store, &ep, 0).unwrap();
        let c = cfg(ClientAuth::Body);
        let fresh = Tokens {
            cfg: &c,
            store: &store,
            endpoint: &ep,
            now: 1,
            log: &|_| {},
        }
        .refresh(&TokenRecord::from_bytes(&store.load(&cache_key(&c)).unwrap().unwrap()).unwrap())
        .unwrap();
        assert_eq!(fresh.access_token.secret(), "t2");
        let stored = TokenRecord::from_bytes(&store.load(&cache_key(&c)).unwrap().unwrap());
        assert_eq!(stored.unwrap().access_token.secret(), "t2");
    }
}
