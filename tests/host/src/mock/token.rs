//! A mock OAuth2 token endpoint (client-credentials grant, RFC 6749 §4.4) at `/oauth2/token`.
//!
//! Client authentication is accepted as form fields or HTTP Basic (RFC 6749 §2.3.1, with the
//! id and secret form-urlencoded before base64). It issues distinct `tok-<n>-<random>` tokens,
//! remembers each one's expiry (`expires_in`, or `default_ttl` when the reply omits it) so
//! [`crate::mock::Upstream`] can tell valid, expired and revoked tokens apart, records every
//! request, and can be told to fail in the ways real endpoints do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use rand::Rng;

use super::server::{full_response, header_pairs, lock, MockBody, MockServer};

/// How the reply states the token's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiresIn {
    /// `"expires_in": 1800`
    Number(u64),
    /// `"expires_in": "1800"` (Getty sometimes does this)
    String(u64),
    /// no `expires_in` field; the token lives `default_ttl`
    Absent,
    /// `"expires_in": -5`: a broken endpoint saying the token has already expired (it has:
    /// the upstream refuses it)
    NegativeNumber(i64),
    /// `"expires_in": "-5"`
    NegativeString(i64),
}

/// A way for the endpoint to misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFailure {
    None,
    /// 500 with a JSON error body.
    Status500,
    /// Never answers (holds the connection for an hour).
    Hang,
    /// 200 with a truncated JSON body.
    MalformedJson,
    /// 200 with an empty body.
    Empty200,
}

/// What an upstream learns about a presented token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    Valid,
    Expired,
    Revoked,
    Unknown,
}

/// One request the endpoint received.
#[derive(Debug, Clone, Default)]
pub struct RecordedTokenRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The form body's fields, in order, as parsed.
    pub form: Vec<(String, String)>,
    pub content_type: Option<String>,
    /// Whether the client authenticated with HTTP Basic.
    pub basic_auth: bool,
    /// The client id and secret used (from Basic when present, else from the form).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub grant_type: Option<String>,
    pub scope: Option<String>,
}

impl RecordedTokenRequest {
    /// The first form field called `name`.
    pub fn form_field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct Issued {
    expires_at: Instant,
    revoked: bool,
}

/// The token endpoint's settings and records (inside [`TokenServer`]).
#[derive(Debug)]
pub struct TokenState {
    client: Option<(String, String)>,
    expires_in: ExpiresIn,
    default_ttl: Duration,
    failure: TokenFailure,
    delay: Duration,
    calls: usize,
    issued: Vec<String>,
    tokens: HashMap<String, Issued>,
    requests: Vec<RecordedTokenRequest>,
}

/// Handle to a running token endpoint; clones share state.
pub type TokenServer = MockServer<TokenState>;

fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<MockBody> {
    full_response(status, "application/json", body)
}

fn decode_component(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// `Basic base64(urlencode(id):urlencode(secret))` -> (id, secret).
fn parse_basic(value: &str) -> Option<(String, String)> {
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (id, secret) = raw.split_once(':')?;
    Some((decode_component(id), decode_component(secret)))
}

impl MockServer<TokenState> {
    /// Starts the endpoint on a free port. Defaults: any client accepted, `expires_in` 1800,
    /// `default_ttl` 300 s, no failure.
    pub async fn start() -> TokenServer {
        let state = TokenState {
            client: None,
            expires_in: ExpiresIn::Number(1800),
            default_ttl: Duration::from_secs(300),
            failure: TokenFailure::None,
            delay: Duration::ZERO,
            calls: 0,
            issued: Vec::new(),
            tokens: HashMap::new(),
            requests: Vec::new(),
        };
        MockServer::spawn("token endpoint", state, handle).await
    }

    /// `http://127.0.0.1:PORT/oauth2/token`
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.url())
    }

    /// Only these credentials are accepted from now on (else 401 `invalid_client`).
    pub fn set_client(&self, client_id: &str, client_secret: &str) {
        self.lock().client = Some((client_id.to_string(), client_secret.to_string()));
    }

    pub fn set_expires_in(&self, expires_in: ExpiresIn) {
        self.lock().expires_in = expires_in;
    }

    /// Lifetime of a token issued without `expires_in`.
    pub fn set_default_ttl(&self, ttl: Duration) {
        self.lock().default_ttl = ttl;
    }

    pub fn set_failure(&self, failure: TokenFailure) {
        self.lock().failure = failure;
    }

    /// Wait this long before answering (a slow endpoint); the call counts on arrival and the
    /// token is issued, its lifetime starting, when the answer is sent.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Every POST to the token path, failed ones included.
    pub fn calls(&self) -> usize {
        self.lock().calls
    }

    /// Tokens issued so far, oldest first.
    pub fn issued(&self) -> Vec<String> {
        self.lock().issued.clone()
    }

