//! The decision for one request: answer a CORS preflight locally, refuse it, or forward it.
//!
//! Input is the request head as the edge read it ([`RequestHead`]: method, query, every header
//! value); output is a [`Decision`]: a preflight's headers or a [`Forward`] (method, upstream
//! target, headers with the static key), plus the CORS headers every answer to this request
//! carries. Steps 2 to 4 of the request flow in `ARCHITECTURE.md` happen here, in that order.
//! The token (step 5) and the sending (step 6) are not this module's business, and neither is
//! reading the body: only its declared length is checked here.

use http::header::{AUTHORIZATION, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method};

use crate::config::{self, Config, Variables};
use crate::cors::Cors;
use crate::error::{Error, Result};
use crate::headers::{check_content_length, first, forward_request_headers, last};
use crate::path::normalize_path;
use crate::target::Target;

/// The request line and headers, as the edge read them once.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: Method,
    /// The query string without `?`, as the client sent it.
    pub query: Option<String>,
    /// Every header, repeated values kept in order (Spin's `spin-*` come after the client's).
    pub headers: HeaderMap,
}

/// What to do with a request that passed the policy.
#[derive(Debug)]
pub enum Plan {
    /// A CORS preflight, answered with 204 and these headers.
    Preflight(HeaderMap),
    Forward(Forward),
}

/// Everything needed to send the request upstream, except the token and the body. Its `Debug`
/// shows no secret: the target hides its query (which may carry `api_key_query`) and the key
/// header's value is marked sensitive.
#[derive(Debug)]
pub struct Forward {
    pub method: Method,
    pub target: Target,
    /// Client headers that passed the allowlist, then the static key header and `user-agent`.
    pub headers: HeaderMap,
    /// The normalised path (no query), for log lines.
    pub path: String,
}

/// The outcome plus the CORS headers every answer to this request carries, errors included,
/// so a page on an allowed origin can read the JSON error. A refused origin gets none.
pub struct Decision {
    pub cors: HeaderMap,
    pub outcome: Result<Plan>,
    /// The normalised path (no query), for the access log; `None` when normalising refused it,
    /// because the raw path may carry anything.
    pub path: Option<String>,
}

impl Decision {
    fn refused(cors: HeaderMap, error: Error) -> Decision {
        Decision {
            cors,
            outcome: Err(error),
            path: None,
        }
    }

    fn at(self, path: &str) -> Decision {
        Decision {
            path: Some(path.to_string()),
            ..self
        }
    }
}

pub fn decide(cfg: &Config, req: &RequestHead) -> Decision {
    let cors = Cors::new(&cfg.origins, &req.headers);
    let raw_path = last(&req.headers, "spin-path-info").unwrap_or("");
    let path = match normalize_path(raw_path) {
        Ok(path) => path,
        // Even a bad path from an allowed origin gets its CORS headers, so the page can show
        // the error instead of an opaque network failure.
        Err(e) => return Decision::refused(cors.headers_or_none(), e),
    };

    if req.method == Method::OPTIONS {
        let preflight = cors.preflight(
            &cfg.routes,
            &path,
            first(&req.headers, "access-control-request-method"),
            first(&req.headers, "access-control-request-headers"),
        );
        if let Some(result) = preflight {
            return match result {
                Ok(headers) => Decision {
                    cors: HeaderMap::new(),
                    outcome: Ok(Plan::Preflight(headers)),
                    path: Some(path),
                },
                Err(e) => Decision::refused(HeaderMap::new(), e).at(&path),
            };
        }
    }

    match cors.check() {
        Ok(cors) => Decision {
            outcome: forward(cfg, req, path.clone()).map(Plan::Forward),
            cors,
            path: Some(path),
        },
        Err(e) => Decision::refused(HeaderMap::new(), e).at(&path),
    }
}

/// CORS headers for an answer given before the config could be read (a `config_invalid`), so a
/// page on an allowed origin can read the error instead of seeing an opaque CORS failure.
pub fn cors_without_config(vars: &dyn Variables, req: &RequestHead) -> HeaderMap {
    let Ok(origins) = config::load_origins(vars) else {
        return HeaderMap::new();
    };
    Cors::new(&origins, &req.headers).headers_or_none()
}

