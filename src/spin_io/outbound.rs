//! Calls out of the component over wasi:http: the upstream request (the retry's [`Upstream`]
//! port, streaming its body) and the token endpoint (the [`TokenEndpoint`] port), with their
//! timeouts.
//!
//! wasi:http errors become an `Error::Outbound` naming the target and our own description of the
//! failure, never the runtime's text: an `internal-error` string may echo the URL, and the URL
//! may carry `api_key_query`. Resource order matters to the runtime: a stream is always dropped
//! before the body it came from, and a body is finished only after its stream is gone.

use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{
    ErrorCode, FutureIncomingResponse, IncomingResponse, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme,
};
use wasi::io::streams::{InputStream, StreamError};

use super::convert::{fields_out, headers_in, method_out};
use super::request::{read_up_to, Read, RequestBody, CHUNK};
use crate::answer::ResponseHead;
use crate::decision::Forward;
use crate::error::{Error, Failure, Result, Target};
use crate::port::{ready, Io};
use crate::retry::Upstream;
use crate::token::{TokenEndpoint, TokenRequest, TOKEN_REPLY_LIMIT};
use crate::wasi_http::{outbound_failure, RequestLine};

/// The upstream's answer: its head converted for the core, its body still in the runtime.
pub struct UpstreamResponse {
    pub head: ResponseHead,
    pub incoming: IncomingResponse,
}

/// Sends the planned request upstream, streaming its body; at most twice when replayable.
pub struct UpstreamSender<'a> {
    pub forward: &'a Forward,
    pub body: Option<RequestBody>,
    pub timeout_ns: u64,
    pub max_body_bytes: u64,
}

impl UpstreamSender<'_> {
    fn send_now(&mut self, authorization: Option<&HeaderValue>) -> Result<UpstreamResponse> {
        let mut headers = self.forward.headers.clone();
        if let Some(value) = authorization {
            headers.append(http::header::AUTHORIZATION, value.clone());
        }
        // A streamed body is spent after one attempt; `retry` only calls again when replayable.
        let body = self
            .body
            .take()
            .ok_or_else(|| Error::internal("the request body was already sent"))?;
        if let RequestBody::Buffered(bytes) = &body {
            // A client that sent its body chunked still gets a plain length upstream: the
            // whole body is in hand, and some APIs refuse chunked uploads.
            if !headers.contains_key(CONTENT_LENGTH) {
                headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            }
        }
        let url = self.forward.target.url();
        let request = outgoing(&self.forward.method, url, &headers, Target::Upstream)?;
        // An empty body is never opened: wasi:http then sends none at all, instead of an empty
        // chunked body that some servers refuse on a GET.
        let out_body = match body {
            RequestBody::Empty => None,
            _ => Some(
                request
                    .body()
                    .map_err(|_| Error::internal("no outgoing body"))?,
            ),
        };
        let pending = outgoing_handler::handle(request, Some(options(self.timeout_ns)))
            .map_err(|e| outbound_error(Target::Upstream, &e, url))?;
        let written = match (&body, out_body) {
            (RequestBody::Buffered(bytes), Some(out)) => {
                write_body(out, bytes, None, self.max_body_bytes)
            }
            (RequestBody::Streaming { prefix, stream, .. }, Some(out)) => {
                write_body(out, prefix, Some(stream), self.max_body_bytes)
            }
            _ => Ok(()),
        };
        // A body in memory stays for a possible second attempt; a streamed one is spent, and
        // leaving `self.body` empty makes the request no longer replayable.
        if body.can_replay() {
            self.body = Some(body);
        }
        written?;
        let incoming = wait(pending, url, Target::Upstream)?;
        let status = StatusCode::from_u16(incoming.status()).map_err(|_| {
            Error::upstream(Failure::failed("it answered with an invalid status code"))
        })?;
        let headers = headers_in(incoming.headers().entries()).map_err(|_| {
            Error::upstream(Failure::failed("it sent a header that cannot be passed on"))
        })?;
        Ok(UpstreamResponse {
            head: ResponseHead { status, headers },
            incoming,
        })
    }
}

impl Upstream for UpstreamSender<'_> {
    type Response = UpstreamResponse;

    fn send<'a>(
        &'a mut self,
        authorization: Option<&'a HeaderValue>,
    ) -> Io<'a, Result<UpstreamResponse>> {
        Box::pin(ready(self.send_now(authorization)))
    }

    fn status(response: &UpstreamResponse) -> StatusCode {
        response.head.status
    }

    fn can_replay(&self) -> bool {
        self.body.as_ref().is_some_and(RequestBody::can_replay)
    }
}

/// The token endpoint over wasi:http.
pub struct WasiTokenEndpoint {
    pub timeout_ns: u64,
}

