//! Component tests of the credential flow: the real wasm in the Spin-compatible host, talking to
//! mock Getty-like upstream and token servers. Each test ends with the secret canary check.

mod common;

use common::{App, Setup, API_KEY};
use spin_test_host::mock::{ExpiresIn, TokenFailure};

#[tokio::test]
async fn forwards_with_key_and_bearer_and_strips_client_credentials() {
    let app = App::start(Setup::default()).await;
    let reply = app
        .send(
            "GET",
            "/api/getty/search/images?phrase=cat&page=2",
            &[
                ("Cookie", "session=browser-cookie"),
                ("Authorization", "Bearer browser-token"),
                ("Connection", "keep-alive, x-secret-hop"),
                ("X-Secret-Hop", "1"),
                ("Proxy-Authorization", "Basic abc"),
                ("Accept", "application/json"),
                ("Accept-Language", "de"),
            ],
            None,
        )
        .await;
    reply.assert_status(200);
    assert_eq!(reply.header("x-credential-proxy-token"), Some("fetched"));

    let seen = app.upstream.requests();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.method, "GET");
    assert_eq!(req.path, "/v3/search/images");
    assert_eq!(req.query.as_deref(), Some("phrase=cat&page=2"));
    let header = |name: &str| -> Vec<String> {
        req.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    };
    assert_eq!(header("api-key"), vec![API_KEY.to_string()]);
    let issued = app.tokens.issued();
    assert_eq!(
        header("authorization"),
        vec![format!("Bearer {}", issued[0])]
    );
    assert!(
        header("cookie").is_empty(),
        "cookies never reach the upstream"
    );
    assert!(
        header("x-secret-hop").is_empty(),
        "hop-by-hop headers are dropped"
    );
    assert!(header("proxy-authorization").is_empty());
    assert_eq!(header("accept"), vec!["application/json".to_string()]);
    assert_eq!(header("accept-language"), vec!["de".to_string()]);
    assert!(req
        .headers
        .iter()
        .all(|(n, _)| !n.to_ascii_lowercase().starts_with("spin-")));

    // The upstream's cookie and hop-by-hop headers do not come back either.
    assert!(reply.header("set-cookie").is_none());
    assert_eq!(reply.header("x-upstream"), Some("mock"));
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn fifty_requests_use_one_token_across_instances_and_restarts() {
    let app = App::start(Setup::default()).await;
    for i in 0..50 {
        let reply = app.get(&format!("/api/getty/search/images?n={i}")).await;
        assert_eq!(reply.status, 200);
        let expected = if i == 0 { "fetched" } else { "cached" };
        assert_eq!(reply.header("x-credential-proxy-token"), Some(expected));
    }
    assert_eq!(app.tokens.calls(), 1, "one token for 50 requests");
    assert_eq!(app.upstream.hits(), 50);

    // The record is in the key-value store, under a hashed key with no secret in it.
    let keys = app.host.kv_keys("default");
    assert_eq!(keys.len(), 1);
    assert!(keys[0].len() <= 255 && !keys[0].contains(API_KEY));
    let record: serde_json::Value =
        serde_json::from_slice(&app.host.kv_get("default", &keys[0]).unwrap()).unwrap();
    assert!(record["expires_at"].as_u64().unwrap() > 0);
    assert_eq!(record["token_type"], "Bearer");

    let app = app.restart().await;
    let reply = app.get("/api/getty/search/images").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-credential-proxy-token"), Some("cached"));
    assert_eq!(app.tokens.calls(), 1, "the cache survives a host restart");
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn refreshes_token_after_expiry() {
    let setup = Setup {
        expires_in: Some(3),
        ..Setup::default()
    }
    .var("token_refresh_skew_secs", "1");
    let app = App::start(setup).await;
    assert_eq!(app.get("/api/getty/a").await.status, 200);
    assert_eq!(app.get("/api/getty/b").await.status, 200);
    assert_eq!(app.tokens.calls(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let reply = app.get("/api/getty/c").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-credential-proxy-token"), Some("fetched"));
    assert_eq!(app.tokens.calls(), 2);
    assert!(app
        .upstream
        .requests()
        .iter()
        .all(|r| !r.used_stale_token()));
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn expires_in_as_string_and_missing_use_the_stated_lifetimes() {
    let app = App::start(Setup::default().var("token_default_ttl_secs", "120")).await;
    app.tokens.set_expires_in(ExpiresIn::String(1800));
    assert_eq!(app.get("/api/getty/x").await.status, 200);
    let key = app.token_key().expect("a stored token");
    let record: serde_json::Value =
        serde_json::from_slice(&app.host.kv_get("default", &key).unwrap()).unwrap();
    let now = now_unix();
    let expires = record["expires_at"].as_u64().unwrap();
    assert!(
        (now + 1790..=now + 1810).contains(&expires),
        "string expires_in honoured"
    );

    // Drop the record: the next token has no expires_in, so the default lifetime applies.
    app.host.kv_set("default", &key, b"not json");
    common::after_store_edit().await;
    app.tokens.set_expires_in(ExpiresIn::Absent);
    assert_eq!(app.get("/api/getty/y").await.status, 200);
    let record: serde_json::Value =
        serde_json::from_slice(&app.host.kv_get("default", &key).unwrap()).unwrap();
    let expires = record["expires_at"].as_u64().unwrap();
    assert!(
        (now + 110..=now + 130).contains(&expires),
        "default ttl, not forever"
    );
    assert_eq!(app.tokens.calls(), 2);
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn revoked_token_gets_one_refresh_and_one_retry() {
    let app = App::start(Setup::default()).await;
    assert_eq!(app.get("/api/getty/warm").await.status, 200);
    let first = app.tokens.issued()[0].clone();
    app.tokens.revoke(&first);
    let before = app.upstream.hits();

    let reply = app.get("/api/getty/after-revoke").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-credential-proxy-token"), Some("fetched"));
    assert_eq!(app.tokens.calls(), 2);
    assert_eq!(
        app.upstream.hits() - before,
        2,
        "one refused attempt, one retry"
    );
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn post_body_is_replayed_on_retry() {
    let app = App::start(Setup::default().var("allowed_routes", "GET /**, POST /forms/**")).await;
    assert_eq!(app.get("/api/getty/warm").await.status, 200);
    app.tokens.revoke(&app.tokens.issued()[0]);
    let body = b"name=Ada&message=hello".as_slice();
    let reply = app
        .send(
            "POST",
            "/api/getty/forms/contact",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(body),
        )
        .await;
    assert_eq!(reply.status, 200);
    let seen = app.upstream.requests();
    let posts: Vec<_> = seen.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 2);
    assert!(posts.iter().all(|r| r.body_len == body.len() as u64));
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn an_upstream_that_always_refuses_is_retried_exactly_once() {
    let app = App::start(Setup::default()).await;
    app.upstream.set_always_401(true);
    let reply = app.get("/api/getty/never").await;
    assert_eq!(reply.status, 401);
    assert_eq!(app.upstream.hits(), 2, "one retry, not a loop");
    assert_eq!(app.tokens.calls(), 2);
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn token_endpoint_down_keeps_a_valid_cached_token_working() {
    let setup = Setup {
        expires_in: Some(100),
        ..Setup::default()
    }
    .var("token_refresh_skew_secs", "100");
    let app = App::start(setup).await;
    assert_eq!(app.get("/api/getty/a").await.status, 200);
    // Make the stored token stale but valid: a long-lived token (so the 100 s skew is not
    // clamped to half its life) with 100 s left, inside the skew.
    let key = app.token_key().expect("a stored token");
    let mut record: serde_json::Value =
        serde_json::from_slice(&app.host.kv_get("default", &key).unwrap()).unwrap();
    record["issued_at"] = serde_json::json!(now_unix() - 3600);
    app.host
        .kv_set("default", &key, record.to_string().as_bytes());
    common::after_store_edit().await;
    app.tokens.set_failure(TokenFailure::Status500);
    let reply = app.get("/api/getty/b").await;
    assert_eq!(reply.status, 200, "the still-valid token is used");
    assert_eq!(reply.header("x-credential-proxy-token"), Some("cached"));
    assert_eq!(app.tokens.calls(), 2, "a refresh was attempted");
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn token_endpoint_failures_without_a_valid_token_give_502() {
    for failure in [
        TokenFailure::Status500,
        TokenFailure::MalformedJson,
        TokenFailure::Empty200,
    ] {
        let app = App::start(Setup::default()).await;
        app.tokens.set_failure(failure);
        let reply = app.get("/api/getty/x").await;
        reply.assert_error(502, "token_endpoint_failed");
        assert_eq!(app.upstream.hits(), 0, "nothing is sent without a token");
        app.assert_no_secrets().await;
    }
}

#[tokio::test]
async fn an_expired_cached_token_is_never_sent() {
    let app = App::start(Setup::default()).await;
    assert_eq!(app.get("/api/getty/a").await.status, 200);
    let key = app.token_key().expect("a stored token");
    let mut record: serde_json::Value =
        serde_json::from_slice(&app.host.kv_get("default", &key).unwrap()).unwrap();
    record["expires_at"] = serde_json::json!(now_unix() - 1);
    app.host
        .kv_set("default", &key, record.to_string().as_bytes());
    common::after_store_edit().await;
    app.tokens.set_failure(TokenFailure::Status500);
    let reply = app.get("/api/getty/b").await;
    reply.assert_error(502, "token_endpoint_failed");
    assert_eq!(
        app.upstream.hits(),
        1,
        "only the first request went upstream"
    );
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn hanging_token_endpoint_times_out_with_504() {
    let app = App::start(Setup::default().var("upstream_timeout_secs", "1")).await;
    app.tokens.set_failure(TokenFailure::Hang);
    let started = std::time::Instant::now();
    let reply = app.get("/api/getty/x").await;
    reply.assert_error(504, "token_endpoint_timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn basic_client_auth_and_scope_reach_the_token_endpoint() {
    let app = App::start(
        Setup::default()
            .var("token_client_auth", "basic")
            .var("token_scope", "images:read"),
    )
    .await;
    assert_eq!(app.get("/api/getty/x").await.status, 200);
    let reqs = app.tokens.requests();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].basic_auth);
    assert_eq!(reqs[0].scope.as_deref(), Some("images:read"));
    app.assert_no_secrets().await;
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn the_spin4_build_keeps_its_token_in_memory_and_skips_the_store() {
    let app = App::start(Setup::default()).await;
    app.get("/api/getty/warm").await.assert_status(200);
    let before = app.host.kv_reads();
    for i in 0..20 {
        let reply = app.get(&format!("/api/getty/next-{i}")).await;
        reply.assert_status(200);
        assert_eq!(reply.header("x-credential-proxy-token"), Some("cached"));
    }
    let reads = app.host.kv_reads() - before;
    if common::spin4() {
        // One instance serves them all (Spin 4 reuses it), within the 3 s re-read interval.
        assert!(reads <= 1, "{reads} key-value reads for 20 requests");
    } else {
        // A fresh instance per request: each reads the token record once.
        assert_eq!(reads, 20, "one key-value read per request");
    }
    assert_eq!(app.tokens.calls(), 1);
    app.assert_no_secrets().await;
}
