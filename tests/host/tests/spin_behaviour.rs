//! The host against Spin's observable behaviour, seen from inside a component: a small probe
//! component (`tests/host/probe`) reports the URI and headers it got, its variables, key-value
//! results, outbound errors and whether its memory survived the previous request.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{get, probe, probe_wasm};
use futures::future::join_all;
use serde_json::Value;
use spin_test_host::mock::Upstream;
use spin_test_host::{HostOptions, SpinHost};

fn manifest(dir: &Path, probe: &Path, upstream: &str) -> PathBuf {
    let probe = probe.display();
    let text = format!(
        r#"
spin_manifest_version = 2
[application]
name = "probe-app"

[variables]
secret_value = {{ default = "dflt", secret = true }}
needed = {{ required = true }}
up_host = {{ default = "{upstream}" }}

[[trigger.http]]
route = "/probe/..."
component = "probe"

[[trigger.http]]
route = "/probe/exact"
component = "exact"

[[trigger.http]]
route = {{ private = true }}
component = "backend"

[component.probe]
source = "{probe}"
allowed_outbound_hosts = ["http://{{{{ up_host }}}}", "http://backend.spin.internal", "http://ghost.spin.internal"]
key_value_stores = ["default"]
[component.probe.variables]
greeting = "hello {{{{secret_value}}}} and {{{{ needed }}}}"

[component.exact]
source = "{probe}"

[component.backend]
source = "{probe}"
"#
    );
    common::write_manifest(dir, &text)
}

struct World {
    host: SpinHost,
    upstream: Upstream,
    dir: tempfile::TempDir,
    manifest: PathBuf,
}

async fn start() -> World {
    let probe = probe_wasm().await;
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), &probe, &upstream.addr().to_string());
    let opts = HostOptions::new(&manifest, dir.path().join("state")).variable("needed", "given");
    let host = SpinHost::start(opts).await.unwrap();
    World {
        host,
        upstream,
        dir,
        manifest,
    }
}

