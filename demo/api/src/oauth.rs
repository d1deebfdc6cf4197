//! `POST /oauth2/token`: the OAuth2 client-credentials grant (RFC 6749 §4.4), as Getty runs it.
//!
//! The client authenticates with form fields (`client_id`, `client_secret`) or with HTTP Basic
//! (§2.3.1), never both (§2.3). Errors use the RFC's own shape (§5.2, `{"error":"invalid_client"}`),
//! not the proxy's, because that is what a real token endpoint answers and what the proxy must
//! cope with. This module does not mint or check tokens itself (`token` does), and its error
//! descriptions never repeat what the caller sent or what was expected.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;

use crate::router::{ApiRequest, ApiResponse, Config, Now};
use crate::token::{self, TOKEN_TTL_SECS};

/// An RFC 6749 §5.2 error: `error` code, a short description and the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OAuthError {
    status: u16,
    code: &'static str,
    description: &'static str,
}

const INVALID_CLIENT: OAuthError = OAuthError {
    status: 401,
    code: "invalid_client",
    description: "client authentication failed",
};

fn invalid_request(description: &'static str) -> OAuthError {
    OAuthError {
        status: 400,
        code: "invalid_request",
        description,
    }
}

impl OAuthError {
    fn into_response(self) -> ApiResponse {
        let resp = ApiResponse::json(
            self.status,
            &json!({ "error": self.code, "error_description": self.description }),
        );
        if self.status == 401 {
            // §5.2: a 401 for invalid_client names the scheme the client may authenticate with.
            resp.with_header("www-authenticate", "Basic realm=\"demo-api\"")
        } else {
            resp
        }
    }
}

/// The form fields the grant uses. §3.2: a parameter must not appear more than once.
#[derive(Debug, Default)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn parse_form(body: &[u8]) -> Result<TokenForm, OAuthError> {
    let mut form = TokenForm::default();
    for (name, value) in form_urlencoded::parse(body) {
        let slot = match name.as_ref() {
            "grant_type" => &mut form.grant_type,
            "client_id" => &mut form.client_id,
            "client_secret" => &mut form.client_secret,
            // `scope` and any extension parameter are accepted and ignored.
            _ => continue,
        };
        if slot.is_some() {
            return Err(invalid_request("a parameter was sent more than once"));
        }
        *slot = Some(value.into_owned());
    }
    Ok(form)
}

/// Decodes one half of a Basic credential: §2.3.1 form-urlencodes id and secret before they
/// are joined with `:` and base64-encoded.
fn form_decode(part: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&part.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// `Some((id, secret))` from an `Authorization: Basic …` header, `None` when there is none.
fn basic_credentials(req: &ApiRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.header("authorization") else {
        return Ok(None);
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(INVALID_CLIENT);
    }
    let decoded = STANDARD
        .decode(rest.trim())
        .map_err(|_| invalid_request("the Basic credentials are not base64"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| INVALID_CLIENT)?;
    let (id, secret) = decoded.split_once(':').ok_or(INVALID_CLIENT)?;
    match (form_decode(id), form_decode(secret)) {
        (Some(id), Some(secret)) => Ok(Some((id, secret))),
        _ => Err(INVALID_CLIENT),
    }
}

fn authenticate(cfg: &Config, req: &ApiRequest, form: &TokenForm) -> Result<(), OAuthError> {
    let basic = basic_credentials(req)?;
    let in_body = form.client_id.is_some() || form.client_secret.is_some();
    let (id, secret) = match (basic, in_body) {
        (Some(_), true) => {
            return Err(invalid_request(
                "use one client authentication method, not both",
            ))
        }
        (Some((id, secret)), false) => (id, secret),
        (None, true) => (
            form.client_id.clone().unwrap_or_default(),
            form.client_secret.clone().unwrap_or_default(),
        ),
        (None, false) => return Err(INVALID_CLIENT),
    };
    // Both are compared, whatever the first answer, so timing tells nothing about which failed.
    let id_ok = cfg.client_id.matches(&id);
    let secret_ok = cfg.client_secret.matches(&secret);
    if id_ok & secret_ok {
        Ok(())
    } else {
        Err(INVALID_CLIENT)
    }
}

fn grant(cfg: &Config, req: &ApiRequest, now: Now) -> Result<ApiResponse, OAuthError> {
    let form = parse_form(&req.body)?;
    authenticate(cfg, req, &form)?;
    match form.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return Err(OAuthError {
                status: 400,
                code: "unsupported_grant_type",
                description: "only grant_type=client_credentials is supported",
            })
        }
        None => return Err(invalid_request("grant_type is missing")),
    }
    let access_token = token::mint(&cfg.client_secret, now.secs, now.nonce);
    // §5.1: token replies must not be cached.
    Ok(ApiResponse::json(
        200,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_SECS,
        }),
    )
    .with_header("pragma", "no-cache"))
}

