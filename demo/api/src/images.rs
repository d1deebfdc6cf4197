//! Deterministic fake search results in Getty's shape, with pictures the page can show offline.
//!
//! Each phrase always yields the same images: a SHA-256 of the lowercased phrase picks titles,
//! colours and shapes. Thumbnails are small inline SVGs in `data:` URIs, so the demo page shows
//! pictures with no network and no external resource. This module does not check credentials
//! and draws no real photos; the phrase is XML-escaped before it goes into an SVG.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How many results a search gives.
const RESULTS: usize = 6;

const MOODS: [&str; 8] = [
    "Misty",
    "Golden",
    "Quiet",
    "Vivid",
    "Windswept",
    "Sunlit",
    "Moonlit",
    "Frosty",
];
const SCENES: [&str; 8] = [
    "at dawn",
    "by the sea",
    "in the hills",
    "at dusk",
    "after the rain",
    "in the city",
    "under the stars",
    "in early spring",
];

/// One search result, with the fields of Getty's `images[]` the demo page uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    pub id: String,
    pub title: String,
    pub caption: String,
    pub display_sizes: Vec<DisplaySize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisplaySize {
    pub name: &'static str,
    pub is_watermarked: bool,
    pub uri: String,
}

pub fn fake_images(phrase: &str) -> Vec<Image> {
    let digest = Sha256::digest(phrase.to_lowercase().as_bytes());
    let seed = |i: usize| digest[i % digest.len()];
    (0..RESULTS)
        .map(|i| {
            let mood = MOODS[usize::from(seed(i * 3)) % MOODS.len()];
            let scene = SCENES[usize::from(seed(i * 3 + 1)) % SCENES.len()];
            let hue = u32::from(seed(i * 3 + 2)) * 360 / 256;
            let sun_x = 30 + u32::from(seed(i * 5 + 7)) % 140;
            Image {
                id: format!(
                    "demo-{:02x}{:02x}{:02x}{:02x}-{}",
                    digest[0],
                    digest[1],
                    digest[2],
                    digest[3],
                    i + 1
                ),
                title: format!("{mood} {phrase} {scene}"),
                caption: format!(
                    "Demo result {} of {RESULTS}, drawn by the demo API: no real photo was fetched.",
                    i + 1
                ),
                display_sizes: vec![DisplaySize {
                    name: "thumb",
                    is_watermarked: false,
                    uri: svg_data_uri(phrase, hue, sun_x),
                }],
            }
        })
        .collect()
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A 200×150 landscape: sky in the phrase's hue, a sun, two hills and the phrase as a label.
fn svg_data_uri(phrase: &str, hue: u32, sun_x: u32) -> String {
    let label: String = phrase.chars().take(24).collect();
    let label = xml_escape(&label);
    let hill = (hue + 120) % 360;
    let svg = format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="150" viewBox="0 0 200 150">"#,
            r#"<defs><linearGradient id="s" x1="0" y1="0" x2="0" y2="1">"#,
            r#"<stop offset="0" stop-color="hsl({hue},70%,75%)"/>"#,
            r#"<stop offset="1" stop-color="hsl({hue},60%,92%)"/></linearGradient></defs>"#,
            r#"<rect width="200" height="150" fill="url(#s)"/>"#,
            r#"<circle cx="{sun_x}" cy="45" r="18" fill="hsl(45,95%,65%)"/>"#,
            r#"<path d="M0 110 Q50 70 100 105 T200 95 V150 H0Z" fill="hsl({hill},35%,45%)"/>"#,
            r#"<path d="M0 125 Q70 95 130 122 T200 118 V150 H0Z" fill="hsl({hill},40%,32%)"/>"#,
            r#"<text x="100" y="142" font-family="sans-serif" font-size="13" "#,
            r#"text-anchor="middle" fill="white">{label}</text></svg>"#
        ),
        hue = hue,
        hill = hill,
        sun_x = sun_x,
        label = label,
    );
    format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svg_of(image: &Image) -> String {
        let uri = &image.display_sizes[0].uri;
        let b64 = uri.strip_prefix("data:image/svg+xml;base64,").unwrap();
        String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap()
    }

    #[test]
    fn same_phrase_same_images_any_case() {
        assert_eq!(fake_images("lighthouse"), fake_images("lighthouse"));
        let (upper, lower) = (fake_images("Cat"), fake_images("cat"));
        for (u, l) in upper.iter().zip(&lower) {
            assert_eq!(u.id, l.id);
        }
        assert_ne!(fake_images("cat")[0].id, fake_images("dog")[0].id);
    }

    #[test]
    fn gives_unique_ids_and_a_thumb_each() {
        let images = fake_images("lighthouse");
        assert_eq!(images.len(), RESULTS);
        let mut ids: Vec<_> = images.iter().map(|i| i.id.clone()).collect();
        ids.dedup();
        assert_eq!(ids.len(), RESULTS);
        for image in &images {
            assert!(image.title.contains("lighthouse"));
            assert_eq!(image.display_sizes[0].name, "thumb");
            assert!(svg_of(image).starts_with("<svg "));
        }
    }

    #[test]
    fn phrase_is_escaped_in_the_svg() {
        let images = fake_images("<script>\"&'");
        let svg = svg_of(&images[0]);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;&quot;&amp;&apos;"));
    }

    #[test]
    fn svg_refers_to_nothing_outside_itself() {
        let svg = svg_of(&fake_images("x")[0]);
        // The only URL is the SVG namespace, which is a name, not a fetch.
        assert_eq!(svg.matches("http").count(), 1);
        assert!(!svg.contains("href"));
    }
}
