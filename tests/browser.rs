//! The demo, clicked through in headless Chromium: the page at `/` served by the real wasm in the
//! Spin-compatible host, driven over WebDriver (fantoccini + Debian's chromedriver).
//!
//! It checks what a first-time user sees: results, `fetched` then `cached`, a repeated search
//! answered from the response cache (`hit`, no token), the refused route's JSON, and CORS for
//! real: the same page served from a second loopback origin that is in
//! `allowed_origins` works (with a preflight), and one from a third origin is blocked by the
//! browser itself. It needs `chromium` and `chromedriver` on PATH (Debian's `chromium` and
//! `chromium-driver` packages); without them it prints one line and passes, or fails when `CI`
//! is set (`common::require`). `.ci/run` installs them.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use spin_test_host::{HostOptions, SpinHost};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves the demo page's HTML on its own loopback port: a "different website".
async fn page_server() -> SocketAddr {
    let html = std::fs::read(spin_test_host::project_root().join("demo/page/index.html"))
        .expect("demo/page/index.html");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let html = html.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = sock.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    html.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&html).await;
            });
        }
    });
    addr
}

/// The shipped spin.toml with the demo proxy's `allowed_origins` set to `origin`.
fn manifest_allowing(origin: &str, dir: &Path) -> PathBuf {
    let shipped =
        std::fs::read_to_string(spin_test_host::project_root().join("spin.toml")).unwrap();
    let marker = "[component.demo.variables]";
    assert!(shipped.contains(marker), "spin.toml has the demo proxy");
    let (head, tail) = shipped.split_once(marker).unwrap();
    let tail = tail.replacen(
        "allowed_origins = \"\"",
        &format!("allowed_origins = \"{origin}\""),
        1,
    );
    assert!(
        tail.contains(origin),
        "the demo's allowed_origins was replaced"
    );
    let path = dir.join("spin.toml");
    std::fs::write(&path, format!("{head}{marker}{tail}")).unwrap();
    path
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_browser(chromium: &Path, chromedriver: &Path, profile: &Path) -> (Driver, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1200,1000",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let mut last = None;
    for _ in 0..50 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("could not start a WebDriver session: {last:?}");
}

/// Waits until `css` has text satisfying `ok`, and returns that text.
async fn wait_text(c: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut seen = String::new();
    for _ in 0..100 {
        if let Ok(el) = c.find(Locator::Css(css)).await {
            seen = el.text().await.unwrap_or_default();
            if ok(&seen) {
                return seen;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never matched; last text: {seen:?}");
}

async fn search(c: &Client, phrase: &str) {
    let input = c.find(Locator::Id("phrase")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(phrase).await.unwrap();
    c.find(Locator::Id("search"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn result_count(c: &Client) -> usize {
    c.find_all(Locator::Css("#results .result"))
        .await
        .map(|v| v.len())
        .unwrap_or(0)
}

#[tokio::test]
async fn demo_page_works_end_to_end_in_chromium() {
    let Some([chromium, chromedriver]) = common::require::require_programs(
        "the browser test (tests/browser.rs)",
        ["chromium", "chromedriver"],
        "apt-get install chromium chromium-driver",
    ) else {
        return;
    };
    let wasm = common::wasm_dir();
    let allowed = page_server().await;
    let other = page_server().await;
    let allowed_origin = format!("http://{allowed}");
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_allowing(&allowed_origin, dir.path());
    let host =
        SpinHost::start(HostOptions::new(&manifest, dir.path().join("state")).wasm_dir(wasm))
            .await
            .expect("host starts");
    let profile = tempfile::tempdir().unwrap();
    let (_driver, c) = start_browser(&chromium, &chromedriver, profile.path()).await;

    // 1. Same origin: results appear, the token was fetched.
    c.goto(&host.url("/")).await.unwrap();
    search(&c, "cat").await;
    wait_text(&c, "#token-status", |t| t.contains("fetched")).await;
    assert!(result_count(&c).await > 0, "results are shown");
    let received = wait_text(&c, "#received-headers", |t| t.contains("api-key")).await;
    assert!(
        received.contains("authorization"),
        "the API got the key and the token, added by the proxy: {received}"
    );
    let page = c.source().await.unwrap();
    assert!(
        !page.contains("demo-api-key-not-a-secret") && !page.contains("demo-client-secret"),
        "the page never shows a key value"
    );

    wait_text(&c, "#cache-status", |t| t.contains("miss")).await;

    // 2. The second call (another search: the response cache has no answer for it) reuses the
    // token.
    search(&c, "dog").await;
    wait_text(&c, "#token-status", |t| t.contains("cached")).await;
    wait_text(&c, "#cache-status", |t| t.contains("miss")).await;

    // 2b. The first search again: the demo's response cache answers it, with no token at all.
    search(&c, "cat").await;
    wait_text(&c, "#cache-status", |t| t.contains("hit")).await;
    wait_text(&c, "#token-status", |t| t.contains("not needed")).await;
    assert!(result_count(&c).await > 0, "cached results are shown");
    // The answer's `Age` reached the page: it came from the store, not from the demo API.
    wait_text(&c, "#cache-age", |t| t.contains("from the response cache")).await;

    // 3. The refused route shows its JSON error.
    c.find(Locator::Id("refused"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let refused = wait_text(&c, "#refused-result", |t| t.contains("403")).await;
    assert!(refused.contains("route_not_allowed"), "{refused}");

    let png = c.screenshot().await.unwrap();
    let shot = spin_test_host::project_root().join("target/browser-demo.png");
    std::fs::write(&shot, png).unwrap();

    // 4a. A page on an allowed second origin: the browser sends a preflight, then the GET.
    let before = host.requests().len();
    c.goto(&format!("{allowed_origin}/?api={}", host.url("")))
        .await
        .unwrap();
    search(&c, "bird").await;
    wait_text(&c, "#token-status", |t| t.contains("cached")).await;
    assert!(result_count(&c).await > 0);
    // The cache header is exposed through CORS: a page on another origin can read `hit` too.
    search(&c, "bird").await;
    wait_text(&c, "#cache-status", |t| t.contains("hit")).await;
    let seen: Vec<_> = host.requests()[before..].to_vec();
    assert!(
        seen.iter()
            .any(|r| r.method == "OPTIONS" && r.path.starts_with("/api/demo/") && r.status == 204),
        "a real CORS preflight reached the proxy: {seen:?}"
    );
    assert!(seen
        .iter()
        .any(|r| r.method == "GET" && r.path.starts_with("/api/demo/search") && r.status == 200));

    // 4b. A page on an origin that is not allowed: the browser blocks the call.
    let before = host.requests().len();
    c.goto(&format!("http://{other}/?api={}", host.url("")))
        .await
        .unwrap();
    search(&c, "fish").await;
    let error = wait_text(&c, "#error", |t| !t.trim().is_empty()).await;
    assert_eq!(
        result_count(&c).await,
        0,
        "no results cross the origin boundary"
    );
    let seen: Vec<_> = host.requests()[before..].to_vec();
    assert!(
        seen.iter().all(|r| r.status == 403 || r.path == "/"),
        "the proxy refused the foreign origin: {seen:?} ({error})"
    );
    assert!(!seen
        .iter()
        .any(|r| r.status == 200 && r.path.starts_with("/api/")));

    c.close().await.unwrap();
    host.shutdown().await;
}
