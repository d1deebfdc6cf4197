//! `GET /v1/search/images?phrase=…`: Getty's image search, guarded the way Getty guards it.
//!
//! A call needs both `Api-Key: <api_key>` and `Authorization: Bearer <token>` with a token from
//! `/oauth2/token` that has not expired. A refusal says which of the two is missing or wrong,
//! never what was expected. A success carries, besides Getty-shaped results, two fields for the
//! demo page: `token_expires_in_secs` (the remaining life of the token used) and
//! `received_headers` (the request's header *names*, so the page can show that `api-key` and
//! `authorization` were added by the proxy without showing their values). This module does not
//! draw the images; `images` does.

use serde::Serialize;
use serde_json::json;

use crate::images::{self, Image};
use crate::router::{ApiRequest, ApiResponse, Config};
use crate::token::{self, TokenError};

/// Longest phrase used; the rest is ignored, as a search box would.
const MAX_PHRASE_CHARS: usize = 100;

/// What a successful search answers.
#[derive(Debug, Serialize)]
struct SearchReply {
    result_count: usize,
    images: Vec<Image>,
    token_expires_in_secs: u64,
    received_headers: Vec<String>,
}

/// What is wrong with a call's credentials, one entry per header.
#[derive(Debug, Default, PartialEq, Eq)]
struct Refusal {
    problems: Vec<&'static str>,
    /// A bearer token was presented but refused (RFC 6750 §3.1 `invalid_token`).
    bad_token: bool,
}

/// Checks both credentials and returns the token's remaining life in seconds.
fn check_credentials(cfg: &Config, req: &ApiRequest, now: u64) -> Result<u64, Refusal> {
    let mut refusal = Refusal::default();
    match req.header("api-key") {
        None => refusal.problems.push("the Api-Key header is missing"),
        Some(key) if !cfg.api_key.matches(key.trim()) => {
            refusal.problems.push("the Api-Key header is not valid")
        }
        Some(_) => {}
    }
    let remaining = match req.header("authorization") {
        None => {
            refusal
                .problems
                .push("the Authorization header is missing (expected a Bearer token)");
            None
        }
        Some(value) => {
            let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                refusal
                    .problems
                    .push("the Authorization header is not a Bearer token");
                None
            } else {
                match token::verify(&cfg.client_secret, token.trim(), now) {
                    Ok(remaining) => Some(remaining),
                    Err(e) => {
                        refusal.bad_token = true;
                        refusal.problems.push(TokenError::describe(e));
                        None
                    }
                }
            }
        }
    };
    match remaining {
        Some(remaining) if refusal.problems.is_empty() => Ok(remaining),
        _ => Err(refusal),
    }
}

/// The request's header names, lowercase, sorted and unique. Spin's own `spin-*` metadata
/// headers are left out: Spin adds them to every request, so they say nothing about the proxy.
fn header_names(req: &ApiRequest) -> Vec<String> {
    let mut names: Vec<String> = req
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| !n.starts_with("spin-"))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn phrase(req: &ApiRequest) -> Option<String> {
    form_urlencoded::parse(req.query.as_bytes())
        .find(|(name, _)| name == "phrase")
        .map(|(_, value)| value.trim().chars().take(MAX_PHRASE_CHARS).collect())
        .filter(|p: &String| !p.is_empty())
}

