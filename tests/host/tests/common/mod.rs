//! What the host's own test files share: the probes built once per process, a manifest written
//! into a test's directory, a plain GET with its status and body, and the probe's JSON answer.
//! It asserts nothing about the host except that a probe answered 200.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use serde_json::Value;
use spin_test_host::{build_probe, build_probe_p3, SpinHost};

/// The Spin 3 probe's wasm (`tests/host/probe`), built on the blocking pool.
pub async fn probe_wasm() -> PathBuf {
    tokio::task::spawn_blocking(|| build_probe().expect("probe build"))
        .await
        .unwrap()
}

/// The Spin 4 probe's wasm (`tests/host/probe-p3`), built on the blocking pool.
pub async fn probe_p3_wasm() -> PathBuf {
    tokio::task::spawn_blocking(|| build_probe_p3().expect("p3 probe build"))
        .await
        .unwrap()
}

/// Writes `text` as `dir/spin.toml` and returns its path.
pub fn write_manifest(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("spin.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// GETs `url` with `headers` on a fresh client; the status and the whole body.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let mut req = http::Request::get(url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = client
        .request(req.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec())
}

/// The probe's JSON answer to `path`, which must come with a 200.
pub async fn probe(host: &SpinHost, path: &str) -> Value {
    let (status, body) = get(&host.url(path), &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}
