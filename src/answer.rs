//! Every answer the browser gets, built in one place: a preflight's 204, a JSON error, the head
//! of an upstream answer (status, its filtered headers minus any that carry a secret, CORS,
//! `x-credential-proxy-token`, `x-credential-proxy-cache: miss`), and an answer from the response
//! cache (`x-credential-proxy-cache: hit`, `Age`).
//!
//! Pure: values in, an [`Answer`] out, including the log line that goes with it. The list of
//! secrets that scrubbing looks for is built here from the config and the token in use. The
//! edge (`spin_io`) only writes an `Answer` and copies the upstream body after it; it decides
//! nothing about status or headers. This module does not decide *whether* to answer with an
//! error (the decision and the send do) and never sees a body stream.

use http::header::{
    AGE, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::config::Config;
use crate::decision::Forward;
use crate::error::Error;
use crate::headers::filter_response_headers;
use crate::response_cache::Hit;
use crate::retry::Sent;
use crate::scrub::Scrubber;
use crate::token::{Token, TokenSource};

/// Tells the browser whether the bearer token came from the cache or was just fetched.
pub const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-credential-proxy-token");

/// Tells the browser whether the response cache answered (`hit`) or the upstream did (`miss`);
/// only on GET answers while the cache is on.
pub const CACHE_HEADER: HeaderName = HeaderName::from_static("x-credential-proxy-cache");

/// What the edge writes: status and headers, the body when the proxy made it (empty for an
/// upstream answer, whose body the edge streams), and a line for the log.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub log: Option<String>,
}

/// The upstream's answer as the edge read it; its body stays in the edge.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub headers: HeaderMap,
}

/// A CORS preflight answered locally.
pub fn preflight(headers: HeaderMap) -> Answer {
    Answer {
        status: StatusCode::NO_CONTENT,
        headers,
        body: Vec::new(),
        log: None,
    }
}

/// The JSON error `{"error":{"code":…,"message":…}}` with its status, `Allow` on a 405, and the
/// request's CORS headers so a page on an allowed origin can read it.
pub fn error(method: &dyn std::fmt::Display, e: &Error, cors: &HeaderMap) -> Answer {
    let body = e.body();
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(allow) = e.allow().and_then(|a| HeaderValue::from_str(&a).ok()) {
        headers.insert(ALLOW, allow);
    }
    // The message may repeat the request's path or origin.
    harden(&mut headers);
    extend(&mut headers, cors);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    Answer {
        status: e.status(),
        headers,
        body,
        log: Some(format!(
            "{method} -> {} {}: {e}",
            e.status().as_u16(),
            e.code()
        )),
    }
}

/// The head of the upstream's answer as the browser gets it: the upstream's status, its headers
/// filtered (`headers::filter_response_headers`) and scrubbed of any that carry a secret of this
/// config or the token in use, then CORS, the token header and the hardening headers.
pub fn upstream<R>(
    cfg: &Config,
    forward: &Forward,
    sent: &Sent<R>,
    head: &ResponseHead,
    cors: &HeaderMap,
) -> Answer {
    let token = sent.token.as_ref();
    let mut headers = scrubbed_headers(
        &head.headers,
        &secrets(cfg, token),
        cors,
        token.map(|t| t.source),
    );
    harden(&mut headers);
    Answer {
        status: head.status,
        headers,
        body: Vec::new(),
        log: (sent.attempts > 1).then(|| {
            format!(
                "{} {}: upstream refused the token; retried once with a new one",
                forward.method, forward.path
            )
        }),
    }
}

/// Marks an upstream answer as a response cache miss.
pub fn mark_cache_miss(answer: &mut Answer) {
    answer
        .headers
        .insert(CACHE_HEADER, HeaderValue::from_static("miss"));
}

/// An answer from the response cache: the stored status, headers and body, with this request's
/// CORS, `Age` and `x-credential-proxy-cache: hit`. No token header: none was used.
pub fn cached(hit: Hit, cors: &HeaderMap) -> Answer {
    let mut headers = hit.headers;
    // The stored answer may have come chunked; this one is whole.
    headers.insert(CONTENT_LENGTH, HeaderValue::from(hit.body.len()));
    headers.insert(AGE, HeaderValue::from(hit.age));
    // A hit is an upstream answer served on the site's origin like any other: sandboxed too.
    harden(&mut headers);
    extend(&mut headers, cors);
    headers.insert(CACHE_HEADER, HeaderValue::from_static("hit"));
    Answer {
        status: hit.status,
        headers,
        body: hit.body,
        log: None,
    }
}

/// The upstream's headers as the response cache stores them: filtered and scrubbed as for the
/// browser, without CORS (per request) and the proxy's own headers. `None` when scrubbing
/// removed a header: an answer that echoes a secret is never stored.
pub fn storable_headers(
    cfg: &Config,
    token: Option<&Token>,
    head: &ResponseHead,
) -> Option<HeaderMap> {
    let filtered = filter_response_headers(&head.headers);
    let scrubbed = scrubbed_headers(&head.headers, &secrets(cfg, token), &HeaderMap::new(), None);
    (scrubbed.len() == filtered.len()).then_some(scrubbed)
}

