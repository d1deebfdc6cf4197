//! The one error type of the proxy, and its mapping onto HTTP.
//!
//! Every variant is one row of DESIGN.md's error model: it owns its JSON `code`, its HTTP status
//! and its human message. Messages are built only from values that are safe to show a browser
//! (variable *names*, hosts, methods, limits); no variant ever carries a secret, a token or the
//! token endpoint's raw reply, so nothing that renders an `Error` can leak one. This module does
//! not decide *when* an error happens; policy, config and the request flow do.

use http::StatusCode;

/// Everything that can stop a request, each with a fixed status and JSON code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The path does not match any `allowed_routes` pattern.
    #[error("{method} {path} is not an allowed route")]
    RouteNotAllowed { method: String, path: String },

    /// The path matches a pattern, but not with this method.
    #[error("method {method} is not allowed here; allowed: {}", allow.join(", "))]
    MethodNotAllowed { method: String, allow: Vec<String> },

    /// The `Origin` header names an origin that `allowed_origins` does not list.
    #[error("origin {origin} is not allowed")]
    OriginNotAllowed { origin: String },

    /// The path is malformed or tries to leave the upstream prefix (`..`, encoded separators).
    #[error("invalid path: {reason}")]
    InvalidPath { reason: String },

    /// A client header or query that cannot be forwarded safely.
    #[error("bad request: {reason}")]
    BadRequest { reason: String },

    /// The request body is larger than `max_body_bytes`.
    #[error("request body exceeds the limit of {limit} bytes")]
    BodyTooLarge { limit: u64 },

    /// A variable is missing or malformed; `variable` is its name, never its value.
    #[error("configuration variable `{variable}` is invalid: {reason}")]
    ConfigInvalid { variable: String, reason: String },

    /// The token endpoint could not give a usable token. `reason` is our own description
    /// (status code, "reply is not JSON"), never the endpoint's text.
    #[error("the token endpoint failed: {reason}")]
    TokenEndpointFailed { reason: String },

    /// The token endpoint did not answer in `upstream_timeout_secs`.
    #[error("the token endpoint did not answer in time")]
    TokenEndpointTimeout,

    /// The upstream API could not be reached or broke off.
    #[error("the upstream API could not be reached: {reason}")]
    UpstreamUnreachable { reason: String },

    /// The upstream API did not answer in `upstream_timeout_secs`.
    #[error("the upstream API did not answer in time")]
    UpstreamTimeout,

    /// The Spin runtime refused the outbound connection: the host is missing from
    /// `allowed_outbound_hosts` in spin.toml.
    #[error("the Spin runtime refused the connection to {host}; add it to allowed_outbound_hosts")]
    OutboundNotAllowed { host: String },

    /// A bug or a runtime failure that is nobody's input.
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

impl Error {
    /// Shorthand for the config error of one variable.
    pub fn config(variable: &str, reason: impl Into<String>) -> Self {
        Error::ConfigInvalid {
            variable: variable.to_string(),
            reason: reason.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::RouteNotAllowed { .. } | Error::OriginNotAllowed { .. } => StatusCode::FORBIDDEN,
            Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Error::InvalidPath { .. } | Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::ConfigInvalid { .. } | Error::Internal { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Error::TokenEndpointFailed { .. }
            | Error::UpstreamUnreachable { .. }
            | Error::OutboundNotAllowed { .. } => StatusCode::BAD_GATEWAY,
            Error::TokenEndpointTimeout | Error::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::RouteNotAllowed { .. } => "route_not_allowed",
            Error::MethodNotAllowed { .. } => "method_not_allowed",
            Error::OriginNotAllowed { .. } => "origin_not_allowed",
            Error::InvalidPath { .. } => "invalid_path",
            Error::BadRequest { .. } => "bad_request",
            Error::BodyTooLarge { .. } => "body_too_large",
            Error::ConfigInvalid { .. } => "config_invalid",
            Error::TokenEndpointFailed { .. } => "token_endpoint_failed",
            Error::TokenEndpointTimeout => "token_endpoint_timeout",
            Error::UpstreamUnreachable { .. } => "upstream_unreachable",
            Error::UpstreamTimeout => "upstream_timeout",
            Error::OutboundNotAllowed { .. } => "outbound_not_allowed",
            Error::Internal { .. } => "internal_error",
        }
    }

    /// The JSON body `{"error":{"code":…,"message":…}}`.
    pub fn body(&self) -> Vec<u8> {
        serde_json::json!({
            "error": { "code": self.code(), "message": self.to_string() }
        })
        .to_string()
        .into_bytes()
    }

    /// Extra headers the status calls for (RFC 9110 §15.5.6: a 405 carries `Allow`).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Error::MethodNotAllowed { allow, .. } => vec![("allow", allow.join(", "))],
            _ => Vec::new(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_renders_json_with_its_code() {
        let errors = [
            Error::RouteNotAllowed {
                method: "GET".into(),
                path: "/x".into(),
            },
            Error::config("upstream_url", "is required"),
            Error::BodyTooLarge { limit: 10 },
            Error::TokenEndpointTimeout,
        ];
        for e in errors {
            let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
            assert_eq!(v["error"]["code"], e.code());
            assert_eq!(v["error"]["message"], e.to_string());
        }
    }

    #[test]
    fn statuses_follow_the_error_model() {
        assert_eq!(Error::config("a", "b").status(), 500);
        assert_eq!(
            Error::MethodNotAllowed {
                method: "POST".into(),
                allow: vec!["GET".into()]
            }
            .status(),
            405
        );
        assert_eq!(Error::UpstreamTimeout.status(), 504);
        assert_eq!(Error::OutboundNotAllowed { host: "h".into() }.status(), 502);
    }

    #[test]
    fn method_not_allowed_carries_allow_header() {
        let e = Error::MethodNotAllowed {
            method: "DELETE".into(),
            allow: vec!["GET".into(), "POST".into()],
        };
        assert_eq!(e.headers(), vec![("allow", "GET, POST".to_string())]);
    }
}
