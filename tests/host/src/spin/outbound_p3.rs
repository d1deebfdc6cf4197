//! Outbound HTTP from WASIp3 components (`wasi:http/client@0.3.0-rc-2026-03-15`): the p3 hook
//! hands every request to the same path as p2 ([`OutboundHooks::send`]: allowed hosts,
//! service chaining, the app's pooled client), as Spin 4's outbound-http factor does, so the policy,
//! the refusal (`HTTP-request-denied`) and chaining cannot drift apart between the versions.
//!
//! Also as in Spin: a request without options gets 600 s timeouts, and the response body fails
//! with `connection-read-timeout` when its between-bytes timeout passes with nothing arriving.
//! It only converts between the versions' types; it decides nothing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use wasmtime_wasi::runtime::AbortOnDropJoinHandle;
use wasmtime_wasi::TrappableError;
use wasmtime_wasi_http::p2::body::HyperIncomingBody;
use wasmtime_wasi_http::p2::types::{IncomingResponse, OutgoingRequestConfig};
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p3::{RequestOptions, WasiHttpHooks};

use super::outbound::OutboundHooks;
use crate::runtime::error_code::{p2_to_p3, p3_to_p2};

/// Spin's outbound-http default when the guest sets no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

type P3Body = UnsyncBoxBody<Bytes, ErrorCode>;
type IoFuture = Box<dyn Future<Output = Result<(), ErrorCode>> + Send>;
type SendFuture = Box<
    dyn Future<Output = Result<(http::Response<P3Body>, IoFuture), TrappableError<ErrorCode>>>
        + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<P3Body>,
        options: Option<RequestOptions>,
        // Where the guest reports trouble consuming the response: nothing here could act on it.
        _fut: IoFuture,
    ) -> SendFuture {
        let timeout = |pick: fn(&RequestOptions) -> Option<Duration>| {
            options.as_ref().and_then(pick).unwrap_or(DEFAULT_TIMEOUT)
        };
        let config = OutgoingRequestConfig {
            use_tls: request.uri().scheme() == Some(&http::uri::Scheme::HTTPS),
            connect_timeout: timeout(|o| o.connect_timeout),
            first_byte_timeout: timeout(|o| o.first_byte_timeout),
            between_bytes_timeout: timeout(|o| o.between_bytes_timeout),
        };
        let request = request.map(|body| body.map_err(p3_to_p2).boxed_unsync());
        let sending = self.send(request, config);
        Box::new(async move {
            let IncomingResponse {
                resp,
                worker,
                between_bytes_timeout,
            } = sending
                .await
                .map_err(|code| TrappableError::from(p2_to_p3(code)))?;
            let resp = resp.map(|body| {
                TimedBody {
                    body,
                    _worker: worker,
                    timeout: between_bytes_timeout,
                    sleep: None,
                }
                .boxed_unsync()
            });
            let io: IoFuture = Box::new(async { Ok(()) });
            Ok((resp, io))
        })
    }
}

/// A response body in p3 terms that fails when nothing arrives for `timeout`, and keeps the
/// connection's task (`_worker`, only for HTTPS: the pool drives its own) alive until the guest
/// is done with it.
struct TimedBody {
    body: HyperIncomingBody,
    _worker: Option<AbortOnDropJoinHandle<()>>,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = ErrorCode;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ErrorCode>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                Poll::Ready(frame.map(|f| f.map_err(p2_to_p3)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(ErrorCode::ConnectionReadTimeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
