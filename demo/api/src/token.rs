//! Stateless bearer tokens: minted by `POST /oauth2/token`, checked by the search endpoint.
//!
//! Spin makes a fresh instance for every request and the demo API has no key-value store, so a
//! token cannot be remembered. Instead it carries its own expiry and proves it with a MAC:
//!
//! ```text
//! token   = base64url(payload) "." base64url(HMAC-SHA256(client_secret, payload))
//! payload = expiry_unix_secs "." nonce_hex
//! ```
//!
//! Any instance that knows `client_secret` can check it. The nonce only makes two tokens minted
//! in the same second differ, so a user sees that the proxy really fetched a new one. This
//! module does not read clocks or variables: the caller passes `now` and the nonce in, so tests
//! need no runtime. It does not revoke tokens either: a token lives until its expiry.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Secret;

/// Lifetime of a minted token. Short on purpose, so the demo page shows the proxy refreshing it
/// within a minute of use (Getty's is 1800 s).
pub const TOKEN_TTL_SECS: u64 = 30;

type HmacSha256 = Hmac<Sha256>;

/// Why a presented bearer token was refused. The variants name the failure for the caller's
/// error message; none carries the token or the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not two base64url parts, or the payload is not `expiry.nonce`.
    Malformed,
    /// The MAC does not match: tampered, or minted with another secret.
    BadSignature,
    /// Genuine but past its expiry.
    Expired,
}

impl TokenError {
    pub fn describe(self) -> &'static str {
        match self {
            TokenError::Malformed => "the bearer token is malformed",
            TokenError::BadSignature => "the bearer token was not issued by this server",
            TokenError::Expired => "the bearer token has expired",
        }
    }
}

fn mac(secret: &Secret) -> HmacSha256 {
    // HMAC takes a key of any length (RFC 2104 §2), so this never fails.
    HmacSha256::new_from_slice(secret.secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
}

/// Mints a token that expires `TOKEN_TTL_SECS` after `now`.
pub fn mint(secret: &Secret, now: u64, nonce: u64) -> String {
    let payload = format!("{}.{nonce:016x}", now.saturating_add(TOKEN_TTL_SECS));
    let mut m = mac(secret);
    m.update(payload.as_bytes());
    let tag = m.finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// Checks a token and returns its remaining life in seconds (at least 1).
pub fn verify(secret: &Secret, token: &str, now: u64) -> Result<u64, TokenError> {
    let (payload_b64, tag_b64) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| TokenError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag_b64)
        .map_err(|_| TokenError::Malformed)?;
    if tag.len() != 32 {
        return Err(TokenError::Malformed);
    }
    // The MAC is checked before the payload is trusted for anything; verify_slice compares in
    // constant time.
    let mut m = mac(secret);
    m.update(&payload);
    m.verify_slice(&tag).map_err(|_| TokenError::BadSignature)?;

    let payload = std::str::from_utf8(&payload).map_err(|_| TokenError::Malformed)?;
    let (expiry, _nonce) = payload.split_once('.').ok_or(TokenError::Malformed)?;
    let expiry: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
    if now < expiry {
        Ok(expiry - now)
    } else {
        Err(TokenError::Expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn secret() -> Secret {
        Secret::new("demo-client-secret-not-a-secret")
    }

    #[test]
    fn fresh_token_verifies_with_its_remaining_life() {
        let t = mint(&secret(), NOW, 7);
        assert_eq!(verify(&secret(), &t, NOW), Ok(TOKEN_TTL_SECS));
        assert_eq!(verify(&secret(), &t, NOW + 10), Ok(TOKEN_TTL_SECS - 10));
        assert_eq!(verify(&secret(), &t, NOW + TOKEN_TTL_SECS - 1), Ok(1));
    }

    #[test]
    fn token_is_expired_at_and_after_its_expiry() {
        let t = mint(&secret(), NOW, 7);
        assert_eq!(
            verify(&secret(), &t, NOW + TOKEN_TTL_SECS),
            Err(TokenError::Expired)
        );
        assert_eq!(verify(&secret(), &t, NOW + 3600), Err(TokenError::Expired));
    }

    #[test]
    fn token_minted_with_another_secret_is_refused() {
        let t = mint(&Secret::new("someone-else"), NOW, 7);
        assert_eq!(verify(&secret(), &t, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn extending_the_expiry_breaks_the_signature() {
        let t = mint(&secret(), NOW, 7);
        let (_, tag) = t.split_once('.').unwrap();
        let forged_payload = format!("{}.{:016x}", NOW + 999_999, 7);
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(forged_payload));
        assert_eq!(
            verify(&secret(), &forged, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn flipping_any_character_is_refused() {
        let t = mint(&secret(), NOW, 7);
        for i in 0..t.len() {
            let mut bytes = t.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            if tampered == t {
                continue;
            }
            assert!(
                verify(&secret(), &tampered, NOW).is_err(),
                "flipping byte {i} was accepted"
            );
        }
    }

    #[test]
    fn garbage_is_malformed() {
        for t in ["", ".", "abc", "a.b.c", "!!!.???", "abc."] {
            assert_eq!(
                verify(&secret(), t, NOW),
                Err(TokenError::Malformed),
                "{t:?}"
            );
        }
    }

    #[test]
    fn nonce_makes_tokens_of_the_same_second_differ() {
        assert_ne!(mint(&secret(), NOW, 1), mint(&secret(), NOW, 2));
    }

    #[test]
    fn token_holds_neither_the_secret_nor_spaces() {
        let t = mint(&secret(), NOW, 7);
        assert!(!t.contains(secret().secret()));
        // RFC 6750 §2.1 b64token characters only, so it fits an Authorization header as is.
        assert!(t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~+/".contains(c)));
    }
}
