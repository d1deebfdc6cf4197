//! Spin 4's `spin:key-value/key-value@3.0.0` and `spin:variables/variables@3.0.0`, seen from a
//! WASIp3 component (the p3 probe): the same grants, stores, answers and injected failures as
//! the 2.0.0 interfaces; and a key-value call the guest gives up on (Redis gone, so the host's
//! call waits minutes, as Spin's does) wedges neither the instance nor the store. Tests that need
//! redis-server skip with one line when it is missing (and fail when `CI` is set).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{probe, probe_p3_wasm};
use serde_json::Value;
use spin_test_host::{HostOptions, KeyValueStore, KvFailures, RedisServer, SpinHost};

fn manifest(dir: &Path, probe: &Path) -> PathBuf {
    let text = format!(
        r#"
spin_manifest_version = 2
[application]
name = "probe-p3-kv"

[variables]
secret_value = {{ default = "s3" }}

[[trigger.http]]
route = "/probe/..."
component = "probe"

[component.probe]
source = "{}"
key_value_stores = ["default"]
[component.probe.variables]
greeting = "hello {{{{ secret_value }}}}"
"#,
        probe.display()
    );
    common::write_manifest(dir, &text)
}

async fn start(
    configure: impl FnOnce(HostOptions) -> HostOptions,
) -> (SpinHost, tempfile::TempDir) {
    let wasm = probe_p3_wasm().await;
    let dir = tempfile::tempdir().unwrap();
    let opts = configure(HostOptions::new(
        manifest(dir.path(), &wasm),
        dir.path().join("s"),
    ));
    (SpinHost::start(opts).await.unwrap(), dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_key_value_reads_and_writes_the_same_store_as_the_host() {
    let (host, _dir) = start(|o| o).await;
    assert_eq!(
        probe(&host, "/probe/kv/default/set/a/1").await["ok"],
        Value::Null
    );
    assert_eq!(probe(&host, "/probe/kv/default/get/a").await["ok"], "1");
    assert_eq!(host.kv_get("default", "a").as_deref(), Some(&b"1"[..]));
    host.kv_set("default", "b", b"2");
    assert_eq!(probe(&host, "/probe/kv/default/exists/b").await["ok"], true);
    assert_eq!(
        probe(&host, "/probe/kv/default/keys").await["ok"],
        serde_json::json!(["a", "b"])
    );
    probe(&host, "/probe/kv/default/delete/a").await;
    assert_eq!(
        probe(&host, "/probe/kv/default/get/a").await["ok"],
        Value::Null
    );
    assert_eq!(host.kv_keys("default"), ["b"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_key_value_gets_are_counted_as_2_0_0_ones_are() {
    let (host, _dir) = start(|o| o).await;
    probe(&host, "/probe/kv/default/set/a/1").await;
    probe(&host, "/probe/kv/default/exists/a").await;
    host.kv_get("default", "a");
    assert_eq!(host.kv_reads(), 0);
    for _ in 0..3 {
        assert_eq!(probe(&host, "/probe/kv/default/get/a").await["ok"], "1");
    }
    assert_eq!(host.kv_reads(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_key_value_refuses_a_label_the_component_may_not_use() {
    let (host, _dir) = start(|o| o).await;
    let denied = probe(&host, "/probe/kv/other/get/a").await;
    assert!(
        denied["err"].as_str().unwrap().contains("AccessDenied"),
        "{denied}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_key_value_fails_as_injected() {
    let (host, _dir) = start(|o| o).await;
    host.fail_key_value(
        "default",
        KvFailures {
            set: true,
            ..KvFailures::default()
        },
    );
    let failed = probe(&host, "/probe/kv/default/set/a/1").await;
    assert!(
        failed["err"].as_str().unwrap().contains("Other"),
        "{failed}"
    );
    assert_eq!(
        probe(&host, "/probe/kv/default/get/a").await["ok"],
        Value::Null
    );
    host.fail_key_value("default", KvFailures::ALL);
    let keys = probe(&host, "/probe/kv/default/keys").await;
    assert!(keys["err"].as_str().unwrap().contains("Other"), "{keys}");
    host.fail_key_value("default", KvFailures::default());
    assert_eq!(
        probe(&host, "/probe/kv/default/set/a/1").await["ok"],
        Value::Null
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_variables_answer_as_the_2_0_0_interface_does() {
    let (host, _dir) = start(|o| o).await;
    assert_eq!(probe(&host, "/probe/var/greeting").await["ok"], "hello s3");
    let undefined = probe(&host, "/probe/var/secret_value").await;
    let undefined = undefined["err"].as_str().unwrap();
    assert!(undefined.contains("Undefined"), "{undefined}");
    assert!(
        undefined.contains(r#"no variable for \"probe\".\"secret_value\""#),
        "{undefined}"
    );
    let invalid = probe(&host, "/probe/var/Bad-Name").await;
    assert!(
        invalid["err"].as_str().unwrap().contains("InvalidName"),
        "{invalid}"
    );
}

/// With Redis gone, Spin's client makes a key-value call wait minutes; a guest that bounds it
/// with its own timeout drops the call, and the host must then carry on: the same instance
/// answers the next requests at once, and `settled` returns.
#[tokio::test(flavor = "multi_thread")]
async fn p3_key_value_call_the_guest_gives_up_on_wedges_nothing() {
    let test = "p3_key_value_call_the_guest_gives_up_on_wedges_nothing";
    let Some(redis) = RedisServer::start(test) else {
        return;
    };
    let url = redis.url();
    let (host, _dir) =
        start(|o| o.key_value_store("default", KeyValueStore::redis(url.clone()))).await;
    assert_eq!(
        probe(&host, "/probe/kv/default/set/k/v").await["ok"],
        Value::Null
    );
    drop(redis);
    // The first call after the server left fails at once (as in Spin); the next ones wait.
    probe(&host, "/probe/kv/default/get/k").await;
    let started = Instant::now();
    let raced: Vec<Value> =
        futures::future::join_all((0..3).map(|_| probe(&host, "/probe/kv-race/default/k/300")))
            .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    for answer in &raced {
        assert_eq!(answer["gave_up"], true, "{raced:?}");
    }
    // The instance that abandoned the calls still serves, at once.
    let count = tokio::time::timeout(Duration::from_secs(1), probe(&host, "/probe/count"))
        .await
        .expect("the instance answers");
    assert!(count["count"].as_u64().unwrap() > 1, "{count}");
    tokio::time::timeout(Duration::from_secs(2), host.settled())
        .await
        .expect("no guest task is left waiting on the abandoned calls");
}
