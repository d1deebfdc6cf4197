//! WASIp3 (Spin 4) components served as Spin 4.0.2 serves them, seen from inside one: the p3
//! probe (`tests/host/probe-p3`, spin-sdk 6) reports its URI and headers, how many requests its
//! instance has seen (instance reuse), how many it served at once (the concurrent-reuse limit),
//! its output, outbound results, and work it does after answering. The p2 behaviours of
//! `spin_behaviour.rs` hold here too.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{probe, probe_p3_wasm};
use http_body_util::{BodyExt, Empty};
use serde_json::Value;
use spin_test_host::mock::Upstream;
use spin_test_host::{HostOptions, SpinHost};

fn manifest(dir: &Path, probe: &Path, upstream: &str) -> PathBuf {
    let probe = probe.display();
    let text = format!(
        r#"
spin_manifest_version = 2
[application]
name = "probe-p3-app"

[[trigger.http]]
route = "/probe/..."
component = "probe"

[[trigger.http]]
route = {{ private = true }}
component = "backend"

[component.probe]
source = "{probe}"
allowed_outbound_hosts = ["http://{upstream}", "http://backend.spin.internal"]

[component.backend]
source = "{probe}"
"#
    );
    common::write_manifest(dir, &text)
}

struct World {
    host: SpinHost,
    upstream: Upstream,
    _dir: tempfile::TempDir,
}

