//! Path canonicalisation: Spin's `spin-path-info` (the part of the request path after the
//! component's route) into one canonical form, or a refusal.
//!
//! The path is where a proxy gets escaped: `..`, percent-encoded dots and slashes, backslashes
//! and overlong UTF-8 have all been used to walk out of a prefix. So `normalize_path` refuses
//! every ambiguous form instead of trying to "fix" it. Route patterns (`routes`) canonicalise
//! their literals with the same [`canonical_segment`], so both sides compare byte-for-byte. This
//! module does not build the upstream URL (`target` does, and checks the result again) and does
//! not decide whether a path is allowed (`routes`).

use crate::error::{Error, Result};

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
pub fn canonical_segment(raw: &str) -> std::result::Result<String, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn is_invalid_path(result: &Result<impl std::fmt::Debug>) -> bool {
        matches!(result, Err(Error::InvalidPath { .. }))
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
}
