//! The upstream target: the URL a checked request goes to, built under `upstream_url` and
//! verified to stay there.
//!
//! `build_url` never concatenates strings and verifies the finished URL again (scheme, host,
//! port, path prefix) rather than trusting the path canonicaliser (`path`). The only secret it
//! handles is the `api_key_query` value, which it writes into the URL and never into an error;
//! [`Target`]'s `Debug` therefore shows no query. This module does not decide whether a route or
//! origin is allowed and never sees the token or the headers.

use url::Url;

use crate::error::{Error, Result};

/// The URL a request is sent to. Its `Debug` prints scheme, host and path only: the query may
/// carry `api_key_query`'s key.
#[derive(Clone, PartialEq, Eq)]
pub struct Target(Url);

impl Target {
    /// [`build_url`], kept as a target.
    pub fn build(
        base: &Url,
        path: &str,
        query: Option<&str>,
        key_query: Option<(&str, &str)>,
    ) -> Result<Target> {
        build_url(base, path, query, key_query).map(Target)
    }

    pub fn url(&self) -> &Url {
        &self.0
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Target({}://{}{})",
            self.0.scheme(),
            self.0.host_str().unwrap_or(""),
            self.0.path()
        )
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::normalize_path;

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
}
