//! Origins: the parsed `allowed_origins`, the ASCII serialization every comparison uses, and the
//! proxy's own origin from Spin's `spin-full-url`.
//!
//! This module only parses and compares origins. It does not read request headers and does not
//! decide which CORS headers an answer gets (`cors` does).

use url::Url;

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
pub(crate) fn serialize_origin(text: &str) -> std::result::Result<String, &'static str> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
