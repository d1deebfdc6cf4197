//! Newtypes for the values that must never be shown: the static API key, the OAuth2 client id and
//! secret, and access tokens.
//!
//! Modelled on oauth2-rs: `Debug` prints `ApiKey([redacted])`, there is no `Display`, and the raw
//! value is reachable only through `.secret()`, so `grep -n '\.secret()'` lists every place a
//! secret is used. This module does not decide where secrets go; config and the request flow do.
//! [`hex_sha256`] is the one-way name that key-value keys are built from when what they identify
//! includes a secret.

/// Defines a secret newtype, like oauth2-rs's `new_secret_type!`: a redacting `Debug`, serde
/// pass-through (it serializes as the bare string, so stored records stay plain JSON) and
/// `secret()`. No `Display`, so a secret cannot end up in a message by accident.
macro_rules! new_secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The raw value. Every call site is a place where the secret leaves this type.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

new_secret_type!(
    /// The static key sent in `api_key_header` or `api_key_query`.
    ApiKey
);
new_secret_type!(
    /// The OAuth2 client id. Not a secret in RFC 6749, but Getty uses the API key as client id.
    ClientId
);
new_secret_type!(
    /// The OAuth2 client secret.
    ClientSecret
);
new_secret_type!(
    /// A bearer token issued by the token endpoint.
    AccessToken
);

/// The hex SHA-256 of `parts`, each followed by a NUL so that `["ab", "c"]` and `["a", "bc"]`
/// differ: a fixed-length key name that reveals none of them. The hex is written by hand:
/// `format!("{b:02x}")` per byte was a visible share of a request's instructions in the wasm.
pub fn hex_sha256(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    let mut hex = String::with_capacity(64);
    for b in hash.finalize() {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_is_redacted() {
        let all = format!(
            "{:?} {:?} {:?} {:?}",
            ApiKey::new("k-123"),
            ClientId::new("id-123"),
            ClientSecret::new("s-123"),
            AccessToken::new("t-123")
        );
        assert_eq!(
            all,
            "ApiKey([redacted]) ClientId([redacted]) ClientSecret([redacted]) AccessToken([redacted])"
        );
        assert!(!all.contains("123"));
    }

    #[test]
    fn secret_returns_the_raw_value() {
        assert_eq!(ClientSecret::new("s3cr3t").secret(), "s3cr3t");
    }

    #[test]
    fn serde_passes_the_raw_value_through() {
        let json = serde_json::to_string(&AccessToken::new("t-1")).unwrap();
        assert_eq!(json, "\"t-1\"");
        let back: AccessToken = serde_json::from_str(&json).unwrap();
        assert_eq!(back.secret(), "t-1");
    }

    /// The token and cache keys already in stores are built from this: its output must stay
    /// the lowercase hex of SHA-256 over the NUL-terminated parts.
    #[test]
    fn hex_sha256_is_the_plain_lowercase_hex_digest() {
        use sha2::{Digest, Sha256};
        let expected: String = Sha256::digest(b"https://a.example/token\0id\0\0")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            super::hex_sha256(&["https://a.example/token", "id", ""]),
            expected
        );
        assert_ne!(
            super::hex_sha256(&["ab", "c"]),
            super::hex_sha256(&["a", "bc"])
        );
    }
}
