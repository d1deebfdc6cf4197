//! wasi:http at the edge: the incoming request as plain values, request bodies (held for a
//! replay or streamed), the upstream and token-endpoint sends with their timeouts, and the
//! answers, streamed back with wasi:io's blocking splice so no body is ever held whole.
//!
//! wasi:http errors become our own fixed descriptions, never their text: an `internal-error`
//! string may echo the URL, and the URL may carry `api_key_query`. Resource order matters to
//! the runtime: a stream is always dropped before the body it came from, and a body is finished
//! only after its stream is gone.

use spin_sdk::http::IncomingRequest;
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method,
    OutgoingBody, OutgoingRequest, OutgoingResponse, RequestOptions, ResponseOutparam, Scheme,
};
use wasi::io::streams::{InputStream, StreamError};

use super::log;
use crate::error::{Error, Result};
use crate::plan::{Forward, RequestParts};
use crate::retry::Send;
use crate::token::{TokenEndpoint, TokenRequest};

/// Bytes moved per splice: large enough to keep the host busy, small enough to stay streaming.
const CHUNK: u64 = 64 * 1024;
/// A body up to this size is held in memory so a 401 retry can replay it.
const REPLAY_LIMIT: u64 = 1024 * 1024;
/// A token endpoint reply larger than this is not a token reply.
const TOKEN_REPLY_LIMIT: u64 = 64 * 1024;

/// The request line and headers as plain values for the core.
pub fn request_parts(req: &IncomingRequest) -> RequestParts {
    let path_with_query = req.path_with_query().unwrap_or_default();
    let query = path_with_query
        .split_once('?')
        .map(|(_, q)| q.to_string())
        .filter(|q| !q.is_empty());
    RequestParts {
        method: method_name(&req.method()),
        query,
        headers: req.headers().entries(),
    }
}

fn method_name(m: &Method) -> String {
    match m {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        // Methods are case-sensitive (RFC 9110 §9.1): `get` is not `GET`.
        Method::Other(other) => other.clone(),
    }
}

fn wasi_method(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "OPTIONS" => Method::Options,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    }
}

/// The client's body: nothing, all of it in memory (replayable), or a prefix in memory and the
/// rest still in the client's stream.
pub enum RequestBody {
    Empty,
    Buffered(Vec<u8>),
    Streaming {
        prefix: Vec<u8>,
        stream: InputStream,
        // Kept alive while `stream` is read: dropping the body closes the stream.
        _body: IncomingBody,
    },
}

impl RequestBody {
    /// Reads up to the replay limit. Counts against `max` and refuses as soon as it is passed.
    pub fn read(req: IncomingRequest, max: u64) -> Result<RequestBody> {
        let body = req
            .consume()
            .map_err(|_| internal("request body already taken"))?;
        let stream = body
            .stream()
            .map_err(|_| internal("request body stream already taken"))?;
        let hold = max.min(REPLAY_LIMIT);
        match read_up_to(&stream, hold) {
            Ok(Read::Whole(buf)) => {
                drop(stream);
                drop(body);
                Ok(if buf.is_empty() {
                    RequestBody::Empty
                } else {
                    RequestBody::Buffered(buf)
                })
            }
            Ok(Read::Over(buf)) if buf.len() as u64 > max => {
                Err(Error::BodyTooLarge { limit: max })
            }
            Ok(Read::Over(prefix)) => Ok(RequestBody::Streaming {
                prefix,
                stream,
                _body: body,
            }),
            Err(()) => Err(Error::BadRequest {
                reason: "the request body could not be read".into(),
            }),
        }
    }
}

/// What [`read_up_to`] got: the whole stream, or more than the limit (and the stream is left
/// positioned after what was read).
enum Read {
    Whole(Vec<u8>),
    Over(Vec<u8>),
}

/// Reads a stream to its end, or until it has more than `limit` bytes. `Err` if it broke off.
fn read_up_to(stream: &InputStream, limit: u64) -> std::result::Result<Read, ()> {
    let mut buf = Vec::new();
    loop {
        match stream.blocking_read(CHUNK) {
            Ok(chunk) => {
                buf.extend_from_slice(&chunk);
                if buf.len() as u64 > limit {
                    return Ok(Read::Over(buf));
                }
            }
            Err(StreamError::Closed) => return Ok(Read::Whole(buf)),
            Err(StreamError::LastOperationFailed(_)) => return Err(()),
        }
    }
}

/// Sends the planned request upstream, streaming its body; at most twice when replayable.
pub struct UpstreamSender<'a> {
    pub forward: &'a Forward,
    pub body: Option<RequestBody>,
    pub timeout_ns: u64,
    pub max_body_bytes: u64,
}

