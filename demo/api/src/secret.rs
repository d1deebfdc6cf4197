//! The demo API's own secrets as types: its `api_key` and `client_secret`.
//!
//! As in the proxy (and oauth2-rs), `Debug` prints `Secret([redacted])`, there is no `Display`,
//! and the raw value is reachable only through `.secret()`, so `grep -n '\.secret()'` lists every
//! place one is used. Comparing a caller's value against a secret goes through
//! [`Secret::matches`], which is constant-time, so no caller learns a prefix by timing. This
//! module does not decide which secret goes where.

use subtle::ConstantTimeEq;

/// A value the demo API never tells a caller.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value. Every call site is a place where the secret leaves this type.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with what a caller sent (only the length can leak, and the
    /// demo's secrets are public defaults anyway).
    pub fn matches(&self, candidate: &str) -> bool {
        bool::from(self.0.as_bytes().ct_eq(candidate.as_bytes()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
    }

    #[test]
    fn matches_only_the_exact_value() {
        let s = Secret::new("abc");
        assert!(s.matches("abc"));
        assert!(!s.matches("abd"));
        assert!(!s.matches("ab"));
        assert!(!s.matches("abcd"));
        assert!(!s.matches(""));
    }
}
