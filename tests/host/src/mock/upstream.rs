//! A mock upstream API. Every path echoes the request back as JSON
//! (`{"method","path","query","headers":[[name,value],...],"body_len"}`) after optional checks
//! (static key in a header or query parameter, a bearer token issued by a
//! [`TokenServer`]) and an optional delay. A path ending in `/__large?bytes=N` streams N bytes of
//! [`LARGE_PATTERN`] without ever holding them in memory (`&chunked=1`: without a length); one
//! ending in `/__redirect` answers 301 with `Location`, `Content-Location` and `Link` that repeat
//! the full query, credentials included, as real APIs' canonical-URL redirects do. Responses
//! carry `x-upstream: mock`, `set-cookie: upstream=1` and `connection: keep-alive` for
//! header-filter tests.
//! Every request is recorded, including which token it used and whether that token was still
//! valid at that moment. The echo never reflects credential values (`authorization`, cookies,
//! headers and query parameters named like `*key*`, `*token*`, `*secret*`, `*auth*`): they show
//! as `[redacted]`, as a real API would never send them back; [`Upstream::requests`] has them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};

use super::server::{full_response, header_pairs, lock, MockBody, MockServer};
use super::token::{TokenServer, TokenStatus};

/// The repeating content of `/__large` bodies: 64 bytes, so byte `i` is `LARGE_PATTERN[i % 64]`.
pub const LARGE_PATTERN: &[u8; 64] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-\n";

/// Byte `i` of a `/__large` body.
pub fn large_body_byte(i: u64) -> u8 {
    LARGE_PATTERN[(i % LARGE_PATTERN.len() as u64) as usize]
}

const CHUNK: usize = 64 * 1024;
const KEPT_BODY_BYTES: usize = 64 * 1024;

/// One request the upstream received.
#[derive(Debug, Clone, Default)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, as received.
    pub query: Option<String>,
    /// Every header in order, repeated ones included.
    pub headers: Vec<(String, String)>,
    pub body_len: u64,
    /// The first 64 KiB of the body.
    pub body: Vec<u8>,
    /// The token from `Authorization: Bearer ...`, if any.
    pub bearer: Option<String>,
    /// That token's status at the time (only with `require_bearer_from`).
    pub token_status: Option<TokenStatus>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether the bearer token was expired or revoked when this request arrived.
    pub fn used_stale_token(&self) -> bool {
        matches!(
            self.token_status,
            Some(TokenStatus::Expired | TokenStatus::Revoked)
        )
    }
}

/// The upstream's checks, switches and records (inside [`Upstream`]).
#[derive(Default)]
pub struct UpstreamState {
    key_header: Option<(String, String)>,
    key_query: Option<(String, String)>,
    bearer_from: Option<TokenServer>,
    always_401: bool,
    delay: Duration,
    requests: Vec<RecordedRequest>,
}

/// Handle to a running upstream; clones share state.
pub type Upstream = MockServer<UpstreamState>;

fn with_common_headers(
    mut r: Response<MockBody>,
    content_type: &'static str,
) -> Response<MockBody> {
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    h.insert("x-upstream", HeaderValue::from_static("mock"));
    h.insert(
        http::header::SET_COOKIE,
        HeaderValue::from_static("upstream=1"),
    );
    h.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("keep-alive"),
    );
    r
}

fn json(status: StatusCode, body: String) -> Response<MockBody> {
    with_common_headers(
        full_response(status, "application/json", body),
        "application/json",
    )
}

impl MockServer<UpstreamState> {
    pub async fn start() -> Upstream {
        MockServer::spawn("upstream", UpstreamState::default(), handle).await
    }

    /// Requests without `name: value` get 401.
    pub fn require_key(&self, name: &str, value: &str) {
        self.lock().key_header = Some((name.to_string(), value.to_string()));
    }

    /// Requests without query parameter `param=value` get 401.
    pub fn require_key_query(&self, param: &str, value: &str) {
        self.lock().key_query = Some((param.to_string(), value.to_string()));
    }

    /// Requests need `Authorization: Bearer <t>` with `t` issued by `server`, not revoked and
    /// not expired; otherwise 401.
    pub fn require_bearer_from(&self, server: &TokenServer) {
        self.lock().bearer_from = Some(server.clone());
    }

    pub fn set_always_401(&self, on: bool) {
        self.lock().always_401 = on;
    }

    /// Wait this long before sending the response headers.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn hits(&self) -> usize {
        self.lock().requests.len()
    }
}

