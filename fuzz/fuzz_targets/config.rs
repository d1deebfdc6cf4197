//! Config parsing: never a panic; errors are config_invalid naming a known variable, never a
//! secret's value. Input: the 16 variables' values separated by `\0` (checks::VARIABLES order).
#![no_main]

use credential_proxy_fuzz::checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let values = checks::pieces(data, checks::VARIABLES.len());
    checks::check_config(&values);
});
