//! Header rules: which client headers go upstream (an allowlist), which upstream headers come
//! back (a denylist), the declared body length, and the first/last-value reads that Spin's
//! header order calls for.
//!
//! Everything here takes and returns `http::HeaderMap`s and plain values. It does not add
//! credentials (the decision does), does not scrub secrets from answers (`answer` does) and
//! does not count body bytes while streaming: a body without `Content-Length` is capped by the
//! edge as it reads.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::{Error, Result};

/// Request headers a client may send through (compared ASCII-case-insensitively). Content
/// negotiation, conditional requests, ranges and body description: what a browser's `fetch`
/// needs for an API. Everything else, notably `cookie`, `authorization`, `origin`, `referer`,
/// `host`, `spin-*`, `forwarded`/`x-forwarded-*` and hop-by-hop headers, stays behind, because it
/// either carries the site's own credentials or lets the client speak for the proxy.
const FORWARDED_REQUEST_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "content-encoding",
    "content-language",
    "content-length",
    "content-type",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "range",
    "x-request-id",
];

/// Response headers that never reach the browser, exact names (lowercase).
const DROPPED_RESPONSE_HEADERS: &[&str] = &[
    // Hop-by-hop, RFC 9110 §7.6.1 (and RFC 9112 §9.6 / RFC 7230 §6.1 for `keep-alive`, `te`).
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    // wasi:http refuses these in a response the component builds (forbidden fields).
    "host",
    "http2-settings",
    // The upstream's cookies would land on the site's origin.
    "set-cookie",
    "set-cookie2",
    // Would advertise the upstream's alternative services as the proxy's own.
    "alt-svc",
    // Origin-wide browser policies: served through the proxy they would bind the *site's*
    // origin (force HTTPS on its subdomains, wipe its storage, report its users' network errors
    // to the API vendor), which a third-party API has no business deciding.
    "strict-transport-security",
    "clear-site-data",
    "nel",
    "report-to",
    // Replaced by the proxy's own (`answer`): the upstream's were written for its origin and may
    // be weaker. A report-only policy would send the site's violation reports to the vendor.
    "content-security-policy",
    "content-security-policy-report-only",
    "x-content-type-options",
];

/// Response header name prefixes that never reach the browser: `proxy-*` (hop-by-hop and
/// forbidden by wasi:http), `access-control-*` (the proxy answers CORS itself; the upstream's
/// view of origins is irrelevant), `spin-*` (runtime-internal).
const DROPPED_RESPONSE_PREFIXES: &[&str] = &["proxy-", "access-control-", "spin-"];

/// The LAST value of a header as text. Spin appends its `spin-*` headers after the client's, so
/// a client that sends its own `spin-path-info` or `spin-client-addr` only adds an earlier one.
pub fn last<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get_all(name).iter().next_back().and_then(text)
}

/// The FIRST value as text, for headers the client owns (`Origin`, `Content-Length`).
pub fn first<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(text)
}

/// A value as UTF-8 text (not only visible ASCII: a raw `ü` in a path stays readable).
fn text(value: &HeaderValue) -> Option<&str> {
    std::str::from_utf8(value.as_bytes()).ok()
}

/// Whether a client request header may be forwarded upstream (the allowlist above).
pub fn is_forwardable_request_header(name: &str) -> bool {
    FORWARDED_REQUEST_HEADERS
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(name))
}

