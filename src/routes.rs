//! Route patterns: the parsed `allowed_routes` list and the check of one method and path
//! against it.
//!
//! This is half of what keeps the proxy from being an open relay (CORS in `cors` is the other).
//! Patterns compare against canonical paths from `path::normalize_path`, and their literals are
//! canonicalised by the same `path::canonical_segment`. This module does not normalise request
//! paths, does not look at origins and does not build answers; a refused route is an `Error`
//! that `answer` turns into JSON.

use crate::error::{Error, Result};
use crate::path::canonical_segment;

/// The parsed `allowed_routes` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    routes: Vec<Route>,
    /// `!`-prefixed items: refused even where `routes` allows, and never advertised.
    exclusions: Vec<Route>,
}

/// Methods never forwarded, whatever the routes say (compared ASCII-case-insensitively, because
/// some servers uppercase an extension method `trace` before dispatching it). TRACE echoes the
/// request, credentials included (RFC 9110 §9.3.8 tells clients not to send them, but the proxy
/// adds them); TRACK is IIS's TRACE; CONNECT asks for a tunnel, which an API proxy never opens.
const NEVER_FORWARDED: &[&str] = &["TRACE", "TRACK", "CONNECT"];

/// What a `*` route is advertised as in a 405's `Allow`: the methods of RFC 9110 §9 and PATCH
/// (RFC 5789), minus the never-forwarded ones. The preflight names the requested method instead.
const ANY_METHOD_ADVERTISED: &[&str] =
    &["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];

/// Whether `method` is one the proxy never forwards ([`NEVER_FORWARDED`]).
pub fn is_never_forwarded(method: &str) -> bool {
    NEVER_FORWARDED
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
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
    /// Canonical form (`path::canonical_segment`), compared byte-for-byte.
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
    /// canonical percent-encoding as request paths (`path::normalize_path`), so the pattern
    /// `/%7euser/ü` matches the request path `/~user/%C3%BC`, while `=` and `%3D` stay distinct
    /// as RFC 3986 §2.2 says they may be; a literal that a request path could never have (`..`,
    /// `%2F`, control characters) is refused. Whitespace ends the pattern, so a space inside a
    /// literal is written `%20`. A trailing `/` on a pattern is ignored, as it is
    /// on request paths when matching. On error the reason gives the offending item's position (never its text: values are not shown); the caller
    /// wraps it into `Error::ConfigInvalid` for `allowed_routes`.
    ///
    /// An item starting with `!` is an exclusion, e.g.
    /// `GET /api/v1/content/**, !GET /api/v1/content/contact_form/**`: same syntax, evaluated
    /// after the allows wherever it sits in the list (see [`Routes::check`]). A list of only
    /// exclusions allows nothing and is refused.
    pub fn parse(spec: &str) -> std::result::Result<Routes, String> {
        let mut routes = Vec::new();
        let mut exclusions = Vec::new();
        for (n, item) in spec.split(',').enumerate() {
            let item = item.trim();
            let (list, item) = match item.strip_prefix('!') {
                Some(excluded) => (&mut exclusions, excluded.trim_start()),
                None => (&mut routes, item),
            };
            let route = if item.starts_with('!') {
                // `!` is a tchar, but a method spelled `!GET` is surely a typo.
                Err("`!` may only appear once, before the method".to_string())
            } else {
                parse_route(item)
            };
            list.push(route.map_err(|why| format!("item {}: {why}", n + 1))?);
        }
        if routes.is_empty() {
            return Err("only exclusions (`!`): nothing is allowed".to_string());
        }
        Ok(Routes { routes, exclusions })
    }

    /// Checks `method` on `path` (a normalised path from `path::normalize_path`; `""` is
    /// the component's root, like `/`).
    ///
    /// Methods compare case-sensitively (RFC 9110 §9.1): a request `patch` does not match a
    /// pattern `PATCH`. HEAD is allowed wherever GET is (RFC 9110 §9.3.2: HEAD is GET without
    /// the body). When some pattern matches the path but none allows the method, the error
    /// carries the methods that are allowed there, for the 405's `Allow` header.
    ///
    /// Then the exclusions: a method and path that an allow admits but an exclusion matches is
    /// `RouteNotAllowed` (403), like a path no pattern matches. An exclusion of GET also
    /// excludes HEAD. Excluded methods are never listed in `Allow` ([`Routes::methods_for`]),
    /// and a path whose every allowed method is excluded answers 403, not a 405 with an empty
    /// `Allow` that would confirm the path exists.
    ///
    /// TRACE, TRACK and CONNECT, in any case, are `MethodNotAllowed` (405) on every path,
    /// whatever the routes say (even `* /**`): they are never forwarded.
    pub fn check(&self, method: &str, path: &str) -> Result<()> {
        if is_never_forwarded(method) {
            return Err(Error::MethodNotAllowed {
                method: method.to_string(),
                allow: self.advertised(path),
            });
        }
        let segments = path_segments(path);
        let mut path_matched = false;
        for route in self.routes.iter().filter(|r| r.matches(&segments)) {
            if route.allows_method(method) {
                if self.is_excluded(method, &segments) {
                    return Err(Error::RouteNotAllowed {
                        method: method.to_string(),
                        path: path.to_string(),
                    });
                }
                return Ok(());
            }
            path_matched = true;
        }
        let allow = self.advertised(path);
        if path_matched && !allow.is_empty() {
            Err(Error::MethodNotAllowed {
                method: method.to_string(),
                allow,
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
    /// the requested method; `check` never reports a 405 when it is present). Methods an
    /// exclusion refuses on `path` and the never-forwarded ones are left out.
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
        // `*` is only dropped by a `!* …` exclusion: `is_excluded("*")` is true for no other.
        methods.retain(|m| !is_never_forwarded(m) && !self.is_excluded(m, &segments));
        methods.sort();
        methods.dedup();
        methods
    }

    /// [`Routes::methods_for`] for an `Allow` header: a `*` route stands for
    /// [`ANY_METHOD_ADVERTISED`] minus what is excluded on `path`.
    fn advertised(&self, path: &str) -> Vec<String> {
        let segments = path_segments(path);
        let mut methods = self.methods_for(path);
        if methods.iter().any(|m| m == "*") {
            methods.retain(|m| m != "*");
            methods.extend(
                ANY_METHOD_ADVERTISED
                    .iter()
                    .filter(|m| !self.is_excluded(m, &segments))
                    .map(|m| m.to_string()),
            );
            methods.sort();
            methods.dedup();
        }
        methods
    }

    fn is_excluded(&self, method: &str, segments: &[&str]) -> bool {
        self.exclusions
            .iter()
            .any(|e| e.matches(segments) && e.allows_method(method))
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
                let literal = canonical_segment(p)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(spec: &str) -> Routes {
        Routes::parse(spec).unwrap()
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
    fn trace_track_and_connect_are_405_whatever_the_routes_say() {
        let any = routes("* /**");
        for method in ["TRACE", "TRACK", "CONNECT", "trace", "Connect"] {
            match any.check(method, "/x") {
                Err(Error::MethodNotAllowed { allow, .. }) => assert_eq!(
                    allow,
                    ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"],
                    "{method}"
                ),
                other => panic!("{method}: {other:?}"),
            }
        }
        let listed = routes("TRACE /x, CONNECT /**, GET /x");
        assert!(matches!(
            listed.check("TRACE", "/x"),
            Err(Error::MethodNotAllowed { .. })
        ));
        assert_eq!(listed.methods_for("/x"), ["GET", "HEAD"]);
        // Even on a path no pattern matches: 405, never 403 or a forward.
        assert_eq!(
            routes("GET /a").check("CONNECT", "/b"),
            Err(Error::MethodNotAllowed {
                method: "CONNECT".into(),
                allow: vec![]
            })
        );
    }

    /// The shipped flotiq list: content readable, contact-form submissions write-only.
    const FLOTIQ: &str = "GET /api/v1/content/**, POST /api/v1/content/contact_form, \
                          !GET /api/v1/content/contact_form/**";

    #[test]
    fn exclusions_refuse_what_the_allows_admit() {
        let r = routes(FLOTIQ);
        for path in [
            "/api/v1/content/contact_form",
            "/api/v1/content/contact_form/",
            "/api/v1/content/contact_form/abc-1",
            "/api/v1/content/contact_form/abc-1/x",
        ] {
            for method in ["GET", "HEAD"] {
                assert_eq!(
                    r.check(method, path),
                    Err(Error::RouteNotAllowed {
                        method: method.into(),
                        path: path.into()
                    }),
                    "{method} {path}"
                );
            }
        }
        assert!(r.check("POST", "/api/v1/content/contact_form").is_ok());
        assert!(r.check("GET", "/api/v1/content/blog").is_ok());
        assert!(r.check("GET", "/api/v1/content/blog/1").is_ok());
        assert!(r.check("GET", "/api/v1/content/contact_formx").is_ok());
        assert!(r.check("GET", "/api/v1/content").is_ok());
    }

    #[test]
    fn excluded_methods_are_never_advertised() {
        let r = routes(FLOTIQ);
        assert_eq!(r.methods_for("/api/v1/content/contact_form"), ["POST"]);
        assert_eq!(
            r.check("DELETE", "/api/v1/content/contact_form"),
            Err(Error::MethodNotAllowed {
                method: "DELETE".into(),
                allow: vec!["POST".into()]
            })
        );
        // Every allowed method excluded: the path is not confirmed by a 405.
        assert!(r.methods_for("/api/v1/content/contact_form/1").is_empty());
        assert!(matches!(
            r.check("DELETE", "/api/v1/content/contact_form/1"),
            Err(Error::RouteNotAllowed { .. })
        ));
        let star = routes("* /hook, !DELETE /hook, !* /hook/secret");
        assert_eq!(star.methods_for("/hook"), ["*"]);
        assert!(matches!(
            star.check("DELETE", "/hook"),
            Err(Error::RouteNotAllowed { .. })
        ));
        assert!(star.check("PUT", "/hook").is_ok());
        match star.check("TRACE", "/hook") {
            Err(Error::MethodNotAllowed { allow, .. }) => {
                assert!(!allow.contains(&"DELETE".to_string()), "{allow:?}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_exclusion_applies_wherever_it_sits_and_may_be_spaced() {
        let r = routes("! GET /a/b, GET /a/**, POST /a/b");
        assert!(matches!(
            r.check("GET", "/a/b"),
            Err(Error::RouteNotAllowed { .. })
        ));
        assert!(r.check("POST", "/a/b").is_ok());
        assert!(r.check("GET", "/a/c").is_ok());
        // An exclusion of HEAD leaves GET alone.
        let head = routes("GET /x, !HEAD /x");
        assert!(head.check("GET", "/x").is_ok());
        assert!(head.check("HEAD", "/x").is_err());
    }

    #[test]
    fn refuses_lists_of_only_exclusions_and_bad_exclusions() {
        for bad in [
            "!GET /a",
            "GET /a, !",
            "GET /a, !GET",
            "GET /a, !!GET /b",
            "GET /a, !GET a",
        ] {
            assert!(Routes::parse(bad).is_err(), "{bad:?} parsed");
        }
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
}
