//! Everything that turns a checked browser request into the upstream call's URL and headers:
//! path normalisation, URL building under `upstream_url`, and the header allowlist (request) and
//! denylist (response).
//!
//! The path is where a proxy gets escaped: `..`, percent-encoded dots and slashes, backslashes and
//! overlong UTF-8 have all been used to walk out of a prefix. So `normalize_path` refuses every
//! ambiguous form instead of trying to "fix" it, and `build_url` verifies the finished URL again
//! (scheme, host, port, path prefix) rather than trusting the normaliser. This module does not
//! decide whether a route or origin is allowed (see `policy`), does not read Spin headers or
//! variables, and never sees the token; the only secret it handles is the `api_key_query` value,
//! which it writes into the URL and never into an error.

use crate::error::{Error, Result};
use url::Url;

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
];

/// Response header name prefixes that never reach the browser: `proxy-*` (hop-by-hop and
/// forbidden by wasi:http), `access-control-*` (the proxy answers CORS itself; the upstream's
/// view of origins is irrelevant), `spin-*` (runtime-internal).
const DROPPED_RESPONSE_PREFIXES: &[&str] = &["proxy-", "access-control-", "spin-"];

/// Normalises Spin's `spin-path-info` into a canonical path, or refuses it.
///
/// `raw` is the part of the request path after the component's route, percent-encoded as the
/// client sent it. The result is `""` when `raw` is empty, so that `build_url` hits
/// `upstream_url` itself without adding a slash; otherwise it starts with `/`, empty segments
/// (`//`) are collapsed, and one trailing `/` is kept if the client sent one, because APIs differ
/// on `/x` versus `/x/`.
///
/// Each segment is rewritten in the canonical form of RFC 3986 §6.2.2: percent-encodings of
/// unreserved characters are decoded, every other escape is kept with uppercase hex, raw
/// characters that are not `pchar` (space, `"`, `?`, `#`, non-ASCII, …) are encoded. Nothing is
/// decoded twice, so `%252e` stays the literal segment `%252e`. A `?` or `#` (raw or as `%3F`,
/// `%23`) therefore stays inside its segment as `%3F`/`%23`; it can never start a query or
/// fragment. `@` and `:` are legal `pchar`s and stay: the URL is built with `Url::set_path`, so
/// they cannot reach the authority.
///
/// Refused with `Error::InvalidPath`, because each has been used to escape a prefix:
/// - dot segments `.`/`..` in any encoding (`%2e`, `.%2E`, …), any all-dot segment (`...`:
///   Windows servers strip trailing dots) and dot segments followed by `;params` (`..;x`: Tomcat
///   and Spring drop path parameters before resolving dots);
/// - encoded separators `%2F`/`%5C` and raw `\` (WHATWG URL parsing and many servers treat `\`
///   as `/`);
/// - ASCII control characters, raw or encoded (`%00`, `%0D%0A`: truncation, header splitting);
/// - malformed escapes (`%`, `%4`, `%zz`) and segments that do not decode to valid UTF-8
///   (overlong forms such as `%C0%AE` were decoded to `.` by old servers).
pub fn normalize_path(raw: &str) -> Result<String> {
    if raw.is_empty() {
        return Ok(String::new());
    }
    let mut out = String::with_capacity(raw.len() + 1);
    for segment in raw.split('/').filter(|s| !s.is_empty()) {
        let canonical =
            canonical_segment(segment).map_err(|reason| Error::InvalidPath { reason })?;
        out.push('/');
        out.push_str(&canonical);
    }
    if out.is_empty() || raw.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

/// One path segment (no `/` in it) in canonical form, or why it is refused. Shared with
/// `policy`, which canonicalises route-pattern literals the same way so both sides compare
/// byte-for-byte.
pub(crate) fn canonical_segment(raw: &str) -> std::result::Result<String, String> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let (byte, was_encoded) = match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        i += 3;
                        ((hi << 4) | lo, true)
                    }
                    _ => return Err("malformed percent-encoding".to_string()),
                }
            }
            other => {
                i += 1;
                (other, false)
            }
        };
        match byte {
            b'/' => return Err("encoded `/` in a segment".to_string()),
            b'\\' => return Err("backslash in the path".to_string()),
            b if b.is_ascii_control() => return Err("control character in the path".to_string()),
            _ => {}
        }
        decoded.push(byte);
        if is_unreserved(byte) || (!was_encoded && is_raw_pchar(byte)) {
            out.push(char::from(byte));
        } else {
            push_percent_encoded(&mut out, byte);
        }
    }
    let text =
        std::str::from_utf8(&decoded).map_err(|_| "path segment is not valid UTF-8".to_string())?;
    let before_params = text.split(';').next().unwrap_or(text);
    if !before_params.is_empty() && before_params.bytes().all(|b| b == b'.') {
        return Err("dot segment in the path".to_string());
    }
    Ok(out)
}

