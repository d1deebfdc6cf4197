//! The opt-in response cache on the real wasm: GET answers kept in the key-value store, served
//! with `x-credential-proxy-cache: hit` and no upstream call, within a bounded number of keys,
//! never holding a secret.
//!
//! The shared mock upstream always answers a plain cacheable 200. For what it cannot say
//! (`Cache-Control: no-store`, `Vary`, a chunked answer with no length) a small upstream here
//! answers what the query asks for (`HeaderUpstream`).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{manifest_text, raw_request, wasm_dir, App, Reply, Setup, API_KEY, CLIENT_SECRET};
use spin_test_host::mock::large_body_byte;
use spin_test_host::{HostOptions, SpinHost};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CACHE: &str = "x-credential-proxy-cache";
const SLOT_PREFIX: &str = "credential-proxy:cache:";

fn cache_keys(host: &SpinHost) -> Vec<String> {
    host.kv_keys("default")
        .into_iter()
        .filter(|k| k.starts_with(SLOT_PREFIX))
        .collect()
}

/// The canary scan of the store: no secret and no issued token in any key name, nor in any
/// cache entry (the token record holds its token by design).
fn assert_store_has_no_secrets(app: &App) {
    let mut secrets = vec![API_KEY.to_string(), CLIENT_SECRET.to_string()];
    secrets.extend(app.tokens.issued());
    let keys = app.host.kv_keys("default");
    for key in &keys {
        for secret in &secrets {
            assert!(!key.contains(secret.as_str()), "a secret in key {key}");
        }
    }
    let entries = cache_keys(&app.host);
    assert!(!entries.is_empty(), "nothing stored to scan");
    for key in &entries {
        let value = app.host.kv_get("default", key).unwrap_or_default();
        let text = String::from_utf8_lossy(&value);
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret in the entry {key}"
            );
        }
    }
}

