//! The security properties of the pure core, as functions that panic on a violation. Included
//! by path in two crates, so both check exactly the same thing: the proxy's own unit tests
//! (`src/properties.rs`, proptest, in `cargo test`) and the fuzz crate (`fuzz/src/lib.rs`, which
//! also includes the core's modules by path, under the same `crate::` names).
//!
//! Each `check_*` takes structured input; [`pieces`] cuts a fuzzer's raw bytes into it.

#![allow(dead_code)]

use crate::config::{Config, Variables};
use crate::error::{Error, Result};
use crate::path::normalize_path;
use crate::routes::{is_never_forwarded, Routes};
use crate::scrub::Scrubber;
use crate::target::build_url;
use crate::token::parse_token_reply;
use url::Url;

/// Upstream bases with and without a path prefix, a port, a trailing slash and a base query.
pub const BASES: &[&str] = &[
    "https://api.example.com/v3",
    "https://api.example.com/v3/",
    "https://api.example.com",
    "http://127.0.0.1:8080/a/b",
    "https://api.example.com/v1/content?format=json",
];

/// A fuzzer's bytes as UTF-8 text (lossy) cut at NUL bytes into `n` pieces (missing ones empty).
pub fn pieces(data: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let mut out: Vec<String> = text.splitn(n, '\0').map(str::to_string).collect();
    out.resize(n, String::new());
    out
}

/// Path canonicalisation and URL building: never a panic, and a built URL never leaves the
/// base's scheme, host, port and path prefix, carries no fragment and the key exactly once.
pub fn check_path_and_url(base: usize, raw_path: &str, query: Option<&str>, key: bool) {
    let base = Url::parse(BASES[base % BASES.len()]).expect("a valid base");
    let Ok(path) = normalize_path(raw_path) else {
        return;
    };
    assert!(path.is_empty() || path.starts_with('/'), "{path:?}");
    assert!(!path.contains("//"), "{path:?}");
    assert!(
        path.split('/').all(|s| s != "." && s != ".."),
        "a dot segment survived: {path:?}"
    );
    assert_eq!(
        normalize_path(&path).ok().as_deref(),
        Some(path.as_str()),
        "normalising is idempotent"
    );
    let key_query = key.then_some(("api_key", "K&Y=1 +/"));
    let url = match build_url(&base, &path, query, key_query) {
        Ok(url) => url,
        Err(Error::InvalidPath { .. } | Error::BadRequest { .. }) => return,
        Err(other) => panic!("unexpected error {other:?}"),
    };
    assert_eq!(url.scheme(), base.scheme(), "{url}");
    assert_eq!(url.host_str(), base.host_str(), "{url}");
    assert_eq!(url.port_or_known_default(), base.port_or_known_default());
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{url}"
    );
    assert_eq!(url.fragment(), None, "{url}");
    let prefix = base.path().trim_end_matches('/');
    let rest = url.path().strip_prefix(prefix).unwrap_or_else(|| {
        panic!("{url} left the prefix {prefix}");
    });
    assert!(
        rest.is_empty() || rest.starts_with('/'),
        "{url} left {prefix}"
    );
    if key {
        let keys = url.query_pairs().filter(|(n, _)| n == "api_key").count();
        assert_eq!(keys, 1, "{url}");
    }
}