/// RFC 3986 §2.3 unreserved characters: decoding their escapes never changes meaning.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The rest of RFC 3986 §3.3 `pchar` (sub-delims, `:`, `@`). Kept raw when raw and encoded when
/// encoded: §2.2 lets `%3D` and `=` mean different things to the server.
fn is_raw_pchar(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b':' | b'@'
    )
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn push_percent_encoded(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0f)]));
}

/// Builds the upstream URL from `base` (`upstream_url`), a path from `normalize_path` and the
/// client's raw query (without `?`).
///
/// The path is set on a clone of `base` with `Url::set_path`, never by string concatenation or
/// `Url::join` (which would read `//evil.com` as a new authority). An empty `path` leaves
/// `base`'s path exactly as configured; otherwise it goes under `base`'s path with any trailing
/// `/` of the prefix dropped (`/v3` and `/v3/` behave the same). The finished URL is verified:
/// same scheme, host, port and userinfo as `base`, and its path is `base`'s prefix or continues
/// it at a segment boundary (`/v3` never accepts `/v3evil`); anything else is
/// `Error::InvalidPath`. This second check does not trust `normalize_path`: `set_path` resolves
/// dot segments and backslashes itself, and the check catches a raw path passed here by mistake.
///
/// Query: `base`'s own query (if any) comes first. Then every client parameter is kept in order,
/// byte-for-byte as sent (not re-encoded; `Url::set_query` only escapes what cannot appear raw,
/// such as space and `#`), except that empty pieces (`&&`) are dropped and a parameter whose
/// form-decoded name equals `key_query`'s name (`api_key`, `api%5Fkey`, repeated or value-less)
/// is removed, so a client can neither override nor duplicate the key. The key is appended last,
/// form-urlencoded; servers that take the last duplicate (PHP) would still see ours. A query
/// with a raw ASCII control character is `Error::BadRequest`: no valid request-target contains
/// one (RFC 9112 §3.2), so it can only be an attempt at request splitting.
///
/// The key value is a secret: it appears only in the returned URL, never in an error.
pub fn build_url(
    base: &Url,
    path: &str,
    query: Option<&str>,
    key_query: Option<(&str, &str)>,
) -> Result<Url> {
    if !path.is_empty() && !path.starts_with('/') {
        return Err(Error::InvalidPath {
            reason: "the path must start with `/`".to_string(),
        });
    }
    let prefix = base.path().trim_end_matches('/');
    let mut url = base.clone();
    url.set_fragment(None);
    if !path.is_empty() {
        url.set_path(&format!("{prefix}{path}"));
    }

    let mut pieces: Vec<&str> = base
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(client) = query {
        if client.bytes().any(|b| b.is_ascii_control()) {
            return Err(Error::BadRequest {
                reason: "control character in the query string".to_string(),
            });
        }
        let key_name = key_query.map(|(name, _)| name);
        pieces.extend(
            client
                .split('&')
                .filter(|p| !p.is_empty())
                .filter(|p| key_name.is_none_or(|k| !param_name_is(p, k))),
        );
    }
    let key_pair = key_query.map(|(name, value)| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair(name, value)
            .finish()
    });
    pieces.extend(key_pair.as_deref());
    if pieces.is_empty() {
        url.set_query(None);
    } else {
        url.set_query(Some(&pieces.join("&")));
    }

    verify_under_base(base, &url)?;
    Ok(url)
}

/// Whether one `name=value` piece of a query has the form-decoded name `name`.
fn param_name_is(piece: &str, name: &str) -> bool {
    form_urlencoded::parse(piece.as_bytes())
        .next()
        .is_some_and(|(n, _)| n == name)
}

fn verify_under_base(base: &Url, url: &Url) -> Result<()> {
    let same_authority = url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default()
        && url.username() == base.username()
        && url.password() == base.password();
    if !same_authority {
        return Err(Error::InvalidPath {
            reason: "the path would leave the upstream host".to_string(),
        });
    }
    let prefix = base.path().trim_end_matches('/');
    let path = url.path();
    let under_prefix = prefix.is_empty()
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if !under_prefix {
        return Err(Error::InvalidPath {
            reason: "the path would leave the upstream path prefix".to_string(),
        });
    }
    Ok(())
}

