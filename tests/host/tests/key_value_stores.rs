//! The key-value stores a runtime config chooses, seen from a component (the probe): Spin's
//! default SQLite file, a SQLite file named in a runtime config, and a real Redis shared by two
//! hosts, as two `spin up` processes would share it; and injected failures, as a store that is
//! down gives them. Each store must answer a burst of 200
//! concurrent requests within 10 s, every read seeing a completed write. Tests that need
//! redis-server skip with one line when it is missing (and fail when `CI` is set).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use serde_json::Value;
use spin_test_host::{HostOptions, KeyValueStore, KvFailures, RedisServer, SpinHost};

const BURST: usize = 200;
const DEADLINE: Duration = Duration::from_secs(10);

fn manifest(dir: &Path, probe: &Path) -> PathBuf {
    let text = format!(
        "spin_manifest_version = 2\n[application]\nname = \"kv\"\n\
         [[trigger.http]]\nroute = \"/probe/...\"\ncomponent = \"probe\"\n\
         [component.probe]\nsource = \"{}\"\nkey_value_stores = [\"default\", \"cache\"]\n",
        probe.display()
    );
    common::write_manifest(dir, &text)
}

/// GETs `path` from the probe and returns its JSON answer, or `None` when none came.
async fn probe(host_url: String) -> Option<Value> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let resp = client.get(host_url.parse().ok()?).await.ok()?;
    if resp.status() != 200 {
        return None;
    }
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    serde_json::from_slice(&body).ok()
}

async fn kv(host: &SpinHost, label: &str, op: &str) -> Value {
    let v = probe(host.url(&format!("/probe/kv/{label}/{op}")))
        .await
        .expect("the probe answers");
    assert!(v.get("err").is_none(), "{op}: {v}");
    v["ok"].clone()
}

/// 200 concurrent requests, half writing `burst` and half reading it, must all be answered
/// within 10 s; each read sees either nothing or a completed write.
async fn assert_burst_is_answered(host: &SpinHost, label: &str) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..BURST {
        let op = if i % 2 == 0 {
            format!("set/burst/v{i}")
        } else {
            "get/burst".to_string()
        };
        tasks.spawn(probe(host.url(&format!("/probe/kv/{label}/{op}"))));
    }
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut answered = 0;
    while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, tasks.join_next()).await {
        let v = joined
            .unwrap()
            .expect("every request gets a 200 JSON answer");
        assert!(v.get("err").is_none(), "{v}");
        let ok = &v["ok"];
        assert!(
            ok.is_null() || ok.as_str().is_some_and(|s| s.starts_with('v')),
            "a read sees a whole written value: {v}"
        );
        answered += 1;
    }
    tasks.abort_all();
    assert_eq!(answered, BURST, "{label}: unanswered after {DEADLINE:?}");
    // After the burst, a read sees the last completed write.
    kv(host, label, "set/burst/final").await;
    assert_eq!(kv(host, label, "get/burst").await, "final");
}

#[tokio::test]
async fn default_sqlite_store_answers_a_burst_and_lives_where_spin_keeps_it() {
    let probe = common::probe_wasm().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let host = SpinHost::start(HostOptions::new(manifest(dir.path(), &probe), &state))
        .await
        .unwrap();
    assert_burst_is_answered(&host, "default").await;
    kv(&host, "cache", "set/k/c").await;
    assert_eq!(
        kv(&host, "default", "get/k").await,
        Value::Null,
        "labels are apart"
    );
    assert!(state.join("sqlite_key_value.db").is_file());
    host.shutdown().await;
}

#[tokio::test]
async fn kv_reads_counts_the_guests_gets_on_every_label_and_nothing_else() {
    let wasm = common::probe_wasm().await;
    let dir = tempfile::tempdir().unwrap();
    let host = SpinHost::start(HostOptions::new(
        manifest(dir.path(), &wasm),
        dir.path().join("state"),
    ))
    .await
    .unwrap();
    assert_eq!(host.kv_reads(), 0);
    kv(&host, "default", "set/k/v").await;
    kv(&host, "default", "exists/k").await;
    kv(&host, "default", "keys").await;
    host.kv_set("default", "h", b"1");
    host.kv_get("default", "h");
    assert_eq!(
        host.kv_reads(),
        0,
        "writes, exists, keys and the host's own calls"
    );
    assert_eq!(kv(&host, "default", "get/k").await, "v");
    assert_eq!(kv(&host, "cache", "get/k").await, Value::Null);
    host.fail_key_value(
        "default",
        KvFailures {
            get: true,
            ..KvFailures::default()
        },
    );
    let failed = probe(host.url("/probe/kv/default/get/k")).await.unwrap();
    assert!(failed.get("err").is_some(), "{failed}");
    assert_eq!(host.kv_reads(), 3, "two labels, a failed read included");
    host.shutdown().await;
}

