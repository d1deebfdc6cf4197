//! CORS: [`Cors`], the CORS side of one request (its `Origin` and the proxy's own origin), read
//! once and asked twice: which headers an answer carries, and what a preflight gets.
//!
//! With `routes`, this is what keeps the proxy from being an open relay. It takes the request's
//! headers and returns header maps or an `Error`; it does not check a route except where a
//! preflight asks about one, and does not assemble answers (`answer` does).

use crate::error::{Error, Result};
use crate::headers::{first, is_forwardable_request_header, last};
use crate::origins::{self_origin, serialize_origin, Origins};
use crate::routes::Routes;
use http::{HeaderMap, HeaderValue};

/// How long a browser may cache a preflight answer. Chromium caps it at 7200 s, Firefox at
/// 86400 s; ten minutes keeps a policy change from taking long to reach browsers.
const PREFLIGHT_MAX_AGE_SECS: &str = "600";

/// Response headers a cross-origin page may read (Fetch standard §3.2.5): the ones its code
/// needs for tokens, caching, ranges and rate limiting. Others stay hidden behind CORS.
const EXPOSED_HEADERS: &str =
    "x-credential-proxy-token, x-credential-proxy-cache, age, etag, content-range, retry-after";

/// The CORS side of one request: its first `Origin` (the client's own header) and the proxy's
/// own origin from the last `spin-full-url` (Spin's, appended after any the client sent).
pub struct Cors<'a> {
    origins: &'a Origins,
    origin: Option<&'a str>,
    self_origin: Option<String>,
    /// What the browser's `Sec-Fetch-Site` says about the request's initiator.
    fetch_site: FetchSite,
}

/// The browser's `Sec-Fetch-Site` (Fetch Metadata, W3C): who initiated the request, relative to
/// the proxy's origin. Browsers send it on every request, `Origin` or not; non-browser clients
/// send none. The proxy only looks at it when `Origin` is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FetchSite {
    /// No header, `same-origin`, `none` (a user navigation), or a value we do not know.
    Other,
    /// `same-site`: another origin of the same site (another port or subdomain); which one,
    /// the browser does not say.
    Same,
    /// `cross-site`: a page of another site.
    Cross,
}

impl FetchSite {
    /// The most cross-site of the values (a client could repeat the header; the browser never
    /// does), compared ASCII-case-insensitively.
    fn read(headers: &HeaderMap) -> FetchSite {
        let mut site = FetchSite::Other;
        for value in headers.get_all("sec-fetch-site") {
            let value = String::from_utf8_lossy(value.as_bytes());
            match value.trim().to_ascii_lowercase().as_str() {
                "cross-site" => site = FetchSite::Cross,
                "same-site" if site == FetchSite::Other => site = FetchSite::Same,
                _ => {}
            }
        }
        site
    }

    /// For the error message, which only a `Same` or `Cross` request gets.
    fn as_str(self) -> &'static str {
        match self {
            FetchSite::Other => "same-origin or none",
            FetchSite::Same => "same-site",
            FetchSite::Cross => "cross-site",
        }
    }
}

