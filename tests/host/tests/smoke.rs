//! Smoke test of the whole host on the project's own `spin.toml`: builds the real wasm, serves
//! it, and checks that a routed path gets an HTTP answer from the component and an unrouted one
//! Spin's empty 404. It asserts nothing about the proxy's own behaviour.

mod common;

use spin_test_host::{build_wasm, project_root, HostOptions, SpinHost};

#[tokio::test(flavor = "multi_thread")]
async fn serves_the_projects_manifest() {
    let wasm = build_wasm().unwrap();
    let state = tempfile::tempdir().unwrap();
    let opts = HostOptions::new(project_root().join("spin.toml"), state.path()).wasm_dir(wasm);
    let host = SpinHost::start(opts).await.unwrap();

    let (status, _) = common::get(&host.url("/api/getty/x"), &[]).await;
    assert!((100..600).contains(&status), "status {status}");

    let (status, body) = common::get(&host.url("/no/such/route"), &[]).await;
    assert_eq!(status, 404);
    assert!(body.is_empty());

    let (status, body) = common::get(&host.url("/.well-known/spin/health"), &[]).await;
    assert_eq!((status, body.as_slice()), (200, b"OK".as_slice()));
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_process_calls_are_routed_like_network_ones() {
    let wasm = build_wasm().unwrap();
    let state = tempfile::tempdir().unwrap();
    let opts = HostOptions::new(project_root().join("spin.toml"), state.path()).wasm_dir(wasm);
    let host = SpinHost::start(opts).await.unwrap();

    let get = |path: &str| {
        http::Request::get(path)
            .body(Vec::new())
            .expect("a valid request")
    };
    // The demo runs end to end in-process too: page, proxy, chained demo API, token in KV.
    let page = host.call(get("/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(String::from_utf8_lossy(page.body()).contains("<html"));
    let search = host
        .call(get("/api/demo/search/images?phrase=cat"))
        .await
        .unwrap();
    assert_eq!(search.status(), 200);
    assert_eq!(
        search.headers()["x-credential-proxy-token"],
        "fetched",
        "first call fetches the token"
    );
    let again = host
        .call(get("/api/demo/search/images?phrase=dog"))
        .await
        .unwrap();
    assert_eq!(again.headers()["x-credential-proxy-token"], "cached");
    assert_eq!(
        host.call(get("/no/such/route")).await.unwrap().status(),
        404
    );
    let served = host.requests();
    assert_eq!(served.len(), 4, "in-process calls are in the access log");
    host.shutdown().await;
}