/// Whether a client request header may be forwarded upstream (the allowlist above).
pub fn is_forwardable_request_header(name: &str) -> bool {
    FORWARDED_REQUEST_HEADERS
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(name))
}

/// The client headers to send upstream: allowlisted names only, minus `key_header` (the
/// configured `api_key_header`, so a client cannot supply its own key) and minus any header the
/// client's `Connection` names (RFC 9110 §7.6.1). Names come back lowercase (field names are
/// case-insensitive, RFC 9110 §5.1, and HTTP/2 requires lowercase); values are untouched bytes;
/// repeated headers are all kept, in order.
pub fn forward_request_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    key_header: Option<&str>,
) -> Vec<(String, Vec<u8>)> {
    let headers: Vec<(&str, &[u8])> = headers.into_iter().collect();
    let connection_named = connection_tokens(&headers);
    headers
        .into_iter()
        .filter(|(name, _)| is_forwardable_request_header(name))
        .filter(|(name, _)| key_header.is_none_or(|k| !k.eq_ignore_ascii_case(name)))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_vec()))
        .filter(|(name, _)| !connection_named.contains(name))
        .collect()
}

/// The upstream's response headers that may reach the browser: everything except hop-by-hop
/// headers (including those the upstream's `Connection` names), what wasi:http forbids in a
/// component-built response, cookies, CORS headers, `alt-svc`, `spin-*` and the origin-wide
/// browser policies listed above. Names come back lowercase; values and order are untouched.
pub fn filter_response_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Vec<(String, Vec<u8>)> {
    let headers: Vec<(&str, &[u8])> = headers.into_iter().collect();
    let connection_named = connection_tokens(&headers);
    headers
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .filter(|(name, _)| {
            !DROPPED_RESPONSE_HEADERS.contains(&name.as_str())
                && !DROPPED_RESPONSE_PREFIXES
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
                && !connection_named.contains(name)
        })
        .map(|(name, value)| (name, value.to_vec()))
        .collect()
}

