//! The response header scrubber: never a panic, bounded work, and encoded copies of a secret
//! are always caught. Input: `secret \0 prefix \0 suffix`.
#![no_main]

use credential_proxy_fuzz::checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let p = checks::pieces(data, 3);
    checks::check_scrubber(&p[0], &p[1], &p[2]);
});
