//! Route pattern parsing and matching: never a panic; TRACE/CONNECT never pass; exclusions are
//! never advertised. Input: `allowed_routes \0 method \0 path`.
#![no_main]

use credential_proxy_fuzz::checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let p = checks::pieces(data, 3);
    checks::check_routes(&p[0], &p[1], &p[2]);
});
