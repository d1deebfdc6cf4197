//! demo-api: a stand-in for Getty Images, so the credential proxy's demo runs with no account.
//!
//! It answers `POST /oauth2/token` (client credentials, RFC 6749 §4.4) and
//! `GET /v1/search/images?phrase=…` (needs `Api-Key` *and* a fresh bearer token), like Getty.
//! `spin.toml` gives it a private route, so only the demo proxy reaches it, through Spin's service
//! chaining at `http://demo-api.spin.internal`. This file is the Spin edge only: it reads the
//! component variables and the clock and converts Spin's request and response to and from the
//! plain values of `router`. It decides nothing and tells no caller its own secrets.

mod images;
mod oauth;
mod router;
mod search;
mod secret;
mod token;

use std::time::{SystemTime, UNIX_EPOCH};

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

use router::{ApiRequest, ApiResponse, Config, Now};
use secret::Secret;

/// Reads the component variables; `Err` names the first one that is missing or empty.
fn config() -> Result<Config, &'static str> {
    let get = |name: &'static str| match spin_sdk::variables::get(name) {
        Ok(value) if !value.is_empty() => Ok(Secret::new(value)),
        _ => Err(name),
    };
    Ok(Config {
        api_key: get("api_key")?,
        client_id: get("client_id")?,
        client_secret: get("client_secret")?,
    })
}

fn now() -> Now {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // Sub-second nanoseconds mixed with the seconds: enough to tell two tokens of one second
    // apart, which is all the nonce is for (the MAC, not the nonce, makes a token unforgeable).
    let nonce = (elapsed.as_secs() << 30) ^ u64::from(elapsed.subsec_nanos());
    Now {
        secs: elapsed.as_secs(),
        nonce,
    }
}

fn to_api_request(req: &Request) -> ApiRequest {
    ApiRequest {
        method: req.method().to_string(),
        path: req.path().to_string(),
        query: req.query().to_string(),
        headers: req
            .headers()
            .map(|(name, value)| {
                (
                    name.to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: req.body().to_vec(),
    }
}

fn to_spin_response(resp: ApiResponse) -> Response {
    let mut builder = Response::builder();
    builder.status(resp.status);
    for (name, value) in resp.headers {
        builder.header(name, value);
    }
    builder.body(resp.body).build()
}

#[http_component]
fn handle_demo_api(req: Request) -> impl IntoResponse {
    let resp = match config() {
        Ok(cfg) => router::handle(&cfg, &to_api_request(&req), now()),
        Err(variable) => router::config_error(variable),
    };
    to_spin_response(resp)
}