/// Every secret an upstream header could echo: the static key, the client credentials and the
/// token sent. The response cache also checks a body against these before storing it.
pub fn secrets<'a>(cfg: &'a Config, token: Option<&'a Token>) -> Vec<&'a str> {
    let mut secrets = vec![];
    if let Some(key) = &cfg.static_key {
        secrets.push(key.key.secret());
    }
    if let Some(token) = &cfg.token {
        secrets.extend([token.client_id.secret(), token.client_secret.secret()]);
    }
    if let Some(token) = token {
        secrets.push(token.record.access_token.secret());
    }
    secrets
}

/// The upstream's headers, filtered; minus any whose value contains a secret (an upstream
/// redirect's `Location` repeats the query, and with it `api_key_query`'s key); then CORS and
/// the token header.
fn scrubbed_headers(
    upstream: &HeaderMap,
    secrets: &[&str],
    cors: &HeaderMap,
    token: Option<TokenSource>,
) -> HeaderMap {
    // Encoded, case-changed and base64 copies too: see `scrub`.
    let scrubber = Scrubber::new(secrets.iter().copied());
    // Room for all of them plus the token, cache and `harden`'s two headers: growing a HeaderMap
    // rehashes it, which showed in the wasm's profile when one more header crossed its
    // threshold. A capacity too large to reserve (tens of thousands of values) just grows.
    let room = upstream.len() + cors.len() + 4;
    let mut headers = HeaderMap::try_with_capacity(room).unwrap_or_default();
    for (name, value) in &filter_response_headers(upstream) {
        if !scrubber.leaks(value.as_bytes()) {
            headers.append(name.clone(), value.clone());
        }
    }
    extend(&mut headers, cors);
    if let Some(source) = token {
        headers.append(TOKEN_HEADER, HeaderValue::from_static(source.as_str()));
    }
    headers
}

/// What every answer with a body gets, because it is served on the site's own origin: an API's
/// HTML or SVG (an error page reflecting the path) opened directly must not run as the site.
/// `nosniff` keeps a JSON or text answer from being sniffed into HTML or script; the sandbox
/// CSP makes a document rendered from the answer a unique opaque origin with no scripts, forms
/// or plugins, and `default-src 'none'` lets it load nothing. `fetch`, `<img>` and media ignore
/// a response's CSP, so API use is unaffected. The upstream's own CSP (and nosniff) are
/// replaced, not merged: it was written for the upstream's origin and may be weaker
/// (`headers::filter_response_headers` drops them).
pub const CONTENT_SECURITY_POLICY: &str = "sandbox; default-src 'none'";

fn harden(headers: &mut HeaderMap) {
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
}