pub fn token_endpoint(cfg: &Config, req: &ApiRequest, now: Now) -> ApiResponse {
    grant(cfg, req, now).unwrap_or_else(OAuthError::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::tests::{assert_no_secret, body_json, cfg, request, NOW};
    use crate::router::TOKEN_PATH;

    fn post(body: &str) -> ApiRequest {
        let mut req = request("POST", TOKEN_PATH);
        req.headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        req.body = body.as_bytes().to_vec();
        req
    }

    fn basic(id: &str, secret: &str) -> String {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
        )
    }

    const GOOD: &str =
        "grant_type=client_credentials&client_id=the-client&client_secret=the-client-secret";

    #[test]
    fn body_credentials_get_a_bearer_token() {
        let resp = token_endpoint(&cfg(), &post(GOOD), NOW);
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("cache-control"), Some("no-store"));
        let body = body_json(&resp);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 30);
        let t = body["access_token"].as_str().unwrap();
        assert_eq!(
            token::verify(&cfg().client_secret, t, NOW.secs),
            Ok(TOKEN_TTL_SECS)
        );
        assert_no_secret(&resp);
    }

    #[test]
    fn basic_credentials_get_a_bearer_token() {
        let mut req = post("grant_type=client_credentials");
        req.headers.push((
            "authorization".into(),
            basic("the-client", "the-client-secret"),
        ));
        let resp = token_endpoint(&cfg(), &req, NOW);
        assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut c = cfg();
        c.client_secret = crate::secret::Secret::new("a b+c:d%e");
        let mut req = post("grant_type=client_credentials");
        req.headers
            .push(("authorization".into(), basic("the-client", "a b+c:d%e")));
        assert_eq!(token_endpoint(&c, &req, NOW).status, 200);
    }

    #[test]
    fn wrong_or_missing_credentials_are_invalid_client() {
        for body in [
            "grant_type=client_credentials&client_id=the-client&client_secret=nope",
            "grant_type=client_credentials&client_id=other&client_secret=the-client-secret",
            "grant_type=client_credentials&client_id=the-client",
            "grant_type=client_credentials&client_secret=the-client-secret",
            "grant_type=client_credentials",
            "",
        ] {
            let resp = token_endpoint(&cfg(), &post(body), NOW);
            assert_eq!(resp.status, 401, "{body}");
            assert_eq!(body_json(&resp)["error"], "invalid_client", "{body}");
            assert!(resp.header("www-authenticate").is_some());
            assert_no_secret(&resp);
        }
    }

    #[test]
    fn wrong_basic_credentials_are_invalid_client() {
        for auth in [
            basic("the-client", "wrong"),
            basic("wrong", "the-client-secret"),
            "Bearer abc".to_string(),
            format!("Basic {}", STANDARD.encode("no-colon")),
        ] {
            let mut req = post("grant_type=client_credentials");
            req.headers.push(("authorization".into(), auth.clone()));
            let resp = token_endpoint(&cfg(), &req, NOW);
            assert_eq!(resp.status, 401, "{auth}");
            assert_eq!(body_json(&resp)["error"], "invalid_client");
        }
    }

    #[test]
    fn wrong_grant_type_is_unsupported() {
        let body = GOOD.replace("client_credentials", "password");
        let resp = token_endpoint(&cfg(), &post(&body), NOW);
        assert_eq!(resp.status, 400);
        assert_eq!(body_json(&resp)["error"], "unsupported_grant_type");
    }

    #[test]
    fn missing_grant_type_is_invalid_request() {
        let body = "client_id=the-client&client_secret=the-client-secret";
        let resp = token_endpoint(&cfg(), &post(body), NOW);
        assert_eq!(resp.status, 400);
        assert_eq!(body_json(&resp)["error"], "invalid_request");
    }

    #[test]
    fn two_authentication_methods_are_refused() {
        let mut req = post(GOOD);
        req.headers.push((
            "authorization".into(),
            basic("the-client", "the-client-secret"),
        ));
        let resp = token_endpoint(&cfg(), &req, NOW);
        assert_eq!(resp.status, 400);
        assert_eq!(body_json(&resp)["error"], "invalid_request");
    }

    #[test]
    fn repeated_parameter_is_refused() {
        let body = format!("{GOOD}&client_id=the-client");
        let resp = token_endpoint(&cfg(), &post(&body), NOW);
        assert_eq!(resp.status, 400);
        assert_eq!(body_json(&resp)["error"], "invalid_request");
    }

    #[test]
    fn each_grant_is_a_different_token() {
        let a = token_endpoint(&cfg(), &post(GOOD), NOW);
        let b = token_endpoint(&cfg(), &post(GOOD), Now { nonce: 43, ..NOW });
        assert_ne!(body_json(&a)["access_token"], body_json(&b)["access_token"]);
    }
}
