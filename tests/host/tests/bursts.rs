//! Bursts against the real proxy wasm, as a user's traffic spike would hit `spin up`: 200
//! concurrent requests with a cold token cache, and 200 right after the upstream revoked the
//! cached token, on the default SQLite store and on Redis. The host must answer every one of
//! them within 10 s (no request starves) and prints how many token calls each burst made, the
//! number to compare with real Spin. It asserts nothing about the proxy's own token policy
//! (the component tests do that). A third burst, 100 requests against a token endpoint that
//! takes 1 s, checks that instances waiting on outbound I/O do not hold each other up. The
//! test's own runtime is single-threaded on purpose, like
//! the component tests': the host runs instances on its own workers all the same.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use spin_test_host::mock::{TokenServer, Upstream};
use spin_test_host::{build_wasm, HostOptions, KeyValueStore, RedisServer, SpinHost};

const BURST: usize = 200;
const DEADLINE: Duration = Duration::from_secs(10);

fn manifest(upstream: &str, token_url: &str) -> String {
    let token_host = token_url.split("/oauth2").next().unwrap_or(token_url);
    format!(
        r#"spin_manifest_version = 2
[application]
name = "burst"
[[trigger.http]]
route = "/api/..."
component = "proxy"
[component.proxy]
source = "credential_proxy.wasm"
allowed_outbound_hosts = ["{token_host}", "{upstream}"]
key_value_stores = ["default"]
[component.proxy.variables]
upstream_url = "{upstream}/v3"
api_key = "key"
api_key_header = "Api-Key"
token_url = "{token_url}"
client_id = "key"
client_secret = "secret"
"#
    )
}

struct Burst {
    answered: usize,
    ok: usize,
    slowest: Duration,
}

/// Sends `n` concurrent GETs, each on its own connection, and counts what came back within
/// `DEADLINE`.
async fn burst(host: &SpinHost, n: usize) -> Burst {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let url = host.url(&format!("/api/search?n={i}"));
        tasks.spawn(async move {
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<Empty<Bytes>>();
            let resp = client.get(url.parse().unwrap()).await.ok()?;
            let status = resp.status().as_u16();
            resp.into_body().collect().await.ok()?;
            Some(status)
        });
    }
    let mut result = Burst {
        answered: 0,
        ok: 0,
        slowest: Duration::ZERO,
    };
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, tasks.join_next()).await {
        if let Ok(Some(status)) = joined {
            result.answered += 1;
            result.ok += usize::from(status == 200);
            result.slowest = started.elapsed();
        }
    }
    tasks.abort_all();
    result
}

/// The proxy in front of the mocks, its `default` store in `store` (SQLite when `None`).
struct World {
    host: SpinHost,
    tokens: TokenServer,
    _upstream: Upstream,
    _dir: tempfile::TempDir,
}

async fn start(store: Option<KeyValueStore>) -> World {
    let wasm = tokio::task::spawn_blocking(|| build_wasm().expect("wasm build"))
        .await
        .unwrap();
    let tokens = TokenServer::start().await;
    let upstream = Upstream::start().await;
    upstream.require_key("Api-Key", "key");
    upstream.require_bearer_from(&tokens);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, manifest(&upstream.url(), &tokens.token_url())).unwrap();
    let mut opts = HostOptions::new(&path, dir.path().join("state")).wasm_dir(wasm);
    if let Some(store) = store {
        opts = opts.key_value_store("default", store);
    }
    World {
        host: SpinHost::start(opts).await.unwrap(),
        tokens,
        _upstream: upstream,
        _dir: dir,
    }
}

/// Runs the cold and the revocation burst against a fresh app on `store`.
async fn run_bursts(store: Option<KeyValueStore>) {
    let name = if store.is_some() { "redis" } else { "sqlite" };
    let World { host, tokens, .. } = start(store).await;

    let cold = burst(&host, BURST).await;
    let cold_calls = tokens.calls();
    for token in tokens.issued() {
        tokens.revoke(&token);
    }
    let revoked = burst(&host, BURST).await;
    let revoked_calls = tokens.calls() - cold_calls;
    println!(
        "{name}: cold burst: {}/{BURST} answered ({} ok) in {:?}, {cold_calls} token calls; \
         after revocation: {}/{BURST} answered ({} ok) in {:?}, {revoked_calls} token calls",
        cold.answered, cold.ok, cold.slowest, revoked.answered, revoked.ok, revoked.slowest
    );
    assert_eq!(
        cold.answered, BURST,
        "{name}: cold burst unanswered after {DEADLINE:?}"
    );
    assert_eq!(
        revoked.answered, BURST,
        "{name}: revocation burst unanswered after {DEADLINE:?}"
    );
    host.shutdown().await;
}

#[tokio::test]
async fn bursts_of_200_are_all_answered_within_10_s_on_sqlite() {
    run_bursts(None).await;
}

#[tokio::test]
async fn bursts_of_200_are_all_answered_within_10_s_on_redis() {
    let Some(redis) = RedisServer::start("bursts_of_200_are_all_answered_within_10_s_on_redis")
    else {
        return;
    };
    run_bursts(Some(KeyValueStore::redis(redis.url()))).await;
}

#[tokio::test]
async fn a_burst_of_100_against_a_slow_token_endpoint_is_answered_within_10_s() {
    let World { host, tokens, .. } = start(None).await;
    tokens.set_delay(Duration::from_secs(1));
    let slow = burst(&host, 100).await;
    println!(
        "slow token endpoint: {}/100 answered ({} ok) in {:?}, {} token calls",
        slow.answered,
        slow.ok,
        slow.slowest,
        tokens.calls()
    );
    assert_eq!(slow.answered, 100, "unanswered after {DEADLINE:?}");
    host.shutdown().await;
}
