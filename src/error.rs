//! The one error type of the proxy, and its mapping onto HTTP.
//!
//! Every variant is one row of the error model in `ARCHITECTURE.md`: it owns its JSON `code`, its
//! HTTP status and its human message (`Outbound` owns one per target and failure). Messages are built only from values that are safe to show a browser
//! (variable *names*, hosts, methods, limits); no variant ever carries a secret, a token or the
//! token endpoint's raw reply, so nothing that renders an `Error` can leak one. This module does
//! not decide *when* an error happens; policy, config and the request flow do.

use http::StatusCode;

/// Everything that can stop a request, each with a fixed status and JSON code.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
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

    /// A call out of the component failed: which target, and how. One variant for both targets,
    /// so the edge reports *what* happened and the code and status follow from the pair.
    #[error("{}", outbound_message(*.target, .failure))]
    Outbound { target: Target, failure: Failure },

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

    /// The upstream API failed in this way.
    pub fn upstream(failure: Failure) -> Self {
        Error::Outbound {
            target: Target::Upstream,
            failure,
        }
    }

    /// The token endpoint gave no usable token; `reason` is ours, never the endpoint's text.
    pub fn token_endpoint(reason: impl Into<String>) -> Self {
        Error::Outbound {
            target: Target::TokenEndpoint,
            failure: Failure::failed(reason),
        }
    }

    /// A fault of our own or of the runtime's bindings (a resource already taken); `reason` is
    /// ours.
    pub fn internal(reason: &str) -> Self {
        Error::Internal {
            reason: reason.to_string(),
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
            Error::Outbound {
                failure: Failure::Timeout,
                ..
            } => StatusCode::GATEWAY_TIMEOUT,
            Error::Outbound { .. } => StatusCode::BAD_GATEWAY,
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
            Error::Outbound { target, failure } => match (target, failure) {
                (_, Failure::NotAllowed { .. }) => "outbound_not_allowed",
                (Target::Upstream, Failure::Timeout) => "upstream_timeout",
                (Target::Upstream, Failure::Failed { .. }) => "upstream_unreachable",
                (Target::TokenEndpoint, Failure::Timeout) => "token_endpoint_timeout",
                (Target::TokenEndpoint, Failure::Failed { .. }) => "token_endpoint_failed",
            },
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

    /// The `Allow` header the status calls for (RFC 9110 §15.5.6: a 405 carries it).
    pub fn allow(&self) -> Option<String> {
        match self {
            Error::MethodNotAllowed { allow, .. } => Some(allow.join(", ")),
            _ => None,
        }
    }
}

/// Where an outbound call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The upstream API (`upstream_url`).
    Upstream,
    /// The OAuth2 token endpoint (`token_url`).
    TokenEndpoint,
}

/// How an outbound call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No answer within `upstream_timeout_secs`.
    Timeout,
    /// Unreachable, broke off, or (token endpoint) no usable token in the reply. `reason` is our
    /// own description (a status code, "reply is not JSON"), never the runtime's or the peer's
    /// text, which may echo the URL and with it a key.
    Failed { reason: String },
    /// The Spin runtime refused the connection: the host is missing from
    /// `allowed_outbound_hosts` in spin.toml.
    NotAllowed { host: String },
}

impl Failure {
    pub fn failed(reason: impl Into<String>) -> Self {
        Failure::Failed {
            reason: reason.into(),
        }
    }
}

fn outbound_message(target: Target, failure: &Failure) -> String {
    match (target, failure) {
        (_, Failure::NotAllowed { host }) => format!(
            "the Spin runtime refused the connection to {host}; add it to allowed_outbound_hosts"
        ),
        (Target::Upstream, Failure::Timeout) => "the upstream API did not answer in time".into(),
        (Target::Upstream, Failure::Failed { reason }) => {
            format!("the upstream API could not be reached: {reason}")
        }
        (Target::TokenEndpoint, Failure::Timeout) => {
            "the token endpoint did not answer in time".into()
        }
        (Target::TokenEndpoint, Failure::Failed { reason }) => {
            format!("the token endpoint failed: {reason}")
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
            Error::Outbound {
                target: Target::TokenEndpoint,
                failure: Failure::Timeout,
            },
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
        assert_eq!(Error::upstream(Failure::Timeout).status(), 504);
        let refused = Failure::NotAllowed { host: "h".into() };
        assert_eq!(Error::upstream(refused).status(), 502);
    }

    #[test]
    fn method_not_allowed_carries_allow_header() {
        let e = Error::MethodNotAllowed {
            method: "DELETE".into(),
            allow: vec!["GET".into(), "POST".into()],
        };
        assert_eq!(e.allow().as_deref(), Some("GET, POST"));
    }

    #[test]
    fn outbound_failures_keep_their_codes_and_statuses() {
        let refused = || Failure::NotAllowed { host: "h".into() };
        let cases = [
            (
                Error::upstream(Failure::failed("x")),
                "upstream_unreachable",
                502,
            ),
            (Error::upstream(Failure::Timeout), "upstream_timeout", 504),
            (Error::upstream(refused()), "outbound_not_allowed", 502),
            (Error::token_endpoint("x"), "token_endpoint_failed", 502),
            (
                Error::Outbound {
                    target: Target::TokenEndpoint,
                    failure: Failure::Timeout,
                },
                "token_endpoint_timeout",
                504,
            ),
            (
                Error::Outbound {
                    target: Target::TokenEndpoint,
                    failure: refused(),
                },
                "outbound_not_allowed",
                502,
            ),
        ];
        for (e, code, status) in cases {
            assert_eq!((e.code(), e.status().as_u16()), (code, status), "{e}");
        }
        assert_eq!(
            Error::token_endpoint("it answered HTTP 500").to_string(),
            "the token endpoint failed: it answered HTTP 500"
        );
    }
}
