//! The opt-in response cache: upstream answers to GET kept in the key-value store, so identical
//! calls from many visitors spend the upstream's quota once per lifetime.
//!
//! On (`cache_ttl_secs` > 0) for GET only, never one with a body. A lookup comes before the
//! token and the outbound request, so a hit costs one key-value read and nothing else. A miss
//! that `policy` allows is stored after the answer has streamed whole to the browser, one write
//! per fill; a failing store is a miss, logged, never an error. Entries live in at most `cache_slots` keys
//! (`entry::RequestKey::slot_key`), because the store has no TTL and no eviction. The bytes in
//! the store are the browser's answer after scrubbing (`answer::storable_headers`), never one
//! from which a secret was scrubbed or whose body holds one. The edge tees the body
//! (`spin_io::respond_streaming_kept`); this module never sees a stream, only the bytes.

mod entry;
mod opened;
mod policy;

pub use entry::{Entry, RequestKey};
pub use opened::OpenedCache;
pub use policy::{keep, Keep, Skip, VARY_ALLOWED};

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::answer::ResponseHead;
use crate::config::Config;
use crate::decision::Forward;
use crate::port::Io;

/// The cache's settings; present in the config only when the cache is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    pub ttl_secs: u64,
    pub max_body_bytes: u64,
    pub slots: u32,
}

/// The key-value store as the response cache uses it: plain get and set of one slot.
pub trait CacheStore {
    fn get<'a>(&'a self, key: &'a str) -> Io<'a, std::result::Result<Option<Vec<u8>>, String>>;
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> Io<'a, std::result::Result<(), String>>;
}

/// An answer found in the cache.
#[derive(Debug)]
pub struct Hit {
    pub status: StatusCode,
    /// The stored headers (no CORS, no proxy header; `answer::cached` adds those).
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// Seconds since the upstream made it, for `Age`.
    pub age: u64,
}

/// An answer being stored: the entry without its body, and how many body bytes to keep at most.
#[derive(Debug)]
pub struct Fill {
    entry: Entry,
    pub limit: u64,
}

/// The cache's view of one GET.
#[derive(Debug)]
pub struct ResponseCache {
    cfg: CacheConfig,
    key: RequestKey,
    slot: String,
}

