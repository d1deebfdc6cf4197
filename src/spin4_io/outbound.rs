//! Calls out of the component over WASIp3's wasi:http client: the upstream request (the retry's
//! [`Upstream`] port, streaming its body) and the token endpoint (the [`TokenEndpoint`] port),
//! with their timeouts.
//!
//! wasi:http errors become an `Error::Outbound` naming the target and our own description of the
//! failure, never the runtime's text: an `internal-error` string may echo the URL, and the URL
//! may carry `api_key_query`. The request body is written while the request is sent: WASIp3's
//! `send` answers once the upstream's head arrives, which may be after it read the body.

use std::time::Duration;

use futures::future::join;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use spin_sdk::wasip3::http::client;
use spin_sdk::wasip3::http::types::{ErrorCode, Fields, Request, RequestOptions, Response, Scheme};
use spin_sdk::wasip3::wit_future;

use super::body::{body_pipe, read_whole, write_request_body, BodyReader, RequestBody};
use crate::answer::ResponseHead;
use crate::decision::Forward;
use crate::error::{Error, Failure, Result, Target};
use crate::port::Io;
use crate::retry::Upstream;
use crate::token::{TokenEndpoint, TokenRequest, TOKEN_REPLY_LIMIT};
use crate::wasi_http::{nanos, outbound_failure, RequestLine};

/// The upstream's answer: its head converted for the core, its body still in the runtime.
pub struct UpstreamResponse {
    pub head: ResponseHead,
    pub body: BodyReader,
}

/// Sends the planned request upstream, streaming its body; at most twice when replayable.
pub struct UpstreamSender<'a> {
    pub forward: &'a Forward,
    pub body: Option<RequestBody>,
    pub timeout: Duration,
    pub max_body_bytes: u64,
}

impl Upstream for UpstreamSender<'_> {
    type Response = UpstreamResponse;

    fn send<'a>(
        &'a mut self,
        authorization: Option<&'a HeaderValue>,
    ) -> Io<'a, Result<UpstreamResponse>> {
        Box::pin(async move {
            let mut headers = self.forward.headers.clone();
            if let Some(value) = authorization {
                headers.append(http::header::AUTHORIZATION, value.clone());
            }
            // A streamed body is spent after one attempt; `retry` only calls again when
            // replayable.
            let mut body = self
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
            let (out, body_in) = body_pipe();
            // An empty body is never opened: wasi:http then sends none at all, instead of an
            // empty chunked body that some servers refuse on a GET.
            let contents = match body {
                RequestBody::Empty => None,
                _ => Some(body_in),
            };
            let request = outgoing(
                &self.forward.method,
                url,
                &headers,
                contents,
                options(self.timeout),
                Target::Upstream,
            )?;
            let max = self.max_body_bytes;
            let write = async {
                match &mut body {
                    RequestBody::Empty => Ok(()),
                    RequestBody::Buffered(bytes) => write_request_body(out, bytes, None, max).await,
                    RequestBody::Streaming { prefix, rest } => {
                        write_request_body(out, prefix, Some(rest), max).await
                    }
                }
            };
            let (sent, written) = join(client::send(request), write).await;
            // A body in memory stays for a possible second attempt; a streamed one is spent,
            // and leaving `self.body` empty makes the request no longer replayable.
            if body.can_replay() {
                self.body = Some(body);
            }
            // A body over the limit is the client's fault, whatever the upstream made of it.
            if let Err(e @ Error::BodyTooLarge { .. }) = written {
                return Err(e);
            }
            let response = sent.map_err(|e| outbound_error(Target::Upstream, &e, url))?;
            written?;
            let status = StatusCode::from_u16(response.get_status_code()).map_err(|_| {
                Error::upstream(Failure::failed("it answered with an invalid status code"))
            })?;
            let headers = headers_in(&response).map_err(|()| {
                Error::upstream(Failure::failed("it sent a header that cannot be passed on"))
            })?;
            Ok(UpstreamResponse {
                head: ResponseHead { status, headers },
                body: consume(response),
            })
        })
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
    pub timeout: Duration,
}

impl TokenEndpoint for WasiTokenEndpoint {
    fn send<'a>(&'a self, req: &'a TokenRequest) -> Io<'a, Result<(u16, Vec<u8>)>> {
        Box::pin(async move {
            let target = Target::TokenEndpoint;
            let mut headers = req.headers.clone();
            headers.insert(CONTENT_LENGTH, HeaderValue::from(req.body.len()));
            let options = options(self.timeout);
            // The reply is read whole, so a token endpoint that stalls mid-body must time out too.
            let _ = options.set_between_bytes_timeout(Some(nanos(self.timeout)));
            let (out, body_in) = body_pipe();
            let request = outgoing(
                &Method::POST,
                &req.url,
                &headers,
                Some(body_in),
                options,
                target,
            )?;
            let (sent, written) = join(
                client::send(request),
                write_request_body(out, &req.body, None, u64::MAX),
            )
            .await;
            let response = sent.map_err(|e| outbound_error(target, &e, &req.url))?;
            written.map_err(|_| Error::token_endpoint("it stopped reading the token request"))?;
            let status = response.get_status_code();
            let mut body = consume(response);
            match read_whole(&mut body, TOKEN_REPLY_LIMIT).await {
                Ok(bytes) => Ok((status, bytes)),
                Err(true) => Err(Error::token_endpoint(
                    "its reply is too large to be a token response",
                )),
                Err(false) => Err(Error::token_endpoint("its reply broke off")),
            }
        })
    }
}

/// The response's body, to read.
fn consume(response: Response) -> BodyReader {
    let (_, done) = wit_future::new(|| Ok(()));
    BodyReader::new(Response::consume_body(response, done))
}

/// The response's headers for the core, every value in order.
fn headers_in(response: &Response) -> std::result::Result<HeaderMap, ()> {
    let entries = response.get_headers().copy_all();
    let mut headers = HeaderMap::with_capacity(entries.len());
    for (name, value) in entries {
        let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| ())?;
        let value = HeaderValue::from_bytes(&value).map_err(|_| ())?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// A wasi:http failure as an outbound error of `target`.
fn outbound_error(target: Target, code: &ErrorCode, url: &url::Url) -> Error {
    Error::Outbound {
        target,
        failure: outbound_failure!(code, ErrorCode, url),
    }
}

fn options(timeout: Duration) -> RequestOptions {
    let options = RequestOptions::new();
    // A host that does not support a timeout keeps its own default; that is a weaker
    // guarantee, not a reason to refuse the request.
    let _ = options.set_connect_timeout(Some(nanos(timeout)));
    let _ = options.set_first_byte_timeout(Some(nanos(timeout)));
    options
}

fn outgoing(
    method: &Method,
    url: &url::Url,
    headers: &HeaderMap,
    contents: Option<super::body::BodyIn>,
    options: RequestOptions,
    target: Target,
) -> Result<Request> {
    let list: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect();
    let fields = Fields::from_list(&list).map_err(|_| Error::BadRequest {
        reason: "a forwarded header is not valid HTTP".into(),
    })?;
    let (contents, end) = match contents {
        Some((bytes, end)) => (Some(bytes), end),
        None => (None, wit_future::new(|| Ok(None)).1),
    };
    let (request, _) = Request::new(fields, contents, end, Some(options));
    let line = RequestLine::of(url);
    let scheme = if line.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let set = request.set_method(&method.clone().into()).is_ok()
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
