//! Shared set-up for the component tests: a Getty-like app (static key header + OAuth2 token)
//! running the real built wasm in the Spin-compatible test host, with mock upstream and token
//! servers on 127.0.0.1, and a client that records every answer so each test can prove no secret
//! ever reached a browser or a log line.
//!
//! It does not assert behaviour itself; the test files do.

#![allow(dead_code)]

pub mod require;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spin_test_host::mock::{TokenServer, Upstream};
use spin_test_host::{HostOptions, KeyValueStore, RedisServer, SpinHost};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Secret canaries: distinctive values that must never appear in an answer or a log.
pub const API_KEY: &str = "CANARY-apikey-5f1e9c";
pub const CLIENT_SECRET: &str = "CANARY-secret-a7d203";

/// What a browser got back.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts the status, showing the body when it differs.
    pub fn assert_status(&self, status: u16) {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
    }

    /// Asserts a JSON error answer: its status and its `error.code`.
    pub fn assert_error(&self, status: u16, code: &str) {
        self.assert_status(status);
        assert_eq!(self.error_code(), code);
    }

    /// The `error.code` of a JSON error answer.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error.code in {}", String::from_utf8_lossy(&self.body)))
            .to_string()
    }
}

/// One test's world: the host, its mocks, its state dir, and every answer seen.
pub struct App {
    pub host: SpinHost,
    pub tokens: TokenServer,
    pub upstream: Upstream,
    pub dir: tempfile::TempDir,
    pub manifest: PathBuf,
    pub variables: Vec<(String, String)>,
    /// Where the `default` key-value store lives (`None`: the SQLite file in the state dir).
    store: Option<KeyValueStore>,
    /// Kept alive for the app's life (or until `stop_redis`): the Redis the store is on.
    redis: Option<Arc<RedisServer>>,
    replies: Arc<Mutex<Vec<Reply>>>,
}

/// Which key-value store the app's `default` label is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// Spin's default: a SQLite file in the app's state dir.
    Sqlite,
    /// A redis-server of the test's own on 127.0.0.1, as `runtime-config.toml`'s Redis block.
    Redis,
}

/// Extra component variables, as `name = "value"` lines for `[component.getty.variables]`.
pub struct Setup {
    pub vars: Vec<(&'static str, String)>,
    pub token_flow: bool,
    pub expires_in: Option<u64>,
    /// Leave the upstream host out of allowed_outbound_hosts.
    pub forbid_upstream: bool,
    /// Send the key as `?api_key=` (api_key_query) instead of the `Api-Key` header.
    pub key_in_query: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            vars: Vec::new(),
            token_flow: true,
            expires_in: Some(1800),
            forbid_upstream: false,
            key_in_query: false,
        }
    }
}

impl Setup {
    pub fn var(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.vars.retain(|(n, _)| *n != name);
        self.vars.push((name, value.into()));
        self
    }
}

/// Whether this test binary runs the suite on the Spin 4 native build: `tests/spin4.rs` includes
/// every component test file, and each of them asks through here.
pub fn spin4() -> bool {
    env!("CARGO_CRATE_NAME") == "spin4"
}

/// Waits until every instance sees a change a test made to the store behind the app's back. The
/// Spin 4 build holds the token it last read for up to `token::REREAD_AFTER` (3 s) before it
/// reads the store again, by design; the default build reads the store on every request.
pub async fn after_store_edit() {
    if spin4() {
        tokio::time::sleep(REREAD + Duration::from_millis(100)).await;
    }
}

/// `token::REREAD_AFTER`: how long the Spin 4 build uses a held token before reading the store.
pub const REREAD: Duration = Duration::from_secs(3);

/// The directory the host finds the app's wasm in: the default build's, or for `spin4()` the
/// same files with the proxy's Spin 4 build in place of its default one (the demo page and demo
/// API are default-build components in both manifests).
pub fn wasm_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let default = spin_test_host::build_wasm().expect("building the wasm failed");
        if !spin4() {
            return default;
        }
        let p3 = spin_test_host::build_wasm_p3().expect("building the Spin 4 wasm failed");
        let dir = p3.join("spin4-app");
        std::fs::create_dir_all(&dir).expect("a dir for the Spin 4 app");
        let proxy = "credential_proxy.wasm";
        for entry in std::fs::read_dir(&default).expect("the default build's dir") {
            let path = entry.expect("a dir entry").path();
            let name = path.file_name().expect("a file name");
            // The default proxy never goes in, not even for a moment: another file's tests may
            // already be loading this directory's proxy as the Spin 4 build.
            if path.extension().is_some_and(|e| e == "wasm") && name != proxy {
                replace_file(&path, &dir.join(name));
            }
        }
        replace_file(&p3.join(proxy), &dir.join(proxy));
        dir
    })
    .clone()
}