/// Route parsing and matching: never a panic; TRACE/TRACK/CONNECT never pass and are never
/// advertised; what `check` admits is advertised, and what it refuses with a 405 is not.
pub fn check_routes(spec: &str, method: &str, raw_path: &str) {
    let Ok(routes) = Routes::parse(spec) else {
        return;
    };
    let Ok(path) = normalize_path(raw_path) else {
        return;
    };
    let advertised = routes.methods_for(&path);
    assert!(
        advertised.iter().all(|m| !is_never_forwarded(m)),
        "{advertised:?}"
    );
    match routes.check(method, &path) {
        Ok(()) => {
            assert!(!is_never_forwarded(method), "{method} passed");
            let listed = advertised
                .iter()
                .any(|m| m == "*" || m == method || (method == "HEAD" && m == "GET"));
            assert!(listed, "{method} {path} passed but {advertised:?}");
        }
        Err(Error::MethodNotAllowed { allow, .. }) => {
            assert!(!allow.iter().any(|m| m == method), "{method} in {allow:?}");
            assert!(allow.iter().all(|m| m != "*" && !is_never_forwarded(m)));
        }
        Err(Error::RouteNotAllowed { .. }) => {
            assert!(!is_never_forwarded(method), "{method} must be a 405");
        }
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

/// The token endpoint's reply: never a panic; an accepted token is non-empty, fits in an
/// `Authorization` header and expires after `now`, within a year; an error's reason is one of
/// our fixed ones, so it can never repeat the endpoint's text. (Checking "the message does not
/// contain the body" instead was wrong: the fuzzer sent a body that *is* our message's text.)
pub fn check_token_reply(status: u16, body: &[u8], now: u64, ttl: u64) {
    let now = now % (1 << 40);
    let ttl = ttl % (1 << 32);
    match parse_token_reply(status, body, now, ttl) {
        Ok(record) => {
            assert!((200..300).contains(&status));
            assert!(!record.access_token.secret().is_empty());
            assert!(record.authorization().is_ok(), "token not sendable");
            assert!(record.expires_at > now, "already expired");
            assert!(record.expires_at <= now + 366 * 24 * 3600, "beyond a year");
        }
        Err(e) => {
            assert!(e.code() == "token_endpoint_failed", "{e:?}");
            let message = e.to_string();
            let reason = message
                .strip_prefix("the token endpoint failed: ")
                .unwrap_or_else(|| panic!("{message}"));
            let status_reason = format!("it answered HTTP {status}");
            assert!(
                TOKEN_REPLY_REASONS.contains(&reason) || reason == status_reason,
                "an unexpected reason: {reason}"
            );
        }
    }
}

/// Every reason `parse_token_reply` gives for a reply it refuses (besides the HTTP status).
const TOKEN_REPLY_REASONS: &[&str] = &[
    "its reply is not a JSON token response",
    "its reply has no access_token",
    "its access_token cannot be sent in a header",
    "its token has already expired (expires_in is zero or negative)",
];

/// The header scrubber: never a panic; a value holding the secret plain, in another case,
/// percent-encoded once or twice, or (for secrets of 6+ bytes) base64-encoded with any prefix,
/// is always caught. `%` is removed from the surrounding text: a stray `%6` right before an
/// encoded secret would change what the secret's own first characters decode to.
pub fn check_scrubber(secret: &str, prefix: &str, suffix: &str) {
    use base64::Engine as _;
    let scrubber = Scrubber::new([secret]);
    let _ = scrubber.leaks(prefix.as_bytes());
    let prefix = &prefix.replace('%', "");
    let suffix = &suffix.replace('%', "");
    if secret.is_empty() {
        assert!(!scrubber.leaks(format!("{prefix}{suffix}").as_bytes()));
        return;
    }
    let wrap = |inner: &str| format!("{prefix}{inner}{suffix}");
    let once = percent_encode(secret);
    let plain = [
        wrap(secret),
        wrap(&secret.to_ascii_uppercase()),
        wrap(&once),
        wrap(&percent_encode(&once)),
    ];
    for value in plain {
        assert!(scrubber.leaks(value.as_bytes()), "{value:?}");
    }
    if secret.len() >= 6 {
        let inner = format!("{prefix}{secret}{suffix}");
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        for engine in engines {
            let value = engine.encode(inner.as_bytes());
            assert!(scrubber.leaks(value.as_bytes()), "{inner:?} as {value}");
        }
    }
}

fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The variables `Config::load` reads, in the order [`check_config`] takes values for them.
pub const VARIABLES: &[&str] = &crate::config::NAMES;

struct Vars<'a>(&'a [String]);

impl Variables for Vars<'_> {
    fn get(&self, name: &str) -> Result<Option<String>> {
        let index = VARIABLES.iter().position(|v| *v == name);
        Ok(index
            .and_then(|i| self.0.get(i))
            .filter(|v| !v.trim().is_empty())
            .cloned())
    }
}

/// Config parsing: never a panic; an error is `config_invalid` naming a known variable and never
/// showing a secret's value; a loaded config keeps names trimmed and valid.
pub fn check_config(values: &[String]) {
    // Secrets get a marker so a leak is recognisable and never a coincidence.
    let mut values = values.to_vec();
    values.resize(VARIABLES.len(), String::new());
    for index in [1, 5, 6] {
        if !values[index].is_empty() {
            values[index] = format!("SECRET-{}-END", values[index]);
        }
    }
    match Config::load(&Vars(&values)) {
        Ok(cfg) => {
            if let Some(key) = &cfg.static_key {
                if let Some(name) = &key.query {
                    assert_eq!(name.trim(), name);
                    assert!(!name.is_empty());
                    assert!(!name.contains(['&', '=', '#']));
                }
            }
            assert_eq!(cfg.kv_store.trim(), cfg.kv_store);
            assert!(cfg.routes.check("TRACE", "/").is_err());
        }
        Err(e) => {
            let Error::ConfigInvalid { variable, .. } = &e else {
                panic!("not config_invalid: {e:?}");
            };
            assert!(VARIABLES.contains(&variable.as_str()), "{variable}");
            let message = e.to_string();
            for index in [1, 5, 6] {
                if !values[index].is_empty() {
                    assert!(!message.contains(&values[index]), "{message}");
                }
            }
        }
    }
}
