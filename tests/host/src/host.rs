//! [`SpinHost`]: a running app as tests see it. Starting and stopping it, calling it in-process,
//! and reading what a test checks afterwards (component output, the access log, the key-value
//! stores). It only delegates to the server layer and holds no logic of its own.
//!
//! The app runs on its own multi-threaded tokio runtime, as `spin up` is its own process with
//! one: whatever runtime the caller's test uses (`#[tokio::test]` is single-threaded), instances
//! of concurrent requests run in parallel on the host's workers, and a test that blocks its own
//! thread does not stall the app.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::options::HostOptions;
use crate::server::{self, App, ServedRequest};
use crate::spin::kv::KvFailures;

/// A running app. Dropping it stops the listener too; [`SpinHost::shutdown`] also waits for
/// the accept loop to end.
pub struct SpinHost {
    addr: SocketAddr,
    app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    runtime: HostRuntime,
}

/// The host's own tokio runtime. Dropped without waiting for its tasks, so dropping a host
/// inside the caller's async code is allowed (dropping a `Runtime` there panics).
struct HostRuntime(Option<Runtime>);

impl HostRuntime {
    fn new() -> Result<HostRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("spin-test-host")
            .build()
            .context("cannot start the host's tokio runtime")?;
        Ok(HostRuntime(Some(runtime)))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        match &self.0 {
            Some(runtime) => runtime.handle(),
            None => unreachable!("the runtime is only taken on drop"),
        }
    }

    /// Runs `fut` on the host's runtime and waits for it from any async context.
    async fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T> {
        self.handle().spawn(fut).await.context("host task panicked")
    }

    /// Runs `fut` on the host's runtime and blocks this thread until it is done (for the
    /// synchronous test helpers; works inside and outside the caller's runtime).
    fn block_on<T: Send>(&self, fut: impl Future<Output = T> + Send) -> T {
        let handle = self.handle().clone();
        std::thread::scope(|scope| {
            scope
                .spawn(move || handle.block_on(fut))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for HostRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl SpinHost {
    /// Loads the app and listens on a free port of 127.0.0.1.
    pub async fn start(opts: HostOptions) -> Result<SpinHost> {
        Self::start_on(opts, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Like [`SpinHost::start`] on a given address (the binary's `--listen`).
    pub async fn start_on(opts: HostOptions, listen: SocketAddr) -> Result<SpinHost> {
        let runtime = HostRuntime::new()?;
        let nagle = opts.nagle;
        let (app, listener) = runtime
            .run(async move {
                let app = Arc::new(App::load(&opts).await?);
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("unable to listen on {listen}"))?;
                anyhow::Ok((app, listener))
            })
            .await??;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let task =
            runtime
                .handle()
                .spawn(server::listen::serve(app.clone(), listener, nagle, stopped));
        Ok(SpinHost {
            addr,
            app,
            stop: Some(stop),
            task: Some(task),
            runtime,
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
        let app = self.app.clone();
        self.runtime
            .run(async move {
                let response = app
                    .handle_in_process(http::Request::from_parts(parts, body))
                    .await;
                let (parts, body) = response.into_parts();
                let bytes = body
                    .collect()
                    .await
                    .map_err(|e| anyhow::anyhow!("response body failed: {e:?}"))?
                    .to_bytes();
                Ok(http::Response::from_parts(parts, bytes.to_vec()))
            })
            .await?
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

    /// The value of `key` in store `label`, as a component would read it (`None` also when the
    /// store cannot be read).
    pub fn kv_get(&self, label: &str, key: &str) -> Option<Vec<u8>> {
        self.runtime
            .block_on(async { self.app.kv.open(label).await?.get(key).await })
            .ok()
            .flatten()
    }

    /// Every key of store `label`, sorted (empty also when the store cannot be read).
    pub fn kv_keys(&self, label: &str) -> Vec<String> {
        self.runtime
            .block_on(async { self.app.kv.open(label).await?.keys().await })
            .unwrap_or_default()
    }

    /// Writes a value as a component would (panics on I/O failure: test helper).
    pub fn kv_set(&self, label: &str, key: &str, value: &[u8]) {
        self.runtime
            .block_on(async {
                let store = self.app.kv.open(label).await?;
                store.set(key, value.to_vec()).await
            })
            .expect("write key-value store");
    }

    /// How many key-value `get` calls the guests made so far, on every label, through
    /// `fermyon:spin/key-value@2.0.0` and `spin:key-value/key-value@3.0.0` alike, failed ones
    /// included; [`SpinHost::kv_get`] is not counted. The bench divides its growth over a run by
    /// the run's requests.
    pub fn kv_reads(&self) -> u64 {
        self.app.kv.reads()
    }

    /// Makes the key-value calls `failures` names fail on store `label` from now on (with
    /// `error::other`, as a store that is down would); `KvFailures::default()` heals it.
    pub fn fail_key_value(&self, label: &str, failures: KvFailures) {
        self.app.kv.set_failures(label, failures);
    }

    /// Waits until every guest invocation has returned. A component may go on after its answer
    /// is out (the response cache writes its entry then), as on Spin, so a test whose next
    /// request depends on that work waits here first. Panics when a guest is still running
    /// after 10 s: no test's guest should take that long once its answer is out.
    pub async fn settled(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let running = self.app.running.load(std::sync::atomic::Ordering::SeqCst);
            if running == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{running} guest(s) still running 10 s after settled() was called"
            );
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// Stops listening. The key-value stores keep their data (in `state_dir` or Redis).
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