async fn handle(state: Arc<Mutex<UpstreamState>>, req: Request<Incoming>) -> Response<MockBody> {
    let (parts, mut body) = req.into_parts();
    let mut body_len = 0u64;
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            body_len += data.len() as u64;
            let room = KEPT_BODY_BYTES.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    let headers = header_pairs(&parts.headers);
    let bearer = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let query = parts.uri.query().map(str::to_string);
    let path = parts.uri.path().to_string();

    let (rejection, delay) = {
        let mut s = lock(&state);
        let token_status = s.bearer_from.as_ref().map(|t| {
            bearer
                .as_deref()
                .map_or(TokenStatus::Unknown, |b| t.status(b))
        });
        let query_pairs: Vec<(String, String)> =
            form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let bad_key_header = s.key_header.as_ref().is_some_and(|(name, value)| {
            parts.headers.get(name.as_str()).map(|v| v.as_bytes()) != Some(value.as_bytes())
        });
        let bad_key_query = s
            .key_query
            .as_ref()
            .is_some_and(|(name, value)| !query_pairs.iter().any(|(k, v)| k == name && v == value));
        let rejection = if s.always_401 {
            Some(r#"{"error":"unauthorized"}"#)
        } else if bad_key_header || bad_key_query {
            Some(r#"{"error":"invalid_api_key"}"#)
        } else if token_status.is_some_and(|t| t != TokenStatus::Valid) {
            Some(r#"{"error":"invalid_token"}"#)
        } else {
            None
        };
        s.requests.push(RecordedRequest {
            method: parts.method.to_string(),
            path: path.clone(),
            query: query.clone(),
            headers: headers.clone(),
            body_len,
            body: kept,
            bearer,
            token_status,
        });
        (rejection, s.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(error) = rejection {
        let mut r = json(StatusCode::UNAUTHORIZED, error.to_string());
        r.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        return r;
    }
    if path.ends_with("/__redirect") {
        // Like a trailing-slash or canonical-URL redirect: the target keeps the full query,
        // credentials included, as real APIs do. The proxy must not pass that on.
        let target = format!("{}/?{}", path, query.as_deref().unwrap_or(""));
        let mut r = json(StatusCode::MOVED_PERMANENTLY, "{}".to_string());
        let h = r.headers_mut();
        for name in [http::header::LOCATION, http::header::CONTENT_LOCATION] {
            if let Ok(v) = HeaderValue::from_str(&target) {
                h.insert(name, v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&format!("<{target}&page=2>; rel=\"next\"")) {
            h.insert(http::header::LINK, v);
        }
        return r;
    }
    if path.ends_with("/__large") {
        let params: Vec<(String, String)> =
            form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let bytes = param("bytes")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        return large(bytes, param("chunked").is_some_and(|v| v == "1"));
    }
    let echo = serde_json::json!({
        "method": parts.method.as_str(),
        "path": path,
        "query": query.as_deref().map(redact_query),
        "headers": headers
            .iter()
            .map(|(k, v)| (k.clone(), if is_sensitive(k) { REDACTED.to_string() } else { v.clone() }))
            .collect::<Vec<_>>(),
        "body_len": body_len,
    });
    json(StatusCode::OK, echo.to_string())
}

const REDACTED: &str = "[redacted]";

/// Credential-looking names: their values are never reflected in the echo, as no real API
/// reflects them (the recorded requests keep the real values for assertions).
fn is_sensitive(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "cookie"
        || ["auth", "key", "token", "secret", "password"]
            .iter()
            .any(|s| n.contains(s))
}

fn redact_query(query: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let v = if is_sensitive(&k) { REDACTED.into() } else { v };
        out.append_pair(&k, &v);
    }
    out.finish()
}

/// A body of `total` pattern bytes, produced chunk by chunk (one shared 64 KiB chunk, sliced),
/// with `Content-Length`, or without (chunked on the wire) when `chunked`.
fn large(total: u64, chunked: bool) -> Response<MockBody> {
    let chunk = Bytes::from(
        LARGE_PATTERN
            .iter()
            .copied()
            .cycle()
            .take(CHUNK)
            .collect::<Vec<u8>>(),
    );
    let frames = stream::unfold(0u64, move |sent| {
        let chunk = chunk.clone();
        async move {
            if sent >= total {
                return None;
            }
            let n = (total - sent).min(CHUNK as u64) as usize;
            // CHUNK is a multiple of the pattern length, so every chunk starts at pattern byte 0.
            let frame = Ok::<_, std::io::Error>(Frame::data(chunk.slice(..n)));
            Some((frame, sent + n as u64))
        }
    });
    let mut r = Response::new(StreamBody::new(frames).boxed());
    if !chunked {
        r.headers_mut().insert(
            http::header::CONTENT_LENGTH,
            HeaderValue::from_str(&total.to_string()).unwrap_or(HeaderValue::from_static("0")),
        );
    }
    with_common_headers(r, "application/octet-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_redacts_credentials() {
        assert!(is_sensitive("Api-Key") && is_sensitive("authorization"));
        assert!(is_sensitive("X-AUTH-TOKEN") && !is_sensitive("accept"));
        assert_eq!(
            redact_query("phrase=cat&api_key=s3&x=a+b"),
            "phrase=cat&api_key=%5Bredacted%5D&x=a+b"
        );
    }

    #[test]
    fn pattern_is_64_bytes_and_indexable() {
        assert_eq!(LARGE_PATTERN.len(), 64);
        assert_eq!(large_body_byte(0), b'0');
        assert_eq!(large_body_byte(64 + 10), b'a');
        assert_eq!(CHUNK % LARGE_PATTERN.len(), 0);
    }
}