/// The client headers to send upstream: allowlisted names only, minus `key_header` (the
/// configured `api_key_header`, so a client cannot supply its own key) and minus any header the
/// client's `Connection` names (RFC 9110 §7.6.1). Values are untouched bytes; repeated headers
/// are all kept, in order. A `Content-Length` next to a `Transfer-Encoding` is dropped too
/// (RFC 9112 §6.1: the encoding overrides it and an intermediary must remove it): it would tell
/// the upstream a length the body does not have; the edge sets the real one.
pub fn forward_request_headers(headers: &HeaderMap, key_header: Option<&HeaderName>) -> HeaderMap {
    let connection_named = connection_tokens(headers);
    let length_overridden = headers.contains_key(http::header::TRANSFER_ENCODING);
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        if is_forwardable_request_header(name.as_str())
            && key_header != Some(name)
            && !connection_named.iter().any(|n| n == name.as_str())
            && !(length_overridden && name == http::header::CONTENT_LENGTH)
        {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The upstream's response headers that may reach the browser: everything except hop-by-hop
/// headers (including those the upstream's `Connection` names), what wasi:http forbids in a
/// component-built response, cookies, CORS headers, `alt-svc`, `spin-*` and the origin-wide
/// browser policies listed above. Values and the order of each name's values are untouched.
pub fn filter_response_headers(headers: &HeaderMap) -> HeaderMap {
    let connection_named = connection_tokens(headers);
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        let name_text = name.as_str();
        let dropped = DROPPED_RESPONSE_HEADERS.contains(&name_text)
            || DROPPED_RESPONSE_PREFIXES
                .iter()
                .any(|prefix| name_text.starts_with(prefix))
            || connection_named.iter().any(|n| n == name_text);
        if !dropped {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Lowercased header names listed in every `Connection` header (RFC 9110 §7.6.1: a
/// comma-separated list of option names, each of which is hop-by-hop for this message).
fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .flat_map(|value| {
            String::from_utf8_lossy(value.as_bytes())
                .split(',')
                .map(|token| token.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|token| !token.is_empty())
        .collect()
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

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn names(out: &HeaderMap) -> Vec<&str> {
        out.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn forwards_only_allowlisted_request_headers() {
        let input = [
            ("Accept", "application/json"),
            ("Cookie", "session=1"),
            ("Authorization", "Bearer client"),
            ("Proxy-Authorization", "x"),
            ("Origin", "https://site.example"),
            ("Referer", "https://site.example/p"),
            ("Host", "proxy"),
            ("spin-client-addr", "1.2.3.4"),
            ("Forwarded", "for=1.2.3.4"),
            ("X-Forwarded-For", "1.2.3.4"),
            ("Connection", "keep-alive"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("TE", "trailers"),
            ("Upgrade", "h2c"),
            ("If-None-Match", "\"abc\""),
            ("Range", "bytes=0-9"),
            ("Content-Type", "application/json"),
            ("X-Request-Id", "r1"),
        ];
        let out = forward_request_headers(&headers(&input), None);
        assert_eq!(
            names(&out),
            [
                "accept",
                "if-none-match",
                "range",
                "content-type",
                "x-request-id"
            ]
        );
        assert_eq!(out["if-none-match"].as_bytes(), b"\"abc\"");
    }

    #[test]
    fn drops_the_configured_key_header_from_the_client() {
        let input = [("X-Request-Id", "mine"), ("Accept", "*/*")];
        let out = forward_request_headers(
            &headers(&input),
            Some(&HeaderName::from_static("x-request-id")),
        );
        assert_eq!(names(&out), ["accept"]);
    }

    #[test]
    fn keeps_repeated_request_headers_in_order_with_raw_values() {
        let raw: &[u8] = b"text/html\xff";
        let mut input = HeaderMap::new();
        for (name, value) in [("accept", &b"a/b"[..]), ("ACCEPT", raw), ("Accept", b"c/d")] {
            input.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let out = forward_request_headers(&input, None);
        let values: Vec<&[u8]> = out.iter().map(|(_, v)| v.as_bytes()).collect();
        assert_eq!(values, [b"a/b".as_slice(), raw, b"c/d".as_slice()]);
    }

    #[test]
    fn drops_a_content_length_that_transfer_encoding_overrides() {
        let both = [
            ("Content-Length", "3"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Type", "text/plain"),
        ];
        assert_eq!(
            names(&forward_request_headers(&headers(&both), None)),
            ["content-type"]
        );
        let length_only = [("Content-Length", "3")];
        assert_eq!(
            names(&forward_request_headers(&headers(&length_only), None)),
            ["content-length"]
        );
    }

    #[test]
    fn drops_request_headers_named_in_connection() {
        let input = [
            ("Connection", "Cache-Control, x"),
            ("Cache-Control", "no-cache"),
        ];
        assert!(forward_request_headers(&headers(&input), None).is_empty());
    }

    #[test]
    fn filters_response_headers_by_denylist() {
        let input = [
            ("Content-Type", "application/json"),
            ("Connection", "close, X-Hop"),
            ("X-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("Proxy-Authenticate", "Basic"),
            ("Transfer-Encoding", "chunked"),
            ("Trailer", "x"),
            ("TE", "trailers"),
            ("Upgrade", "h2c"),
            ("Host", "api"),
            ("HTTP2-Settings", "x"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie2", "a=1"),
            ("Access-Control-Allow-Origin", "*"),
            ("Alt-Svc", "h3=\":443\""),
            ("spin-whatever", "x"),
            ("Strict-Transport-Security", "max-age=1; includeSubDomains"),
            ("Clear-Site-Data", "\"*\""),
            ("ETag", "\"v1\""),
            ("Cache-Control", "max-age=60"),
            ("Content-Range", "bytes 0-9/100"),
            ("WWW-Authenticate", "Bearer"),
            ("Link", "<a>; rel=next"),
            ("Link", "<b>; rel=prev"),
        ];
        let out = filter_response_headers(&headers(&input));
        assert_eq!(
            names(&out),
            [
                "content-type",
                "etag",
                "cache-control",
                "content-range",
                "www-authenticate",
                "link",
                "link"
            ]
        );
        let links: Vec<&[u8]> = out.get_all("link").iter().map(|v| v.as_bytes()).collect();
        assert_eq!(links, [&b"<a>; rel=next"[..], b"<b>; rel=prev"]);
    }

    #[test]
    fn allowlist_matches_names_case_insensitively() {
        assert!(is_forwardable_request_header("Content-Type"));
        assert!(is_forwardable_request_header("IF-NONE-MATCH"));
        assert!(!is_forwardable_request_header("cookie"));
        assert!(!is_forwardable_request_header("accept "));
        assert!(!is_forwardable_request_header(""));
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
