//! The response cache's key and stored entry: which request an entry answers, which of the
//! bounded key-value keys (slots) it lives in, and its bytes in the store.
//!
//! A [`RequestKey`] is the component's identity (a hash of its upstream and credentials, so two
//! components sharing a store never answer for each other), the normalised upstream path, the
//! client's query sorted by parameter name with `api_key_query`'s parameter left out, and the
//! request's `Accept*` values. The slot comes from a hash of the identity, path and query only,
//! so every variant of one URL competes for one slot; the entry records the full key and the
//! values it varies on, so a different URL or variant in that slot is a miss, never a wrong
//! answer. This module does no I/O and decides nothing about cacheability (`policy` does).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::secret::hex_sha256;

/// Stored value layout: this magic, a 4-byte big-endian length of the JSON meta, the meta, then
/// the body bytes as they came (no base64: a 256 KiB body stays 256 KiB).
const MAGIC: &[u8; 4] = b"CPC1";

/// What one request would find in the cache.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestKey {
    identity: String,
    /// `path?sorted-query`.
    resource: String,
    /// The request's value for each of `policy::VARY_ALLOWED` (empty when absent).
    accept: Vec<(&'static str, String)>,
}

// The identity is a hash of secrets: keep it, and the query, out of any log line.
impl std::fmt::Debug for RequestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestKey([redacted])")
    }
}

