//! Bodies stream through the host in both directions: 100 MB from an upstream relayed by a
//! component to the client, and 50 MB uploaded into a component, each with a small, bounded
//! growth of this process's peak memory. Alone in its own test binary so no other test's
//! allocations blur the measurement.

mod common;

use std::path::Path;

use bytes::Bytes;
use futures::stream;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use spin_test_host::mock::{large_body_byte, peak_rss_bytes, Upstream};
use spin_test_host::{HostOptions, SpinHost};

const MB: u64 = 1024 * 1024;

fn manifest(dir: &Path, probe: &Path, upstream: &str) -> std::path::PathBuf {
    let text = format!(
        "spin_manifest_version = 2\n[application]\nname = \"s\"\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"probe\"\n\
         [component.probe]\nsource = \"{}\"\nallowed_outbound_hosts = [\"http://{upstream}\"]\n",
        probe.display()
    );
    common::write_manifest(dir, &text)
}

#[tokio::test(flavor = "multi_thread")]
async fn large_bodies_stream_without_buffering() {
    let probe = common::probe_wasm().await;
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), &probe, &upstream.addr().to_string());
    let host = SpinHost::start(HostOptions::new(m, dir.path().join("state")))
        .await
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::combinators::BoxBody<Bytes, std::io::Error>>();

    // Warm up (first instantiation, connection pools) before taking the baseline.
    let warm = host.url(&format!("/relay/{}/__large?bytes=1000", upstream.url()));
    let warm = http::Request::get(warm)
        .body(Empty::new().map_err(|e| match e {}).boxed())
        .unwrap();
    let resp = client.request(warm).await.unwrap();
    resp.into_body().collect().await.unwrap();
    let baseline = peak_rss_bytes();

    let total = 100 * MB;
    let url = host.url(&format!(
        "/relay/{}/v3/__large?bytes={total}",
        upstream.url()
    ));
    let req = http::Request::get(url)
        .body(Empty::new().map_err(|e| match e {}).boxed())
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut seen = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.unwrap();
        if let Ok(data) = frame.into_data() {
            for (i, b) in data.iter().enumerate().step_by(4093) {
                assert_eq!(*b, large_body_byte(seen + i as u64));
            }
            seen += data.len() as u64;
        }
    }
    assert_eq!(seen, total);

    let upload = 50 * MB;
    let chunk = Bytes::from(vec![b'u'; 64 * 1024]);
    let frames = stream::iter(
        (0..upload / (64 * 1024)).map(move |_| Ok::<_, std::io::Error>(Frame::data(chunk.clone()))),
    );
    let req = http::Request::post(host.url("/count"))
        .body(StreamBody::new(frames).boxed())
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["body_len"], upload);

    let growth = peak_rss_bytes().saturating_sub(baseline);
    assert!(growth < 40 * MB, "peak RSS grew by {} MB", growth / MB);
    host.shutdown().await;
}