fn forward(cfg: &Config, req: &RequestHead, path: String) -> Result<Forward> {
    cfg.routes.check(req.method.as_str(), &path)?;
    check_content_length(first(&req.headers, "content-length"), cfg.max_body_bytes)?;

    let key = cfg.static_key.as_ref();
    let key_query = key.and_then(|k| k.query.as_deref().map(|name| (name, k.key.secret())));
    let target = Target::build(&cfg.upstream_url, &path, req.query.as_deref(), key_query)?;

    let key_header = key.and_then(|k| k.header.as_ref());
    let mut headers = forward_request_headers(&req.headers, key_header);
    if cfg.token.is_some() {
        // The bearer token is added per attempt; a client's own Authorization never passes the
        // allowlist, but make the invariant local.
        headers.remove(AUTHORIZATION);
    }
    if let (Some(name), Some(key)) = (key_header, key) {
        // `Config::load` refused a key that cannot be a header value.
        let mut value = HeaderValue::from_str(key.key.secret())
            .map_err(|_| Error::config("api_key", "cannot be sent in a header"))?;
        value.set_sensitive(true);
        headers.append(name.clone(), value);
    }
    headers.append(
        USER_AGENT,
        HeaderValue::from_static(concat!("credential-proxy/", env!("CARGO_PKG_VERSION"))),
    );
    Ok(Forward {
        method: req.method.clone(),
        target,
        headers,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapVars;
    use http::HeaderName;
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

    /// A request with the client's `headers` first, then Spin's own `spin-*` headers.
    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> RequestHead {
        let mut all = HeaderMap::new();
        let full_url = format!("http://proxy.test:3000/api/x{path}");
        let spin = [
            ("spin-path-info", path),
            ("spin-full-url", full_url.as_str()),
        ];
        for (n, v) in headers.iter().chain(spin.iter()) {
            all.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        RequestHead {
            method: Method::from_bytes(method.as_bytes()).unwrap(),
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
            f.target.url().as_str(),
            "https://api.example.com/v3/search/images?phrase=cat"
        );
        let names: Vec<&str> = f.headers.keys().map(|n| n.as_str()).collect();
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
            .get_all("api-key")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        assert_eq!(keys, vec![&b"KEY-1"[..]]);
    }

    #[test]
    fn only_the_last_path_info_is_trusted() {
        let cfg = config(&[]);
        // The client's own spin-path-info comes before Spin's.
        let req = request("GET", "/real", &[("spin-path-info", "/../../admin")]);
        let f = forward_of(decide(&cfg, &req));
        assert_eq!(f.target.url().path(), "/v3/real");
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
        assert!(ok.cors.iter().any(|(n, v)| n
            .as_str()
            .eq_ignore_ascii_case("access-control-allow-origin")
            && v == "https://site.example"));
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
    fn forward_debug_hides_the_key() {
        let cfg = config(&[("api_key_header", ""), ("api_key_query", "api_key")]);
        let f = forward_of(decide(&cfg, &request("GET", "/x", &[("Api-Key", "x")])));
        let printed = format!("{f:?}");
        assert!(!printed.contains("KEY-1"), "{printed}");
    }

    #[test]
    fn forward_debug_hides_a_key_header() {
        let f = forward_of(decide(&config(&[]), &request("GET", "/x", &[])));
        let printed = format!("{f:?}");
        assert!(printed.contains("api-key"), "{printed}");
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
            .any(|(n, v)| n == "access-control-allow-origin" && v == "https://site.example"));
        let other = request("GET", "/x", &[("Origin", "https://evil.example")]);
        assert!(cors_without_config(&vars, &other).is_empty());
    }

    #[test]
    fn the_path_is_kept_only_once_normalised() {
        let cfg = config(&[("allowed_routes", "GET /search/**")]);
        let refused = decide(&cfg, &request("GET", "/admin//x", &[]));
        assert_eq!(refused.path.as_deref(), Some("/admin/x"));
        assert!(refused.outcome.is_err());
        let invalid = decide(&cfg, &request("GET", "/a/%2e%2e/b", &[]));
        assert_eq!(invalid.outcome.unwrap_err().code(), "invalid_path");
        assert_eq!(invalid.path, None);
    }

    #[test]
    fn key_in_query_replaces_the_clients() {
        let cfg = config(&[("api_key_header", ""), ("api_key_query", "api_key")]);
        let mut req = request("GET", "/x", &[]);
        req.query = Some("api_key=mine&q=1".into());
        let f = forward_of(decide(&cfg, &req));
        assert_eq!(f.target.url().query(), Some("q=1&api_key=KEY-1"));
    }
}
