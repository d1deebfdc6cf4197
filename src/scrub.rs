//! Finding secrets in the upstream's response header values, in the forms an upstream echoes
//! them: plain, percent-encoded any number of times (a login redirect's `Location` that carries
//! the whole request URL, itself encoded inside a `return_to` parameter), form-encoded (`+` for
//! a space), in another letter case, and base64 or base64url (a `Basic` echo, a state token).
//!
//! [`Scrubber`] answers one question, "does this value carry a secret?", and `answer` drops the
//! header when it does. It does not look at bodies (they are streamed, never held) and does not
//! decide which secrets count (`answer` passes the config's and the token in use).
//!
//! The work per value is bounded and linear in its length: at most [`MAX_DECODE_ROUNDS`]
//! percent-decoding rounds in each of two views (`+` kept, `+` as a space), each no longer than
//! the value's lossy UTF-8 form, each searched for a fixed number of needles per secret with
//! `str::contains` (Two-Way, linear). A value over [`MAX_SCANNED_BYTES`] is treated as a leak
//! and dropped unscanned: no API needs a header that large in a browser.

use std::cell::OnceCell;

use base64::Engine as _;

/// Percent-decoding stops at a fixpoint or after this many rounds. Four covers a URL encoded
/// inside a parameter of a URL inside another (three levels) with one to spare.
pub const MAX_DECODE_ROUNDS: usize = 4;

/// A header value longer than this is dropped without being scanned.
pub const MAX_SCANNED_BYTES: usize = 64 * 1024;

/// Secrets shorter than this are searched in plain (and decoded) form only: the base64 of a few
/// bytes is a handful of characters that ordinary values contain by chance.
const MIN_BASE64_SECRET_BYTES: usize = 6;

/// The secrets to look for, each in the forms an upstream echoes it: lowercased, and, for
/// secrets long enough, the characters of its base64 that do not depend on its neighbours, at
/// each of the three byte alignments it can have inside a longer encoded string, in both
/// alphabets, also lowercased. Comparisons are ASCII-case-insensitive, which can only drop more,
/// never less. Each form is prepared at most once per answer, and only when a value could hold
/// it: preparing them was most of an answer's scrubbing.
pub struct Scrubber<'a> {
    secrets: Vec<Secret<'a>>,
}

struct Secret<'a> {
    text: &'a str,
    lowercase: OnceCell<String>,
    base64: OnceCell<Vec<String>>,
}