#[tokio::test]
async fn ten_identical_gets_reach_the_upstream_once() {
    let app = App::start(Setup::default().var("cache_ttl_secs", "60")).await;
    let path = "/api/getty/search/images?phrase=cat&sort=new";
    let replies: Vec<Reply> = {
        let mut replies = Vec::new();
        for _ in 0..10 {
            replies.push(get_settled(&app, path).await);
        }
        replies
    };
    assert_eq!(app.upstream.hits(), 1, "one upstream call for ten GETs");
    assert_eq!(app.tokens.calls(), 1, "and one token fetch, for the miss");
    let first = &replies[0];
    first.assert_status(200);
    assert_eq!(first.header(CACHE), Some("miss"));
    assert!(first.header("x-credential-proxy-token").is_some());
    for hit in &replies[1..] {
        hit.assert_status(200);
        assert_eq!(hit.header(CACHE), Some("hit"));
        assert_eq!(hit.body, first.body, "a hit serves the stored body");
        assert_eq!(hit.header("content-type"), first.header("content-type"));
        assert!(hit.header("age").is_some_and(|a| a.parse::<u64>().is_ok()));
        assert_eq!(
            hit.header("x-credential-proxy-token"),
            None,
            "a hit uses no token"
        );
        assert_eq!(hit.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(
            hit.header("content-security-policy"),
            first.header("content-security-policy"),
            "a hit is sandboxed like the miss it was stored from"
        );
    }
    // The same parameters in another order, with a client's own key parameter: the same entry.
    let reordered = get_settled(&app, "/api/getty/search/images?sort=new&phrase=cat").await;
    assert_eq!(reordered.header(CACHE), Some("hit"));
    // Another query is a miss.
    let other = get_settled(&app, "/api/getty/search/images?phrase=dog").await;
    assert_eq!(other.header(CACHE), Some("miss"));
    assert_eq!(app.upstream.hits(), 2);
    assert_eq!(cache_keys(&app.host).len(), 2);
    assert_store_has_no_secrets(&app);
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn the_cache_is_off_by_default() {
    let app = App::start(Setup::default()).await;
    for _ in 0..2 {
        let reply = get_settled(&app, "/api/getty/search/images?phrase=cat").await;
        reply.assert_status(200);
        assert_eq!(reply.header(CACHE), None);
    }
    assert_eq!(app.upstream.hits(), 2);
    assert!(cache_keys(&app.host).is_empty());
}

#[tokio::test]
async fn post_and_head_are_never_cached() {
    let app = App::start(
        Setup::default()
            .var("cache_ttl_secs", "60")
            .var("allowed_routes", "GET /**, POST /**, HEAD /**"),
    )
    .await;
    for _ in 0..2 {
        let reply = app
            .send(
                "POST",
                "/api/getty/search/images?phrase=cat",
                &[("content-type", "application/json")],
                Some(b"{}"),
            )
            .await;
        reply.assert_status(200);
        assert_eq!(reply.header(CACHE), None);
    }
    assert_eq!(app.upstream.hits(), 2);
    app.host.settled().await;
    assert!(cache_keys(&app.host).is_empty());
    // A GET to the same URL is not answered by a POST's answer.
    let get = get_settled(&app, "/api/getty/search/images?phrase=cat").await;
    assert_eq!(get.header(CACHE), Some("miss"));
    // HEAD goes upstream every time, even with a fresh GET entry for its URL.
    for _ in 0..2 {
        let head = app
            .send("HEAD", "/api/getty/search/images?phrase=cat", &[], None)
            .await;
        head.assert_status(200);
        assert_eq!(head.header(CACHE), None);
    }
    assert_eq!(app.upstream.hits(), 5);
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn entries_expire_after_the_ttl() {
    let app = App::start(Setup::default().var("cache_ttl_secs", "1")).await;
    let path = "/api/getty/search/images?phrase=cat";
    // The entry's age is counted in whole seconds, so the store and the hit must fall in one
    // second: start just after a second begins.
    start_of_a_second().await;
    assert_eq!(get_settled(&app, path).await.header(CACHE), Some("miss"));
    assert_eq!(get_settled(&app, path).await.header(CACHE), Some("hit"));
    // Whole seconds: a 1 s entry stored at second t is stale from t + 1. Here at least t + 2,
    // at the start of a second again, so the refill and its hit share one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    start_of_a_second().await;
    let after = get_settled(&app, path).await;
    after.assert_status(200);
    assert_eq!(after.header(CACHE), Some("miss"));
    assert_eq!(app.upstream.hits(), 2);
    // Refilled: a hit again, still in the same single slot.
    assert_eq!(get_settled(&app, path).await.header(CACHE), Some("hit"));
    assert_eq!(cache_keys(&app.host).len(), 1);
}

#[tokio::test]
async fn an_oversize_answer_streams_whole_and_is_not_stored() {
    let app = App::start(
        Setup::default()
            .var("cache_ttl_secs", "60")
            .var("cache_max_body_bytes", "1000"),
    )
    .await;
    for _ in 0..2 {
        let reply = get_settled(&app, "/api/getty/__large?bytes=5000").await;
        reply.assert_status(200);
        assert_eq!(reply.header(CACHE), Some("miss"));
        assert_eq!(reply.body.len(), 5000);
        assert!(reply
            .body
            .iter()
            .enumerate()
            .all(|(i, b)| *b == large_body_byte(i as u64)));
    }
    assert_eq!(app.upstream.hits(), 2);
    assert!(cache_keys(&app.host).is_empty());
}

#[tokio::test]
async fn distinct_queries_stay_within_the_slots() {
    let app = App::start(
        Setup::default()
            .var("cache_ttl_secs", "60")
            .var("cache_slots", "16"),
    )
    .await;
    for i in 0..300 {
        let reply = get_settled(&app, &format!("/api/getty/search/images?phrase=q{i}")).await;
        reply.assert_status(200);
    }
    let keys = cache_keys(&app.host);
    assert!(
        keys.len() <= 16 && keys.len() >= 8,
        "{} cache keys for 16 slots",
        keys.len()
    );
    assert!(keys.iter().all(|k| k.len() <= 255));
    // Every key in the store is the token, its lease or a slot: nothing else grew.
    assert!(app.host.kv_keys("default").len() <= 16 + 2);
    assert_store_has_no_secrets(&app);
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn stored_entries_hold_no_secret_with_the_key_in_the_query() {
    let app = App::start(
        Setup {
            key_in_query: true,
            ..Setup::default()
        }
        .var("cache_ttl_secs", "60"),
    )
    .await;
    // A client's own api_key parameter neither splits the entry nor reaches the store.
    let first = get_settled(&app, "/api/getty/search/images?phrase=cat&api_key=guess").await;
    first.assert_status(200);
    let second = get_settled(&app, "/api/getty/search/images?phrase=cat").await;
    assert_eq!(second.header(CACHE), Some("hit"));
    // A redirect repeats the key in its headers: never stored (not a 200, and scrubbed).
    for _ in 0..2 {
        let redirect = get_settled(&app, "/api/getty/__redirect?phrase=cat").await;
        assert_eq!(redirect.header(CACHE), Some("miss"));
    }
    assert_eq!(cache_keys(&app.host).len(), 1);
    assert_store_has_no_secrets(&app);
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn a_store_that_cannot_be_opened_is_a_miss_not_an_error() {
    // Static key only: the token cache would call a missing store a config error.
    let app = App::start(
        Setup {
            token_flow: false,
            ..Setup::default()
        }
        .var("cache_ttl_secs", "60")
        .var("kv_store", "not_granted"),
    )
    .await;
    for _ in 0..2 {
        let reply = get_settled(&app, "/api/getty/search/images?phrase=cat").await;
        reply.assert_status(200);
        assert_eq!(reply.header(CACHE), Some("miss"));
    }
    assert_eq!(app.upstream.hits(), 2);
    assert!(app.host.logs().contains("response cache unavailable"));
}

#[tokio::test]
async fn cache_slots_out_of_range_is_config_invalid() {
    let app = App::start(
        Setup::default()
            .var("cache_ttl_secs", "60")
            .var("cache_slots", "5000"),
    )
    .await;
    let reply = get_settled(&app, "/api/getty/search/images?phrase=cat").await;
    reply.assert_error(500, "config_invalid");
    assert!(reply.json()["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("cache_slots")));
}

/// An upstream whose answer headers come from the query: `cc=` sets `Cache-Control`, `vary=`
/// sets `Vary`, `chunked=N` sends N bytes chunked with no length. Each body says how many
/// requests came before it.
struct HeaderUpstream {
    url: String,
    hits: Arc<AtomicUsize>,
}

impl HeaderUpstream {
    async fn start() -> HeaderUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => head.extend_from_slice(&buf[..k]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head).to_string();
                    let target = text.split(' ').nth(1).unwrap_or("/").to_string();
                    let query = target.split_once('?').map_or("", |(_, q)| q);
                    let mut extra = String::new();
                    let mut chunked = None;
                    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                        match k.as_ref() {
                            "cc" => extra.push_str(&format!("Cache-Control: {v}\r\n")),
                            "vary" => extra.push_str(&format!("Vary: {v}\r\n")),
                            "chunked" => chunked = v.parse::<usize>().ok(),
                            _ => {}
                        }
                    }
                    let out = match chunked {
                        Some(len) => {
                            let body = vec![b'z'; len];
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{extra}\
                                 Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                            )
                            .into_bytes()
                            .into_iter()
                            .chain(common::chunked(&body, 1000))
                            .collect::<Vec<u8>>()
                        }
                        None => {
                            let body = format!("{{\"n\":{n}}}");
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}\
                                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            )
                            .into_bytes()
                        }
                    };
                    let _ = socket.write_all(&out).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        HeaderUpstream { url, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The proxy (static key, cache on) in front of a [`HeaderUpstream`].
async fn header_app(
    dir: &tempfile::TempDir,
    extra: &[(&'static str, &str)],
) -> (SpinHost, HeaderUpstream) {
    let upstream = HeaderUpstream::start().await;
    let mut setup = Setup {
        token_flow: false,
        ..Setup::default()
    }
    .var("cache_ttl_secs", "60");
    for (name, value) in extra {
        setup = setup.var(name, *value);
    }
    let manifest = dir.path().join("spin.toml");
    let text = manifest_text(&setup, &upstream.url, "http://127.0.0.1:9/oauth2/token");
    std::fs::write(&manifest, text).unwrap();
    let opts = HostOptions::new(&manifest, dir.path().join("state"))
        .wasm_dir(wasm_dir())
        .variable("test_api_key", API_KEY);
    (
        SpinHost::start(opts).await.expect("the host starts"),
        upstream,
    )
}

async fn get(host: &SpinHost, path: &str, headers: &[(&str, &str)]) -> Reply {
    let reply = raw_request(host.addr(), "GET", path, headers, None).await;
    host.settled().await;
    reply
}

/// `app.get`, then waits for the instance to finish: the cache entry is written after the answer
/// is out, so the next request or a look at the store must wait for it, as a browser's next
/// request may arrive before it on Spin too.
async fn get_settled(app: &App, path: &str) -> Reply {
    let reply = app.get(path).await;
    app.host.settled().await;
    reply
}

#[tokio::test]
async fn no_store_private_no_cache_and_foreign_vary_are_never_cached() {
    let dir = tempfile::tempdir().unwrap();
    let (host, upstream) = header_app(&dir, &[]).await;
    let refused = [
        "cc=no-store",
        "cc=private",
        "cc=private%2C%20max-age%3D60",
        "cc=no-cache",
        "cc=max-age%3D0",
        "vary=Origin",
        "vary=*",
    ];
    for query in refused {
        for _ in 0..2 {
            let reply = get(&host, &format!("/api/getty/x?{query}"), &[]).await;
            reply.assert_status(200);
            assert_eq!(reply.header(CACHE), Some("miss"), "{query}");
        }
    }
    assert_eq!(upstream.hits(), 2 * refused.len());
    assert!(cache_keys(&host).is_empty());
    // The contrast: an explicitly public answer is kept.
    get(&host, "/api/getty/x?cc=public%2C%20max-age%3D60", &[]).await;
    let hit = get(&host, "/api/getty/x?cc=public%2C%20max-age%3D60", &[]).await;
    assert_eq!(hit.header(CACHE), Some("hit"));
    assert_eq!(hit.header("cache-control"), Some("public, max-age=60"));
}

#[tokio::test]
async fn an_entry_varies_on_the_accept_headers_the_upstream_names() {
    let dir = tempfile::tempdir().unwrap();
    let (host, upstream) = header_app(&dir, &[]).await;
    let path = "/api/getty/x?vary=Accept-Language";
    let en = [("accept-language", "en")];
    let de = [("accept-language", "de")];
    assert_eq!(get(&host, path, &en).await.header(CACHE), Some("miss"));
    assert_eq!(get(&host, path, &en).await.header(CACHE), Some("hit"));
    assert_eq!(get(&host, path, &de).await.header(CACHE), Some("miss"));
    assert_eq!(upstream.hits(), 2);
    // Without Vary, the language does not split the entry.
    get(&host, "/api/getty/x?plain=1", &en).await;
    assert_eq!(
        get(&host, "/api/getty/x?plain=1", &de).await.header(CACHE),
        Some("hit")
    );
}

#[tokio::test]
async fn a_chunked_answer_over_the_limit_streams_whole_and_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (host, upstream) = header_app(&dir, &[("cache_max_body_bytes", "100000")]).await;
    // No Content-Length: the proxy learns the size only while streaming.
    for _ in 0..2 {
        let reply = get(&host, "/api/getty/x?chunked=300000", &[]).await;
        reply.assert_status(200);
        assert_eq!(reply.body.len(), 300_000);
        assert!(reply.body.iter().all(|b| *b == b'z'));
    }
    assert_eq!(upstream.hits(), 2);
    assert!(cache_keys(&host).is_empty());
    // Under the limit, a chunked answer is kept and served with its length.
    get(&host, "/api/getty/x?chunked=50000", &[]).await;
    let hit = get(&host, "/api/getty/x?chunked=50000", &[]).await;
    assert_eq!(hit.header(CACHE), Some("hit"));
    assert_eq!(hit.body.len(), 50_000);
    assert_eq!(hit.header("content-length"), Some("50000"));
}

/// Waits until the system clock is 20 ms into a new second.
async fn start_of_a_second() {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    let into_second = u64::from(since_epoch.subsec_millis());
    tokio::time::sleep(Duration::from_millis(1020 - into_second)).await;
}
