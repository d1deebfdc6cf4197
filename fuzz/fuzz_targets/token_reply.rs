//! The token endpoint's reply parser: never a panic; an accepted token is sendable and expires
//! after now, within a year. Input: `status (2 bytes), now (8), ttl (8), body`.
#![no_main]

use credential_proxy_fuzz::checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 18 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]) % 1000;
    let now = u64::from_le_bytes(data[2..10].try_into().unwrap_or_default());
    let ttl = u64::from_le_bytes(data[10..18].try_into().unwrap_or_default());
    // Most inputs should be a success status, so the JSON side gets explored.
    let status = if status >= 600 { 200 } else { status };
    checks::check_token_reply(status, &data[18..], now, ttl);
});
