//! The decision for one request: answer a CORS preflight locally, refuse it, or forward it.
//!
//! Input is the request as plain values (method, Spin's path info, query, every header value);
//! output is either a local answer or a [`Forward`]: the upstream URL, the headers to send and
//! the CORS headers for the answer. Steps 2 to 4 of DESIGN.md's request flow happen here, in that
//! order. The token (step 5) and the sending (step 6) are not this module's business, and
//! neither is reading the body: only its declared length is checked here.

use http::HeaderName;
use url::Url;

use crate::config::{self, Config, Variables};
use crate::error::Result;
use crate::policy::{self, check_content_length};
use crate::token::TokenSource;
use crate::upstream::{
    build_url, filter_response_headers, forward_request_headers, normalize_path,
};

/// Tells the browser whether the bearer token came from the cache or was just fetched.
pub const TOKEN_HEADER: &str = "x-credential-proxy-token";

/// The request as the handler saw it.
#[derive(Debug, Clone)]
pub struct RequestParts {
    pub method: String,
    /// The query string without `?`, as the client sent it.
    pub query: Option<String>,
    /// Every header, in order, repeated names kept.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl RequestParts {
    /// The LAST value of a header. Spin appends its `spin-*` headers after the client's, so a
    /// client that sends its own `spin-path-info` or `spin-client-addr` only adds an earlier one.
    pub fn last(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The first value, for headers the client owns (`Origin`, `Content-Length`).
    pub fn first(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

pub type HeaderList = Vec<(&'static str, String)>;

/// What to do with a request that passed the policy.
#[derive(Debug)]
pub enum Plan {
    /// A CORS preflight, answered with 204 and these headers.
    Preflight(HeaderList),
    Forward(Forward),
}

/// Everything needed to send the request upstream, except the token. Its `Debug` shows only the
/// path and header names: the URL may carry `api_key_query` and the headers the key.
pub struct Forward {
    pub method: String,
    pub url: Url,
    /// Client headers that passed the allowlist, then the static key header.
    pub headers: Vec<(String, Vec<u8>)>,
    /// For the route check in logs: the normalised path (no query).
    pub path: String,
}

impl std::fmt::Debug for Forward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forward")
            .field("method", &self.method)
            .field("path", &self.path)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The outcome plus the CORS headers every answer to this request carries, errors included,
/// so a page on an allowed origin can read the JSON error. A refused origin gets none.
pub struct Decision {
    pub cors: HeaderList,
    pub outcome: Result<Plan>,
}

pub fn decide(cfg: &Config, req: &RequestParts) -> Decision {
    let self_origin = req.last("spin-full-url").and_then(policy::self_origin);
    let origin = req.first("origin");
    let raw_path = req.last("spin-path-info").unwrap_or("");
    let path = match normalize_path(raw_path) {
        Ok(path) => path,
        Err(e) => {
            // Even a bad path from an allowed origin gets its CORS headers, so the page can
            // show the error instead of an opaque network failure.
            let cors = policy::check_origin(&cfg.origins, origin, self_origin.as_deref())
                .unwrap_or_default();
            return Decision {
                cors,
                outcome: Err(e),
            };
        }
    };

    if req.method == "OPTIONS" {
        if let Some(result) = policy::preflight(
            &cfg.origins,
            &cfg.routes,
            &path,
            origin,
            req.first("access-control-request-method"),
            req.first("access-control-request-headers"),
            self_origin.as_deref(),
        ) {
            return match result {
                Ok(headers) => Decision {
                    cors: Vec::new(),
                    outcome: Ok(Plan::Preflight(headers)),
                },
                Err(e) => Decision {
                    cors: Vec::new(),
                    outcome: Err(e),
                },
            };
        }
    }

    let cors = match policy::check_origin(&cfg.origins, origin, self_origin.as_deref()) {
        Ok(cors) => cors,
        Err(e) => {
            return Decision {
                cors: Vec::new(),
                outcome: Err(e),
            }
        }
    };
    let outcome = forward(cfg, req, path).map(Plan::Forward);
    Decision { cors, outcome }
}

/// CORS headers for an answer given before the config could be read (a `config_invalid`), so a
/// page on an allowed origin can read the error instead of seeing an opaque CORS failure.
pub fn cors_without_config(vars: &dyn Variables, req: &RequestParts) -> HeaderList {
    let Ok(origins) = config::load_origins(vars) else {
        return Vec::new();
    };
    let self_origin = req.last("spin-full-url").and_then(policy::self_origin);
    policy::check_origin(&origins, req.first("origin"), self_origin.as_deref()).unwrap_or_default()
}

/// The headers of the answer passed back to the browser: the upstream's, filtered; minus any
/// whose value contains a secret (an upstream redirect's `Location` repeats the query, and with
/// it `api_key_query`'s key); then CORS and the token header.
pub fn response_headers(
    upstream: &[(String, Vec<u8>)],
    secrets: &[&str],
    cors: &[(&'static str, String)],
    token: Option<TokenSource>,
) -> Vec<(String, Vec<u8>)> {
    let secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    // Compare against the value as sent and percent-decoded (with `+` as `+` and as a space),
    // so an encoded copy of a key in a URL is caught too.
    let leaks = |value: &[u8]| {
        let text = String::from_utf8_lossy(value);
        let spaced = text.replace('+', " ");
        let views = [
            text.to_string(),
            percent_encoding::percent_decode_str(&text)
                .decode_utf8_lossy()
                .into_owned(),
            percent_encoding::percent_decode_str(&spaced)
                .decode_utf8_lossy()
                .into_owned(),
        ];
        views
            .iter()
            .any(|view| secrets.iter().any(|secret| view.contains(secret)))
    };
    let mut headers: Vec<(String, Vec<u8>)> =
        filter_response_headers(upstream.iter().map(|(n, v)| (n.as_str(), v.as_slice())))
            .into_iter()
            .filter(|(_, value)| !leaks(value))
            .collect();
    headers.extend(
        cors.iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
    );
    if let Some(source) = token {
        headers.push((
            TOKEN_HEADER.to_string(),
            source.as_str().as_bytes().to_vec(),
        ));
    }
    headers
}

fn forward(cfg: &Config, req: &RequestParts, path: String) -> Result<Forward> {
    cfg.routes.check(&req.method, &path)?;
    check_content_length(req.first("content-length"), cfg.max_body_bytes)?;

    let key = cfg.static_key.as_ref();
    let key_query = key.and_then(|k| k.query.as_deref().map(|name| (name, k.key.secret())));
    let url = build_url(&cfg.upstream_url, &path, req.query.as_deref(), key_query)?;

    let key_header: Option<&HeaderName> = key.and_then(|k| k.header.as_ref());
    let mut headers = forward_request_headers(
        req.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
        key_header.map(HeaderName::as_str),
    );
    if cfg.token.is_some() {
        // The bearer token is added per attempt; a client's own Authorization never passes the
        // allowlist, but make the invariant local.
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
    }
    if let (Some(name), Some(key)) = (key_header, key) {
        headers.push((
            name.as_str().to_string(),
            key.key.secret().as_bytes().to_vec(),
        ));
    }
    headers.push((
        "user-agent".to_string(),
        concat!("credential-proxy/", env!("CARGO_PKG_VERSION"))
            .as_bytes()
            .to_vec(),
    ));
    Ok(Forward {
        method: req.method.clone(),
        url,
        headers,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapVars;
    use std::collections::HashMap;

    fn config(extra: &[(&'static str, &'static str)]) -> Config {
        let mut vars: HashMap<_, _> = [
            ("upstream_url", "https://api.example.com/v3"),
            ("api_key", "KEY-1"),
            ("api_key_header", "Api-Key"),
        ]
        .into_iter()
        .collect();
        vars.extend(extra.iter().copied());
        Config::load(&MapVars(vars)).unwrap()
    }

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> RequestParts {
        let mut all: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect();
        all.push(("spin-path-info".into(), path.as_bytes().to_vec()));
        all.push((
            "spin-full-url".into(),
            format!("http://proxy.test:3000/api/x{path}").into_bytes(),
        ));
        RequestParts {
            method: method.into(),
            query: Some("phrase=cat".into()),
            headers: all,
        }
    }

    fn forward_of(d: Decision) -> Forward {
        match d.outcome {
            Ok(Plan::Forward(f)) => f,
            other => panic!("expected a forward, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn forwards_under_the_prefix_with_the_key_header() {
        let cfg = config(&[]);
        let f = forward_of(decide(
            &cfg,
            &request(
                "GET",
                "/search/images",
                &[("Cookie", "a=1"), ("Accept", "x")],
            ),
        ));
        assert_eq!(
            f.url.as_str(),
            "https://api.example.com/v3/search/images?phrase=cat"
        );
        let names: Vec<&str> = f.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"api-key"));
        assert!(!names.iter().any(|n| n.eq_ignore_ascii_case("cookie")));
        assert!(!names.iter().any(|n| n.starts_with("spin-")));
    }

    #[test]
    fn a_client_supplied_key_header_is_replaced() {
        let cfg = config(&[]);
        let f = forward_of(decide(
            &cfg,
            &request("GET", "/x", &[("api-key", "attacker")]),
        ));
        let keys: Vec<&[u8]> = f
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("api-key"))
            .map(|(_, v)| v.as_slice())
            .collect();
        assert_eq!(keys, vec![&b"KEY-1"[..]]);
    }

    #[test]
    fn only_the_last_path_info_is_trusted() {
        let cfg = config(&[]);
        let mut req = request("GET", "/real", &[]);
        req.headers
            .insert(0, ("spin-path-info".into(), b"/../../admin".to_vec()));
        let f = forward_of(decide(&cfg, &req));
        assert_eq!(f.url.path(), "/v3/real");
    }

    #[test]
    fn refused_route_and_method() {
        let cfg = config(&[("allowed_routes", "GET /search/**, POST /forms/contact")]);
        let err = decide(&cfg, &request("GET", "/admin", &[]))
            .outcome
            .unwrap_err();
        assert_eq!(err.code(), "route_not_allowed");
        let err = decide(&cfg, &request("DELETE", "/forms/contact", &[]))
            .outcome
            .unwrap_err();
        assert_eq!(err.status(), 405);
    }

    #[test]
    fn cross_origin_needs_an_allowed_origin() {
        let cfg = config(&[("allowed_origins", "https://site.example")]);
        let ok = decide(
            &cfg,
            &request("GET", "/x", &[("Origin", "https://site.example")]),
        );
        assert!(ok.cors.iter().any(
            |(n, v)| n.eq_ignore_ascii_case("access-control-allow-origin")
                && v == "https://site.example"
        ));
        assert!(ok.outcome.is_ok());
        let bad = decide(
            &cfg,
            &request("GET", "/x", &[("Origin", "https://evil.example")]),
        );
        assert!(bad.cors.is_empty());
        assert_eq!(bad.outcome.unwrap_err().code(), "origin_not_allowed");
    }

    #[test]
    fn same_origin_post_passes_with_no_origins_configured() {
        let cfg = config(&[("allowed_routes", "POST /forms/contact")]);
        let d = decide(
            &cfg,
            &request(
                "POST",
                "/forms/contact",
                &[("Origin", "http://proxy.test:3000")],
            ),
        );
        assert!(d.outcome.is_ok());
    }

    #[test]
    fn preflight_is_answered_locally() {
        let cfg = config(&[("allowed_origins", "https://site.example")]);
        let d = decide(
            &cfg,
            &request(
                "OPTIONS",
                "/x",
                &[
                    ("Origin", "https://site.example"),
                    ("Access-Control-Request-Method", "GET"),
                ],
            ),
        );
        assert!(matches!(d.outcome, Ok(Plan::Preflight(_))));
    }

    #[test]
    fn declared_body_over_the_limit_is_refused() {
        let cfg = config(&[("allowed_routes", "POST /**"), ("max_body_bytes", "10")]);
        let err = decide(&cfg, &request("POST", "/x", &[("Content-Length", "11")]))
            .outcome
            .unwrap_err();
        assert_eq!(err.status(), 413);
    }

    #[test]
    fn answer_headers_never_carry_a_secret() {
        let upstream = vec![
            (
                "location".to_string(),
                b"/v3/x/?q=1&api_key=K%2BEY%26".to_vec(),
            ),
            ("link".to_string(), b"<https://a/?api_key=K+EY%26>".to_vec()),
            ("x-echo".to_string(), b"Bearer tok-123".to_vec()),
            ("etag".to_string(), b"\"v1\"".to_vec()),
            ("set-cookie".to_string(), b"a=1".to_vec()),
        ];
        let headers = response_headers(
            &upstream,
            &["K+EY&", "tok-123", ""],
            &[("vary", "Origin".to_string())],
            Some(TokenSource::Cached),
        );
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["etag", "vary", TOKEN_HEADER]);
    }

    #[test]
    fn forward_debug_hides_the_key() {
        let cfg = config(&[("api_key_header", ""), ("api_key_query", "api_key")]);
        let f = forward_of(decide(&cfg, &request("GET", "/x", &[("Api-Key", "x")])));
        let printed = format!("{f:?}");
        assert!(!printed.contains("KEY-1"), "{printed}");
    }

    #[test]
    fn config_errors_still_get_cors_for_allowed_origins() {
        let vars = MapVars(
            [
                ("allowed_origins", "https://site.example"),
                ("upstream_url", "nope"),
            ]
            .into_iter()
            .collect(),
        );
        let req = request("GET", "/x", &[("Origin", "https://site.example")]);
        let cors = cors_without_config(&vars, &req);
        assert!(cors
            .iter()
            .any(|(n, v)| *n == "access-control-allow-origin" && v == "https://site.example"));
        let other = request("GET", "/x", &[("Origin", "https://evil.example")]);
        assert!(cors_without_config(&vars, &other).is_empty());
    }

    #[test]
    fn key_in_query_replaces_the_clients() {
        let cfg = config(&[("api_key_header", ""), ("api_key_query", "api_key")]);
        let mut req = request("GET", "/x", &[]);
        req.query = Some("api_key=mine&q=1".into());
        let f = forward_of(decide(&cfg, &req));
        assert_eq!(f.url.query(), Some("q=1&api_key=KEY-1"));
    }
}
