//! Path canonicalisation + URL building: never a panic, never leaves the base's host or prefix.
//! Input: `base-selector byte, path \0 query \0 key-flag`.
#![no_main]

use credential_proxy_fuzz::checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let p = checks::pieces(rest, 3);
    let query = (!p[1].is_empty()).then_some(p[1].as_str());
    checks::check_path_and_url(usize::from(selector), &p[0], query, !p[2].is_empty());
});