/// Puts a copy of `from` at `to` in one rename, so a test of another module reading `to` at the
/// same time sees the old file or the new one, never a half-written one. `tests/spin4.rs`
/// compiles this module once per test file, each with its own `wasm_dir` cell, so their first
/// calls copy into the same directory concurrently.
fn replace_file(from: &Path, to: &Path) {
    let tmp = to.with_extension(format!(
        "tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::copy(from, &tmp).expect("copied");
    std::fs::rename(&tmp, to).expect("renamed into place");
}

pub fn manifest_text(setup: &Setup, upstream: &str, token_url: &str) -> String {
    let token_host = token_url
        .split("/oauth2")
        .next()
        .unwrap_or(token_url)
        .to_string();
    let mut hosts = vec![format!("\"{token_host}\"")];
    if !setup.forbid_upstream {
        hosts.push(format!("\"{upstream}\""));
    }
    let mut vars = vec![
        ("upstream_url", format!("{upstream}/v3")),
        ("api_key", "{{ test_api_key }}".to_string()),
    ];
    if setup.key_in_query {
        vars.push(("api_key_query", "api_key".to_string()));
    } else {
        vars.push(("api_key_header", "Api-Key".to_string()));
    }
    if setup.token_flow {
        vars.push(("token_url", token_url.to_string()));
        vars.push(("client_id", "{{ test_api_key }}".to_string()));
        vars.push(("client_secret", "{{ test_api_secret }}".to_string()));
    }
    for (name, value) in &setup.vars {
        vars.retain(|(n, _)| n != name);
        vars.push((name, value.clone()));
    }
    let var_lines: String = vars
        .iter()
        .map(|(n, v)| format!("{n} = {}\n", toml_string(v)))
        .collect();
    format!(
        r#"spin_manifest_version = 2

[application]
name = "credential-proxy-test"

[variables]
test_api_key = {{ default = "", secret = true }}
test_api_secret = {{ default = "", secret = true }}

[[trigger.http]]
route = "/api/getty/..."
component = "getty"

[component.getty]
source = "target/wasm32-wasip1/release/credential_proxy.wasm"
allowed_outbound_hosts = [{hosts}]
key_value_stores = ["default"]

[component.getty.variables]
{var_lines}"#,
        hosts = hosts.join(", ")
    )
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

impl App {
    /// Mocks up, manifest written, host started with the canary secrets set.
    pub async fn start(setup: Setup) -> App {
        Self::start_with(setup, None, None).await
    }

    /// Like [`App::start`] with the `default` store on `store`. `None` when that needs a program
    /// the machine lacks (redis-server): the test is then skipped with one line, or fails when
    /// `CI` is set (`RedisServer::start`).
    pub async fn start_on(setup: Setup, store: Store, test: &str) -> Option<App> {
        match store {
            Store::Sqlite => Some(Self::start_with(setup, None, None).await),
            Store::Redis => {
                let redis = Arc::new(RedisServer::start(test)?);
                let kv = KeyValueStore::redis(redis.url());
                Some(Self::start_with(setup, Some(kv), Some(redis)).await)
            }
        }
    }

    async fn start_with(
        setup: Setup,
        store: Option<KeyValueStore>,
        redis: Option<Arc<RedisServer>>,
    ) -> App {
        let tokens = TokenServer::start().await;
        tokens.set_client(API_KEY, CLIENT_SECRET);
        match setup.expires_in {
            Some(n) => tokens.set_expires_in(spin_test_host::mock::ExpiresIn::Number(n)),
            None => tokens.set_expires_in(spin_test_host::mock::ExpiresIn::Absent),
        }
        let upstream = Upstream::start().await;
        if setup.key_in_query {
            upstream.require_key_query("api_key", API_KEY);
        } else {
            upstream.require_key("Api-Key", API_KEY);
        }
        if setup.token_flow {
            upstream.require_bearer_from(&tokens);
        }
        let dir = tempfile::tempdir().expect("a temp dir");
        let manifest = dir.path().join("spin.toml");
        std::fs::write(
            &manifest,
            manifest_text(&setup, &upstream.url(), &tokens.token_url()),
        )
        .expect("manifest written");
        let variables = vec![
            ("test_api_key".to_string(), API_KEY.to_string()),
            ("test_api_secret".to_string(), CLIENT_SECRET.to_string()),
        ];
        let host = start_host(&manifest, &dir.path().join("state"), &variables, &store).await;
        App {
            host,
            tokens,
            upstream,
            dir,
            manifest,
            variables,
            store,
            redis,
            replies: Arc::default(),
        }
    }

    /// Stops the host and starts a new one on the same manifest and key-value files.
    pub async fn restart(self) -> App {
        self.assert_no_secrets().await;
        let App { host, .. } = self;
        host.shutdown().await;
        let host = start_host(
            &self.manifest,
            &self.dir.path().join("state"),
            &self.variables,
            &self.store,
        )
        .await;
        App { host, ..self }
    }

    /// Stops the Redis the store is on, as an outage would: the host's key-value calls then wait
    /// while its client reconnects, as Spin 4.0.2's do.
    pub fn stop_redis(&mut self) {
        self.redis = None;
    }

    /// Another host of the same app beside this one (a second `spin up`, on another machine):
    /// same manifest, mocks and store configuration, its own state dir, so it shares the token
    /// cache only when the store is Redis.
    pub async fn second_host(&self) -> SpinHost {
        start_host(
            &self.manifest,
            &self.dir.path().join("state-2"),
            &self.variables,
            &self.store,
        )
        .await
    }

    /// `n` GETs sent at once, each on its own connection, to `{path_prefix}{i}`; the answers in
    /// order, each recorded for the canary check.
    pub async fn burst(&self, n: usize, path_prefix: &str) -> Vec<Reply> {
        let addr = self.host.addr();
        let requests: Vec<_> = (0..n)
            .map(|i| {
                let path = format!("{path_prefix}{i}");
                tokio::spawn(async move { raw_request(addr, "GET", &path, &[], None).await })
            })
            .collect();
        let mut replies = Vec::with_capacity(n);
        for request in requests {
            replies.push(request.await.expect("a burst request panicked"));
        }
        self.replies.lock().unwrap().extend(replies.iter().cloned());
        replies
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], None).await
    }

    /// Sends the request exactly as given (no URL normalisation by a client library), records
    /// and returns the answer.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let reply = raw_request(self.host.addr(), method, path, headers, body).await;
        self.replies.lock().unwrap().push(reply.clone());
        reply
    }

    /// The key-value key of the stored token record, if there is one (the store may also hold
    /// the lease record that elects the fetcher).
    pub fn token_key(&self) -> Option<String> {
        self.host
            .kv_keys("default")
            .into_iter()
            .find(|k| k.starts_with("credential-proxy:token:"))
    }

    /// The canary check: no secret and no issued token in any answer or any log line.
    /// Once every instance has finished (access-log lines and cache entries are written after
    /// the answer is out).
    pub async fn assert_no_secrets(&self) {
        self.host.settled().await;
        check_no_secrets(&self.host, &self.tokens, &self.replies.lock().unwrap());
    }
}

