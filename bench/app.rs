//! The app under measurement: the real `credential_proxy.wasm` in the Spin-compatible test host,
//! configured as a Getty-like component (static `Api-Key` header, optionally an OAuth2
//! client-credentials token) in front of the mock upstream and token servers, all on 127.0.0.1.
//!
//! The manifest follows the component tests' (`tests/common/mod.rs`) but is written here, so a
//! change to a test fixture never silently changes what the bench measures.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use spin_test_host::mock::{ExpiresIn, TokenServer, Upstream};
use spin_test_host::{HostOptions, SpinHost};

use crate::load::Target;

/// Made-up credentials, known only to the mocks.
pub const API_KEY: &str = "bench-api-key";
const CLIENT_SECRET: &str = "bench-client-secret";

/// The route prefix of the proxy component.
pub const ROUTE: &str = "/api/getty";

/// A running proxy and the mocks behind it.
pub struct Proxy {
    pub host: SpinHost,
    pub tokens: TokenServer,
    pub upstream: Upstream,
    /// How long `SpinHost::start` took.
    pub start_time: Duration,
    _dir: tempfile::TempDir,
}

impl Proxy {
    /// Starts fresh mocks and a host for them. `token_flow` adds the OAuth2 token to the key.
    pub async fn start(wasm_dir: &std::path::Path, token_flow: bool) -> Result<Proxy> {
        Proxy::start_with_cache(wasm_dir, token_flow, None).await
    }

    /// [`Proxy::start`], with the response cache on for `cache_ttl_secs` when given.
    pub async fn start_with_cache(
        wasm_dir: &std::path::Path,
        token_flow: bool,
        cache_ttl_secs: Option<u64>,
    ) -> Result<Proxy> {
        let tokens = TokenServer::start().await;
        tokens.set_client(API_KEY, CLIENT_SECRET);
        // Long enough that no refresh falls inside a run: (c) measures the cached token.
        tokens.set_expires_in(ExpiresIn::Number(3600));
        let upstream = Upstream::start().await;
        upstream.require_key("Api-Key", API_KEY);
        if token_flow {
            upstream.require_bearer_from(&tokens);
        }
        let dir = tempfile::tempdir().context("creating a temp dir")?;
        let manifest = dir.path().join("spin.toml");
        let text = manifest_text(
            &upstream.url(),
            &tokens.token_url(),
            token_flow,
            cache_ttl_secs,
        )?;
        std::fs::write(&manifest, text).context("writing the manifest")?;
        let opts = host_options(&manifest, dir.path().join("state"))
            .wasm_dir(wasm_dir)
            .variable("bench_api_key", API_KEY)
            .variable("bench_api_secret", CLIENT_SECRET);
        let started = Instant::now();
        let host = SpinHost::start(opts).await?;
        let start_time = started.elapsed();
        Ok(Proxy {
            host,
            tokens,
            upstream,
            start_time,
            _dir: dir,
        })
    }

    /// A request through the proxy; `rest` is the path after the route, with its query.
    pub fn target(&self, rest: &str) -> Target {
        Target {
            addr: self.host.addr(),
            path: format!("{ROUTE}{rest}"),
            headers: vec![("accept".into(), "application/json".into())],
        }
    }

    /// The same request sent straight to the mock upstream, with the key the proxy would add.
    pub fn direct_target(&self, rest: &str) -> Target {
        Target {
            addr: self.upstream.addr(),
            path: format!("/v3{rest}"),
            headers: vec![
                ("accept".into(), "application/json".into()),
                ("api-key".into(), API_KEY.into()),
            ],
        }
    }

    pub async fn shutdown(self) {
        self.host.shutdown().await;
    }
}

/// Set by `--access-log off`: every proxy the bench starts has `access_log = "off"`. The access
/// log is on by default, as in the product; writing its line after each answer adds noise to the
/// difference of two scenarios (see bench/README.md), so the token path is also measured without.
pub static ACCESS_LOG_OFF: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Set by `--nagle on`: every host the bench starts keeps Nagle's algorithm on its accepted
/// connections (`HostOptions::nagle`), which shows the delayed-ACK wait of answers whose head
/// leaves before their body. Off by default, as the test host is.
pub static NAGLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The bench's host options for `manifest`: the test host's defaults, and `--nagle`.
pub fn host_options(manifest: &std::path::Path, state_dir: std::path::PathBuf) -> HostOptions {
    HostOptions::new(manifest, state_dir).nagle(NAGLE.load(std::sync::atomic::Ordering::Relaxed))
}

fn manifest_text(
    upstream: &str,
    token_url: &str,
    token_flow: bool,
    cache_ttl_secs: Option<u64>,
) -> Result<String> {
    // allowed_outbound_hosts takes scheme://host:port, not a URL with a path.
    let token_origin = url::Url::parse(token_url)
        .context("the token server's URL")?
        .origin()
        .ascii_serialization();
    let upstream = upstream.trim_end_matches('/');
    let mut vars = vec![
        ("upstream_url", format!("{upstream}/v3")),
        ("api_key", "{{ bench_api_key }}".to_string()),
        ("api_key_header", "Api-Key".to_string()),
    ];
    if ACCESS_LOG_OFF.load(std::sync::atomic::Ordering::Relaxed) {
        vars.push(("access_log", "off".to_string()));
    }
    if token_flow {
        vars.push(("token_url", token_url.to_string()));
        vars.push(("client_id", "{{ bench_api_key }}".to_string()));
        vars.push(("client_secret", "{{ bench_api_secret }}".to_string()));
    }
    if let Some(ttl) = cache_ttl_secs {
        vars.push(("cache_ttl_secs", ttl.to_string()));
    }
    let var_lines: String = vars
        .iter()
        .map(|(name, value)| format!("{name} = {}\n", toml_string(value)))
        .collect();
    Ok(format!(
        r#"spin_manifest_version = 2

[application]
name = "credential-proxy-bench"

[variables]
bench_api_key = {{ default = "", secret = true }}
bench_api_secret = {{ default = "", secret = true }}

[[trigger.http]]
route = "{ROUTE}/..."
component = "getty"

[component.getty]
source = "target/wasm32-wasip1/release/credential_proxy.wasm"
allowed_outbound_hosts = [{token}, {upstream_host}]
key_value_stores = ["default"]

[component.getty.variables]
{var_lines}"#,
        token = toml_string(&token_origin),
        upstream_host = toml_string(upstream),
    ))
}

/// A TOML basic string. Our values are plain ASCII, for which JSON's quoting is TOML's.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}