impl ResponseCache {
    /// `None` when the cache is off or the request is not a GET.
    pub fn for_request(cfg: &Config, forward: &Forward) -> Option<ResponseCache> {
        let cache = cfg.cache?;
        // A GET that declares a body is odd, and the key could not cover it.
        let has_body = forward
            .headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|len| len.as_bytes() != b"0");
        if forward.method != Method::GET || has_body {
            return None;
        }
        let key_cfg = cfg.static_key.as_ref();
        let token = cfg.token.as_ref();
        let identity = [
            cfg.upstream_url.as_str(),
            key_cfg.map_or("", |k| k.key.secret()),
            key_cfg
                .and_then(|k| k.header.as_ref())
                .map_or("", |h| h.as_str()),
            key_cfg.and_then(|k| k.query.as_deref()).unwrap_or(""),
            token.map_or("", |t| t.url.as_str()),
            token.map_or("", |t| t.client_id.secret()),
            token.and_then(|t| t.scope.as_deref()).unwrap_or(""),
        ];
        let accept = VARY_ALLOWED
            .iter()
            .map(|name| {
                let values: Vec<&str> = forward
                    .headers
                    .get_all(*name)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                (*name, values.join(", "))
            })
            .collect();
        let key = RequestKey::new(
            &identity,
            &forward.path,
            forward.target.url().query(),
            key_cfg.and_then(|k| k.query.as_deref()),
            accept,
        );
        Some(ResponseCache {
            slot: key.slot_key(cache.slots),
            cfg: cache,
            key,
        })
    }

    /// The fresh entry for this request, if the store has one. Anything else (empty slot,
    /// another URL in the slot, stale, unreadable, store failing) is a miss.
    pub async fn lookup(
        &self,
        store: &dyn CacheStore,
        now: u64,
        log: &dyn Fn(&str),
    ) -> Option<Hit> {
        let bytes = match store.get(&self.slot).await {
            Ok(bytes) => bytes?,
            Err(e) => {
                log(&format!(
                    "response cache unavailable ({e}); asking the upstream"
                ));
                return None;
            }
        };
        let entry = Entry::from_bytes(&bytes)?;
        if !entry.answers(&self.key) || now >= entry.expires_at {
            return None;
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &entry.headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                return None;
            };
            headers.append(name, value);
        }
        Some(Hit {
            status: StatusCode::from_u16(entry.status).ok()?,
            headers,
            age: now.saturating_sub(entry.born_at),
            body: entry.body,
        })
    }

    /// Whether to keep this answer: `headers` are what the browser gets (`None` when scrubbing
    /// removed a secret from them: such an answer is never stored).
    pub fn fill(&self, head: &ResponseHead, headers: Option<&HeaderMap>, now: u64) -> Option<Fill> {
        let kept = keep(
            head.status,
            &head.headers,
            self.cfg.ttl_secs,
            self.cfg.max_body_bytes,
        )
        .ok()?;
        let mut stored = Vec::new();
        for (name, value) in headers? {
            // A value that is not text cannot be stored as text: do not store at all rather
            // than serve a different answer.
            stored.push((name.as_str().to_string(), value.to_str().ok()?.to_string()));
        }
        let entry = Entry::new(
            &self.key,
            &kept.vary,
            head.status.as_u16(),
            stored,
            now.saturating_sub(kept.initial_age),
            now.saturating_add(kept.lifetime_secs),
        );
        Some(Fill {
            entry,
            limit: self.cfg.max_body_bytes,
        })
    }

    /// Stores the whole body of a filled answer, unless it holds one of `secrets`
    /// (`answer::secrets`): an API that echoes a credential must not have it kept. The one write
    /// of a miss.
    pub async fn store(
        &self,
        store: &dyn CacheStore,
        fill: Fill,
        body: Vec<u8>,
        secrets: &[&str],
        log: &dyn Fn(&str),
    ) {
        let leaks = secrets
            .iter()
            .filter(|s| !s.is_empty())
            .any(|s| body.windows(s.len()).any(|w| w == s.as_bytes()));
        if body.len() as u64 > fill.limit || leaks {
            return;
        }
        let mut entry = fill.entry;
        entry.body = body;
        if let Err(e) = store.set(&self.slot, &entry.to_bytes()).await {
            log(&format!("response cache not written ({e})"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapVars;
    use crate::decision::{decide, Plan, RequestHead};
    use crate::port::{block_on, Io};
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Store {
        data: RefCell<HashMap<String, Vec<u8>>>,
        broken: bool,
    }

    impl CacheStore for Store {
        fn get<'a>(&'a self, key: &'a str) -> Io<'a, std::result::Result<Option<Vec<u8>>, String>> {
            Box::pin(async move {
                if self.broken {
                    return Err("the store reported an error".into());
                }
                Ok(self.data.borrow().get(key).cloned())
            })
        }
        fn set<'a>(
            &'a self,
            key: &'a str,
            value: &'a [u8],
        ) -> Io<'a, std::result::Result<(), String>> {
            Box::pin(async move {
                if self.broken {
                    return Err("the store reported an error".into());
                }
                self.data.borrow_mut().insert(key.into(), value.to_vec());
                Ok(())
            })
        }
    }

    fn config(ttl: &'static str) -> Config {
        Config::load(&MapVars(
            [
                ("upstream_url", "https://api.example.com/v3"),
                ("api_key", "KEY-1"),
                ("api_key_query", "api_key"),
                ("cache_ttl_secs", ttl),
            ]
            .into_iter()
            .collect(),
        ))
        .unwrap()
    }

    fn forward(cfg: &Config, method: Method, query: &str) -> Forward {
        let mut headers = HeaderMap::new();
        headers.insert("spin-path-info", HeaderValue::from_static("/search"));
        headers.insert("accept", HeaderValue::from_static("application/json"));
        let head = RequestHead {
            method,
            query: Some(query.into()),
            headers,
        };
        match decide(cfg, &head).outcome {
            Ok(Plan::Forward(forward)) => forward,
            _ => panic!("not forwarded"),
        }
    }

    /// The cache of `GET /search?q=1` with a 60 s TTL.
    fn get_q1() -> ResponseCache {
        let cfg = config("60");
        ResponseCache::for_request(&cfg, &forward(&cfg, Method::GET, "q=1")).unwrap()
    }

    fn upstream_head(cache_control: Option<&'static str>) -> ResponseHead {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        if let Some(cc) = cache_control {
            headers.insert("cache-control", HeaderValue::from_static(cc));
        }
        ResponseHead {
            status: StatusCode::OK,
            headers,
        }
    }

    fn fill_and_store(cache: &ResponseCache, store: &Store, head: &ResponseHead, now: u64) {
        let fill = cache.fill(head, Some(&head.headers), now).unwrap();
        block_on(cache.store(store, fill, b"{\"n\":1}".to_vec(), &["KEY-1"], &|_| {}));
    }

    #[test]
    fn off_by_default_and_only_for_get() {
        let off = config("0");
        assert!(off.cache.is_none());
        assert!(ResponseCache::for_request(&off, &forward(&off, Method::GET, "q=1")).is_none());
        let on = config("60");
        for method in [Method::POST, Method::HEAD, Method::PUT] {
            let cfg = Config::load(&MapVars(
                [
                    ("upstream_url", "https://api.example.com/v3"),
                    ("cache_ttl_secs", "60"),
                    ("allowed_routes", "* /**"),
                ]
                .into_iter()
                .collect(),
            ))
            .unwrap();
            assert!(ResponseCache::for_request(&cfg, &forward(&cfg, method, "q=1")).is_none());
        }
        assert!(ResponseCache::for_request(&on, &forward(&on, Method::GET, "q=1")).is_some());
        let mut with_body = forward(&on, Method::GET, "q=1");
        with_body
            .headers
            .insert("content-length", HeaderValue::from_static("5"));
        assert!(ResponseCache::for_request(&on, &with_body).is_none());
    }

    #[test]
    fn a_stored_answer_is_a_hit_until_it_expires() {
        let cache = get_q1();
        let store = Store::default();
        assert!(block_on(cache.lookup(&store, 1000, &|_| {})).is_none());
        fill_and_store(&cache, &store, &upstream_head(None), 1000);
        let hit = block_on(cache.lookup(&store, 1010, &|_| {})).unwrap();
        assert_eq!((hit.status, hit.age), (StatusCode::OK, 10));
        assert_eq!(hit.body, b"{\"n\":1}");
        assert_eq!(hit.headers["content-type"], "application/json");
        assert!(block_on(cache.lookup(&store, 1060, &|_| {})).is_none());
    }

    #[test]
    fn the_key_parameter_and_query_order_do_not_split_entries() {
        let cfg = config("60");
        let store = Store::default();
        let first =
            ResponseCache::for_request(&cfg, &forward(&cfg, Method::GET, "a=1&b=2")).unwrap();
        fill_and_store(&first, &store, &upstream_head(None), 1000);
        let same =
            ResponseCache::for_request(&cfg, &forward(&cfg, Method::GET, "b=2&api_key=evil&a=1"))
                .unwrap();
        assert!(block_on(same.lookup(&store, 1001, &|_| {})).is_some());
        let other = ResponseCache::for_request(&cfg, &forward(&cfg, Method::GET, "a=2")).unwrap();
        assert!(block_on(other.lookup(&store, 1001, &|_| {})).is_none());
        let stored = store.data.borrow();
        assert_eq!(stored.len(), 1);
        assert!(stored
            .values()
            .all(|v| !String::from_utf8_lossy(v).contains("KEY-1")));
    }

    #[test]
    fn uncacheable_or_scrubbed_answers_are_not_filled() {
        let cache = get_q1();
        let no_store = upstream_head(Some("no-store"));
        assert!(cache.fill(&no_store, Some(&no_store.headers), 0).is_none());
        let plain = upstream_head(None);
        assert!(cache.fill(&plain, None, 0).is_none());
        let short = upstream_head(Some("max-age=5"));
        let fill = cache.fill(&short, Some(&short.headers), 100).unwrap();
        assert_eq!(fill.entry.expires_at, 105);
    }

    #[test]
    fn a_failing_store_is_a_logged_miss() {
        let cache = get_q1();
        let store = Store {
            broken: true,
            ..Store::default()
        };
        let lines = RefCell::new(Vec::new());
        let log = |line: &str| lines.borrow_mut().push(line.to_string());
        assert!(block_on(cache.lookup(&store, 0, &log)).is_none());
        let head = upstream_head(None);
        let fill = cache.fill(&head, Some(&head.headers), 0).unwrap();
        block_on(cache.store(&store, fill, vec![], &[], &log));
        assert_eq!(lines.borrow().len(), 2);
    }

    #[test]
    fn a_body_over_the_limit_or_echoing_a_secret_is_not_stored() {
        let cache = get_q1();
        let store = Store::default();
        let head = upstream_head(None);
        let limit = cache.fill(&head, Some(&head.headers), 0).unwrap().limit as usize;
        let refused = [vec![b'x'; limit + 1], b"{\"you_sent\":\"KEY-1\"}".to_vec()];
        for body in refused {
            let fill = cache.fill(&head, Some(&head.headers), 0).unwrap();
            block_on(cache.store(&store, fill, body, &["", "KEY-1"], &|_| {}));
        }
        assert!(store.data.borrow().is_empty());
    }
}
