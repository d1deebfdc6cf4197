//! The token record kept in the key-value store, `{access_token, token_type, expires_at,
//! issued_at}`, and its freshness math.
//!
//! The expiry is absolute (Unix seconds) because Spin's key-value store has no TTL of its own.
//! `issued_at` gives the lifetime, so a refresh skew longer than a short token's life can be
//! clamped: with the default 60 s skew a 30 s token would otherwise be stale on arrival and
//! refetched on every request. A record without it (written before it existed) uses the plain
//! skew.
//! This module does not read or write the store (`cache` does) and does not talk to the token
//! endpoint (`endpoint` does).

use http::HeaderValue;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::secret::AccessToken;

/// What the proxy keeps in the key-value store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub access_token: AccessToken,
    /// Kept as the endpoint said, for whoever reads the cache; the proxy always sends `Bearer`
    /// (RFC 6750), the only type client credentials issue in practice.
    pub token_type: String,
    /// Unix seconds after which the token must not be sent.
    pub expires_at: u64,
    /// Unix seconds when the token was fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<u64>,
}

impl TokenRecord {
    /// Fresh enough to use without asking for a new one: `now < expires_at - skew`, with the skew
    /// clamped by [`TokenRecord::effective_skew`].
    pub fn is_fresh(&self, now: u64, skew_secs: u64) -> bool {
        now < self
            .expires_at
            .saturating_sub(self.effective_skew(skew_secs))
    }

    /// The refresh skew for this token: at most half its lifetime, so every token is reused for
    /// at least half of it however short it is.
    pub fn effective_skew(&self, skew_secs: u64) -> u64 {
        match self.issued_at {
            Some(issued) => skew_secs.min(self.expires_at.saturating_sub(issued) / 2),
            None => skew_secs,
        }
    }

    /// Whether `skew_secs` had to be shortened for this token (logged once per fetch).
    pub fn skew_is_clamped(&self, skew_secs: u64) -> bool {
        self.effective_skew(skew_secs) < skew_secs
    }

    /// Still accepted by the upstream: `now < expires_at`. A token past this is never sent.
    pub fn is_valid(&self, now: u64) -> bool {
        now < self.expires_at
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising a struct of strings and a number cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A record that does not parse (an older format, a hand edit) counts as absent.
    pub fn from_bytes(bytes: &[u8]) -> Option<TokenRecord> {
        serde_json::from_slice(bytes).ok()
    }

    /// The `Authorization` value, marked sensitive. RFC 6750 §2.1 defines only `Bearer`; servers
    /// answer `bearer` or `BEARER` as often, so the scheme is written in its canonical case. A
    /// stored token that cannot be a header value (a hand-edited record) is refused as a header
    /// that cannot be forwarded.
    pub fn authorization(&self) -> Result<HeaderValue> {
        let value = format!("Bearer {}", self.access_token.secret());
        let mut value =
            HeaderValue::from_bytes(value.as_bytes()).map_err(|_| Error::BadRequest {
                reason: "a forwarded header is not valid HTTP".into(),
            })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::test_support::record;

    #[test]
    fn freshness_boundaries() {
        let r = record(1000);
        assert!(r.is_fresh(939, 60));
        assert!(!r.is_fresh(940, 60), "exactly expires_at - skew is stale");
        assert!(!r.is_fresh(941, 60));
        assert!(r.is_valid(999));
        assert!(!r.is_valid(1000), "a token at expires_at is expired");
        assert!(
            record(30).is_valid(0) && !record(30).is_fresh(0, 60),
            "skew > lifetime"
        );
        assert!(r.is_fresh(999, 0));
    }

    #[test]
    fn a_skew_longer_than_half_the_lifetime_is_clamped() {
        let thirty = TokenRecord {
            issued_at: Some(100),
            ..record(130)
        };
        assert_eq!(thirty.effective_skew(60), 15);
        assert!(thirty.skew_is_clamped(60));
        assert!(thirty.is_fresh(114, 60), "reused for half its life");
        assert!(!thirty.is_fresh(115, 60));
        let long = TokenRecord {
            issued_at: Some(100),
            ..record(1900)
        };
        assert_eq!(long.effective_skew(60), 60, "a long token keeps the skew");
        assert!(!long.skew_is_clamped(60));
        assert_eq!(record(130).effective_skew(60), 60, "no issued_at: no clamp");
    }

    #[test]
    fn record_round_trips_and_debug_is_redacted() {
        let r = record(5);
        assert_eq!(TokenRecord::from_bytes(&r.to_bytes()), Some(r.clone()));
        assert!(!format!("{r:?}").contains("tok\""));
        assert_eq!(TokenRecord::from_bytes(b"garbage"), None);
    }

    #[test]
    fn stored_format_is_plain_json() {
        let stored: serde_json::Value = serde_json::from_slice(&record(5).to_bytes()).unwrap();
        assert_eq!(
            stored,
            serde_json::json!({"access_token": "tok", "token_type": "Bearer", "expires_at": 5})
        );
    }

    #[test]
    fn authorization_is_bearer_and_sensitive() {
        let value = record(5).authorization().unwrap();
        assert_eq!(value, "Bearer tok");
        assert!(value.is_sensitive());
    }
}