#[tokio::test]
async fn runtime_config_puts_a_label_in_its_own_sqlite_file() {
    let probe = common::probe_wasm().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        "[key_value_store.cache]\ntype = \"spin\"\npath = \"data/cache.db\"\n",
    )
    .unwrap();
    let opts = HostOptions::new(manifest(dir.path(), &probe), dir.path().join("state"))
        .runtime_config(&config);
    let host = SpinHost::start(opts).await.unwrap();
    kv(&host, "cache", "set/k/v").await;
    assert_eq!(host.kv_get("cache", "k").as_deref(), Some(&b"v"[..]));
    assert!(dir.path().join("data/cache.db").is_file());
    host.shutdown().await;
}

#[tokio::test]
async fn two_hosts_share_one_redis_and_it_answers_a_burst() {
    let Some(redis) = RedisServer::start("two_hosts_share_one_redis_and_it_answers_a_burst") else {
        return;
    };
    let probe = common::probe_wasm().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), &probe);
    // One host chooses Redis in code, the other through a runtime config file, as `spin up
    // --runtime-config-file runtime-config.toml` would.
    let a = HostOptions::new(&manifest, dir.path().join("a"))
        .key_value_store("default", KeyValueStore::redis(redis.url()));
    let config = dir.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
            redis.url()
        ),
    )
    .unwrap();
    let b = HostOptions::new(&manifest, dir.path().join("b")).runtime_config(&config);
    let (a, b) = (
        SpinHost::start(a).await.unwrap(),
        SpinHost::start(b).await.unwrap(),
    );

    kv(&a, "default", "set/shared/from-a").await;
    assert_eq!(kv(&b, "default", "get/shared").await, "from-a");
    b.kv_set("default", "planted", b"p");
    assert_eq!(kv(&a, "default", "get/planted").await, "p");
    assert_eq!(a.kv_keys("default"), vec!["planted", "shared"]);
    assert_eq!(kv(&b, "default", "delete/shared").await, Value::Null);
    assert_eq!(a.kv_get("default", "shared"), None);

    assert_burst_is_answered(&a, "default").await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn injected_failures_look_like_a_store_that_is_down() {
    let wasm = common::probe_wasm().await;
    let dir = tempfile::tempdir().unwrap();
    let host = SpinHost::start(HostOptions::new(
        manifest(dir.path(), &wasm),
        dir.path().join("s"),
    ))
    .await
    .unwrap();
    kv(&host, "default", "set/k/v").await;
    let err = |v: Value| v["err"].as_str().unwrap_or_default().to_string();
    let call = |op: &str| probe(host.url(&format!("/probe/kv/default/{op}")));

    host.fail_key_value(
        "default",
        KvFailures {
            open: true,
            ..KvFailures::default()
        },
    );
    assert!(err(call("get/k").await.unwrap()).starts_with("Error::Other("));
    assert_eq!(
        kv(&host, "cache", "get/k").await,
        Value::Null,
        "other labels still work"
    );

    host.fail_key_value(
        "default",
        KvFailures {
            set: true,
            ..KvFailures::default()
        },
    );
    assert_eq!(kv(&host, "default", "get/k").await, "v");
    assert!(err(call("set/k/w").await.unwrap()).starts_with("Error::Other("));
    assert_eq!(
        host.kv_get("default", "k").as_deref(),
        Some(&b"v"[..]),
        "nothing written"
    );

    host.fail_key_value("default", KvFailures::ALL);
    for op in ["get/k", "exists/k", "keys", "delete/k"] {
        assert!(
            err(call(op).await.unwrap()).starts_with("Error::Other("),
            "{op}"
        );
    }
    host.fail_key_value("default", KvFailures::default());
    assert_eq!(kv(&host, "default", "get/k").await, "v");
    host.shutdown().await;
}

/// Spin's Redis client (redis-rs `ConnectionManager`, default settings) fails the first call
/// after the server went away, then makes every call wait while it reconnects: minutes, as
/// Spin 4.0.2's key-value calls do with Redis down. Tests of a proxy facing a dead store should
/// use [`KvFailures`] instead.
#[tokio::test]
async fn redis_going_away_fails_one_call_then_stalls_the_next_as_in_spin() {
    let test = "redis_going_away_fails_one_call_then_stalls_the_next_as_in_spin";
    let Some(redis) = RedisServer::start(test) else {
        return;
    };
    let wasm = common::probe_wasm().await;
    let dir = tempfile::tempdir().unwrap();
    let opts = HostOptions::new(manifest(dir.path(), &wasm), dir.path().join("s"))
        .key_value_store("default", KeyValueStore::redis(redis.url()));
    let host = SpinHost::start(opts).await.unwrap();
    kv(&host, "default", "set/k/v").await;
    drop(redis);
    let get = || probe(host.url("/probe/kv/default/get/k"));
    let first = tokio::time::timeout(Duration::from_secs(5), get())
        .await
        .expect("the first call fails at once")
        .unwrap();
    assert!(
        first["err"].as_str().unwrap().starts_with("Error::Other("),
        "{first}"
    );
    let next = tokio::time::timeout(Duration::from_secs(2), get()).await;
    assert!(
        next.is_err(),
        "the next call waits for the reconnect: {next:?}"
    );
}
