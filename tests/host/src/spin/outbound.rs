//! Outbound HTTP: the wasi:http hook every request a component sends goes through. It refuses
//! what `allowed_outbound_hosts` does not allow, hands `http://<id>.spin.internal` requests to a
//! [`ChainTarget`] (local service chaining), and sends everything else with wasmtime-wasi-http's
//! default sender, which applies the guest's connect / first-byte / between-bytes timeouts.
//!
//! As in Spin's outbound-http factor, a refused request fails inside the component with
//! `error-code::HTTP-request-denied`, from the response future. Chaining follows
//! `trigger-http/src/outbound_http.rs`; this module does not know who serves the chained request
//! (the server implements [`ChainTarget`]), so it never depends on the server.

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

/// The per-instance wasi:http hooks: policy check, then chaining or the default sender. The p2
/// hook is here; the p3 one (`outbound_p3.rs`) goes through [`OutboundHooks::send`] too.
pub struct OutboundHooks {
    pub allowed: Arc<AllowedHosts>,
    pub chain: Arc<dyn ChainTarget>,
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
        async move {
            if !allowed.allows_uri(request.uri()) {
                return Err(ErrorCode::HttpRequestDenied);
            }
            let Some(target) = service_chaining_target(request.uri()) else {
                return wasmtime_wasi_http::p2::default_send_request_handler(request, config).await;
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
        // A refusal is ready at once, as Spin's; anything else runs on its own task.
        if !self.allowed.allows_uri(request.uri()) {
            return Ok(HostFutureIncomingResponse::ready(Ok(Err(
                ErrorCode::HttpRequestDenied,
            ))));
        }
        let sending = self.send(request, config);
        let handle = wasmtime_wasi::runtime::spawn(async move { Ok(sending.await) });
        Ok(HostFutureIncomingResponse::pending(handle))
    }
}
