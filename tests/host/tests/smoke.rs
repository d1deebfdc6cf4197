//! Smoke test of the whole host on the project's own `spin.toml`: builds the real wasm, serves
//! it, and checks that a routed path gets an HTTP answer from the component and an unrouted one
//! Spin's empty 404. It asserts nothing about the proxy's own behaviour.

use spin_test_host::{build_wasm, project_root, HostOptions, SpinHost};

async fn get(url: &str) -> (u16, Vec<u8>) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let resp = client.get(url.parse().unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_the_projects_manifest() {
    let wasm = build_wasm().unwrap();
    let state = tempfile::tempdir().unwrap();
    let opts = HostOptions::new(project_root().join("spin.toml"), state.path()).wasm_dir(wasm);
    let host = SpinHost::start(opts).await.unwrap();

    let (status, _) = get(&host.url("/api/getty/x")).await;
    assert!((100..600).contains(&status), "status {status}");

    let (status, body) = get(&host.url("/no/such/route")).await;
    assert_eq!(status, 404);
    assert!(body.is_empty());

    let (status, body) = get(&host.url("/.well-known/spin/health")).await;
    assert_eq!((status, body.as_slice()), (200, b"OK".as_slice()));
    host.shutdown().await;
}
