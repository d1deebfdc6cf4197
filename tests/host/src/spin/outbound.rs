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

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::allowed_hosts::{service_chaining_target, AllowedHosts};

/// Who serves service-chained requests: the app, in-process, without a socket.
pub trait ChainTarget: Send + Sync + 'static {
    /// Runs `req` in component `component` and answers it; an error (no such component, ...)
    /// fails the caller's request.
    fn dispatch(
        self: Arc<Self>,
        component: String,
        req: http::Request<WasiBody>,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<http::Response<WasiBody>>> + Send>>;
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

/// The per-instance wasi:http hooks: policy check, then chaining or the default sender.
pub struct OutboundHooks {
    pub allowed: Arc<AllowedHosts>,
    pub chain: Arc<dyn ChainTarget>,
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let allowed = self.allowed.clone();
        let chain = self.chain.clone();
        Box::new(async move {
            if !allowed.allows_uri(request.uri()) {
                return Err(HttpError::HttpRequestDenied);
            }
            if let Some(target) = service_chaining_target(request.uri()) {
                let response = chain
                    .dispatch(target, request)
                    .await
                    .map_err(|e| HttpError::InternalError(Some(format!("{e:#}"))))?;
                let done: IoFuture = Box::new(async { Ok(()) });
                return Ok((response, done));
            }
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let io: IoFuture = Box::new(io);
            Ok((response.map(BodyExt::boxed_unsync), io))
        })
    }
}
