//! [`SpinHost`]: a running app as tests see it. Starting and stopping it, calling it in-process,
//! and reading what a test checks afterwards (component output, the access log, the key-value
//! stores). It only delegates to the server layer and holds no logic of its own.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::options::HostOptions;
use crate::server::{self, App, ServedRequest};

/// A running app. Dropping it stops the listener too; [`SpinHost::shutdown`] also waits for
/// the accept loop to end.
pub struct SpinHost {
    addr: SocketAddr,
    app: Arc<App>,
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
        let app = Arc::new(App::load(&opts).await?);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("unable to listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server::listen::serve(app.clone(), listener, stopped));
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
