//! Newtypes for the values that must never be shown: the static API key, the OAuth2 client id and
//! secret, and access tokens.
//!
//! Modelled on oauth2-rs: `Debug` prints `ApiKey([redacted])`, there is no `Display`, and the raw
//! value is reachable only through `.secret()`, so `grep -n '\.secret()'` lists every place a
//! secret is used. This module does not decide where secrets go; config and the request flow do.

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
}