impl Send for UpstreamSender<'_> {
    type Response = IncomingResponse;

    fn send(&mut self, authorization: Option<&str>) -> Result<IncomingResponse> {
        let mut headers = self.forward.headers.clone();
        if let Some(value) = authorization {
            headers.push(("authorization".into(), value.as_bytes().to_vec()));
        }
        // A streamed body is spent after one attempt; `retry` only calls again when replayable.
        let body = self
            .body
            .take()
            .ok_or_else(|| internal("the request body was already sent"))?;
        if let RequestBody::Buffered(bytes) = &body {
            // A client that sent its body chunked still gets a plain length upstream: the
            // whole body is in hand, and some APIs refuse chunked uploads.
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            {
                headers.push((
                    "content-length".into(),
                    bytes.len().to_string().into_bytes(),
                ));
            }
        }
        let request = outgoing(
            &self.forward.method,
            &self.forward.url,
            &headers,
            Fail::Upstream,
        )?;
        // An empty body is never opened: wasi:http then sends none at all, instead of an empty
        // chunked body that some servers refuse on a GET.
        let out_body = match body {
            RequestBody::Empty => None,
            _ => Some(request.body().map_err(|_| internal("no outgoing body"))?),
        };
        let pending = outgoing_handler::handle(request, Some(options(self.timeout_ns)))
            .map_err(|e| Fail::Upstream.error(&e, &self.forward.url))?;
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
        if !matches!(body, RequestBody::Streaming { .. }) {
            self.body = Some(body);
        }
        written?;
        wait(pending, &self.forward.url, Fail::Upstream)
    }

    fn status(response: &IncomingResponse) -> u16 {
        response.status()
    }

    fn replayable(&self) -> bool {
        matches!(
            self.body,
            Some(RequestBody::Empty) | Some(RequestBody::Buffered(_))
        )
    }
}

/// The token endpoint over wasi:http.
pub struct WasiTokenEndpoint {
    pub timeout_ns: u64,
}

impl TokenEndpoint for WasiTokenEndpoint {
    fn send(&self, req: &TokenRequest) -> Result<(u16, Vec<u8>)> {
        let mut headers = req.headers.clone();
        headers.push((
            "content-length".into(),
            req.body.len().to_string().into_bytes(),
        ));
        let request = outgoing("POST", &req.url, &headers, Fail::Token)?;
        let out_body = request.body().map_err(|_| internal("no outgoing body"))?;
        let options = options(self.timeout_ns);
        // The reply is read whole, so a token endpoint that stalls mid-body must time out too.
        let _ = options.set_between_bytes_timeout(Some(self.timeout_ns));
        let pending = outgoing_handler::handle(request, Some(options))
            .map_err(|e| Fail::Token.error(&e, &req.url))?;
        write_body(out_body, &req.body, None, u64::MAX).map_err(|_| {
            Error::TokenEndpointFailed {
                reason: "it stopped reading the token request".into(),
            }
        })?;
        let response = wait(pending, &req.url, Fail::Token)?;
        let status = response.status();
        let body = response
            .consume()
            .map_err(|_| internal("token reply body already taken"))?;
        let stream = body
            .stream()
            .map_err(|_| internal("token reply stream already taken"))?;
        let bytes = match read_up_to(&stream, TOKEN_REPLY_LIMIT) {
            Ok(Read::Whole(bytes)) => bytes,
            Ok(Read::Over(_)) => {
                return Err(Error::TokenEndpointFailed {
                    reason: "its reply is too large to be a token response".into(),
                })
            }
            Err(()) => {
                return Err(Error::TokenEndpointFailed {
                    reason: "its reply broke off".into(),
                })
            }
        };
        drop(stream);
        drop(body);
        Ok((status, bytes))
    }
}

/// Which error family a wasi:http failure belongs to.
#[derive(Clone, Copy)]
enum Fail {
    Upstream,
    Token,
}

impl Fail {
    fn error(self, code: &ErrorCode, url: &url::Url) -> Error {
        let host = url.host_str().unwrap_or("").to_string();
        let timeout = matches!(
            code,
            ErrorCode::ConnectionTimeout
                | ErrorCode::ConnectionReadTimeout
                | ErrorCode::ConnectionWriteTimeout
                | ErrorCode::HttpResponseTimeout
                | ErrorCode::DnsTimeout
        );
        if matches!(code, ErrorCode::HttpRequestDenied) {
            return Error::OutboundNotAllowed { host };
        }
        let reason = describe(code);
        match (self, timeout) {
            (Fail::Upstream, true) => Error::UpstreamTimeout,
            (Fail::Token, true) => Error::TokenEndpointTimeout,
            (Fail::Upstream, false) => Error::UpstreamUnreachable { reason },
            (Fail::Token, false) => Error::TokenEndpointFailed { reason },
        }
    }
}

/// Our own words for a wasi:http error code; payload text is dropped on purpose.
fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::DnsError(_) => "its host name could not be resolved",
        ErrorCode::DestinationNotFound | ErrorCode::DestinationUnavailable => {
            "its host is unavailable"
        }
        ErrorCode::DestinationIpProhibited | ErrorCode::DestinationIpUnroutable => {
            "its address cannot be reached"
        }
        ErrorCode::ConnectionRefused => "the connection was refused",
        ErrorCode::ConnectionTerminated => "the connection was closed before an answer",
        ErrorCode::TlsProtocolError
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_) => "the TLS handshake failed",
        ErrorCode::HttpProtocolError | ErrorCode::HttpResponseIncomplete => {
            "it answered with malformed HTTP"
        }
        _ => "the request failed",
    }
    .to_string()
}

