//! Redis stops under the Spin 4 build, and no request waits for it: every key-value call is
//! raced against a 1 s timeout, so a request answers within 2 s from the token the instance
//! holds, or with one fetched without the cache; after a call timed out the instance leaves the
//! store alone for 3 s, so waits never add up. Only the Spin 4 build can bound this wait:
//! under the default build Spin's own key-value call waits minutes (`tests/host`'s Redis store
//! does the same), so this file runs in `tests/spin4.rs` only.

#[path = "../common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{App, Reply, Setup, Store};

/// What the issue promises with Redis stopped.
const PROMISED: Duration = Duration::from_secs(2);

async fn timed_get(app: &App, path: &str) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = app.get(path).await;
    (reply, started.elapsed())
}

#[tokio::test]
async fn with_redis_stopped_the_spin4_build_answers_within_two_seconds() {
    // The response cache on as well: a request then opens the store twice (cache, token).
    let Some(mut app) = App::start_on(
        Setup::default().var("cache_ttl_secs", "60"),
        Store::Redis,
        "with_redis_stopped_the_spin4_build_answers_within_two_seconds",
    )
    .await
    else {
        return;
    };
    app.get("/api/getty/warm").await.assert_status(200);
    assert_eq!(app.tokens.calls(), 1);
    app.stop_redis();

    // Steady traffic keeps the instance (Spin 4 drops one idle for a second). It holds the
    // token, so at first no key-value call is made; past each re-read interval one request asks
    // the store and the held token stands in: no new token, the failure logged. The host's
    // Redis client fails its first call at once and then waits (minutes, as Spin's does), so
    // the second re-read is the one the 1 s bound cuts short.
    let until = Instant::now() + 2 * common::REREAD + Duration::from_secs(1);
    let mut slowest = Duration::ZERO;
    let mut n = 0;
    while Instant::now() < until {
        let (reply, took) = timed_get(&app, &format!("/api/getty/during-outage-{n}")).await;
        reply.assert_status(200);
        assert_eq!(reply.header("x-credential-proxy-token"), Some("cached"));
        slowest = slowest.max(took);
        n += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        slowest < PROMISED,
        "the slowest of {n} answers took {slowest:?}"
    );
    assert_eq!(
        app.tokens.calls(),
        1,
        "the held token was used, not a new one"
    );
    app.host.settled().await;
    let logs = app.host.logs();
    assert!(
        logs.contains("did not answer within 1 s"),
        "the bounded wait is logged: {logs}"
    );

    // A new instance holds nothing: the store does not open in time, so it fetches a token
    // without the cache, still within the promise.
    let app = app.restart().await;
    let (reply, took) = timed_get(&app, "/api/getty/cold").await;
    reply.assert_status(200);
    assert!(took < PROMISED, "a cold instance answered in {took:?}");
    assert_eq!(reply.header("x-credential-proxy-token"), Some("fetched"));
    app.assert_no_secrets().await;
}
