//! The token endpoint's protocol: the client-credentials grant request (RFC 6749 §4.4.2) and the
//! parsing of its reply (§5.1), plus the port that sends one.
//!
//! `expires_in` is read leniently (a number, or a string of digits as Getty sometimes sends), and
//! a missing one is the configured default, never "forever". Errors carry our own reasons, never
//! the endpoint's text, which may echo credentials. This module does not cache (`cache` does).

use base64::Engine as _;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Deserializer};

use super::TokenRecord;
use crate::config::{ClientAuth, TokenConfig};
use crate::error::{Error, Result};
use crate::port::Io;
use crate::secret::AccessToken;

/// The token endpoint port: sends the request, returns status and body.
pub trait TokenEndpoint {
    fn send<'a>(&'a self, request: &'a TokenRequest) -> Io<'a, Result<(u16, Vec<u8>)>>;
}

/// A ready-to-send token request: POST `url` with these headers and form body.
#[derive(Clone)]
pub struct TokenRequest {
    pub url: url::Url,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("url", &self.url.as_str())
            .field("body", &"[redacted]")
            .finish()
    }
}

/// The client-credentials grant request (RFC 6749 §4.4.2).
pub fn token_request(cfg: &TokenConfig) -> TokenRequest {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if let Some(scope) = &cfg.scope {
        form.append_pair("scope", scope);
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    match cfg.client_auth {
        ClientAuth::Body => {
            form.append_pair("client_id", cfg.client_id.secret());
            form.append_pair("client_secret", cfg.client_secret.secret());
        }
        ClientAuth::Basic => {
            // RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and
            // base64-encoded; servers that follow the RFC decode them again.
            let encode =
                |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!(
                "{}:{}",
                encode(cfg.client_id.secret()),
                encode(cfg.client_secret.secret())
            );
            let value = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            );
            // Base64 text is always a valid header value.
            if let Ok(mut value) = HeaderValue::from_str(&value) {
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
        }
    }
    TokenRequest {
        url: cfg.url.clone(),
        headers,
        body: form.finish().into_bytes(),
    }
}

/// The token endpoint's success reply (RFC 6749 §5.1).
#[derive(Deserialize)]
struct TokenReply {
    access_token: Option<String>,
    token_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_seconds")]
    expires_in: Option<Lifetime>,
}

/// What `expires_in` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifetime {
    Seconds(u64),
    /// Zero or negative: the endpoint says the token has already expired.
    Over,
}

/// `expires_in` as a number (RFC) or a string of digits (Getty sometimes sends `"1800"`), either
/// possibly negative. Text that is no number at all counts as absent, so the stated default
/// applies.
fn lenient_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Lifetime>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Number(serde_json::Number),
        Text(String),
    }
    let seconds = match Option::<Seconds>::deserialize(d)? {
        None => None,
        Some(Seconds::Number(n)) => n.as_f64(),
        Some(Seconds::Text(s)) => s.trim().parse::<i64>().ok().map(|n| n as f64),
    };
    Ok(seconds.map(|s| {
        if s >= 1.0 {
            // `as` saturates: 1e300 becomes u64::MAX, capped below.
            Lifetime::Seconds(s as u64)
        } else {
            Lifetime::Over
        }
    }))
}

/// A token endpoint reply larger than this is not a token reply (both edges stop reading there).
pub const TOKEN_REPLY_LIMIT: usize = 64 * 1024;

/// Turns the endpoint's answer into a record. The reason in an error is ours (status, shape),
/// never the endpoint's own text, which may echo credentials.
pub fn parse_token_reply(
    status: u16,
    body: &[u8],
    now: u64,
    default_ttl_secs: u64,
) -> Result<TokenRecord> {
    if !(200..300).contains(&status) {
        return Err(Error::token_endpoint(format!("it answered HTTP {status}")));
    }
    let reply: TokenReply = serde_json::from_slice(body)
        .map_err(|_| Error::token_endpoint("its reply is not a JSON token response"))?;
    let access_token = reply
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::token_endpoint("its reply has no access_token"))?;
    if access_token
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ')
    {
        return Err(Error::token_endpoint(
            "its access_token cannot be sent in a header",
        ));
    }
    let lifetime = match reply.expires_in {
        None => default_ttl_secs,
        Some(Lifetime::Seconds(secs)) => secs,
        Some(Lifetime::Over) => {
            return Err(Error::token_endpoint(
                "its token has already expired (expires_in is zero or negative)",
            ))
        }
    };
    Ok(TokenRecord {
        access_token: AccessToken::new(access_token),
        token_type: reply.token_type.unwrap_or_else(|| "Bearer".into()),
        // A lifetime beyond a year is a server bug or a joke; cap it so no token is "forever".
        expires_at: now.saturating_add(lifetime.min(MAX_LIFETIME_SECS)),
        issued_at: Some(now),
    })
}