impl WasiTokenEndpoint {
    fn send_now(&self, req: &TokenRequest) -> Result<(u16, Vec<u8>)> {
        let target = Target::TokenEndpoint;
        let mut headers = req.headers.clone();
        headers.insert(CONTENT_LENGTH, HeaderValue::from(req.body.len()));
        let request = outgoing(&Method::POST, &req.url, &headers, target)?;
        let out_body = request
            .body()
            .map_err(|_| Error::internal("no outgoing body"))?;
        let options = options(self.timeout_ns);
        // The reply is read whole, so a token endpoint that stalls mid-body must time out too.
        let _ = options.set_between_bytes_timeout(Some(self.timeout_ns));
        let pending = outgoing_handler::handle(request, Some(options))
            .map_err(|e| outbound_error(target, &e, &req.url))?;
        write_body(out_body, &req.body, None, u64::MAX)
            .map_err(|_| Error::token_endpoint("it stopped reading the token request"))?;
        let response = wait(pending, &req.url, target)?;
        let status = response.status();
        let body = response
            .consume()
            .map_err(|_| Error::internal("token reply body already taken"))?;
        let stream = body
            .stream()
            .map_err(|_| Error::internal("token reply stream already taken"))?;
        let bytes = match read_up_to(&stream, TOKEN_REPLY_LIMIT as u64) {
            Ok(Read::Whole(bytes)) => bytes,
            Ok(Read::Over(_)) => {
                return Err(Error::token_endpoint(
                    "its reply is too large to be a token response",
                ))
            }
            Err(()) => return Err(Error::token_endpoint("its reply broke off")),
        };
        drop(stream);
        drop(body);
        Ok((status, bytes))
    }
}

impl TokenEndpoint for WasiTokenEndpoint {
    fn send<'a>(&'a self, req: &'a TokenRequest) -> Io<'a, Result<(u16, Vec<u8>)>> {
        Box::pin(ready(self.send_now(req)))
    }
}

/// A wasi:http failure as an outbound error of `target`.
fn outbound_error(target: Target, code: &ErrorCode, url: &url::Url) -> Error {
    Error::Outbound {
        target,
        failure: outbound_failure!(code, ErrorCode, url),
    }
}

fn options(timeout_ns: u64) -> RequestOptions {
    let options = RequestOptions::new();
    // A host that does not support a timeout keeps its own default (Spin: 600 s); that is a
    // weaker guarantee, not a reason to refuse the request.
    let _ = options.set_connect_timeout(Some(timeout_ns));
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    options
}

fn outgoing(
    method: &Method,
    url: &url::Url,
    headers: &HeaderMap,
    target: Target,
) -> Result<OutgoingRequest> {
    let fields = fields_out(headers).map_err(|()| Error::BadRequest {
        reason: "a forwarded header is not valid HTTP".into(),
    })?;
    let request = OutgoingRequest::new(fields);
    let line = RequestLine::of(url);
    let scheme = if line.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let set = request.set_method(&method_out(method)).is_ok()
        && request.set_scheme(Some(&scheme)).is_ok()
        && request.set_authority(Some(&line.authority)).is_ok()
        && request
            .set_path_with_query(Some(&line.path_with_query))
            .is_ok();
    if !set {
        return Err(Error::Outbound {
            target,
            failure: Failure::failed("the runtime refused the request line"),
        });
    }
    Ok(request)
}

/// Writes `prefix`, then splices the rest of `rest` while the total stays within `max`.
pub(super) fn write_body(
    body: OutgoingBody,
    prefix: &[u8],
    rest: Option<&InputStream>,
    max: u64,
) -> Result<()> {
    let out = body
        .write()
        .map_err(|_| Error::internal("outgoing body stream taken"))?;
    let broke = || {
        Error::upstream(Failure::failed(
            "the upstream stopped reading the request body",
        ))
    };
    // blocking-write-and-flush takes at most 4096 bytes per call (wasi:io streams).
    for chunk in prefix.chunks(4096) {
        out.blocking_write_and_flush(chunk).map_err(|_| broke())?;
    }
    if let Some(rest) = rest {
        let mut total = prefix.len() as u64;
        loop {
            let room = max.saturating_sub(total);
            if room == 0 {
                // At the limit, one more byte makes the body too large. It is read here, not
                // spliced, so the upstream never receives a byte past `max`; dropping the body
                // without `finish` then aborts the upstream request.
                match rest.blocking_read(1) {
                    Ok(extra) if extra.is_empty() => continue,
                    Ok(_) => return Err(Error::BodyTooLarge { limit: max }),
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(_)) => return Err(broke()),
                }
            }
            match out.blocking_splice(rest, room.min(CHUNK)) {
                Ok(n) => total += n,
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(_)) => return Err(broke()),
            }
        }
    }
    drop(out);
    OutgoingBody::finish(body, None).map_err(|_| broke())
}

fn wait(
    pending: FutureIncomingResponse,
    url: &url::Url,
    target: Target,
) -> Result<IncomingResponse> {
    loop {
        match pending.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(outbound_error(target, &code, url)),
            Some(Err(())) => return Err(Error::internal("response already taken")),
            None => pending.subscribe().block(),
        }
    }
}