impl RequestKey {
    /// `identity_parts`: the component's upstream and credentials, hashed here (never stored raw).
    /// `query`: the upstream query, from which `key_param` (`api_key_query`) is dropped.
    /// `accept`: the request's value for each name in `policy::VARY_ALLOWED`.
    pub fn new(
        identity_parts: &[&str],
        path: &str,
        query: Option<&str>,
        key_param: Option<&str>,
        accept: Vec<(&'static str, String)>,
    ) -> RequestKey {
        let mut pieces: Vec<(String, &str)> = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .filter_map(|piece| {
                let name = form_urlencoded::parse(piece.as_bytes())
                    .next()
                    .map(|(n, _)| n.into_owned())
                    .unwrap_or_default();
                (Some(name.as_str()) != key_param).then_some((name, piece))
            })
            .collect();
        // Stable: repeated parameters keep their order, which can matter to the API.
        pieces.sort_by(|a, b| a.0.cmp(&b.0));
        let query: Vec<&str> = pieces.iter().map(|(_, piece)| *piece).collect();
        RequestKey {
            identity: hex_sha256(identity_parts),
            resource: format!("{path}?{}", query.join("&")),
            accept,
        }
    }

    /// The key-value key of this request's slot, one of `slots`.
    pub fn slot_key(&self, slots: u32) -> String {
        let digest = Sha256::new()
            .chain_update(self.identity.as_bytes())
            .chain_update([0u8])
            .chain_update(self.resource.as_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let slot = u64::from_be_bytes(first) % u64::from(slots.max(1));
        format!("credential-proxy:cache:v1:{slot}")
    }

    fn accept_value(&self, name: &str) -> &str {
        self.accept
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// One stored answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    identity: String,
    resource: String,
    /// The varied-on request headers and the values this answer was for.
    vary: Vec<(String, String)>,
    pub status: u16,
    /// The answer's headers as the browser got them, scrubbed, minus CORS and the proxy's own.
    pub headers: Vec<(String, String)>,
    /// Unix seconds when stored, minus the upstream's `Age`.
    pub born_at: u64,
    pub expires_at: u64,
    #[serde(skip)]
    pub body: Vec<u8>,
}

impl Entry {
    /// An entry for `key`'s request, varying on `vary` (names from `policy::VARY_ALLOWED`).
    pub fn new(
        key: &RequestKey,
        vary: &[&str],
        status: u16,
        headers: Vec<(String, String)>,
        born_at: u64,
        expires_at: u64,
    ) -> Entry {
        Entry {
            identity: key.identity.clone(),
            resource: key.resource.clone(),
            vary: vary
                .iter()
                .map(|name| (name.to_string(), key.accept_value(name).to_string()))
                .collect(),
            status,
            headers,
            born_at,
            expires_at,
            body: Vec::new(),
        }
    }

    /// Whether this entry answers `key`'s request (full key and varied values equal).
    pub fn answers(&self, key: &RequestKey) -> bool {
        self.identity == key.identity
            && self.resource == key.resource
            && self
                .vary
                .iter()
                .all(|(name, value)| key.accept_value(name) == value)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let meta = serde_json::to_vec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(8 + meta.len() + self.body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&u32::try_from(meta.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&meta);
        out.extend_from_slice(&self.body);
        out
    }

    /// `None` for anything that is not a whole entry of this version.
    pub fn from_bytes(bytes: &[u8]) -> Option<Entry> {
        let rest = bytes.strip_prefix(MAGIC)?;
        let len = usize::try_from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)).ok()?;
        let meta = rest.get(4..4 + len)?;
        let mut entry: Entry = serde_json::from_slice(meta).ok()?;
        entry.body = rest.get(4 + len..)?.to_vec();
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(query: Option<&str>, lang: &str) -> RequestKey {
        RequestKey::new(
            &["https://api.example.com/v3", "KEY"],
            "/search",
            query,
            Some("api_key"),
            vec![
                ("accept", "application/json".into()),
                ("accept-language", lang.into()),
            ],
        )
    }

    #[test]
    fn query_order_does_not_matter_and_the_key_parameter_is_left_out() {
        let a = key(Some("b=2&a=1&api_key=K"), "en");
        let b = key(Some("a=1&&b=2&api%5Fkey=other"), "en");
        assert_eq!(a.resource, "/search?a=1&b=2");
        assert_eq!(a, b);
        assert_eq!(a.slot_key(128), b.slot_key(128));
        // Repeated parameters keep their order.
        assert_ne!(key(Some("t=1&t=2"), "en"), key(Some("t=2&t=1"), "en"));
    }

    #[test]
    fn slot_keys_are_bounded_and_carry_no_credential() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..300 {
            let slot = key(Some(&format!("q={i}")), "en").slot_key(16);
            assert!(slot.starts_with("credential-proxy:cache:v1:"));
            assert!(!slot.contains("KEY"));
            seen.insert(slot);
        }
        assert!(seen.len() <= 16 && seen.len() > 8, "{}", seen.len());
    }

    #[test]
    fn an_entry_answers_only_its_own_key_and_variant() {
        let k = key(Some("q=1"), "en");
        let entry = Entry::new(&k, &["accept-language"], 200, vec![], 10, 70);
        assert!(entry.answers(&k));
        assert!(!entry.answers(&key(Some("q=2"), "en")));
        assert!(!entry.answers(&key(Some("q=1"), "de")));
        let other_component = RequestKey::new(
            &["https://api.example.com/v3", "OTHER"],
            "/search",
            Some("q=1"),
            None,
            vec![],
        );
        assert!(!entry.answers(&other_component));
        // Not varying on the language: any language is answered.
        let any = Entry::new(&k, &[], 200, vec![], 10, 70);
        assert!(any.answers(&key(Some("q=1"), "de")));
    }

    #[test]
    fn an_entry_round_trips_through_bytes_and_garbage_is_none() {
        let mut entry = Entry::new(
            &key(None, "en"),
            &["accept"],
            200,
            vec![("content-type".into(), "application/json".into())],
            10,
            70,
        );
        entry.body = b"{\"ok\":true}\n\0\xff".to_vec();
        let bytes = entry.to_bytes();
        assert_eq!(Entry::from_bytes(&bytes), Some(entry));
        assert_eq!(Entry::from_bytes(b"CPC1\0\0\0\x09{}"), None);
        assert_eq!(Entry::from_bytes(&bytes[..12]), None);
        assert_eq!(Entry::from_bytes(b"{\"access_token\":1}"), None);
    }

    #[test]
    fn the_key_debug_shows_nothing() {
        assert_eq!(
            format!("{:?}", key(Some("q=1"), "en")),
            "RequestKey([redacted])"
        );
    }
}