    pub fn requests(&self) -> Vec<RecordedTokenRequest> {
        self.lock().requests.clone()
    }

    /// Makes `token` invalid for the upstream from now on.
    pub fn revoke(&self, token: &str) {
        if let Some(t) = self.lock().tokens.get_mut(token) {
            t.revoked = true;
        }
    }

    /// Makes every issued token expired now (the client's cache does not know).
    pub fn expire_all(&self) {
        let now = Instant::now();
        for t in self.lock().tokens.values_mut() {
            t.expires_at = now;
        }
    }

    /// What an upstream should think of `token` right now.
    pub fn status(&self, token: &str) -> TokenStatus {
        match self.lock().tokens.get(token) {
            None => TokenStatus::Unknown,
            Some(t) if t.revoked => TokenStatus::Revoked,
            Some(t) if Instant::now() >= t.expires_at => TokenStatus::Expired,
            Some(_) => TokenStatus::Valid,
        }
    }
}

async fn handle(state: Arc<Mutex<TokenState>>, req: Request<Incoming>) -> Response<MockBody> {
    if req.uri().path() != "/oauth2/token" {
        return json(StatusCode::NOT_FOUND, r#"{"error":"not_found"}"#);
    }
    if req.method() != Method::POST {
        return json(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"error":"invalid_request"}"#,
        );
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let headers = header_pairs(&parts.headers);
    let basic = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_basic);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let (client_id, client_secret) = match &basic {
        Some((id, secret)) => (Some(id.clone()), Some(secret.clone())),
        None => (field("client_id"), field("client_secret")),
    };
    let record = RecordedTokenRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        content_type: parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        headers,
        basic_auth: basic.is_some(),
        client_id: client_id.clone(),
        client_secret: client_secret.clone(),
        grant_type: field("grant_type"),
        scope: field("scope"),
        form: form.clone(),
    };

    let delay = {
        let mut s = lock(&state);
        s.calls += 1;
        s.requests.push(record.clone());
        s.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (failure, reply) = {
        let mut s = lock(&state);
        let failure = s.failure;
        let reply = if failure != TokenFailure::None {
            None
        } else if record.grant_type.as_deref() != Some("client_credentials") {
            Some(json(
                StatusCode::BAD_REQUEST,
                r#"{"error":"unsupported_grant_type"}"#,
            ))
        } else if s.client.as_ref().is_some_and(|(id, secret)| {
            client_id.as_deref() != Some(id.as_str())
                || client_secret.as_deref() != Some(secret.as_str())
        }) {
            Some(json(
                StatusCode::UNAUTHORIZED,
                r#"{"error":"invalid_client"}"#,
            ))
        } else {
            Some(issue(&mut s))
        };
        (failure, reply)
    };
    match (failure, reply) {
        (_, Some(reply)) => reply,
        (TokenFailure::Status500, _) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":"server_error","error_description":"upstream exploded: do not echo me"}"#,
        ),
        (TokenFailure::Hang, _) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            json(StatusCode::GATEWAY_TIMEOUT, "{}")
        }
        (TokenFailure::MalformedJson, _) => json(StatusCode::OK, r#"{"access_token": "tok-"#),
        (TokenFailure::Empty200, _) | (TokenFailure::None, None) => json(StatusCode::OK, ""),
    }
}

fn issue(s: &mut TokenState) -> Response<MockBody> {
    let n = s.issued.len() + 1;
    let random: u64 = rand::thread_rng().gen();
    let token = format!("tok-{n}-{random:016x}");
    let ttl = match s.expires_in {
        ExpiresIn::Number(n) | ExpiresIn::String(n) => Duration::from_secs(n),
        ExpiresIn::Absent => s.default_ttl,
        ExpiresIn::NegativeNumber(_) | ExpiresIn::NegativeString(_) => Duration::ZERO,
    };
    s.issued.push(token.clone());
    s.tokens.insert(
        token.clone(),
        Issued {
            expires_at: Instant::now() + ttl,
            revoked: false,
        },
    );
    let mut body = serde_json::json!({ "access_token": token, "token_type": "Bearer" });
    match s.expires_in {
        ExpiresIn::Number(n) => body["expires_in"] = n.into(),
        ExpiresIn::String(n) => body["expires_in"] = n.to_string().into(),
        ExpiresIn::Absent => {}
        ExpiresIn::NegativeNumber(n) => body["expires_in"] = n.into(),
        ExpiresIn::NegativeString(n) => body["expires_in"] = n.to_string().into(),
    }
    json(StatusCode::OK, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_basic_auth_with_urlencoded_parts() {
        let v = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("my%3Aid:s%26cret+x")
        );
        assert_eq!(
            parse_basic(&v),
            Some(("my:id".to_string(), "s&cret x".to_string()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
    }
}
