//! Outbound HTTP: the wasi:http hook every request a component sends goes through. It refuses
//! what `allowed_outbound_hosts` does not allow, hands `http://<id>.spin.internal` requests to a
//! [`ChainTarget`] (local service chaining), and sends everything else with the app's
//! [`OutboundClient`] (pooled connections, the guest's connect / first-byte / between-bytes
//! timeouts).
//!
//! As in Spin's outbound-http factor, a refused request fails inside the component with
//! `error-code::HTTP-request-denied`, from the response future. As in Spin's outbound-networking
//! factor, an instance prepares its allowed hosts on its first outbound request
//! ([`InstanceHosts`]: every app variable looked up again, the entries parsed again) and keeps
//! them for its later ones. Chaining follows `trigger-http/src/outbound_http.rs`; this module
//! does not know who serves the chained request (the server implements [`ChainTarget`]), so it
//! never depends on the server.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p2::types::{
    HostFutureIncomingResponse, IncomingResponse, OutgoingRequestConfig,
};
use wasmtime_wasi_http::p2::{HttpResult, WasiHttpHooks};

use super::allowed_hosts::{service_chaining_target, AllowedHosts};
use super::http_client::OutboundClient;
use super::variables::ResolvedAppVariables;

/// One instance's `allowed_outbound_hosts`, prepared as Spin 4.0.2's outbound-networking factor
/// prepares them (`prepare` in `crates/factor-outbound-networking/src/lib.rs`): on the instance's
/// first outbound request, every app variable is looked up again
/// ([`ResolvedAppVariables::prepare`]) and the entries are parsed with them; the instance's later
/// requests reuse the result. A fresh instance per request (WASIp2) pays this on every request
/// that sends one; a reused WASIp3 instance pays it once.
#[derive(Clone)]
pub struct InstanceHosts {
    entries: Arc<[String]>,
    app: Arc<ResolvedAppVariables>,
    /// The first preparation's outcome, kept for the instance's life even when it failed, as
    /// Spin keeps its shared future's.
    prepared: Arc<tokio::sync::OnceCell<Option<AllowedHosts>>>,
}

impl InstanceHosts {
    /// A new instance's hosts, not yet prepared.
    pub fn new(entries: Arc<[String]>, app: Arc<ResolvedAppVariables>) -> InstanceHosts {
        InstanceHosts {
            entries,
            app,
            prepared: Arc::default(),
        }
    }

    /// Whether a request to `uri` may leave the instance. If the instance's preparation failed
    /// (a variable that no longer resolves), none may, for the rest of its life, as in Spin.
    async fn allows_uri(&self, uri: &http::Uri) -> bool {
        let prepared = self
            .prepared
            .get_or_init(|| async {
                let vars = self.app.prepare().await.ok()?;
                AllowedHosts::parse(&self.entries, &vars).ok()
            })
            .await;
        prepared.as_ref().is_some_and(|hosts| hosts.allows_uri(uri))
    }
}

/// Who serves service-chained requests: the app, in-process, without a socket.
pub trait ChainTarget: Send + Sync + 'static {
    /// Runs `req` in component `component` and answers it; an error (no such component, ...)
    /// fails the caller's request.
    fn dispatch(
        self: Arc<Self>,
        component: String,
        req: http::Request<HyperOutgoingBody>,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<http::Response<HyperOutgoingBody>>> + Send>>;
}

/// The per-instance wasi:http hooks: policy check, then chaining or the app's client. The p2
/// hook is here; the p3 one (`outbound_p3.rs`) goes through [`OutboundHooks::send`] too.
pub struct OutboundHooks {
    pub allowed: InstanceHosts,
    pub chain: Arc<dyn ChainTarget>,
    /// The app's client: every instance shares its pool.
    pub client: OutboundClient,
}

impl OutboundHooks {
    /// The one path every outbound request takes, whichever wasi:http version sent it: refused
    /// unless allowed, served in-process when it names `<id>.spin.internal`, else sent.
    pub fn send(
        &self,
        request: http::Request<HyperOutgoingBody>,
        config: OutgoingRequestConfig,
    ) -> impl Future<Output = Result<IncomingResponse, ErrorCode>> + Send + 'static {
        let allowed = self.allowed.clone();
        let chain = self.chain.clone();
        let client = self.client.clone();
        async move {
            if !allowed.allows_uri(request.uri()).await {
                return Err(ErrorCode::HttpRequestDenied);
            }
            let Some(target) = service_chaining_target(request.uri()) else {
                return client.send(request, config).await;
            };
            let between_bytes_timeout = config.between_bytes_timeout;
            match chain.dispatch(target, request).await {
                Ok(resp) => Ok(IncomingResponse {
                    resp,
                    worker: None,
                    between_bytes_timeout,
                }),
                Err(e) => Err(ErrorCode::InternalError(Some(format!("{e:#}")))),
            }
        }
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<HyperOutgoingBody>,
        config: OutgoingRequestConfig,
    ) -> HttpResult<HostFutureIncomingResponse> {
        // Every request, refused or not, runs on its own task, as in Spin 4.0.2
        // (`crates/factor-outbound-http/src/wasi.rs`): the check may have to prepare the hosts.
        let sending = self.send(request, config);
        let handle = wasmtime_wasi::runtime::spawn(async move { Ok(sending.await) });
        Ok(HostFutureIncomingResponse::pending(handle))
    }
}
