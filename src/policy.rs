//! The proxy's access policy: which methods and paths (`allowed_routes`) and which browser
//! origins (`allowed_origins`) may use it, the CORS headers that follow from that, and the
//! declared-body-size limit.
//!
//! This is what keeps the proxy from being an open relay that adds the site's key to any request
//! from anyone. Every function takes plain values (strings from headers and variables) and
//! returns a decision, so it is unit-tested without Spin. It does not read headers or variables
//! itself, does not normalise paths (it expects the output of `upstream::normalize_path`), and
//! does not count body bytes while streaming: a body without `Content-Length` must be capped by
//! the caller as it reads.

use crate::error::{Error, Result};
use crate::upstream;
use url::Url;

/// How long a browser may cache a preflight answer. Chromium caps it at 7200 s, Firefox at
/// 86400 s; ten minutes keeps a policy change from taking long to reach browsers.
const PREFLIGHT_MAX_AGE_SECS: &str = "600";

/// Response headers a cross-origin page may read (Fetch standard §3.2.5): the ones its code
/// needs for tokens, caching, ranges and rate limiting. Others stay hidden behind CORS.
const EXPOSED_HEADERS: &str = "x-credential-proxy-token, etag, content-range, retry-after";

/// The parsed `allowed_routes` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    method: MethodRule,
    segments: Vec<Segment>,
    /// The pattern ends in `**`: any number of further segments, including none.
    rest: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum MethodRule {
    Any,
    Exactly(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Canonical form (`upstream::canonical_segment`), compared byte-for-byte.
    Literal(String),
    /// `*`: exactly one non-empty segment.
    One,
}

impl Routes {
    /// Parses `allowed_routes`: comma-separated `METHOD /path-pattern` items, e.g.
    /// `"GET /**, POST /api/v1/content/contact_form"`.
    ///
    /// METHOD is an HTTP token (RFC 9110 §5.6.2), stored uppercase, or `*` for any method.
    /// Pattern segments are a literal, `*` (exactly one non-empty segment) or `**` (the rest:
    /// zero or more segments, only as the last segment). `*` inside a literal (`img*`) is
    /// refused rather than read as a glob nobody implemented. A literal is put in the same
    /// canonical percent-encoding as request paths (`upstream::normalize_path`), so the pattern
    /// `/%7euser/ü` matches the request path `/~user/%C3%BC`, while `=` and `%3D` stay distinct
    /// as RFC 3986 §2.2 says they may be; a literal that a request path could never have (`..`,
    /// `%2F`, control characters) is refused. Whitespace ends the pattern, so a space inside a
    /// literal is written `%20`. A trailing `/` on a pattern is ignored, as it is
    /// on request paths when matching. On error the reason gives the offending item's position (never its text: values are not shown); the caller
    /// wraps it into `Error::ConfigInvalid` for `allowed_routes`.
    pub fn parse(spec: &str) -> std::result::Result<Routes, String> {
        let routes = spec
            .split(',')
            .enumerate()
            .map(|(n, item)| {
                parse_route(item.trim()).map_err(|why| format!("item {}: {why}", n + 1))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Routes { routes })
    }

    /// Checks `method` on `path` (a normalised path from `upstream::normalize_path`; `""` is
    /// the component's root, like `/`).
    ///
    /// Methods compare case-sensitively (RFC 9110 §9.1): a request `patch` does not match a
    /// pattern `PATCH`. HEAD is allowed wherever GET is (RFC 9110 §9.3.2: HEAD is GET without
    /// the body). When some pattern matches the path but none allows the method, the error
    /// carries the methods that are allowed there, for the 405's `Allow` header.
    pub fn check(&self, method: &str, path: &str) -> Result<()> {
        let segments = path_segments(path);
        let mut path_matched = false;
        for route in self.routes.iter().filter(|r| r.matches(&segments)) {
            if route.allows_method(method) {
                return Ok(());
            }
            path_matched = true;
        }
        if path_matched {
            Err(Error::MethodNotAllowed {
                method: method.to_string(),
                allow: self.methods_for(path),
            })
        } else {
            Err(Error::RouteNotAllowed {
                method: method.to_string(),
                path: path.to_string(),
            })
        }
    }

    /// The methods allowed on `path`, sorted and deduplicated; `HEAD` is listed wherever `GET`
    /// is, and `"*"` stands for a pattern that allows any method (`preflight` replaces it with
    /// the requested method; `check` never reports a 405 when it is present).
    pub fn methods_for(&self, path: &str) -> Vec<String> {
        let segments = path_segments(path);
        let mut methods = Vec::new();
        for route in self.routes.iter().filter(|r| r.matches(&segments)) {
            match &route.method {
                MethodRule::Any => methods.push("*".to_string()),
                MethodRule::Exactly(m) => {
                    if m == "GET" {
                        methods.push("HEAD".to_string());
                    }
                    methods.push(m.clone());
                }
            }
        }
        methods.sort();
        methods.dedup();
        methods
    }
}

impl Route {
    fn matches(&self, path: &[&str]) -> bool {
        let fits = if self.rest {
            path.len() >= self.segments.len()
        } else {
            path.len() == self.segments.len()
        };
        fits && self
            .segments
            .iter()
            .zip(path)
            .all(|(pattern, segment)| match pattern {
                Segment::Literal(literal) => literal == segment,
                Segment::One => !segment.is_empty(),
            })
    }

    fn allows_method(&self, method: &str) -> bool {
        match &self.method {
            MethodRule::Any => true,
            MethodRule::Exactly(m) => m == method || (m == "GET" && method == "HEAD"),
        }
    }
}

/// The non-empty segments of a normalised path; a trailing `/` does not make a segment.
fn path_segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

fn parse_route(item: &str) -> std::result::Result<Route, String> {
    if item.is_empty() {
        return Err("empty item (stray comma?)".to_string());
    }
    let mut words = item.split_whitespace();
    let (Some(method), Some(pattern), None) = (words.next(), words.next(), words.next()) else {
        return Err("expected `METHOD /path-pattern`".to_string());
    };
    let method = if method == "*" {
        MethodRule::Any
    } else if method.bytes().all(is_tchar) {
        MethodRule::Exactly(method.to_ascii_uppercase())
    } else {
        return Err("the method is not an HTTP method token".to_string());
    };
    let Some(pattern_path) = pattern.strip_prefix('/') else {
        return Err("the pattern must start with `/`".to_string());
    };
    let parts: Vec<&str> = pattern_path
        .strip_suffix('/')
        .unwrap_or(pattern_path)
        .split('/')
        .collect();
    let mut segments = Vec::new();
    let mut rest = false;
    for (index, part) in parts.iter().enumerate() {
        match *part {
            // The root pattern `/` has one empty part and no segments.
            "" if parts.len() == 1 => {}
            "" => return Err("empty segment (`//`) in the pattern".to_string()),
            "**" if index + 1 == parts.len() => rest = true,
            "**" => return Err("`**` may only be the last segment".to_string()),
            "*" => segments.push(Segment::One),
            p if p.contains('*') => {
                return Err("`*` must be a whole segment".to_string());
            }
            p => {
                let literal = upstream::canonical_segment(p)
                    .map_err(|reason| format!("a literal segment is invalid: {reason}"))?;
                segments.push(Segment::Literal(literal));
            }
        }
    }
    Ok(Route {
        method,
        segments,
        rest,
    })
}

/// RFC 9110 §5.6.2 `tchar`, the characters of a method name.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The parsed `allowed_origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// No cross-origin access (the default): only the proxy's own origin may call it.
    None,
    /// `*`: every origin, including the opaque `null`.
    Any,
    /// These origins, in ASCII serialization (RFC 6454 §6.2).
    List(Vec<String>),
}

impl Origins {
    /// Parses `allowed_origins`: `""` is `None`, `"*"` is `Any`, otherwise comma-separated
    /// `scheme://host[:port]` origins (http or https; a trailing `/` is tolerated; a path,
    /// query, fragment or userinfo is refused). Entries are stored in ASCII serialization:
    /// lowercase, punycode host, default port dropped, so `https://A.com:443` equals
    /// `https://a.com`. `null` is refused as an entry: it is the origin of every sandboxed
    /// iframe and `file:` page, so listing it would admit anyone; use `*` if that is meant.
    /// `*` must stand alone. The error gives the bad entry's position, not its text.
    pub fn parse(spec: &str) -> std::result::Result<Origins, String> {
        match spec.trim() {
            "" => Ok(Origins::None),
            "*" => Ok(Origins::Any),
            list => list
                .split(',')
                .enumerate()
                .map(|(n, entry)| {
                    match entry.trim() {
                        "" => Err("empty entry (stray comma?)".to_string()),
                        "*" => Err("`*` must stand alone".to_string()),
                        e => serialize_origin(e).map_err(str::to_string),
                    }
                    .map_err(|why| format!("entry {}: {why}", n + 1))
                })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map(Origins::List),
        }
    }

    /// Whether a request's `Origin` value is admitted. A value that is not a valid origin is
    /// never admitted by a list (browsers always send a serialized origin or `null`).
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Origins::None => false,
            Origins::Any => true,
            Origins::List(list) => serialize_origin(origin).is_ok_and(|o| list.contains(&o)),
        }
    }
}