fn extend(headers: &mut HeaderMap, more: &HeaderMap) {
    for (name, value) in more {
        headers.append(name.clone(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapVars;
    use crate::secret::AccessToken;
    use crate::token::TokenRecord;

    fn map(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (n, v) in pairs {
            headers.append(*n, HeaderValue::from_bytes(v).unwrap());
        }
        headers
    }

    fn names(headers: &HeaderMap) -> Vec<&str> {
        headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn answer_headers_never_carry_a_secret() {
        let upstream = map(&[
            ("location", b"/v3/x/?q=1&api_key=K%2BEY%26"),
            ("link", b"<https://a/?api_key=K+EY%26>"),
            ("x-echo", b"Bearer tok-123"),
            ("etag", b"\"v1\""),
            ("set-cookie", b"a=1"),
        ]);
        let headers = scrubbed_headers(
            &upstream,
            &["K+EY&", "tok-123", ""],
            &map(&[("vary", b"Origin")]),
            Some(TokenSource::Cached),
        );
        assert_eq!(names(&headers), vec!["etag", "vary", TOKEN_HEADER.as_str()]);
    }

    #[test]
    fn hardening_replaces_the_upstreams_csp_and_nosniff() {
        let upstream = map(&[
            ("content-type", b"text/html"),
            ("content-security-policy", b"default-src *"),
            (
                "content-security-policy-report-only",
                b"report-uri https://vendor",
            ),
            ("x-content-type-options", b"none"),
        ]);
        let mut headers = scrubbed_headers(&upstream, &[], &HeaderMap::new(), None);
        harden(&mut headers);
        let all =
            |name| -> Vec<&[u8]> { headers.get_all(name).iter().map(|v| v.as_bytes()).collect() };
        assert_eq!(
            all("content-security-policy"),
            [b"sandbox; default-src 'none'"]
        );
        assert_eq!(all("x-content-type-options"), [b"nosniff"]);
        assert!(all("content-security-policy-report-only").is_empty());
        assert_eq!(all("content-type"), [b"text/html"]);

        let e = Error::RouteNotAllowed {
            method: "GET".into(),
            path: "/<svg onload=x>".into(),
        };
        let answer = error(&"GET", &e, &HeaderMap::new());
        assert_eq!(answer.headers["x-content-type-options"], "nosniff");
        assert_eq!(
            answer.headers["content-security-policy"],
            CONTENT_SECURITY_POLICY
        );
    }

    #[test]
    fn twice_encoded_and_base64_copies_are_scrubbed() {
        let upstream = map(&[
            (
                "location",
                b"/login?next=%252Fv3%253Fapi_key%253DK%25252BEY%2525269",
            ),
            ("x-basic", b"Basic SUQtMTpLK0VZJjk="),
            ("x-upper", b"BEARER TOK-1234567"),
            ("etag", b"\"v1\""),
        ]);
        let headers = scrubbed_headers(
            &upstream,
            &["K+EY&9", "tok-1234567"],
            &HeaderMap::new(),
            None,
        );
        assert_eq!(names(&headers), ["etag"]);
    }

    #[test]
    fn secrets_come_from_the_config_and_the_token_in_use() {
        let cfg = Config::load(&MapVars(
            [
                ("upstream_url", "https://api.example.com"),
                ("api_key", "KEY-1"),
                ("api_key_header", "Api-Key"),
                ("token_url", "https://auth.example.com/token"),
                ("client_id", "ID-1"),
                ("client_secret", "SECRET-1"),
            ]
            .into_iter()
            .collect(),
        ))
        .unwrap();
        let token = Token {
            record: TokenRecord {
                access_token: AccessToken::new("TOK-1"),
                token_type: "Bearer".into(),
                expires_at: 1,
                issued_at: None,
            },
            source: TokenSource::Fetched,
        };
        assert_eq!(
            secrets(&cfg, Some(&token)),
            ["KEY-1", "ID-1", "SECRET-1", "TOK-1"]
        );
    }

    #[test]
    fn errors_are_json_with_allow_and_cors() {
        let e = Error::MethodNotAllowed {
            method: "DELETE".into(),
            allow: vec!["GET".into(), "HEAD".into()],
        };
        let answer = error(&http::Method::DELETE, &e, &map(&[("vary", b"Origin")]));
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(answer.headers["content-type"], "application/json");
        assert_eq!(answer.headers["cache-control"], "no-store");
        assert_eq!(answer.headers["allow"], "GET, HEAD");
        assert_eq!(answer.headers["vary"], "Origin");
        assert_eq!(
            answer.headers["content-length"],
            answer.body.len().to_string().as_str()
        );
        assert_eq!(answer.body, e.body());
    }

    #[test]
    fn a_cache_hit_has_its_length_age_cors_and_no_token_header() {
        let hit = Hit {
            status: StatusCode::OK,
            headers: map(&[("content-type", b"application/json"), ("age", b"99")]),
            body: b"{}".to_vec(),
            age: 7,
        };
        let answer = cached(hit, &map(&[("vary", b"Origin")]));
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.headers["content-length"], "2");
        assert_eq!(answer.headers["age"], "7");
        assert_eq!(answer.headers["vary"], "Origin");
        assert_eq!(answer.headers[CACHE_HEADER], "hit");
        assert!(!answer.headers.contains_key(TOKEN_HEADER));
        assert_eq!(answer.headers["x-content-type-options"], "nosniff");
        assert_eq!(
            answer.headers["content-security-policy"], "sandbox; default-src 'none'",
            "a hit is sandboxed like the answer it was stored from"
        );
        assert_eq!(answer.body, b"{}");
    }

    #[test]
    fn storable_headers_are_scrubbed_and_refused_when_a_secret_was_removed() {
        let cfg = Config::load(&MapVars(
            [
                ("upstream_url", "https://api.example.com"),
                ("api_key", "KEY-1"),
                ("api_key_query", "api_key"),
            ]
            .into_iter()
            .collect(),
        ))
        .unwrap();
        let head = |pairs: &[(&'static str, &[u8])]| ResponseHead {
            status: StatusCode::OK,
            headers: map(pairs),
        };
        let clean = head(&[("etag", b"\"v1\""), ("set-cookie", b"a=1")]);
        let stored = storable_headers(&cfg, None, &clean).unwrap();
        assert_eq!(names(&stored), ["etag"]);
        let echo = head(&[("etag", b"\"v1\""), ("link", b"</x?api_key=KEY-1>")]);
        assert!(storable_headers(&cfg, None, &echo).is_none());
    }

    #[test]
    fn a_preflight_is_a_204_with_its_headers() {
        let answer = preflight(map(&[("access-control-max-age", b"600")]));
        assert_eq!(answer.status, StatusCode::NO_CONTENT);
        assert_eq!(names(&answer.headers), ["access-control-max-age"]);
        assert!(answer.body.is_empty());
    }
}