const MAX_LIFETIME_SECS: u64 = 366 * 24 * 3600;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(auth: ClientAuth) -> TokenConfig {
        crate::token::test_support::token_config(auth)
    }

    #[test]
    fn parses_numeric_string_and_missing_expires_in() {
        let n = parse_token_reply(
            200,
            br#"{"access_token":"a","token_type":"Bearer","expires_in":1800}"#,
            100,
            300,
        )
        .unwrap();
        assert_eq!(n.expires_at, 1900);
        let s = parse_token_reply(
            200,
            br#"{"access_token":"a","expires_in":"1800"}"#,
            100,
            300,
        )
        .unwrap();
        assert_eq!(s.expires_at, 1900);
        let missing = parse_token_reply(200, br#"{"access_token":"a"}"#, 100, 300).unwrap();
        assert_eq!(missing.expires_at, 400, "the stated default, never forever");
        assert_eq!(missing.token_type, "Bearer");
        let junk = parse_token_reply(
            200,
            br#"{"access_token":"a","expires_in":"soon"}"#,
            100,
            300,
        )
        .unwrap();
        assert_eq!(junk.expires_at, 400);
    }

    #[test]
    fn zero_lifetime_is_refused_and_huge_ones_are_capped() {
        let err = parse_token_reply(200, br#"{"access_token":"a","expires_in":0}"#, 100, 300)
            .unwrap_err();
        assert_eq!(err.code(), "token_endpoint_failed");
        let huge = parse_token_reply(200, br#"{"access_token":"a","expires_in":1e300}"#, 100, 300)
            .unwrap();
        assert_eq!(huge.expires_at, 100 + MAX_LIFETIME_SECS);
    }

    #[test]
    fn negative_lifetimes_are_refused_as_number_or_string() {
        for body in [
            &br#"{"access_token":"a","expires_in":-5}"#[..],
            br#"{"access_token":"a","expires_in":"-5"}"#,
            br#"{"access_token":"a","expires_in":" -1 "}"#,
            br#"{"access_token":"a","expires_in":-0.5}"#,
            br#"{"access_token":"a","expires_in":"0"}"#,
        ] {
            let err = parse_token_reply(200, body, 100, 300).unwrap_err();
            assert_eq!(err.code(), "token_endpoint_failed", "{body:?}");
        }
    }

    #[test]
    fn a_record_knows_when_it_was_issued() {
        let r =
            parse_token_reply(200, br#"{"access_token":"a","expires_in":30}"#, 100, 300).unwrap();
        assert_eq!((r.issued_at, r.expires_at), (Some(100), 130));
    }

    #[test]
    fn refuses_replies_without_a_usable_token() {
        for (status, body) in [
            (200, &b"{}"[..]),
            (200, br#"{"access_token":""}"#),
            (200, br#"{"access_token":null}"#),
            (200, b"<html>oops</html>"),
            (200, b""),
            (200, br#"{"access_token":"a b"}"#),
            (500, br#"{"access_token":"a"}"#),
            (
                401,
                br#"{"error":"invalid_client","error_description":"secret=s&cret"}"#,
            ),
        ] {
            let err = parse_token_reply(status, body, 0, 300).unwrap_err();
            assert_eq!(err.code(), "token_endpoint_failed");
            assert!(!err.to_string().contains("s&cret"));
        }
    }

    #[test]
    fn body_client_auth_sends_form_fields() {
        let req = token_request(&cfg(ClientAuth::Body));
        let form: HashMap<String, String> =
            form_urlencoded::parse(&req.body).into_owned().collect();
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["client_id"], "my id");
        assert_eq!(form["client_secret"], "s&cret");
        assert!(!req.headers.contains_key("authorization"));
        assert!(!format!("{req:?}").contains("s&cret"));
    }

    #[test]
    fn basic_client_auth_encodes_per_rfc6749() {
        let mut c = cfg(ClientAuth::Basic);
        c.scope = Some("read write".into());
        let req = token_request(&c);
        let form: HashMap<String, String> =
            form_urlencoded::parse(&req.body).into_owned().collect();
        assert!(!form.contains_key("client_secret"));
        assert_eq!(form["scope"], "read write");
        let auth = req.headers.get("authorization").unwrap();
        let b64 = std::str::from_utf8(auth.as_bytes())
            .unwrap()
            .strip_prefix("Basic ")
            .unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(decoded, b"my+id:s%26cret");
    }
}
