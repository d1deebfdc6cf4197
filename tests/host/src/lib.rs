//! `spin-test-host`: runs the project's real `.wasm` components the way `spin up` would, for
//! tests on a machine without the `spin` CLI. It reads a Spin manifest, serves HTTP on
//! 127.0.0.1, and gives each request a fresh instance with wasi:http, `fermyon:spin/variables`
//! and a file-backed `fermyon:spin/key-value`, enforcing `allowed_outbound_hosts`.
//! [`mock`] holds the fake token endpoint and upstream API the component tests talk to.
//!
//! Each concern has its own module: `build` (compiling the wasm), `manifest`, `routes`,
//! `variables`, `kv`, `outbound`, `runtime` (wasmtime), `server` (HTTP). This file only holds
//! the public entry points.

mod bindings;
mod build;
pub mod kv;
pub mod manifest;
pub mod mock;
pub mod outbound;
pub mod routes;
mod runtime;
mod server;
pub mod variables;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use build::{build_probe, build_wasm};
pub use runtime::componentize;
pub use server::ServedRequest;

/// The project root (`/work/main`): two levels above this crate.
pub fn project_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = here.join("../..");
    root.canonicalize().unwrap_or(root)
}

/// What to run and with which settings.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The `spin.toml` to load.
    pub manifest: PathBuf,
    /// App variable overrides, the role of `SPIN_VARIABLE_<NAME>` / `spin up --variable`.
    pub variables: Vec<(String, String)>,
    /// Where the key-value stores persist (`<state_dir>/kv/<label>.json`).
    pub state_dir: PathBuf,
    /// When set, each component's `source` is looked up by file name in this directory.
    pub wasm_dir: Option<PathBuf>,
}

impl HostOptions {
    pub fn new(manifest: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Self {
        HostOptions {
            manifest: manifest.into(),
            variables: Vec::new(),
            state_dir: state_dir.into(),
            wasm_dir: None,
        }
    }

    /// Overrides app variable `name` (as `SPIN_VARIABLE_NAME=value` would).
    pub fn variable(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.push((name.into(), value.into()));
        self
    }

    pub fn wasm_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.wasm_dir = Some(dir.into());
        self
    }
}

/// A running app. Dropping it stops the listener too; [`SpinHost::shutdown`] also waits for
/// the accept loop to end.
pub struct SpinHost {
    addr: SocketAddr,
    app: Arc<server::AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SpinHost {
    /// Loads the app and listens on a free port of 127.0.0.1.
    pub async fn start(opts: HostOptions) -> Result<SpinHost> {
        Self::start_on(opts, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Like [`SpinHost::start`] on a given address (the binary's `--listen`).
    pub async fn start_on(opts: HostOptions, listen: SocketAddr) -> Result<SpinHost> {
        let app = Arc::new(server::AppState::load(&opts).await?);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("unable to listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server::serve(app.clone(), listener, stopped));
        Ok(SpinHost {
            addr,
            app,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` + `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    /// Sends one request to the app in-process, without a socket: routed, instantiated and
    /// answered exactly as over HTTP. The `Host` header defaults to this host's address (Spin
    /// builds `spin-full-url` from it). The body is collected.
    pub async fn call(&self, req: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>> {
        use http_body_util::BodyExt;
        let (mut parts, body) = req.into_parts();
        if !parts.headers.contains_key(http::header::HOST) {
            parts
                .headers
                .insert(http::header::HOST, self.addr.to_string().parse()?);
        }
        let body = http_body_util::Full::new(bytes::Bytes::from(body))
            .map_err(|e: std::convert::Infallible| match e {})
            .boxed_unsync();
        let response = self
            .app
            .clone()
            .handle_in_process(http::Request::from_parts(parts, body))
            .await;
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("response body failed: {e:?}"))?
            .to_bytes();
        Ok(http::Response::from_parts(parts, bytes.to_vec()))
    }

    /// Everything the components wrote to stdout/stderr so far, plus host error lines.
    pub fn logs(&self) -> String {
        self.app.logs.contents()
    }

    /// Every request that came in from the network so far, in arrival-completion order, with
    /// the status it got (an access log; service-chained requests are not included).
    pub fn requests(&self) -> Vec<ServedRequest> {
        self.app
            .served
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `(component, route)` pairs as `spin up` lists them.
    pub fn routes(&self) -> Vec<(String, String)> {
        self.app
            .router()
            .routes()
            .iter()
            .map(|r| {
                let shown = match &r.wildcard_prefix {
                    Some(prefix) => format!("{prefix}/..."),
                    None => r.based.clone(),
                };
                (r.component.clone(), shown)
            })
            .collect()
    }

    pub fn kv_get(&self, label: &str, key: &str) -> Option<Vec<u8>> {
        self.app.kv.store(label).ok()?.get(key)
    }

    pub fn kv_keys(&self, label: &str) -> Vec<String> {
        self.app
            .kv
            .store(label)
            .map(|s| s.keys())
            .unwrap_or_default()
    }

    /// Writes a value as a component would (panics on I/O failure: test helper).
    pub fn kv_set(&self, label: &str, key: &str, value: &[u8]) {
        let store = self.app.kv.store(label).expect("open key-value store");
        store.set(key, value).expect("write key-value store");
    }

    /// Stops listening. The key-value files stay in `state_dir`.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SpinHost {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