fn internal(reason: &str) -> Error {
    Error::Internal {
        reason: reason.to_string(),
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
    method: &str,
    url: &url::Url,
    headers: &[(String, Vec<u8>)],
    fail: Fail,
) -> Result<OutgoingRequest> {
    let fields = Fields::from_list(headers).map_err(|_| Error::BadRequest {
        reason: "a forwarded header is not valid HTTP".into(),
    })?;
    let request = OutgoingRequest::new(fields);
    let scheme = match url.scheme() {
        "https" => Scheme::Https,
        _ => Scheme::Http,
    };
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_string(),
    };
    let path_with_query = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let set = request.set_method(&wasi_method(method)).is_ok()
        && request.set_scheme(Some(&scheme)).is_ok()
        && request.set_authority(Some(&authority)).is_ok()
        && request.set_path_with_query(Some(&path_with_query)).is_ok();
    if !set {
        return Err(match fail {
            Fail::Upstream => Error::UpstreamUnreachable {
                reason: "the runtime refused the request line".into(),
            },
            Fail::Token => Error::TokenEndpointFailed {
                reason: "the runtime refused the request line".into(),
            },
        });
    }
    Ok(request)
}

/// Writes `prefix`, then splices the rest of `rest` while the total stays within `max`.
fn write_body(
    body: OutgoingBody,
    prefix: &[u8],
    rest: Option<&InputStream>,
    max: u64,
) -> Result<()> {
    let out = body
        .write()
        .map_err(|_| internal("outgoing body stream taken"))?;
    let broke = || Error::UpstreamUnreachable {
        reason: "the upstream stopped reading the request body".into(),
    };
    // blocking-write-and-flush takes at most 4096 bytes per call (wasi:io streams).
    for chunk in prefix.chunks(4096) {
        out.blocking_write_and_flush(chunk).map_err(|_| broke())?;
    }
    if let Some(rest) = rest {
        let mut total = prefix.len() as u64;
        loop {
            match out.blocking_splice(rest, CHUNK) {
                Ok(n) => {
                    total += n;
                    if total > max {
                        // Dropping the body without `finish` aborts the upstream request.
                        return Err(Error::BodyTooLarge { limit: max });
                    }
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(_)) => return Err(broke()),
            }
        }
    }
    drop(out);
    OutgoingBody::finish(body, None).map_err(|_| broke())
}

fn wait(pending: FutureIncomingResponse, url: &url::Url, fail: Fail) -> Result<IncomingResponse> {
    loop {
        match pending.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(fail.error(&code, url)),
            Some(Err(())) => return Err(internal("response already taken")),
            None => pending.subscribe().block(),
        }
    }
}

/// Sends a whole answer that the proxy made itself (errors, preflights).
pub fn respond(out: ResponseOutparam, status: u16, headers: &[(String, Vec<u8>)], body: &[u8]) {
    let mut headers = headers.to_vec();
    if !body.is_empty() {
        headers.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    let Ok(fields) = Fields::from_list(&headers) else {
        log("could not build response headers");
        return;
    };
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    let Ok(out_body) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if write_body(out_body, body, None, u64::MAX).is_err() {
        log("the client went away before the answer was written");
    }
}

/// Streams the upstream's answer back: status, the given (already filtered) headers, the body.
/// A failure before the status is sent goes to `on_error`, which still owns the answer.
pub fn respond_streaming(
    out: ResponseOutparam,
    upstream: IncomingResponse,
    headers: &[(String, Vec<u8>)],
    on_error: impl FnOnce(ResponseOutparam, Error),
) {
    let Ok(fields) = Fields::from_list(headers) else {
        return on_error(
            out,
            Error::UpstreamUnreachable {
                reason: "it sent a header that cannot be passed on".into(),
            },
        );
    };
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(upstream.status());
    let (Ok(out_body), Ok(in_body)) = (response.body(), upstream.consume()) else {
        return on_error(out, internal("a response body was already taken"));
    };
    let Ok(in_stream) = in_body.stream() else {
        return on_error(out, internal("the upstream body stream was already taken"));
    };
    // From here the status is sent; a failure can only cut the body short.
    ResponseOutparam::set(out, Ok(response));
    let Ok(out_stream) = out_body.write() else {
        return;
    };
    loop {
        match out_stream.blocking_splice(&in_stream, CHUNK) {
            Ok(_) => {}
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(_)) => {
                // Not finishing the body tells the client the answer is incomplete.
                log("the response body broke off mid-stream");
                return;
            }
        }
    }
    drop(out_stream);
    drop(in_stream);
    drop(in_body);
    let _ = OutgoingBody::finish(out_body, None);
}

/// Response headers as plain values, for the core's filter.
pub fn response_headers(response: &IncomingResponse) -> Vec<(String, Vec<u8>)> {
    response.headers().entries()
}
