//! Component tests of the fleet-wide token cache (the lease in `src/token/flight.rs`): bursts of
//! concurrent requests, each in its own instance as under Spin, share one token fetch; a revoked
//! token is replaced without a storm; short tokens are reused; a token the endpoint says has
//! already expired is refused; and a key-value store that fails never fails a request. The bursts
//! run on Spin's default SQLite store and on Redis (skipped with one line when redis-server is
//! not installed, failing on CI). Every test ends with the canary check.

mod common;

use std::time::Duration;

use common::{App, Reply, Setup, Store};
use spin_test_host::mock::ExpiresIn;
use spin_test_host::KvFailures;

/// The acceptance bound for a burst: the lease elects one fetcher; a last-writer-wins race may
/// let a second or third through, never one per request.
const MAX_BURST_TOKEN_CALLS: usize = 3;

fn assert_all_ok(replies: &[Reply]) {
    for reply in replies {
        reply.assert_status(200);
    }
}

async fn cold_burst(store: Store, test: &str) {
    let Some(app) = App::start_on(Setup::default(), store, test).await else {
        return;
    };
    let replies = app.burst(200, "/api/getty/search/images?n=").await;
    assert_all_ok(&replies);
    let calls = app.tokens.calls();
    assert!(
        (1..=MAX_BURST_TOKEN_CALLS).contains(&calls),
        "{calls} token calls for 200 concurrent cold requests on {store:?}"
    );
    let fetched = replies
        .iter()
        .filter(|r| r.header("x-credential-proxy-token") == Some("fetched"))
        .count();
    assert_eq!(fetched, calls, "every other request used the stored token");
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn a_cold_burst_of_200_makes_at_most_3_token_calls_on_sqlite() {
    cold_burst(
        Store::Sqlite,
        "a_cold_burst_of_200_makes_at_most_3_token_calls_on_sqlite",
    )
    .await;
}

#[tokio::test]
async fn a_cold_burst_of_200_makes_at_most_3_token_calls_on_redis() {
    cold_burst(
        Store::Redis,
        "a_cold_burst_of_200_makes_at_most_3_token_calls_on_redis",
    )
    .await;
}

async fn revocation_burst(store: Store, test: &str) {
    let Some(app) = App::start_on(Setup::default(), store, test).await else {
        return;
    };
    app.get("/api/getty/warm").await.assert_status(200);
    let revoked = app.tokens.issued()[0].clone();
    app.tokens.revoke(&revoked);
    let hits_before = app.upstream.hits();
    let replies = app
        .burst(200, "/api/getty/search/images?after-revoke=")
        .await;
    assert_all_ok(&replies);
    let calls = app.tokens.calls() - 1;
    assert!(
        (1..=MAX_BURST_TOKEN_CALLS).contains(&calls),
        "{calls} token calls for 200 concurrent requests after a revocation on {store:?}"
    );
    // Each request goes upstream at most twice (the refused token, then one retry).
    assert!(app.upstream.hits() - hits_before <= 400);
    let stored = app.token_key().and_then(|k| app.host.kv_get("default", &k));
    let stored = String::from_utf8(stored.expect("a stored token")).unwrap();
    assert!(
        !stored.contains(&revoked),
        "the revoked token is replaced in the store"
    );
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn a_burst_after_a_revocation_makes_at_most_3_token_calls_on_sqlite() {
    revocation_burst(
        Store::Sqlite,
        "a_burst_after_a_revocation_makes_at_most_3_token_calls_on_sqlite",
    )
    .await;
}

#[tokio::test]
async fn a_burst_after_a_revocation_makes_at_most_3_token_calls_on_redis() {
    revocation_burst(
        Store::Redis,
        "a_burst_after_a_revocation_makes_at_most_3_token_calls_on_redis",
    )
    .await;
}

#[tokio::test]
async fn a_slow_token_endpoint_is_called_at_most_3_times_by_100_cold_requests() {
    let app = App::start(Setup::default()).await;
    app.tokens.set_delay(Duration::from_secs(1));
    let replies = app.burst(100, "/api/getty/search/images?slow=").await;
    assert_all_ok(&replies);
    let calls = app.tokens.calls();
    assert!(
        (1..=MAX_BURST_TOKEN_CALLS).contains(&calls),
        "{calls} token calls for 100 requests against a 1 s token endpoint"
    );
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn two_hosts_sharing_redis_fetch_one_token() {
    let Some(app) = App::start_on(
        Setup::default(),
        Store::Redis,
        "two_hosts_sharing_redis_fetch_one_token",
    )
    .await
    else {
        return;
    };
    let second = app.second_host().await;
    app.get("/api/getty/a").await.assert_status(200);
    let reply = common::raw_request(second.addr(), "GET", "/api/getty/b", &[], None).await;
    reply.assert_status(200);
    assert_eq!(reply.header("x-credential-proxy-token"), Some("cached"));
    assert_eq!(app.tokens.calls(), 1, "one token for both hosts");
    common::check_no_secrets(&second, &app.tokens, &[reply]);
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn thirty_second_tokens_are_reused_with_the_default_skew() {
    let app = App::start(Setup {
        expires_in: Some(30),
        ..Setup::default()
    })
    .await;
    for n in 0..10 {
        app.get(&format!("/api/getty/seq/{n}"))
            .await
            .assert_status(200);
    }
    let calls = app.tokens.calls();
    assert!(calls <= 2, "{calls} token calls for 10 sequential requests");
    let logs = app.host.logs();
    assert!(
        logs.contains("refreshed 15 s before it expires"),
        "the clamped skew is logged: {logs}"
    );
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn a_token_that_has_already_expired_is_refused_never_sent_and_never_cached() {
    for expires_in in [ExpiresIn::NegativeNumber(-5), ExpiresIn::NegativeString(-5)] {
        let app = App::start(Setup::default()).await;
        app.tokens.set_expires_in(expires_in);
        app.get("/api/getty/x")
            .await
            .assert_error(502, "token_endpoint_failed");
        assert_eq!(app.tokens.calls(), 1, "{expires_in:?}");
        assert_eq!(app.upstream.hits(), 0, "never sent ({expires_in:?})");
        assert_eq!(app.token_key(), None, "never cached ({expires_in:?})");
        app.assert_no_secrets().await;
    }
}

/// One request with `failures` injected into the store: answered 200, never `config_invalid`,
/// with exactly one log line about the store.
async fn survives(failures: KvFailures, what: &str) {
    let app = App::start(Setup::default()).await;
    app.host.fail_key_value("default", failures);
    let reply = app.get("/api/getty/search/images?phrase=cat").await;
    reply.assert_status(200);
    assert_eq!(reply.header("x-credential-proxy-token"), Some("fetched"));
    let logs = app.host.logs();
    assert!(!logs.contains("config_invalid"), "{what}: {logs}");
    let about_the_store = logs
        .lines()
        .filter(|l| l.contains("token cache") || l.contains("token lease"))
        .count();
    assert_eq!(
        about_the_store, 1,
        "{what}: one line about the store\n{logs}"
    );
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn a_store_that_cannot_be_opened_is_not_config_invalid() {
    survives(
        KvFailures {
            open: true,
            ..KvFailures::default()
        },
        "open",
    )
    .await;
}

#[tokio::test]
async fn a_store_whose_reads_fail_still_answers() {
    survives(
        KvFailures {
            get: true,
            ..KvFailures::default()
        },
        "get",
    )
    .await;
}

#[tokio::test]
async fn a_store_whose_writes_fail_still_answers() {
    survives(
        KvFailures {
            set: true,
            ..KvFailures::default()
        },
        "set",
    )
    .await;
}

#[tokio::test]
async fn a_store_label_the_component_was_not_granted_is_still_config_invalid() {
    let app = App::start(Setup::default().var("kv_store", "other")).await;
    let reply = app.get("/api/getty/x").await;
    reply.assert_error(500, "config_invalid");
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("kv_store"));
    app.assert_no_secrets().await;
}
