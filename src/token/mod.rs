//! OAuth2 client-credentials tokens: the stored record (`record`), the token endpoint's request
//! and reply (`endpoint`), the per-request cache-or-fetch (`cache`), and the fleet-wide single
//! flight that elects one fetcher through a lease record (`flight`).
//!
//! The I/O comes in through small ports (`TokenStore`, `TokenEndpoint`, `Clock`), so all of this
//! runs in native unit tests. Nothing here ever formats a token, the client secret or the
//! endpoint's reply text into an error or a log line. Sending with the token, and the retry
//! after a 401, are `retry`'s business.

mod cache;
mod endpoint;
mod flight;
mod held;
mod record;

pub use cache::{
    cache_key, lease_key, random_id, system_now_ms, Clock, Contender, ContenderId, TokenCache,
    TokenPorts, TokenStore,
};
pub use endpoint::{
    parse_token_reply, token_request, TokenEndpoint, TokenRequest, TOKEN_REPLY_LIMIT,
};
pub use held::{HeldToken, REREAD_AFTER};
pub use record::TokenRecord;

#[cfg(test)]
pub(crate) use cache::test_support;

/// A token to send, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub record: TokenRecord,
    pub source: TokenSource,
}

/// Whether the token came from the cache or was just fetched; shown to the browser in the
/// `x-credential-proxy-token` header (the token itself never is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Cached,
    Fetched,
}

impl TokenSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenSource::Cached => "cached",
            TokenSource::Fetched => "fetched",
        }
    }
}
