//! One request to a WASIp3 component, as Spin 4's `crates/trigger-http/src/wasip3.rs` runs it:
//! the same guest URI and `spin-*` headers as for p2 (`invoke.rs`), then a task for the
//! component's instance pool (`reuse.rs`) that calls `wasi:http/handler.handle`, hands the answer
//! back as soon as the guest returns it, and stays until the client has read the body (or left):
//! the guest writes the body from inside the instance, so its event loop must keep running until
//! then. A guest that fails or returns an error code before answering gives an empty 500 (the
//! caller's), with the reason in the logs.
//!
//! It converts between the app's body type (wasi:http 0.2 error codes) and the guest's (0.3).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::{anyhow, Result};
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::oneshot;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody as WasiBody;

use super::instance::InstanceState;
use super::invoke::{prepare_request, Running};
use super::reuse::InstancePool;
use super::routes::RouteMatch;
use crate::runtime::error_code::{p2_to_p3, p3_to_p2};
use crate::runtime::LogSink;

/// Runs `req` in one of `pool`'s instances and returns the guest's response.
pub async fn invoke(
    pool: &Arc<InstancePool>,
    new_state: impl FnOnce() -> InstanceState,
    route_match: &RouteMatch,
    mut req: Request<WasiBody>,
    client_addr: SocketAddr,
    logs: &LogSink,
    running: Running,
) -> Result<Response<WasiBody>> {
    prepare_request(route_match, &mut req, client_addr)?;
    let req = req.map(|body| body.map_err(p2_to_p3).boxed_unsync());
    let (request, request_io) = wasmtime_wasi_http::p3::Request::from_http(req);
    let (answer_tx, answer_rx) = oneshot::channel();
    let logs = logs.clone();
    pool.dispatch(
        Box::new(move |accessor, service| {
            Box::pin(async move {
                let _running = running;
                let response = match service.handle(accessor, request).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(code)) => {
                        return logs.host_line(&format!("guest answered with an error: {code:?}"))
                    }
                    Err(e) => return logs.host_line(&format!("guest failed: {e:?}")),
                };
                let response =
                    match accessor.with(|mut store| response.into_http(&mut store, request_io)) {
                        Ok(response) => response,
                        Err(e) => return logs.host_line(&format!("invalid guest response: {e:?}")),
                    };
                let (read_tx, read_rx) = oneshot::channel();
                let response = response.map(|body| {
                    BodyWatch {
                        body: body.map_err(p3_to_p2).boxed_unsync(),
                        _read: read_tx,
                    }
                    .boxed_unsync()
                });
                if answer_tx.send(response).is_ok() {
                    // Ends when the body is dropped: read to its end, or the client left.
                    let _ = read_rx.await;
                }
            })
        }),
        new_state,
    );
    answer_rx
        .await
        .map_err(|_| anyhow!("guest failed to produce a response"))
}

/// The guest's response body; dropping it tells the request's task that the client is done.
struct BodyWatch {
    body: WasiBody,
    _read: oneshot::Sender<()>,
}

impl Body for BodyWatch {
    type Data = Bytes;
    type Error = ErrorCode;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ErrorCode>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