pub fn search_images(cfg: &Config, req: &ApiRequest, now: u64) -> ApiResponse {
    let remaining = match check_credentials(cfg, req, now) {
        Ok(remaining) => remaining,
        Err(refusal) => {
            let challenge = if refusal.bad_token {
                "Bearer realm=\"demo-api\", error=\"invalid_token\""
            } else {
                "Bearer realm=\"demo-api\""
            };
            return ApiResponse::error(401, "unauthorized", &refusal.problems.join("; "))
                .with_header("www-authenticate", challenge);
        }
    };
    let Some(phrase) = phrase(req) else {
        return ApiResponse::error(
            400,
            "phrase_required",
            "add ?phrase=… to say what to search for",
        );
    };
    let images = images::fake_images(&phrase);
    let reply = SearchReply {
        result_count: images.len(),
        images,
        token_expires_in_secs: remaining,
        received_headers: header_names(req),
    };
    let mut response = ApiResponse::json(200, &json!(reply));
    // Results are the same for every caller for a while: a shared cache (the proxy's response
    // cache, when on) may keep them a minute (`s-maxage`). `max-age=0` keeps the browser's own
    // cache out of the way, so the demo page sees every answer the proxy gives. Errors and
    // token replies stay no-store.
    response
        .headers
        .retain(|(name, _)| *name != "cache-control");
    response.with_header("cache-control", "public, max-age=0, s-maxage=60")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::tests::{assert_no_secret, body_json, cfg, request, NOW};
    use crate::router::SEARCH_PATH;
    use crate::secret::Secret;
    use crate::token::TOKEN_TTL_SECS;

    fn good_token() -> String {
        token::mint(&cfg().client_secret, NOW.secs, 1)
    }

    fn search(headers: &[(&str, &str)], query: &str) -> ApiResponse {
        let mut req = request("GET", SEARCH_PATH);
        req.query = query.to_string();
        req.headers = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        search_images(&cfg(), &req, NOW.secs + 5)
    }

    fn message(resp: &ApiResponse) -> String {
        body_json(resp)["error"]["message"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn key_and_fresh_token_get_results() {
        let bearer = format!("Bearer {}", good_token());
        let resp = search(
            &[
                ("accept", "application/json"),
                ("api-key", "the-api-key"),
                ("authorization", &bearer),
                (
                    "spin-full-url",
                    "http://demo-api.spin.internal/v1/search/images",
                ),
            ],
            "phrase=lighthouse",
        );
        assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
        let body = body_json(&resp);
        assert_eq!(
            body["result_count"],
            body["images"].as_array().unwrap().len()
        );
        assert!(body["result_count"].as_u64().unwrap() > 0);
        assert_eq!(
            resp.header("cache-control"),
            Some("public, max-age=0, s-maxage=60")
        );
        assert_eq!(body["token_expires_in_secs"], TOKEN_TTL_SECS - 5);
        assert_eq!(
            body["received_headers"],
            json!(["accept", "api-key", "authorization"])
        );
        let thumb = &body["images"][0]["display_sizes"][0];
        assert_eq!(thumb["name"], "thumb");
        assert!(thumb["uri"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml"));
        assert_no_secret(&resp);
    }

    #[test]
    fn missing_both_credentials_names_both() {
        let resp = search(&[], "phrase=cat");
        assert_eq!(resp.status, 401);
        assert_eq!(body_json(&resp)["error"]["code"], "unauthorized");
        let m = message(&resp);
        assert!(m.contains("Api-Key header is missing"), "{m}");
        assert!(m.contains("Authorization header is missing"), "{m}");
        assert_eq!(
            resp.header("www-authenticate"),
            Some("Bearer realm=\"demo-api\"")
        );
    }

    #[test]
    fn token_without_key_is_refused() {
        let bearer = format!("Bearer {}", good_token());
        let resp = search(&[("authorization", &bearer)], "phrase=cat");
        assert_eq!(resp.status, 401);
        assert_eq!(message(&resp), "the Api-Key header is missing");
    }

    #[test]
    fn key_without_token_is_refused() {
        let resp = search(&[("api-key", "the-api-key")], "phrase=cat");
        assert_eq!(resp.status, 401);
        assert!(message(&resp).starts_with("the Authorization header is missing"));
    }

    #[test]
    fn wrong_key_is_refused_without_echoing_it() {
        let bearer = format!("Bearer {}", good_token());
        let resp = search(
            &[("api-key", "guess-123"), ("authorization", &bearer)],
            "phrase=cat",
        );
        assert_eq!(resp.status, 401);
        assert_eq!(message(&resp), "the Api-Key header is not valid");
        assert!(!String::from_utf8_lossy(&resp.body).contains("guess-123"));
        assert_no_secret(&resp);
    }

    #[test]
    fn expired_token_is_refused() {
        let old = token::mint(&cfg().client_secret, NOW.secs - TOKEN_TTL_SECS, 1);
        let bearer = format!("Bearer {old}");
        let resp = search(
            &[("api-key", "the-api-key"), ("authorization", &bearer)],
            "phrase=cat",
        );
        assert_eq!(resp.status, 401);
        assert_eq!(message(&resp), "the bearer token has expired");
        assert_eq!(
            resp.header("www-authenticate"),
            Some("Bearer realm=\"demo-api\", error=\"invalid_token\"")
        );
    }

    #[test]
    fn token_from_another_secret_is_refused() {
        let forged = token::mint(&Secret::new("guess"), NOW.secs, 1);
        let bearer = format!("Bearer {forged}");
        let resp = search(
            &[("api-key", "the-api-key"), ("authorization", &bearer)],
            "phrase=cat",
        );
        assert_eq!(resp.status, 401);
        assert_eq!(
            message(&resp),
            "the bearer token was not issued by this server"
        );
    }

    #[test]
    fn basic_authorization_is_not_a_bearer_token() {
        let resp = search(
            &[("api-key", "the-api-key"), ("authorization", "Basic abc")],
            "phrase=cat",
        );
        assert_eq!(resp.status, 401);
        assert_eq!(
            message(&resp),
            "the Authorization header is not a Bearer token"
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let bearer = format!("bearer {}", good_token());
        let resp = search(
            &[("api-key", "the-api-key"), ("authorization", &bearer)],
            "phrase=cat",
        );
        assert_eq!(resp.status, 200);
    }

    #[test]
    fn missing_phrase_is_400_after_credentials() {
        let bearer = format!("Bearer {}", good_token());
        let headers = [
            ("api-key", "the-api-key"),
            ("authorization", bearer.as_str()),
        ];
        for query in ["", "phrase=", "phrase=%20%20", "other=1"] {
            let resp = search(&headers, query);
            assert_eq!(resp.status, 400, "{query}");
            assert_eq!(body_json(&resp)["error"]["code"], "phrase_required");
        }
    }

    #[test]
    fn results_are_deterministic_per_phrase() {
        let bearer = format!("Bearer {}", good_token());
        let headers = [
            ("api-key", "the-api-key"),
            ("authorization", bearer.as_str()),
        ];
        let a = body_json(&search(&headers, "phrase=red%20fox"))["images"].clone();
        let b = body_json(&search(&headers, "phrase=red+fox"))["images"].clone();
        let c = body_json(&search(&headers, "phrase=blue%20whale"))["images"].clone();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