async fn start(configure: impl FnOnce(HostOptions) -> HostOptions) -> World {
    let wasm = probe_p3_wasm().await;
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), &wasm, &upstream.addr().to_string());
    let opts = configure(HostOptions::new(&manifest, dir.path().join("state")));
    let host = SpinHost::start(opts).await.unwrap();
    World {
        host,
        upstream,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_guest_sees_the_uri_and_spin_headers_as_on_spin() {
    let w = start(|o| o).await;
    let v = probe(&w.host, "/probe/headers?x=1").await;
    assert_eq!(v["uri"], w.host.url("/probe/headers?x=1"), "{v}");
    let header = |name: &str| -> Vec<String> {
        v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p[0] == name)
            .map(|p| p[1].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(header("spin-path-info"), ["/headers"]);
    assert_eq!(header("spin-matched-route"), ["/probe/..."]);
    assert_eq!(header("spin-component-route"), ["/probe"]);
    assert_eq!(header("spin-full-url"), [w.host.url("/probe/headers?x=1")]);
    assert!(
        header("spin-client-addr")[0].starts_with("127.0.0.1:"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_instance_serves_requests_until_its_reuse_count_then_a_fresh_one_takes_over() {
    let w = start(|o| o.max_instance_reuse_count(3)).await;
    let mut counts = Vec::new();
    for _ in 0..7 {
        counts.push(
            probe(&w.host, "/probe/count").await["count"]
                .as_u64()
                .unwrap(),
        );
    }
    assert_eq!(counts, [1, 2, 3, 1, 2, 3, 1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_default_reuse_keeps_one_instance_for_sequential_requests() {
    let w = start(|o| o).await;
    for expected in 1..=20 {
        assert_eq!(probe(&w.host, "/probe/count").await["count"], expected);
    }
    // An instance idle for Spin's 1 s idle timeout is dropped.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(probe(&w.host, "/probe/count").await["count"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_instance_takes_concurrent_requests_up_to_its_limit() {
    let w = start(|o| o.max_instance_concurrent_reuse_count(4)).await;
    // 50 ms apart, so each request is asleep (waiting on I/O) when the next comes: an instance
    // still running a request's code takes no other, as with wasmtime's `ProxyHandler`.
    let answers: Vec<Value> = futures::future::join_all((0..8u64).map(|i| {
        let host = &w.host;
        async move {
            tokio::time::sleep(Duration::from_millis(50 * i)).await;
            probe(host, "/probe/sleep/400").await
        }
    }))
    .await;
    let most = answers
        .iter()
        .map(|a| a["most_in_flight"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(most, 4, "{answers:?}");
    // Eight requests, four per instance: two instances, each saw requests 1 to 4.
    let mut counts: Vec<u64> = answers
        .iter()
        .map(|a| a["count"].as_u64().unwrap())
        .collect();
    counts.sort();
    assert_eq!(counts, [1, 1, 2, 2, 3, 3, 4, 4], "{answers:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_reuse_count_of_one_gives_every_request_a_fresh_instance() {
    let w = start(|o| o.max_instance_reuse_count(1)).await;
    for _ in 0..3 {
        assert_eq!(probe(&w.host, "/probe/count").await["count"], 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_output_reaches_the_log_buffer() {
    let w = start(|o| o).await;
    probe(&w.host, "/probe/print").await;
    w.host.settled().await;
    let logs = w.host.logs();
    assert!(logs.contains("probe-p3-stdout-line"), "{logs}");
    assert!(logs.contains("probe-p3-stderr-line"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_settled_waits_for_work_after_the_answer() {
    let w = start(|o| o).await;
    let started = Instant::now();
    probe(&w.host, "/probe/after/500").await;
    assert!(
        started.elapsed() < Duration::from_millis(450),
        "answered before the work"
    );
    assert!(!w.host.logs().contains("probe-p3-after-done"));
    w.host.settled().await;
    assert!(w.host.logs().contains("probe-p3-after-done"));
    assert!(started.elapsed() >= Duration::from_millis(500));
    // settled() does not wait for the idle instance to be dropped.
    let quick = Instant::now();
    w.host.settled().await;
    assert!(quick.elapsed() < Duration::from_millis(100));
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_guest_failing_before_its_answer_is_an_empty_500_and_the_next_request_is_served() {
    let w = start(|o| o).await;
    let (status, body) = common::get(&w.host.url("/probe/fail"), &[]).await;
    assert_eq!((status, body.len()), (500, 0));
    w.host.settled().await;
    assert_eq!(probe(&w.host, "/probe/count").await["count"], 1);
    let requests = w.host.requests();
    assert_eq!(requests[0].status, 500);
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_outbound_is_refused_allowed_and_chained_as_for_p2() {
    let w = start(|o| o).await;
    let denied = probe(&w.host, "/probe/fetch/http://127.0.0.1:9/nope").await;
    assert!(
        denied["err"]
            .as_str()
            .unwrap()
            .contains("HttpRequestDenied"),
        "{denied}"
    );
    let url = format!("/probe/fetch/{}/hello", w.upstream.url());
    assert_eq!(probe(&w.host, &url).await["status"], 200);
    assert_eq!(w.upstream.hits(), 1);
    let chained = probe(&w.host, "/probe/fetch/http://backend.spin.internal/x").await;
    assert_eq!(chained["status"], 200, "{chained}");
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_in_process_calls_are_served_too() {
    let w = start(|o| o).await;
    let req = http::Request::get("/probe/count").body(Vec::new()).unwrap();
    let resp = w.host.call(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(v["count"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_client_leaving_mid_answer_ends_the_request_and_the_guest_carries_on() {
    let w = start(|o| o).await;
    assert_eq!(probe(&w.host, "/probe/count").await["count"], 1);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    // 2000 chunks every 5 ms: 10 s of body, of which the client reads one chunk.
    let url = w.host.url("/probe/stream/2000");
    let resp = client.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(body);
    drop(client);
    tokio::time::timeout(Duration::from_secs(3), w.host.settled())
        .await
        .expect("the request and the guest end once the client is gone");
    let logs = w.host.logs();
    assert!(logs.contains("probe-p3-stream-stopped"), "{logs}");
    // The instance is still good for the next request (`/stream` is not counted).
    assert_eq!(probe(&w.host, "/probe/count").await["count"], 2, "{logs}");
}
