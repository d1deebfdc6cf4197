//! The demo API's plain-Rust request and response types, its configuration and its routing table.
//!
//! `handle` takes a request as values and returns a response as values: the Spin handler in
//! `lib.rs` only converts to and from these, so every decision is tested natively. Routes are
//! matched on the full request path, which is what a component reached by Spin's service
//! chaining (`http://demo-api.spin.internal/...`) sees. This module does not check credentials
//! or build results itself; `oauth` and `search` do.

use serde_json::json;

use crate::secret::Secret;
use crate::{oauth, search};

/// The token endpoint's path, as on `authentication.gettyimages.com`.
pub const TOKEN_PATH: &str = "/oauth2/token";
/// The image search's path, under the `/v1` the demo proxy's `upstream_url` ends in.
pub const SEARCH_PATH: &str = "/v1/search/images";

/// The demo API's own credentials, from its component variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub api_key: Secret,
    pub client_id: Secret,
    pub client_secret: Secret,
}

/// What the handler needs from the clock: seconds since the Unix epoch, and a nonce that makes
/// two tokens minted in the same second differ.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub secs: u64,
    pub nonce: u64,
}

/// An incoming request reduced to values. Header names are lowercase.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiRequest {
    /// The first value of a header, by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An outgoing response as values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// A JSON response; `no-store` because every answer depends on credentials or the clock.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type", "application/json".to_string()),
                ("cache-control", "no-store".to_string()),
            ],
            body: value.to_string().into_bytes(),
        }
    }

    /// The error shape the proxy also uses: `{"error":{"code":…,"message":…}}`.
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        Self::json(
            status,
            &json!({ "error": { "code": code, "message": message } }),
        )
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    #[cfg(test)]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Answered when a component variable is empty; names the variable, never a value.
pub fn config_error(variable: &str) -> ApiResponse {
    ApiResponse::error(
        500,
        "config_invalid",
        &format!("the demo API's variable `{variable}` is not set"),
    )
}

pub fn handle(cfg: &Config, req: &ApiRequest, now: Now) -> ApiResponse {
    match req.path.as_str() {
        TOKEN_PATH if req.method == "POST" => oauth::token_endpoint(cfg, req, now),
        TOKEN_PATH => method_not_allowed("POST"),
        SEARCH_PATH if req.method == "GET" || req.method == "HEAD" => {
            let mut resp = search::search_images(cfg, req, now.secs);
            if req.method == "HEAD" {
                resp.body.clear();
            }
            resp
        }
        SEARCH_PATH => method_not_allowed("GET, HEAD"),
        _ => ApiResponse::error(
            404,
            "not_found",
            "the demo API has only POST /oauth2/token and GET /v1/search/images",
        ),
    }
}

fn method_not_allowed(allow: &'static str) -> ApiResponse {
    ApiResponse::error(
        405,
        "method_not_allowed",
        &format!("this path accepts {allow}"),
    )
    .with_header("allow", allow)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const NOW: Now = Now {
        secs: 1_700_000_000,
        nonce: 42,
    };

    pub fn cfg() -> Config {
        Config {
            api_key: Secret::new("the-api-key"),
            client_id: Secret::new("the-client"),
            client_secret: Secret::new("the-client-secret"),
        }
    }

    pub fn request(method: &str, path: &str) -> ApiRequest {
        ApiRequest {
            method: method.to_string(),
            path: path.to_string(),
            ..ApiRequest::default()
        }
    }

    pub fn body_json(resp: &ApiResponse) -> serde_json::Value {
        serde_json::from_slice(&resp.body).expect("the response body is JSON")
    }

    /// No response of the demo API may contain one of its own secrets.
    pub fn assert_no_secret(resp: &ApiResponse) {
        let text = String::from_utf8_lossy(&resp.body);
        let c = cfg();
        for s in [&c.api_key, &c.client_id, &c.client_secret] {
            assert!(!text.contains(s.secret()), "body leaks a secret: {text}");
            for (_, v) in &resp.headers {
                assert!(!v.contains(s.secret()), "header leaks a secret: {v}");
            }
        }
    }

    #[test]
    fn unknown_path_is_a_json_404() {
        for path in ["/", "/v1", "/v1/search", "/admin/keys", "/oauth2/token/x"] {
            let resp = handle(&cfg(), &request("GET", path), NOW);
            assert_eq!(resp.status, 404, "{path}");
            assert_eq!(body_json(&resp)["error"]["code"], "not_found");
            assert_no_secret(&resp);
        }
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let resp = handle(&cfg(), &request("GET", TOKEN_PATH), NOW);
        assert_eq!(resp.status, 405);
        assert_eq!(resp.header("allow"), Some("POST"));
        let resp = handle(&cfg(), &request("POST", SEARCH_PATH), NOW);
        assert_eq!(resp.status, 405);
        assert_eq!(resp.header("allow"), Some("GET, HEAD"));
    }

    #[test]
    fn config_error_names_the_variable() {
        let resp = config_error("client_secret");
        assert_eq!(resp.status, 500);
        assert!(body_json(&resp)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`client_secret`"));
    }
}