impl<'a> Scrubber<'a> {
    /// Empty secrets are ignored (an unset variable is not a secret to look for).
    pub fn new(secrets: impl IntoIterator<Item = &'a str>) -> Scrubber<'a> {
        Scrubber {
            secrets: secrets
                .into_iter()
                .filter(|s| !s.is_empty())
                .map(|text| Secret {
                    text,
                    lowercase: OnceCell::new(),
                    base64: OnceCell::new(),
                })
                .collect(),
        }
    }

    /// Whether `value` carries a secret in any of the forms above (or is too large to check).
    pub fn leaks(&self, value: &[u8]) -> bool {
        if self.secrets.is_empty() {
            return false;
        }
        if value.len() > MAX_SCANNED_BYTES {
            return true;
        }
        // Most header values (a content type, a date, a length) are shorter than the secrets.
        // No view of an ASCII value is longer than the value: percent-decoding only shortens,
        // and an invalid byte it yields came from three characters and becomes one three-byte
        // U+FFFD. No form of a secret is shorter than the secret (see `base64_forms`).
        let bound = if value.is_ascii() {
            value.len()
        } else {
            usize::MAX
        };
        let mut candidates = self
            .secrets
            .iter()
            .filter(|secret| secret.text.len() <= bound)
            .peekable();
        if candidates.peek().is_none() {
            return false;
        }
        let views = views(value);
        let found = |needle: &str| views.iter().any(|view| view.contains(needle));
        // A base64 form is a run of base64 characters at least as long as its secret.
        let run = views
            .iter()
            .map(|v| longest_base64_run(v))
            .max()
            .unwrap_or(0);
        candidates.any(|secret| {
            found(
                secret
                    .lowercase
                    .get_or_init(|| secret.text.to_ascii_lowercase()),
            ) || (secret.text.len() >= MIN_BASE64_SECRET_BYTES
                && run >= secret.text.len()
                && secret
                    .base64
                    .get_or_init(|| base64_forms(secret.text))
                    .iter()
                    .any(|form| found(form)))
        })
    }
}

/// The longest stretch of `view` (lowercased) made of base64 characters, either alphabet.
fn longest_base64_run(view: &str) -> usize {
    view.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_')))
        .map(str::len)
        .max()
        .unwrap_or(0)
}

/// The lowercased base64 forms of `secret` (`n ≥ 6` bytes), each once. None is shorter than the
/// secret: a core has at least `4n/3` minus two characters cut at its ends, which is `n` or more
/// from `n = 6` on.
fn base64_forms(secret: &str) -> Vec<String> {
    let mut forms: Vec<String> = Vec::new();
    for aligned in base64_cores(secret.as_bytes()) {
        let url_safe = aligned.replace('+', "-").replace('/', "_");
        for form in [aligned.to_ascii_lowercase(), url_safe.to_ascii_lowercase()] {
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
    }
    forms
}

/// The lowercased views of a value that are searched: as sent, then percent-decoded round by
/// round to a fixpoint (at most [`MAX_DECODE_ROUNDS`]), once keeping `+` and once reading `+` as
/// a space before each round (form encoding, which `target` uses for `api_key_query`). Invalid
/// UTF-8 becomes U+FFFD, which no secret (a Spin variable, so valid UTF-8) can straddle. A value
/// with no `%` and no `+` (most of them) is its only view.
pub fn views(value: &[u8]) -> Vec<String> {
    let raw = String::from_utf8_lossy(value).to_ascii_lowercase();
    let mut decoded = Vec::new();
    for plus_is_space in [false, true] {
        let mut current: &str = &raw;
        let mut owned: String;
        for _ in 0..MAX_DECODE_ROUNDS {
            let spaced = plus_is_space && current.contains('+');
            if !spaced && !current.contains('%') {
                break; // nothing left to decode: the fixpoint
            }
            let input = if spaced {
                current.replace('+', " ")
            } else {
                current.to_string()
            };
            let next = if input.contains('%') {
                let bytes = percent_encoding::percent_decode(input.as_bytes()).collect::<Vec<u8>>();
                String::from_utf8_lossy(&bytes).to_ascii_lowercase()
            } else {
                input
            };
            if next == current {
                break;
            }
            decoded.push(next.clone());
            owned = next;
            current = &owned;
        }
    }
    let mut views = vec![raw];
    views.append(&mut decoded);
    views
}

/// The base64 (standard alphabet, no padding) characters that encode only `secret`'s bytes when
/// it starts at byte offset 0, 1 or 2 of a 3-byte group inside a longer encoded string. A
/// character covers 6 bits, so with `k` bytes before the secret the first `ceil(8k/6)`
/// characters mix in the neighbour's bits and the last partial one mixes in what follows; both
/// are cut. Padding never matters: the core is a substring of every padded or unpadded form.
fn base64_cores(secret: &[u8]) -> [String; 3] {
    [0usize, 1, 2].map(|k| {
        let mut aligned = vec![0u8; k];
        aligned.extend_from_slice(secret);
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&aligned);
        let start = (8 * k).div_ceil(6);
        let end = (8 * (k + secret.len())) / 6;
        encoded.get(start..end).unwrap_or_default().to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

    const KEY: &str = "K+y/Secret=9&z";

    fn scrubber() -> Scrubber<'static> {
        Scrubber::new([KEY, "", "tok-123456"])
    }

    fn encode_component(s: &str) -> String {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    }

    fn form(s: &str) -> String {
        form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }

    #[test]
    fn finds_plain_case_changed_and_percent_encoded_copies() {
        let s = scrubber();
        let once = encode_component(KEY);
        let twice = encode_component(&once);
        let thrice = encode_component(&twice);
        for value in [
            format!("x {KEY} y"),
            KEY.to_ascii_uppercase(),
            KEY.to_ascii_lowercase(),
            format!(
                "/login?return_to=%2Fv3%3Fapi_key%3D{}",
                encode_component(&once)
            ),
            once.to_ascii_lowercase(),
            twice,
            thrice,
            form(KEY),
            encode_component(&form(KEY)),
            "Bearer TOK-123456".to_string(),
        ] {
            assert!(s.leaks(value.as_bytes()), "{value}");
        }
    }

    #[test]
    fn a_space_in_a_secret_is_found_in_form_encoding() {
        let s = Scrubber::new(["a secret+value"]);
        let encoded = form("a secret+value");
        assert_eq!(encoded, "a+secret%2Bvalue");
        assert!(s.leaks(encoded.as_bytes()));
        assert!(s.leaks(encode_component(&encoded).as_bytes()));
    }

    #[test]
    fn finds_base64_copies_at_every_alignment_in_both_alphabets() {
        let s = scrubber();
        for prefix in ["", "a", "ab", "abc", "user:", "id-1:"] {
            for suffix in ["", "x", "xy", ":more"] {
                let plain = format!("{prefix}{KEY}{suffix}");
                for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
                    let value = format!("Basic {}", engine.encode(&plain));
                    assert!(s.leaks(value.as_bytes()), "{plain:?} as {value}");
                }
                let percent = encode_component(&STANDARD.encode(&plain));
                assert!(s.leaks(percent.as_bytes()), "{plain:?} as {percent}");
            }
        }
    }

    #[test]
    fn leaves_unrelated_values_alone() {
        let s = scrubber();
        for value in [
            "application/json",
            "\"v1\"",
            "<https://api.example.com/v3/x?page=2>; rel=next",
            "max-age=60",
            "Basic realm=\"api\"",
            "%%%%",
            "%zz%",
        ] {
            assert!(!s.leaks(value.as_bytes()), "{value}");
        }
        assert!(!Scrubber::new([""]).leaks(b"anything"));
        // Short secrets are not searched as base64 (their few characters occur by chance).
        let short = Scrubber::new(["abc"]);
        assert!(!short.leaks(STANDARD.encode("abc").as_bytes()));
        assert!(short.leaks(b"xABCx"));
    }

    #[test]
    fn base64_cores_depend_only_on_the_secret() {
        let secret = b"0123456789";
        for (k, core) in base64_cores(secret).iter().enumerate() {
            assert!(!core.is_empty());
            for neighbour in [0u8, 0xff, b'a'] {
                let mut text = vec![neighbour; k];
                text.extend_from_slice(secret);
                text.extend_from_slice(&[neighbour; 3]);
                let encoded = STANDARD.encode(&text);
                assert!(encoded.contains(core.as_str()), "k={k} {encoded} {core}");
            }
        }
    }

    #[test]
    fn large_and_hostile_values_stay_bounded() {
        let s = scrubber();
        // Each round of `%25…` decodes one level; the views stop after the bound.
        let nested = format!("{}41", "%25".repeat(20_000));
        let views = views(nested.as_bytes());
        assert!(views.len() <= 1 + 2 * MAX_DECODE_ROUNDS, "{}", views.len());
        let total: usize = views.iter().map(String::len).sum();
        assert!(total <= views.len() * nested.len(), "views never grow");
        assert!(!s.leaks(nested.as_bytes()));

        // Invalid UTF-8 at most triples a view (U+FFFD), never more.
        let invalid = vec![0xffu8; 30_000];
        let views_of_invalid = super::views(&invalid);
        assert!(views_of_invalid
            .iter()
            .all(|v| v.len() <= 3 * invalid.len()));

        // Near the cap: scanned; a copy of the key at the very end is still found.
        let mut big = "a".repeat(MAX_SCANNED_BYTES - KEY.len());
        assert!(!s.leaks(big.as_bytes()));
        big.push_str(KEY);
        assert_eq!(big.len(), MAX_SCANNED_BYTES);
        assert!(s.leaks(big.as_bytes()));
        // Over the cap: dropped unscanned.
        let over = "a".repeat(MAX_SCANNED_BYTES + 1);
        assert!(s.leaks(over.as_bytes()));
    }

    /// What lets `leaks` skip short ASCII values without building any needle.
    #[test]
    fn no_needle_is_shorter_than_its_secret() {
        for len in MIN_BASE64_SECRET_BYTES..=80 {
            let secret: String = (0..len)
                .map(|i| char::from(b'!' + (i * 7 % 90) as u8))
                .collect();
            for form in base64_forms(&secret) {
                assert!(form.len() >= len, "{len}: {form:?}");
            }
        }
    }

    #[test]
    fn a_value_as_long_as_the_shortest_secret_is_still_searched() {
        let s = Scrubber::new(["tok-12", "a-much-longer-secret"]);
        assert!(s.leaks(b"TOK-12"));
        assert!(!s.leaks(b"tok-1"));
        // Encoded forms of the short secret inside a longer value.
        assert!(s.leaks(b"x=tok%2D12"));
        assert!(s.leaks(
            base64::engine::general_purpose::STANDARD
                .encode("tok-12")
                .as_bytes()
        ));
    }
}
