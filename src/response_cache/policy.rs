//! Whether an upstream answer may be kept by the response cache, and for how long.
//!
//! A shared cache's reading of RFC 9111, narrowed to what a credential proxy can safely serve to
//! every visitor: only a 200, never one the upstream marks `no-store`, `private` or `no-cache`
//! (§5.2.2), never one that varies (§4.1) on anything but the `Accept*` headers the cache key can
//! hold, and for at most `cache_ttl_secs` or the upstream's `s-maxage`/`max-age` minus its `Age`,
//! whichever is shorter. Heuristic freshness (§4.2.2) and `Expires` are not used: without an
//! explicit lifetime the configured TTL applies, since the operator turned the cache on for this
//! API. This module only reads headers; it never sees a body or the store.

use http::header::{AGE, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, VARY};
use http::{HeaderMap, StatusCode};

/// The request headers an entry may vary on; any other `Vary` makes an answer uncacheable.
pub const VARY_ALLOWED: [&str; 3] = ["accept", "accept-encoding", "accept-language"];

/// How an answer may be kept.
#[derive(Debug, PartialEq, Eq)]
pub struct Keep {
    /// Seconds from now until the entry is stale.
    pub lifetime_secs: u64,
    /// The upstream's `Age`: the entry was already this old when it arrived.
    pub initial_age: u64,
    /// Lowercase names from [`VARY_ALLOWED`] the entry varies on.
    pub vary: Vec<&'static str>,
}

/// Why an answer is not kept (for tests and reasoning; never sent anywhere).
#[derive(Debug, PartialEq, Eq)]
pub enum Skip {
    Status,
    NoStore,
    Vary,
    TooLarge,
    Fresh0,
}

/// Decides whether the answer (`status`, the upstream's headers) may be stored.
pub fn keep(
    status: StatusCode,
    headers: &HeaderMap,
    ttl_secs: u64,
    max_body_bytes: u64,
) -> Result<Keep, Skip> {
    if status != StatusCode::OK {
        return Err(Skip::Status);
    }
    let mut max_age = None;
    let mut s_maxage = None;
    for directive in list(headers, CACHE_CONTROL.as_str()) {
        let (name, value) = match directive.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (directive.as_str(), None),
        };
        match name.to_ascii_lowercase().as_str() {
            // `private` with a field list still restricts those fields; refusing it whole is the
            // safe reading for a cache shared by every visitor.
            "no-store" | "private" | "no-cache" => return Err(Skip::NoStore),
            // An invalid value is treated as stale (RFC 9111 §4.2.1): 0.
            "max-age" => max_age = Some(seconds(value)),
            "s-maxage" => s_maxage = Some(seconds(value)),
            _ => {}
        }
    }
    let mut vary = Vec::new();
    for name in list(headers, VARY.as_str()) {
        let name = name.to_ascii_lowercase();
        match VARY_ALLOWED.iter().find(|allowed| **allowed == name) {
            Some(allowed) if !vary.contains(allowed) => vary.push(*allowed),
            Some(_) => {}
            None => return Err(Skip::Vary),
        }
    }
    // An encoded body is only right for clients that accept that encoding, whether or not the
    // upstream said so with `Vary`.
    if headers.contains_key(CONTENT_ENCODING) && !vary.contains(&"accept-encoding") {
        vary.push("accept-encoding");
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_body_bytes) {
        return Err(Skip::TooLarge);
    }
    // A shared cache prefers `s-maxage` over `max-age` (RFC 9111 §5.2.2.10).
    let upstream_lifetime = s_maxage.or(max_age).unwrap_or(u64::MAX);
    let initial_age = headers
        .get(AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let lifetime_secs = ttl_secs.min(upstream_lifetime).saturating_sub(initial_age);
    if lifetime_secs == 0 {
        return Err(Skip::Fresh0);
    }
    Ok(Keep {
        lifetime_secs,
        initial_age,
        vary,
    })
}

/// The comma-separated elements of every value of header `name`, trimmed, empty ones dropped.
fn list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn seconds(value: Option<&str>) -> u64 {
    value.and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.append(*n, HeaderValue::from_static(v));
        }
        map
    }

    fn verdict(pairs: &[(&'static str, &'static str)]) -> Result<Keep, Skip> {
        keep(StatusCode::OK, &headers(pairs), 60, 1000)
    }

    #[test]
    fn a_plain_200_is_kept_for_the_configured_ttl() {
        let kept = verdict(&[("content-type", "application/json")]).unwrap();
        assert_eq!(kept.lifetime_secs, 60);
        assert!(kept.vary.is_empty());
    }

    #[test]
    fn other_statuses_are_never_kept() {
        for status in [
            StatusCode::NOT_FOUND,
            StatusCode::PARTIAL_CONTENT,
            StatusCode::FOUND,
        ] {
            assert_eq!(keep(status, &HeaderMap::new(), 60, 1000), Err(Skip::Status));
        }
    }

    #[test]
    fn no_store_private_and_no_cache_are_never_kept() {
        for cc in ["no-store", "private", "max-age=30, Private", "no-cache"] {
            assert_eq!(
                verdict(&[("cache-control", cc)]),
                Err(Skip::NoStore),
                "{cc}"
            );
        }
    }

    #[test]
    fn the_upstreams_shorter_lifetime_wins_and_s_maxage_beats_max_age() {
        assert_eq!(
            verdict(&[("cache-control", "max-age=10")])
                .unwrap()
                .lifetime_secs,
            10
        );
        assert_eq!(
            verdict(&[("cache-control", "public, max-age=10, s-maxage=20")])
                .unwrap()
                .lifetime_secs,
            20
        );
        assert_eq!(
            verdict(&[("cache-control", "max-age=600")])
                .unwrap()
                .lifetime_secs,
            60
        );
        let aged = verdict(&[("cache-control", "max-age=10"), ("age", "4")]).unwrap();
        assert_eq!((aged.lifetime_secs, aged.initial_age), (6, 4));
        assert_eq!(
            verdict(&[("cache-control", "max-age=0")]),
            Err(Skip::Fresh0)
        );
        assert_eq!(
            verdict(&[("cache-control", "max-age=abc")]),
            Err(Skip::Fresh0)
        );
    }

    #[test]
    fn vary_is_kept_only_on_accept_headers() {
        let kept = verdict(&[("vary", "Accept-Language, accept"), ("vary", "Accept")]).unwrap();
        assert_eq!(kept.vary, ["accept-language", "accept"]);
        for vary in ["Origin", "*", "Accept, Cookie"] {
            assert_eq!(verdict(&[("vary", vary)]), Err(Skip::Vary), "{vary}");
        }
    }

    #[test]
    fn an_encoded_body_varies_on_accept_encoding() {
        let kept = verdict(&[("content-encoding", "gzip")]).unwrap();
        assert_eq!(kept.vary, ["accept-encoding"]);
    }

    #[test]
    fn a_declared_length_over_the_limit_is_not_kept() {
        assert_eq!(verdict(&[("content-length", "1001")]), Err(Skip::TooLarge));
        assert!(verdict(&[("content-length", "1000")]).is_ok());
    }
}