async fn start_host(
    manifest: &Path,
    state: &Path,
    variables: &[(String, String)],
    store: &Option<KeyValueStore>,
) -> SpinHost {
    let mut opts = HostOptions::new(manifest, state).wasm_dir(wasm_dir());
    for (k, v) in variables {
        opts = opts.variable(k.clone(), v.clone());
    }
    if let Some(store) = store {
        opts = opts.key_value_store("default", store.clone());
    }
    SpinHost::start(opts).await.expect("the host starts")
}

pub fn check_no_secrets(host: &SpinHost, tokens: &TokenServer, replies: &[Reply]) {
    let mut secrets = vec![API_KEY.to_string(), CLIENT_SECRET.to_string()];
    secrets.extend(tokens.issued());
    let logs = host.logs();
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret appears in the component's logs"
        );
        for reply in replies {
            let text = String::from_utf8_lossy(&reply.body);
            assert!(
                !text.contains(secret.as_str()),
                "a secret appears in a response body: {text}"
            );
            for (name, value) in &reply.headers {
                assert!(
                    !value.contains(secret.as_str()),
                    "a secret appears in response header {name}"
                );
            }
        }
    }
}

/// `body` framed as HTTP/1.1 chunks of `chunk` bytes, so no length is known in advance.
pub fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / chunk * 12 + 8);
    for piece in body.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A minimal HTTP/1.1 client over a TCP socket, so hostile paths reach the host byte for byte.
pub async fn raw_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the host");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Some(body) = body {
        // A body sent `Transfer-Encoding: chunked` comes pre-framed and has no length.
        if !headers.iter().any(|(n, _)| {
            n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding")
        }) {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    if let Some(body) = body {
        // The host may answer (413) and close before reading everything; that is fine.
        let _ = stream.write_all(body).await;
    }
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(120), stream.read_to_end(&mut raw)).await;
    if let Ok(Err(e)) = read {
        // A reset after the full answer (the host closing an unread request body) still
        // leaves the answer in `raw`.
        assert!(!raw.is_empty(), "read failed: {e}");
    }
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
}