fn header_values(v: &Value, name: &str) -> Vec<String> {
    v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p[0] == name)
        .map(|p| p[1].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn request_uri_and_spin_headers_match_spin() {
    let w = start().await;
    let url = w.host.url("/probe/headers?x=1%202&y=%2F");
    let (status, body) = get(&url, &[("spin-client-addr", "6.6.6.6:1")]).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    let addr = w.host.addr().to_string();
    assert_eq!(v["path_with_query"], "/probe/headers?x=1%202&y=%2F");
    assert_eq!(v["authority"], addr.as_str());
    assert_eq!(v["method"], "Method::Get");
    let one = |n: &str| {
        let all = header_values(&v, n);
        assert_eq!(all.len(), 1, "{n}: {all:?}");
        all[0].clone()
    };
    assert_eq!(one("spin-path-info"), "/headers");
    assert_eq!(
        one("spin-full-url"),
        format!("http://{addr}/probe/headers?x=1%202&y=%2F")
    );
    assert_eq!(one("spin-matched-route"), "/probe/...");
    assert_eq!(one("spin-component-route"), "/probe");
    assert_eq!(one("spin-raw-component-route"), "/probe/...");
    assert_eq!(one("spin-base-path"), "/");
    // Spin appends its own value after the client's: the real address is the last one.
    let client_addrs = header_values(&v, "spin-client-addr");
    assert_eq!(client_addrs.len(), 2);
    assert_eq!(client_addrs[0], "6.6.6.6:1");
    assert!(
        client_addrs[1].starts_with("127.0.0.1:"),
        "{client_addrs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_gets_a_fresh_instance_and_routes_like_spin() {
    let w = start().await;
    assert_eq!(probe(&w.host, "/probe/headers").await["count"], 1);
    assert_eq!(probe(&w.host, "/probe/headers").await["count"], 1);
    let exact = probe(&w.host, "/probe/exact").await;
    assert_eq!(exact["path_info"], "");
    let root = probe(&w.host, "/probe").await;
    assert_eq!(root["path_info"], "");
    for path in ["/", "/probex", "/backend/headers"] {
        let (status, body) = get(&w.host.url(path), &[]).await;
        assert_eq!((status, body.len()), (404, 0), "{path}");
    }
    let (status, _) = get(&w.host.url("/probe/status/418?a=b"), &[]).await;
    assert_eq!(status, 418);

    let log = w.host.requests();
    assert_eq!(log.len(), 8);
    assert_eq!(log[2].component.as_deref(), Some("exact"));
    assert_eq!((log[5].path.as_str(), log[5].status), ("/probex", 404));
    assert_eq!(log[5].component, None);
    let last = log.last().unwrap();
    assert_eq!(
        (
            last.method.as_str(),
            last.path.as_str(),
            last.query.as_deref(),
            last.status
        ),
        ("GET", "/probe/status/418", Some("a=b"), 418)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn variables_resolve_templates_and_answer_like_spin() {
    let w = start().await;
    assert_eq!(
        probe(&w.host, "/probe/var/greeting").await["ok"],
        "hello dflt and given"
    );
    let undefined = probe(&w.host, "/probe/var/secret_value").await;
    assert!(
        undefined["err"]
            .as_str()
            .unwrap()
            .starts_with("Error::Undefined("),
        "{undefined}"
    );
    let invalid = probe(&w.host, "/probe/var/Bad-Name").await;
    assert!(
        invalid["err"]
            .as_str()
            .unwrap()
            .starts_with("Error::InvalidName("),
        "{invalid}"
    );

    // A required variable with no value stops the app from starting, naming the variable.
    let opts = HostOptions::new(&w.manifest, w.dir.path().join("state2"));
    let err = SpinHost::start(opts).await.err().expect("must not start");
    assert!(format!("{err:#}").contains("needed"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn key_value_is_scoped_and_persists_across_restarts() {
    let w = start().await;
    assert_eq!(
        probe(&w.host, "/probe/kv/default/set/k1/v1").await["ok"],
        Value::Null
    );
    assert_eq!(probe(&w.host, "/probe/kv/default/get/k1").await["ok"], "v1");
    assert_eq!(
        probe(&w.host, "/probe/kv/default/exists/k1").await["ok"],
        true
    );
    assert_eq!(w.host.kv_get("default", "k1").as_deref(), Some(&b"v1"[..]));
    w.host.kv_set("default", "planted", b"p");
    assert_eq!(
        probe(&w.host, "/probe/kv/default/get/planted").await["ok"],
        "p"
    );
    assert_eq!(w.host.kv_keys("default"), vec!["k1", "planted"]);
    assert_eq!(
        probe(&w.host, "/probe/kv/other/get/k1").await["err"],
        "Error::AccessDenied"
    );
    // `exact` has no key_value_stores at all.
    let (_, body) = get(&w.host.url("/probe/exact"), &[]).await;
    assert!(!body.is_empty());

    let state = w.dir.path().join("state");
    let manifest = w.manifest.clone();
    w.host.shutdown().await;
    let opts = HostOptions::new(&manifest, &state).variable("needed", "given");
    let host = SpinHost::start(opts).await.unwrap();
    assert_eq!(probe(&host, "/probe/kv/default/get/k1").await["ok"], "v1");
    assert_eq!(
        probe(&host, "/probe/kv/default/delete/k1").await["ok"],
        Value::Null
    );
    assert_eq!(host.kv_get("default", "k1"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn outbound_requests_obey_allowed_hosts() {
    let w = start().await;
    let allowed = probe(
        &w.host,
        &format!("/probe/fetch/{}/v3/x?q=1", w.upstream.url()),
    )
    .await;
    assert_eq!(allowed["status"], 200, "{allowed}");
    assert_eq!(w.upstream.requests()[0].path, "/v3/x");
    assert_eq!(w.upstream.requests()[0].query.as_deref(), Some("q=1"));

    let port = w.upstream.addr().port();
    for denied in [
        format!("http://127.0.0.2:{port}/x"),
        format!("http://localhost:{port}/x"),
        format!("https://127.0.0.1:{port}/x"),
        "http://127.0.0.1:1/x".to_string(),
    ] {
        let v = probe(&w.host, &format!("/probe/fetch/{denied}")).await;
        assert_eq!(v["err"], "ErrorCode::HttpRequestDenied", "{denied}: {v}");
    }
    assert_eq!(w.upstream.hits(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn service_chaining_reaches_private_components_in_process() {
    let w = start().await;
    let v = probe(
        &w.host,
        "/probe/fetch/http://backend.spin.internal/headers?z=9",
    )
    .await;
    assert_eq!(v["status"], 200, "{v}");
    let inner: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert_eq!(header_values(&inner, "spin-path-info"), vec!["/headers"]);
    assert_eq!(header_values(&inner, "spin-matched-route"), vec!["/..."]);
    assert_eq!(header_values(&inner, "spin-client-addr"), vec!["0.0.0.0:0"]);
    assert_eq!(inner["path_with_query"], "/headers?z=9");

    // Allowed, but no such component: the request fails inside the caller.
    let ghost = probe(&w.host, "/probe/fetch/http://ghost.spin.internal/x").await;
    assert!(ghost["err"].is_string(), "{ghost}");
    // Not in allowed_outbound_hosts.
    let other = probe(&w.host, "/probe/fetch/http://exact.spin.internal/x").await;
    assert_eq!(other["err"], "ErrorCode::HttpRequestDenied");
}

#[tokio::test(flavor = "multi_thread")]
async fn component_output_is_captured() {
    let w = start().await;
    probe(&w.host, "/probe/print").await;
    let logs = w.host.logs();
    assert!(logs.contains("probe-stdout-line"), "{logs}");
    assert!(logs.contains("probe-stderr-line"), "{logs}");
    // And in the component's log files, as `spin up` writes `.spin/logs`, appended to by every
    // instance: two requests, two fresh instances, two lines in each.
    probe(&w.host, "/probe/print").await;
    let log_dir = w.dir.path().join("state").join("logs");
    let read = |file: &str| std::fs::read_to_string(log_dir.join(file)).unwrap_or_default();
    let (stdout, stderr) = (read("probe_stdout.txt"), read("probe_stderr.txt"));
    assert_eq!(stdout.matches("probe-stdout-line").count(), 2, "{stdout}");
    assert_eq!(stderr.matches("probe-stderr-line").count(), 2, "{stderr}");
    assert!(!stdout.contains("probe-stderr-line"), "{stdout}");
}

/// Sends `n` probe fetches at once; each must get the upstream's 200 within 10 s (a request
/// stuck waiting for a connection would otherwise wait out the guest's 600 s default).
async fn fetch_at_once(host: &SpinHost, fetch: &str, n: usize) {
    let requests = (0..n).map(|_| probe(host, fetch));
    let answers = tokio::time::timeout(Duration::from_secs(10), join_all(requests))
        .await
        .expect("every fetch answered within 10 s");
    for v in answers {
        assert_eq!(v["status"], 200, "{v}");
    }
}

/// Spin's outbound client (3.4 and later) keeps connections alive in one pool per app, so fresh
/// instances reuse them; `[outbound_http]` in the runtime config turns that off or caps the
/// connections.
#[tokio::test(flavor = "multi_thread")]
async fn outbound_connections_are_pooled_per_app_as_the_runtime_config_says() {
    let w = start().await;
    let fetch = format!("/probe/fetch/{}/x", w.upstream.url());
    // Connections the upstream accepted since the last call.
    let mut seen = 0;
    let mut new_connections = || {
        let now = w.upstream.connections();
        now - std::mem::replace(&mut seen, now)
    };
    // Three requests one after another, each in a fresh instance: one connection. The client
    // puts a finished connection back in the pool on a task of its own; the pause gives that
    // task time to run, as the time between real requests does.
    for _ in 0..3 {
        fetch_at_once(&w.host, &fetch, 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(new_connections(), 1);
    // Three at once while the upstream holds each answer for a second: the idle connection and
    // two more.
    w.upstream.set_delay(Duration::from_secs(1));
    fetch_at_once(&w.host, &fetch, 3).await;
    assert_eq!(new_connections(), 2);

    let host_with = |name: &str, config: &str| {
        let path = w.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        let state = w.dir.path().join(name);
        let opts = HostOptions::new(&w.manifest, state)
            .variable("needed", "given")
            .runtime_config(path);
        SpinHost::start(opts)
    };
    // At most 1 + 1 connections: the third request waits for one of the first two.
    let capped = host_with(
        "capped",
        "[outbound_http]\nconnection_pooling = true\nmax_concurrent_requests = 1\n",
    )
    .await
    .unwrap();
    fetch_at_once(&capped, &fetch, 3).await;
    assert_eq!(new_connections(), 2);
    // No pooling: a connection per request.
    w.upstream.set_delay(Duration::ZERO);
    let unpooled = host_with("unpooled", "[outbound_http]\nconnection_pooling = false\n")
        .await
        .unwrap();
    for _ in 0..3 {
        fetch_at_once(&unpooled, &fetch, 1).await;
    }
    assert_eq!(new_connections(), 3);
    assert_eq!(w.upstream.hits(), 12);
}