/// The ASCII serialization of an `http`/`https` origin, or why `text` is not one.
fn serialize_origin(text: &str) -> std::result::Result<String, &'static str> {
    let url = Url::parse(text).map_err(|_| "not an origin (`scheme://host[:port]`)")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the scheme must be http or https");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("an origin has no user info");
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("an origin has no path, query or fragment");
    }
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Ok(origin.ascii_serialization()),
        url::Origin::Opaque(_) => Err("not a tuple origin"),
    }
}

/// The origin of the proxy itself, from Spin's `spin-full-url` header
/// (`http://127.0.0.1:3000/api/x?y` gives `http://127.0.0.1:3000`); `None` if unparsable.
pub fn self_origin(full_url: &str) -> Option<String> {
    let url = Url::parse(full_url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Some(origin.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// Whether `origin` is the proxy's own origin. Browsers send `Origin` on same-origin POSTs and
/// some same-origin fetches too (Fetch standard §3.1, "origin-only" serialization), so this
/// must be recognised before the allowlist is consulted.
fn is_same_origin(origin: &str, self_origin: Option<&str>) -> bool {
    let Some(own) = self_origin.and_then(|s| serialize_origin(s).ok()) else {
        return false;
    };
    serialize_origin(origin).is_ok_and(|o| o == own)
}

/// Decides on the `Origin` header of a non-preflight request and returns the CORS headers to
/// add to the response.
///
/// - No `Origin`, or the proxy's own origin (always allowed, so the hosting site can POST to its
///   own contact form with `allowed_origins` empty): `Vary: Origin` if origins are configured,
///   so shared caches keep the cross-origin variant apart; nothing otherwise.
/// - An allowed cross-origin request: `Access-Control-Allow-Origin` echoing the origin exactly as
///   sent (browsers compare it byte-for-byte; echoing instead of `*` works for `Any` too),
///   `Vary: Origin` and `Access-Control-Expose-Headers`.
/// - Anything else, including `null` unless origins are `Any`: `Error::OriginNotAllowed`.
pub fn check_origin(
    origins: &Origins,
    origin: Option<&str>,
    self_origin: Option<&str>,
) -> Result<Vec<(&'static str, String)>> {
    let vary_only = || match origins {
        Origins::None => Vec::new(),
        _ => vec![("vary", "Origin".to_string())],
    };
    let Some(origin) = origin else {
        return Ok(vary_only());
    };
    if is_same_origin(origin, self_origin) {
        return Ok(vary_only());
    }
    if origins.allows(origin) {
        return Ok(vec![
            ("access-control-allow-origin", origin.to_string()),
            ("vary", "Origin".to_string()),
            ("access-control-expose-headers", EXPOSED_HEADERS.to_string()),
        ]);
    }
    Err(Error::OriginNotAllowed {
        origin: origin.to_string(),
    })
}

/// Answers a CORS preflight (Fetch standard §3.2.2, §4.8). Call it for `OPTIONS` requests only:
/// it cannot see the method itself.
///
/// Returns `None` when the request is not a preflight (no `Origin` or no
/// `Access-Control-Request-Method`); such a plain OPTIONS goes through normal route checking.
/// Otherwise: an origin that is neither allowed nor the proxy's own is
/// `Error::OriginNotAllowed`; a requested method that `routes` refuses on `path` is the error
/// `Routes::check` gives; else the headers for a 204. `Access-Control-Allow-Methods` lists
/// `routes.methods_for(path)`, with a `*` route answered by naming the requested method (a
/// literal `*` would also be valid for requests without credentials, but naming it works in
/// every browser). `Access-Control-Allow-Headers` lists, lowercased, the requested headers the
/// proxy would forward (`upstream::is_forwardable_request_header`); it is omitted when none are,
/// so the browser refuses a request whose extra headers would be dropped anyway.
pub fn preflight(
    origins: &Origins,
    routes: &Routes,
    path: &str,
    origin: Option<&str>,
    request_method: Option<&str>,
    request_headers: Option<&str>,
    self_origin: Option<&str>,
) -> Option<Result<Vec<(&'static str, String)>>> {
    let (Some(origin), Some(request_method)) = (origin, request_method) else {
        return None;
    };
    Some(answer_preflight(
        origins,
        routes,
        path,
        origin,
        request_method.trim(),
        request_headers,
        self_origin,
    ))
}

fn answer_preflight(
    origins: &Origins,
    routes: &Routes,
    path: &str,
    origin: &str,
    method: &str,
    request_headers: Option<&str>,
    self_origin: Option<&str>,
) -> Result<Vec<(&'static str, String)>> {
    if !origins.allows(origin) && !is_same_origin(origin, self_origin) {
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
        if upstream::is_forwardable_request_header(&name) && !allowed_headers.contains(&name) {
            allowed_headers.push(name);
        }
    }

    let mut headers = vec![
        ("access-control-allow-origin", origin.to_string()),
        ("access-control-allow-methods", methods.join(", ")),
    ];
    if !allowed_headers.is_empty() {
        headers.push(("access-control-allow-headers", allowed_headers.join(", ")));
    }
    headers.push(("access-control-max-age", PREFLIGHT_MAX_AGE_SECS.to_string()));
    headers.push((
        "vary",
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers".to_string(),
    ));
    Ok(headers)
}

/// Refuses a request whose declared `Content-Length` exceeds `max` before any byte is read.
///
/// `None` (no header, e.g. a chunked body) passes: the caller must then cap the body while
/// streaming it. RFC 9110 §8.6 defines the value as `1*DIGIT`, so anything else (empty, a sign,
/// a list like `5, 5`) is `Error::BadRequest`; a value too large for `u64` is simply too large.
pub fn check_content_length(content_length: Option<&str>, max: u64) -> Result<()> {
    let Some(value) = content_length.map(str::trim) else {
        return Ok(());
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::BadRequest {
            reason: "Content-Length is not a number".to_string(),
        });
    }
    match value.parse::<u64>() {
        Ok(length) if length <= max => Ok(()),
        _ => Err(Error::BodyTooLarge { limit: max }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(spec: &str) -> Routes {
        Routes::parse(spec).unwrap()
    }

    fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn literal_patterns_match_exactly_and_case_sensitively() {
        let r = routes("POST /api/v1/content/contact_form");
        assert!(r.check("POST", "/api/v1/content/contact_form").is_ok());
        assert!(r.check("POST", "/api/v1/content/contact_form/").is_ok());
        assert!(r.check("POST", "/api/v1/content/Contact_form").is_err());
        assert!(r.check("POST", "/api/v1/content").is_err());
        assert!(r.check("POST", "/api/v1/content/contact_form/x").is_err());
    }

    #[test]
    fn single_star_matches_exactly_one_segment() {
        let r = routes("GET /images/*/download");
        assert!(r.check("GET", "/images/123/download").is_ok());
        assert!(r.check("GET", "/images/download").is_err());
        assert!(r.check("GET", "/images//download").is_err());
        assert!(r.check("GET", "/images/1/2/download").is_err());
    }

    #[test]
    fn double_star_matches_zero_or_more_segments() {
        let r = routes("GET /search/**");
        for path in [
            "/search",
            "/search/",
            "/search/images",
            "/search/images/creative/x",
        ] {
            assert!(r.check("GET", path).is_ok(), "{path}");
        }
        assert!(r.check("GET", "/searches").is_err());
        assert!(r.check("GET", "/").is_err());
        let all = routes("GET /**");
        assert!(all.check("GET", "").is_ok());
        assert!(all.check("GET", "/").is_ok());
        assert!(all.check("GET", "/a/b/c").is_ok());
    }

    #[test]
    fn root_pattern_matches_only_the_root() {
        let r = routes("GET /");
        assert!(r.check("GET", "").is_ok());
        assert!(r.check("GET", "/").is_ok());
        assert!(r.check("GET", "/x").is_err());
    }

    #[test]
    fn literals_compare_in_canonical_percent_encoding() {
        let r = routes("GET /a%20b/%7euser/x%3dy/ü");
        assert!(r.check("GET", "/a%20b/~user/x%3Dy/%C3%BC").is_ok());
        assert!(r.check("GET", "/a%20b/~user/x=y/%C3%BC").is_err());
    }

    #[test]
    fn unknown_path_is_route_not_allowed() {
        let r = routes("GET /search/**");
        assert_eq!(
            r.check("GET", "/admin"),
            Err(Error::RouteNotAllowed {
                method: "GET".into(),
                path: "/admin".into()
            })
        );
    }

    #[test]
    fn method_mismatch_is_405_with_sorted_allow_list() {
        let r = routes("POST /form, GET /**, PUT /form, post /form");
        assert_eq!(
            r.check("DELETE", "/form"),
            Err(Error::MethodNotAllowed {
                method: "DELETE".into(),
                allow: vec!["GET".into(), "HEAD".into(), "POST".into(), "PUT".into()]
            })
        );
        assert_eq!(r.methods_for("/other"), ["GET", "HEAD"]);
        assert!(r.methods_for("/").contains(&"GET".to_string()));
    }

    #[test]
    fn head_is_allowed_wherever_get_is() {
        let r = routes("GET /a, POST /b");
        assert!(r.check("HEAD", "/a").is_ok());
        assert!(matches!(
            r.check("HEAD", "/b"),
            Err(Error::MethodNotAllowed { .. })
        ));
    }

    #[test]
    fn star_method_allows_any_method() {
        let r = routes("* /webhook, GET /**");
        for method in ["GET", "POST", "DELETE", "PATCH", "PROPFIND"] {
            assert!(r.check(method, "/webhook").is_ok(), "{method}");
        }
        assert_eq!(r.methods_for("/webhook"), ["*", "GET", "HEAD"]);
    }

    #[test]
    fn methods_compare_case_sensitively_after_uppercasing_the_pattern() {
        let r = routes("patch /x");
        assert!(r.check("PATCH", "/x").is_ok());
        assert!(r.check("patch", "/x").is_err());
    }

    #[test]
    fn tolerates_whitespace_around_items() {
        let r = routes("  GET   /a ,\tPOST /b  ");
        assert!(r.check("GET", "/a").is_ok());
        assert!(r.check("POST", "/b").is_ok());
    }

    #[test]
    fn refuses_malformed_route_lists() {
        for bad in [
            "",
            "GET /a,",
            ",GET /a",
            "GET /a,,POST /b",
            "GET",
            "/a",
            "GET a/b",
            "GET /a /b",
            "GE(T /a",
            "GET /**/x",
            "GET /a/**/**",
            "GET /a*",
            "GET /a//b",
            "GET /../x",
            "GET /a%2fb",
            "GET /%zz",
        ] {
            assert!(Routes::parse(bad).is_err(), "{bad:?} parsed");
        }
        let err = Routes::parse("GET /ok, DELETE nope").unwrap_err();
        assert!(err.starts_with("item 2:"), "{err}");
        assert!(!err.contains("nope"), "values are never shown: {err}");
    }

    #[test]
    fn parses_origin_lists_none_any_and_entries() {
        assert_eq!(Origins::parse("").unwrap(), Origins::None);
        assert_eq!(Origins::parse("  ").unwrap(), Origins::None);
        assert_eq!(Origins::parse("*").unwrap(), Origins::Any);
        assert_eq!(
            Origins::parse("https://Site.Example:443/, http://localhost:8000").unwrap(),
            Origins::List(vec![
                "https://site.example".into(),
                "http://localhost:8000".into()
            ])
        );
    }

    #[test]
    fn refuses_bad_origin_entries_by_position() {
        for bad in [
            "site.example",
            "ftp://site.example",
            "https://site.example/path",
            "https://site.example?q",
            "https://user@site.example",
            "null",
            "https://a.example,,https://b.example",
            "https://a.example, *",
            "file:///etc",
        ] {
            assert!(Origins::parse(bad).is_err(), "{bad:?} parsed");
        }
        let err = Origins::parse("https://ok.example, https://bad.example/x").unwrap_err();
        assert!(err.starts_with("entry 2:"), "{err}");
        assert!(
            !err.contains("bad.example"),
            "values are never shown: {err}"
        );
    }

    #[test]
    fn origin_comparison_normalises_case_and_default_ports() {
        let list = Origins::parse("https://site.example, http://site.example:8080").unwrap();
        assert!(list.allows("https://site.example"));
        assert!(list.allows("HTTPS://SITE.EXAMPLE:443"));
        assert!(list.allows("http://site.example:8080"));
        assert!(!list.allows("http://site.example"));
        assert!(!list.allows("https://site.example:8443"));
        assert!(!list.allows("https://evil.site.example"));
        assert!(!list.allows("https://site.example.evil"));
        assert!(!list.allows("null"));
        assert!(!list.allows(""));
        assert!(!Origins::None.allows("https://site.example"));
        assert!(Origins::Any.allows("null"));
    }

    #[test]
    fn self_origin_comes_from_the_full_url() {
        assert_eq!(
            self_origin("http://127.0.0.1:3000/api/x?y").as_deref(),
            Some("http://127.0.0.1:3000")
        );
        assert_eq!(
            self_origin("https://App.Example:443/a").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(self_origin("not a url"), None);
        assert_eq!(self_origin("data:text/plain,x"), None);
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
            Some("x-credential-proxy-token, etag, content-range, retry-after")
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
            Ok(vec![("vary", "Origin".to_string())])
        );
    }

    #[test]
    fn no_origin_header_adds_vary_only_when_origins_are_configured() {
        assert_eq!(check_origin(&Origins::None, None, None), Ok(vec![]));
        assert_eq!(
            check_origin(&Origins::Any, None, None),
            Ok(vec![("vary", "Origin".to_string())])
        );
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

    #[test]
    fn content_length_under_or_equal_to_the_limit_passes() {
        assert_eq!(check_content_length(None, 10), Ok(()));
        assert_eq!(check_content_length(Some("0"), 10), Ok(()));
        assert_eq!(check_content_length(Some("9"), 10), Ok(()));
        assert_eq!(check_content_length(Some(" 10 "), 10), Ok(()));
    }

    #[test]
    fn content_length_over_the_limit_is_body_too_large() {
        assert_eq!(
            check_content_length(Some("11"), 10),
            Err(Error::BodyTooLarge { limit: 10 })
        );
        assert_eq!(
            check_content_length(Some("99999999999999999999999999"), 10),
            Err(Error::BodyTooLarge { limit: 10 })
        );
    }

    #[test]
    fn garbage_content_length_is_bad_request() {
        for bad in ["", "abc", "-1", "+5", "5, 5", "1e3", "0x10"] {
            assert!(
                matches!(
                    check_content_length(Some(bad), 10),
                    Err(Error::BadRequest { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