impl<'a> Cors<'a> {
    pub fn new(origins: &'a Origins, headers: &'a HeaderMap) -> Cors<'a> {
        Cors {
            origins,
            origin: first(headers, "origin"),
            self_origin: last(headers, "spin-full-url").and_then(self_origin),
            fetch_site: FetchSite::read(headers),
        }
    }

    /// A request value from its parts, for tests.
    #[cfg(test)]
    fn with(origins: &'a Origins, origin: Option<&'a str>, own: Option<&str>) -> Cors<'a> {
        Cors {
            origins,
            origin,
            self_origin: own.map(str::to_string),
            fetch_site: FetchSite::Other,
        }
    }

    /// Decides on the `Origin` header of a non-preflight request and returns the CORS headers
    /// to add to the answer.
    ///
    /// - No `Origin`, or the proxy's own origin (always allowed, so the hosting site can POST to
    ///   its own contact form with `allowed_origins` empty): `Vary: Origin` if origins are
    ///   configured, so shared caches keep the cross-origin variant apart; nothing otherwise.
    /// - Except a browser request from another site that carries no `Origin` (a no-cors
    ///   `<img src>`, `<script src>` or `fetch(url, {mode: "no-cors"})` GET/HEAD, which would
    ///   otherwise spend the site's quota from any page its visitors open):
    ///   `Sec-Fetch-Site: cross-site` is always `Error::OriginNotAllowed`, and so is
    ///   `same-site` when `allowed_origins` is empty (the browser does not say which site, so
    ///   only a configured list can vouch for it). `same-origin`, `none` (the user typed the URL or
    ///   followed a link) and no `Sec-Fetch-Site` at all (curl, servers) pass.
    /// - An allowed cross-origin request: `Access-Control-Allow-Origin` echoing the origin
    ///   exactly as sent (browsers compare it byte-for-byte; echoing instead of `*` works for
    ///   `Any` too), `Vary: Origin` and `Access-Control-Expose-Headers`.
    /// - Anything else, including `null` unless origins are `Any`: `Error::OriginNotAllowed`.
    pub fn check(&self) -> Result<HeaderMap> {
        let mut headers = HeaderMap::new();
        let vary_only = |mut headers: HeaderMap| {
            if *self.origins != Origins::None {
                headers.insert(http::header::VARY, HeaderValue::from_static("Origin"));
            }
            headers
        };
        let Some(origin) = self.origin else {
            return match (self.fetch_site, self.origins) {
                (FetchSite::Cross, _) | (FetchSite::Same, Origins::None) => {
                    Err(Error::OriginNotAllowed {
                        origin: format!("(none; Sec-Fetch-Site {})", self.fetch_site.as_str()),
                    })
                }
                _ => Ok(vary_only(headers)),
            };
        };
        if self.is_same_origin(origin) {
            return Ok(vary_only(headers));
        }
        if self.origins.allows(origin) {
            headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, echo(origin));
            headers.insert(http::header::VARY, HeaderValue::from_static("Origin"));
            headers.insert(
                http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
            return Ok(headers);
        }
        Err(Error::OriginNotAllowed {
            origin: origin.to_string(),
        })
    }

    /// The CORS headers for any answer to this request, errors included, so a page on an allowed
    /// origin can read the JSON error; a refused origin gets none.
    pub fn headers_or_none(&self) -> HeaderMap {
        self.check().unwrap_or_default()
    }

    /// Answers a CORS preflight (Fetch standard §3.2.2, §4.8). Call it for `OPTIONS` requests
    /// only: it cannot see the method itself.
    ///
    /// Returns `None` when the request is not a preflight (no `Origin` or no
    /// `Access-Control-Request-Method`); such a plain OPTIONS goes through normal route
    /// checking. Otherwise: an origin that is neither allowed nor the proxy's own is
    /// `Error::OriginNotAllowed`; a requested method that `routes` refuses on `path` is the
    /// error `Routes::check` gives; else the headers for a 204. `Access-Control-Allow-Methods`
    /// lists `routes.methods_for(path)`, with a `*` route answered by naming the requested
    /// method (a literal `*` would also be valid for requests without credentials, but naming it
    /// works in every browser). `Access-Control-Allow-Headers` lists, lowercased, the requested
    /// headers the proxy would forward (`headers::is_forwardable_request_header`); it is omitted
    /// when none are, so the browser refuses a request whose extra headers would be dropped
    /// anyway.
    pub fn preflight(
        &self,
        routes: &Routes,
        path: &str,
        request_method: Option<&str>,
        request_headers: Option<&str>,
    ) -> Option<Result<HeaderMap>> {
        let (Some(origin), Some(request_method)) = (self.origin, request_method) else {
            return None;
        };
        Some(self.answer_preflight(routes, path, origin, request_method.trim(), request_headers))
    }

    fn answer_preflight(
        &self,
        routes: &Routes,
        path: &str,
        origin: &str,
        method: &str,
        request_headers: Option<&str>,
    ) -> Result<HeaderMap> {
        if !self.origins.allows(origin) && !self.is_same_origin(origin) {
            return Err(Error::OriginNotAllowed {
                origin: origin.to_string(),
            });
        }
        routes.check(method, path)?;
        let mut methods: Vec<String> = routes
            .methods_for(path)
            .into_iter()
            .map(|m| if m == "*" { method.to_string() } else { m })
            .collect();
        methods.sort();
        methods.dedup();

        let mut allowed_headers: Vec<String> = Vec::new();
        for name in request_headers.unwrap_or("").split(',').map(str::trim) {
            let name = name.to_ascii_lowercase();
            if is_forwardable_request_header(&name) && !allowed_headers.contains(&name) {
                allowed_headers.push(name);
            }
        }

        use http::header::*;
        let mut headers = HeaderMap::new();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, echo(origin));
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, echo(&methods.join(", ")));
        if !allowed_headers.is_empty() {
            headers.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                echo(&allowed_headers.join(", ")),
            );
        }
        headers.insert(
            ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(PREFLIGHT_MAX_AGE_SECS),
        );
        headers.insert(
            VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
        Ok(headers)
    }

    /// Whether `origin` is the proxy's own origin. Browsers send `Origin` on same-origin POSTs
    /// and some same-origin fetches too (Fetch standard §3.1, "origin-only" serialization), so
    /// this must be recognised before the allowlist is consulted.
    fn is_same_origin(&self, origin: &str) -> bool {
        let Some(own) = self
            .self_origin
            .as_deref()
            .and_then(|s| serialize_origin(s).ok())
        else {
            return false;
        };
        serialize_origin(origin).is_ok_and(|o| o == own)
    }
}