/// Lowercased header names listed in every `Connection` header (RFC 9110 §7.6.1: a
/// comma-separated list of option names, each of which is hop-by-hop for this message).
fn connection_tokens(headers: &[(&str, &[u8])]) -> Vec<String> {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| {
            String::from_utf8_lossy(value)
                .split(',')
                .map(|token| token.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|token| !token.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://api.example.com/v3").unwrap()
    }

    fn is_invalid_path(result: &Result<impl std::fmt::Debug>) -> bool {
        matches!(result, Err(Error::InvalidPath { .. }))
    }

    /// Either the path is refused, or the URL built from it stays on the upstream's scheme,
    /// host, port and under its `/v3` prefix. Returns a description of the violation, if any.
    fn escapes_upstream(raw: &str) -> Option<String> {
        let path = match normalize_path(raw) {
            Err(Error::InvalidPath { .. }) => return None,
            Err(other) => return Some(format!("unexpected error {other:?}")),
            Ok(path) => path,
        };
        let url = match build_url(&base(), &path, None, None) {
            Err(Error::InvalidPath { .. }) => return None,
            Err(other) => return Some(format!("unexpected error {other:?}")),
            Ok(url) => url,
        };
        let ok = url.scheme() == "https"
            && url.host_str() == Some("api.example.com")
            && url.port_or_known_default() == Some(443)
            && url.username().is_empty()
            && url.password().is_none()
            && url.query().is_none()
            && url.fragment().is_none()
            && (url.path() == "/v3" || url.path().starts_with("/v3/"));
        (!ok).then(|| format!("normalised to {path:?}, built {url}"))
    }

    #[test]
    fn hostile_paths_never_leave_the_upstream_prefix() {
        let long_segments = "/a".repeat(5000);
        let long_segment = format!("/{}", "x".repeat(100_000));
        let long_dots = "/..".repeat(1000);
        let hostile: Vec<&str> = vec![
            "..",
            "/..",
            "/../",
            "/../x",
            "/a/../../b",
            "/a/b/..",
            "/./x",
            "/a/%2e/b",
            "/%2e%2e",
            "/%2E%2e%2f",
            "/%2e%2e/%2e%2e/etc/passwd",
            "/.%2e",
            "/%2e.",
            "/.%2E/x",
            "/%2f",
            "/%2F",
            "/a%2fb",
            "/%5c",
            "/%5C..%5C",
            "\\",
            "/..\\",
            "/..\\..\\x",
            "/a\\b",
            "//evil.com",
            "///evil.com/x",
            "/@evil.com",
            "/:@evil.com",
            "/user:pass@evil",
            "@evil.com",
            "/%00",
            "/a%00b",
            "/%0d%0a",
            "/a\r\nHost: evil.com",
            "/a\tb",
            "/a\u{7f}",
            "/%c0%ae%c0%ae",
            "/%c0%af",
            "/%e0%80%ae",
            "/%ff",
            "/%80",
            "/%",
            "/%2",
            "/%zz",
            "/%u002e%u002e",
            "/%252e%252e",
            "/%252e%252e/%252f",
            "/x?y",
            "/x%3fy",
            "/#frag",
            "/%23frag",
            "/..;/x",
            "/.;x",
            "/...",
            "/....//x",
            "/ü/ñ",
            "/\u{ff0e}\u{ff0e}/x",
            "/%EF%BC%8E%EF%BC%8E/x",
            "/%",
            "/a b/<script>",
            "/https://evil.com",
            "/http:%2f%2fevil.com",
            "/v3evil",
            &long_segments,
            &long_segment,
            &long_dots,
        ];
        assert!(hostile.len() >= 45);
        let failures: Vec<String> = hostile
            .iter()
            .filter_map(|raw| escapes_upstream(raw).map(|why| format!("{raw:?}: {why}")))
            .collect();
        assert!(failures.is_empty(), "escaped:\n{}", failures.join("\n"));
    }

    #[test]
    fn random_paths_never_leave_the_upstream_prefix() {
        // A fixed-seed generator over the pieces attacks are made of: no dependency, same
        // cases every run, and any failure prints the input.
        let pieces = [
            "/", "//", ".", "..", "%2e", "%2E", "%2f", "%5c", "\\", "%", "%2", "%25", "a", "v3",
            "@", ":", "?", "#", ";", "%00", "%c0", "%ae", "evil.com", "%3f", " ", "é", "*",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            let mut raw = String::new();
            for _ in 0..(state % 8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                raw.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if let Some(why) = escapes_upstream(&raw) {
                panic!("{raw:?} escaped: {why}");
            }
        }
    }

    #[test]
    fn refuses_encoded_dot_segments() {
        for raw in [
            "/%2e",
            "/%2E%2e",
            "/.%2e",
            "/%2e./x",
            "/x/%2E%2E/y",
            "/.%2E;v=1",
        ] {
            assert!(is_invalid_path(&normalize_path(raw)), "{raw}");
        }
    }

    #[test]
    fn refuses_encoded_separators_and_backslashes() {
        for raw in ["/a%2fb", "/a%2Fb", "/a%5cb", "/a%5Cb", "/a\\b"] {
            assert!(is_invalid_path(&normalize_path(raw)), "{raw}");
        }
    }

    #[test]
    fn refuses_control_characters_raw_or_encoded() {
        for raw in [
            "/a%00", "/a%0a", "/a%0D%0A", "/a%7f", "/a%1F", "/a\nb", "/a\u{0}b",
        ] {
            assert!(is_invalid_path(&normalize_path(raw)), "{raw}");
        }
    }

    #[test]
    fn refuses_malformed_escapes_and_invalid_utf8() {
        for raw in [
            "/%",
            "/a%4",
            "/%zz",
            "/%c0%ae",
            "/%e0%80%ae",
            "/%80",
            "/%ff",
            "/%ed%a0%80",
        ] {
            assert!(is_invalid_path(&normalize_path(raw)), "{raw}");
        }
    }

    #[test]
    fn refuses_all_dot_segments_and_dot_segments_with_parameters() {
        for raw in ["/...", "/..;/x", "/.;jsessionid=1", "/..%3Bx"] {
            assert!(is_invalid_path(&normalize_path(raw)), "{raw}");
        }
        assert_eq!(
            normalize_path("/.well-known/x..y").unwrap(),
            "/.well-known/x..y"
        );
    }

    #[test]
    fn collapses_empty_segments_and_keeps_one_trailing_slash() {
        assert_eq!(normalize_path("").unwrap(), "");
        assert_eq!(normalize_path("/").unwrap(), "/");
        assert_eq!(normalize_path("//").unwrap(), "/");
        assert_eq!(normalize_path("//evil.com").unwrap(), "/evil.com");
        assert_eq!(normalize_path("///a//b///").unwrap(), "/a/b/");
        assert_eq!(normalize_path("/a/b").unwrap(), "/a/b");
        assert_eq!(normalize_path("a/b").unwrap(), "/a/b");
    }

    #[test]
    fn canonicalises_percent_encoding_without_decoding_twice() {
        assert_eq!(normalize_path("/%252e%252e").unwrap(), "/%252e%252e");
        assert_eq!(normalize_path("/%41%7e%2d").unwrap(), "/A~-");
        assert_eq!(normalize_path("/a%3db=c").unwrap(), "/a%3Db=c");
        assert_eq!(normalize_path("/a b").unwrap(), "/a%20b");
        assert_eq!(normalize_path("/x?y#z").unwrap(), "/x%3Fy%23z");
        assert_eq!(normalize_path("/x%3fy").unwrap(), "/x%3Fy");
        assert_eq!(normalize_path("/ü").unwrap(), "/%C3%BC");
        assert_eq!(normalize_path("/%c3%bc").unwrap(), "/%C3%BC");
        assert_eq!(
            normalize_path("/user:pass@evil").unwrap(),
            "/user:pass@evil"
        );
    }

    #[test]
    fn at_sign_and_colon_cannot_change_the_host() {
        for raw in ["/@evil.com", "/:@evil.com", "/user:pass@evil.com:8080/x"] {
            let url = build_url(&base(), &normalize_path(raw).unwrap(), None, None).unwrap();
            assert_eq!(url.host_str(), Some("api.example.com"), "{raw}");
            assert!(url.path().starts_with("/v3/"), "{raw}");
        }
    }

    #[test]
    fn builds_under_a_prefix_with_or_without_trailing_slash() {
        for base in ["https://api.example.com/v3", "https://api.example.com/v3/"] {
            let base = Url::parse(base).unwrap();
            let url = build_url(&base, "/search/images", None, None).unwrap();
            assert_eq!(url.as_str(), "https://api.example.com/v3/search/images");
        }
        let root = Url::parse("https://api.example.com").unwrap();
        let url = build_url(&root, "/x/", None, None).unwrap();
        assert_eq!(url.as_str(), "https://api.example.com/x/");
    }

    #[test]
    fn empty_path_hits_upstream_url_itself() {
        let url = build_url(&base(), "", None, None).unwrap();
        assert_eq!(url.as_str(), "https://api.example.com/v3");
        let slash = Url::parse("https://api.example.com/v3/").unwrap();
        assert_eq!(build_url(&slash, "", None, None).unwrap().path(), "/v3/");
        assert_eq!(build_url(&base(), "/", None, None).unwrap().path(), "/v3/");
    }

    #[test]
    fn refuses_unnormalised_paths_that_would_leave_the_prefix() {
        assert!(is_invalid_path(&build_url(&base(), "/../x", None, None)));
        assert!(is_invalid_path(&build_url(
            &base(),
            "/%2e%2e/x",
            None,
            None
        )));
        assert!(is_invalid_path(&build_url(&base(), "/..\\x", None, None)));
        assert!(is_invalid_path(&build_url(&base(), "evil", None, None)));
        let url = build_url(&base(), "//evil.com/x", None, None).unwrap();
        assert_eq!(url.host_str(), Some("api.example.com"));
    }

    #[test]
    fn prefix_is_checked_at_a_segment_boundary() {
        let v3 = Url::parse("https://api.example.com/v3").unwrap();
        let evil = Url::parse("https://api.example.com/v3evil").unwrap();
        assert!(verify_under_base(&v3, &evil).is_err());
        let other_port = Url::parse("https://api.example.com:8443/v3/x").unwrap();
        assert!(verify_under_base(&v3, &other_port).is_err());
        let ok = Url::parse("https://api.example.com:443/v3/x").unwrap();
        assert!(verify_under_base(&v3, &ok).is_ok());
    }

    #[test]
    fn keeps_the_client_query_byte_for_byte() {
        let q = "phrase=cat%20dog&sort=a+b&x=%2F&flag&k=%E2%9C%93&z=1;2";
        let url = build_url(&base(), "/search", Some(q), None).unwrap();
        assert_eq!(url.query(), Some(q));
        let url = build_url(&base(), "/search", Some(""), None).unwrap();
        assert_eq!(url.query(), None);
        let url = build_url(&base(), "/search", Some("a=1&&b=2&"), None).unwrap();
        assert_eq!(url.query(), Some("a=1&b=2"));
    }

    #[test]
    fn query_cannot_inject_a_fragment_or_raw_spaces() {
        let url = build_url(&base(), "/s", Some("a=1#frag b"), None).unwrap();
        assert_eq!(url.fragment(), None);
        assert_eq!(url.query(), Some("a=1%23frag%20b"));
    }

    #[test]
    fn refuses_control_characters_in_the_query() {
        let result = build_url(&base(), "/s", Some("a=1\r\nHost: evil"), None);
        assert!(matches!(result, Err(Error::BadRequest { .. })));
    }

    #[test]
    fn removes_client_supplied_key_parameter_and_appends_ours_encoded() {
        let key = Some(("api_key", "a b&c"));
        let q = "api_key=mine&phrase=cat&api%5Fkey=x&api_key&API_KEY=kept&api_key=again";
        let url = build_url(&base(), "/s", Some(q), key).unwrap();
        assert_eq!(url.query(), Some("phrase=cat&API_KEY=kept&api_key=a+b%26c"));
        let pairs: Vec<_> = url.query_pairs().filter(|(n, _)| n == "api_key").collect();
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].1, "a b&c");
    }

    #[test]
    fn appends_the_key_when_the_client_sent_no_query() {
        let url = build_url(&base(), "", None, Some(("key", "s3cr3t"))).unwrap();
        assert_eq!(url.as_str(), "https://api.example.com/v3?key=s3cr3t");
    }

    #[test]
    fn keeps_the_base_query_first() {
        let base = Url::parse("https://api.example.com/v3?format=json#x").unwrap();
        let url = build_url(&base, "/s", Some("q=1"), Some(("k", "v"))).unwrap();
        assert_eq!(
            url.as_str(),
            "https://api.example.com/v3/s?format=json&q=1&k=v"
        );
    }

    #[test]
    fn errors_never_contain_the_key_value() {
        let secret = "TOP-SECRET-KEY";
        let attempts = [
            build_url(&base(), "/../x", Some("a=1"), Some(("api_key", secret))),
            build_url(&base(), "x", None, Some(("api_key", secret))),
            build_url(&base(), "/x", Some("a\u{0}"), Some(("api_key", secret))),
        ];
        for result in attempts {
            let err = result.unwrap_err();
            assert!(!err.to_string().contains(secret));
            assert!(!format!("{err:?}").contains(secret));
            assert!(!String::from_utf8_lossy(&err.body()).contains(secret));
        }
    }

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
        pairs.iter().map(|(n, v)| (*n, v.as_bytes())).collect()
    }

    fn names(out: &[(String, Vec<u8>)]) -> Vec<&str> {
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
        let out = forward_request_headers(headers(&input), None);
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
        assert_eq!(out[1].1, b"\"abc\"");
    }

    #[test]
    fn drops_the_configured_key_header_from_the_client() {
        let input = [("X-Request-Id", "mine"), ("Accept", "*/*")];
        let out = forward_request_headers(headers(&input), Some("x-request-id"));
        assert_eq!(names(&out), ["accept"]);
    }

    #[test]
    fn keeps_repeated_request_headers_in_order_with_raw_values() {
        let raw: &[u8] = b"text/html\xff";
        let input: Vec<(&str, &[u8])> =
            vec![("accept", b"a/b"), ("ACCEPT", raw), ("Accept", b"c/d")];
        let out = forward_request_headers(input, None);
        let values: Vec<&[u8]> = out.iter().map(|(_, v)| v.as_slice()).collect();
        assert_eq!(values, [b"a/b".as_slice(), raw, b"c/d".as_slice()]);
    }

    #[test]
    fn drops_request_headers_named_in_connection() {
        let input = [
            ("Connection", "Cache-Control, x"),
            ("Cache-Control", "no-cache"),
        ];
        assert!(forward_request_headers(headers(&input), None).is_empty());
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
        let out = filter_response_headers(headers(&input));
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
        assert_eq!(out[5].1, b"<a>; rel=next");
        assert_eq!(out[6].1, b"<b>; rel=prev");
    }

    #[test]
    fn allowlist_matches_names_case_insensitively() {
        assert!(is_forwardable_request_header("Content-Type"));
        assert!(is_forwardable_request_header("IF-NONE-MATCH"));
        assert!(!is_forwardable_request_header("cookie"));
        assert!(!is_forwardable_request_header("accept "));
        assert!(!is_forwardable_request_header(""));
    }
}