/// A request value (the `Origin` or a list built from tokens) echoed into an answer header. It
/// came from a header or from tokens, so it is always a valid value; an empty one stands in if
/// not.
fn echo(text: &str) -> HeaderValue {
    HeaderValue::from_bytes(text.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(spec: &str) -> Routes {
        Routes::parse(spec).unwrap()
    }

    /// The answer headers as `(name, value)` text pairs, in order.
    fn pairs(headers: &HeaderMap) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect()
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn check_origin(
        origins: &Origins,
        origin: Option<&str>,
        own: Option<&str>,
    ) -> Result<Vec<(String, String)>> {
        Cors::with(origins, origin, own).check().map(|h| pairs(&h))
    }

    fn preflight(
        origins: &Origins,
        routes: &Routes,
        path: &str,
        origin: Option<&str>,
        method: Option<&str>,
        request_headers: Option<&str>,
        own: Option<&str>,
    ) -> Option<Result<Vec<(String, String)>>> {
        Cors::with(origins, origin, own)
            .preflight(routes, path, method, request_headers)
            .map(|r| r.map(|h| pairs(&h)))
    }

    #[test]
    fn allowed_cross_origin_request_gets_echoed_origin_and_expose_headers() {
        let list = Origins::parse("https://site.example").unwrap();
        let h = check_origin(&list, Some("https://site.example"), None).unwrap();
        assert_eq!(
            header(&h, "access-control-allow-origin"),
            Some("https://site.example")
        );
        assert_eq!(header(&h, "vary"), Some("Origin"));
        assert_eq!(
            header(&h, "access-control-expose-headers"),
            Some("x-credential-proxy-token, x-credential-proxy-cache, age, etag, content-range, retry-after")
        );
        let any = check_origin(&Origins::Any, Some("https://x.example"), None).unwrap();
        assert_eq!(
            header(&any, "access-control-allow-origin"),
            Some("https://x.example")
        );
    }

    #[test]
    fn same_origin_is_allowed_even_with_no_origins_configured() {
        let own = Some("http://127.0.0.1:3000");
        assert_eq!(
            check_origin(&Origins::None, Some("http://127.0.0.1:3000"), own),
            Ok(vec![])
        );
        let list = Origins::parse("https://site.example").unwrap();
        assert_eq!(
            check_origin(&list, Some("http://127.0.0.1:3000"), own),
            Ok(vec![("vary".to_string(), "Origin".to_string())])
        );
    }

    #[test]
    fn no_origin_header_adds_vary_only_when_origins_are_configured() {
        assert_eq!(check_origin(&Origins::None, None, None), Ok(vec![]));
        assert_eq!(
            check_origin(&Origins::Any, None, None),
            Ok(vec![("vary".to_string(), "Origin".to_string())])
        );
    }

    /// `check` for a request with these headers and the proxy at `http://127.0.0.1:3000`.
    fn check_headers(origins: &Origins, sent: &[(&str, &str)]) -> Result<Vec<(String, String)>> {
        let mut headers = HeaderMap::new();
        for (n, v) in sent {
            headers.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        headers.append(
            "spin-full-url",
            HeaderValue::from_static("http://127.0.0.1:3000/x"),
        );
        Cors::new(origins, &headers).check().map(|h| pairs(&h))
    }

    #[test]
    fn cross_site_requests_without_origin_are_refused() {
        let list = Origins::parse("https://site.example").unwrap();
        for origins in [&Origins::None, &list, &Origins::Any] {
            for value in ["cross-site", "Cross-Site", " cross-site "] {
                let result = check_headers(origins, &[("Sec-Fetch-Site", value)]);
                assert!(
                    matches!(result, Err(Error::OriginNotAllowed { .. })),
                    "{origins:?} {value}"
                );
            }
            // A repeated header counts at its most cross-site.
            let repeated = [
                ("Sec-Fetch-Site", "same-origin"),
                ("Sec-Fetch-Site", "cross-site"),
            ];
            assert!(check_headers(origins, &repeated).is_err());
        }
    }

    #[test]
    fn same_site_without_origin_needs_configured_origins() {
        let same_site = [("Sec-Fetch-Site", "same-site")];
        let err = check_headers(&Origins::None, &same_site).unwrap_err();
        assert_eq!(err.code(), "origin_not_allowed");
        assert!(err.to_string().contains("same-site"), "{err}");
        let list = Origins::parse("https://site.example").unwrap();
        assert!(check_headers(&list, &same_site).is_ok());
        assert!(check_headers(&Origins::Any, &same_site).is_ok());
    }

    #[test]
    fn same_origin_navigation_and_non_browser_clients_pass_without_origin() {
        for origins in [&Origins::None, &Origins::Any] {
            for headers in [
                &[("Sec-Fetch-Site", "same-origin")][..],
                &[("Sec-Fetch-Site", "none"), ("Sec-Fetch-Mode", "navigate")],
                &[("Sec-Fetch-Site", "something-new")],
                &[],
            ] {
                assert!(check_headers(origins, headers).is_ok(), "{headers:?}");
            }
        }
        // With an Origin, the Origin decides (a browser sends both; they agree).
        let own = [
            ("Origin", "http://127.0.0.1:3000"),
            ("Sec-Fetch-Site", "same-origin"),
        ];
        assert!(check_headers(&Origins::None, &own).is_ok());
        let allowed = [
            ("Origin", "https://site.example"),
            ("Sec-Fetch-Site", "cross-site"),
        ];
        let list = Origins::parse("https://site.example").unwrap();
        assert!(check_headers(&list, &allowed).is_ok());
    }

    #[test]
    fn refuses_other_origins_and_null() {
        let own = Some("http://127.0.0.1:3000");
        let list = Origins::parse("https://site.example").unwrap();
        for origins in [&Origins::None, &list] {
            for origin in ["https://evil.example", "null", "http://127.0.0.1:3001"] {
                assert_eq!(
                    check_origin(origins, Some(origin), own),
                    Err(Error::OriginNotAllowed {
                        origin: origin.into()
                    })
                );
            }
        }
        assert!(check_origin(&Origins::Any, Some("null"), own).is_ok());
    }

    #[test]
    fn preflight_allows_a_listed_origin_and_route() {
        let origins = Origins::parse("https://site.example").unwrap();
        let r = routes("GET /**, POST /contact");
        let h = preflight(
            &origins,
            &r,
            "/contact",
            Some("https://site.example"),
            Some("POST"),
            Some("Content-Type, X-Custom, Authorization, if-none-match, content-type"),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            header(&h, "access-control-allow-origin"),
            Some("https://site.example")
        );
        assert_eq!(
            header(&h, "access-control-allow-methods"),
            Some("GET, HEAD, POST")
        );
        assert_eq!(
            header(&h, "access-control-allow-headers"),
            Some("content-type, if-none-match")
        );
        assert_eq!(header(&h, "access-control-max-age"), Some("600"));
        assert_eq!(
            header(&h, "vary"),
            Some("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
        );
    }

    #[test]
    fn preflight_omits_allow_headers_when_none_would_be_forwarded() {
        let r = routes("GET /**");
        let h = preflight(
            &Origins::Any,
            &r,
            "/x",
            Some("https://a.example"),
            Some("GET"),
            Some("authorization, cookie"),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(header(&h, "access-control-allow-headers"), None);
    }

    #[test]
    fn preflight_names_the_requested_method_for_a_star_route() {
        let r = routes("* /hook");
        let h = preflight(
            &Origins::Any,
            &r,
            "/hook",
            Some("https://a.example"),
            Some("DELETE"),
            None,
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(header(&h, "access-control-allow-methods"), Some("DELETE"));
    }

    #[test]
    fn preflight_refuses_a_disallowed_origin() {
        let origins = Origins::parse("https://site.example").unwrap();
        let result = preflight(
            &origins,
            &routes("GET /**"),
            "/x",
            Some("https://evil.example"),
            Some("GET"),
            None,
            None,
        );
        assert!(matches!(result, Some(Err(Error::OriginNotAllowed { .. }))));
    }

    #[test]
    fn preflight_refuses_a_disallowed_method_or_route() {
        let r = routes("GET /search/**");
        let ask = |path, method| {
            preflight(
                &Origins::Any,
                &r,
                path,
                Some("https://a.example"),
                Some(method),
                None,
                None,
            )
        };
        assert!(matches!(
            ask("/search/x", "DELETE"),
            Some(Err(Error::MethodNotAllowed { .. }))
        ));
        assert!(matches!(
            ask("/admin", "GET"),
            Some(Err(Error::RouteNotAllowed { .. }))
        ));
    }

    #[test]
    fn plain_options_is_not_a_preflight() {
        let r = routes("GET /**");
        assert!(preflight(&Origins::Any, &r, "/x", None, Some("GET"), None, None).is_none());
        let no_method = preflight(
            &Origins::Any,
            &r,
            "/x",
            Some("https://a.example"),
            None,
            None,
            None,
        );
        assert!(no_method.is_none());
    }
}
