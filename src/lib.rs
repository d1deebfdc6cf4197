//! credential-proxy: a Spin HTTP component that keeps API keys and OAuth2 tokens out of the
//! browser.
//!
//! This file only wires: it reads the config, asks the core for a decision, and hands the
//! decision to the Spin edge (`spin_io`) to carry out. The modules, one concern each:
//! `config` (variables -> Config), `policy` (routes, origins, CORS, body limit), `upstream`
//! (paths, URLs, header filters), `plan` (the decision for one request and the headers of its
//! answer), `token` (cache and
//! token endpoint), `retry` (the one retry after a 401), `secret` (redacted newtypes),
//! `error` (codes and statuses), `spin_io` (everything that touches Spin).

pub mod config;
pub mod error;
pub mod plan;
pub mod policy;
pub mod retry;
pub mod secret;
pub mod spin_io;
pub mod token;
pub mod upstream;

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use spin_sdk::wit::wasi::http0_2_0::types::{IncomingResponse, ResponseOutparam as WasiOutparam};

use config::Config;
use error::Error;
use plan::{Forward, HeaderList, Plan};
use spin_io::{KvTokenStore, RequestBody, SpinVariables, UpstreamSender, WasiTokenEndpoint};
use token::Tokens;

type Headers = Vec<(String, Vec<u8>)>;

#[http_component]
fn handle(req: IncomingRequest, response_out: ResponseOutparam) {
    let out = response_out.into_inner();
    let parts = spin_io::request_parts(&req);
    let cfg = match Config::load(&SpinVariables) {
        Ok(cfg) => cfg,
        Err(e) => {
            let cors = plan::cors_without_config(&SpinVariables, &parts);
            return answer_error(out, &parts.method, &e, &cors);
        }
    };
    let decision = plan::decide(&cfg, &parts);
    match decision.outcome {
        Err(e) => answer_error(out, &parts.method, &e, &decision.cors),
        Ok(Plan::Preflight(headers)) => {
            spin_io::respond(out, 204, &owned(&headers), &[]);
        }
        Ok(Plan::Forward(forward)) => match forward_request(&cfg, req, &forward, &decision.cors) {
            Ok((response, headers)) => {
                spin_io::respond_streaming(out, response, &headers, |out, e| {
                    answer_error(out, &forward.method, &e, &decision.cors)
                })
            }
            Err(e) => answer_error(out, &forward.method, &e, &decision.cors),
        },
    }
}

/// Reads the body, gets a token and sends; returns the upstream's answer with the headers to
/// send back. Nothing has been answered yet, so an `Err` can still become the JSON error.
fn forward_request(
    cfg: &Config,
    req: IncomingRequest,
    forward: &Forward,
    cors: &HeaderList,
) -> error::Result<(IncomingResponse, Headers)> {
    let body = RequestBody::read(req, cfg.max_body_bytes)?;
    let timeout_ns = u64::try_from(cfg.upstream_timeout.as_nanos()).unwrap_or(u64::MAX);
    let endpoint = WasiTokenEndpoint { timeout_ns };
    let store = match &cfg.token {
        Some(token_cfg) => Some((token_cfg, KvTokenStore::open(&cfg.kv_store)?)),
        None => None,
    };
    let tokens = store.as_ref().map(|(token_cfg, store)| Tokens {
        cfg: token_cfg,
        store,
        endpoint: &endpoint,
        now: spin_io::now_unix(),
        log: &spin_io::log,
    });
    let mut sender = UpstreamSender {
        forward,
        body: Some(body),
        timeout_ns,
        max_body_bytes: cfg.max_body_bytes,
    };
    let sent = retry::send_with_token(&mut sender, tokens.as_ref())?;
    if sent.attempts > 1 {
        spin_io::log(&format!(
            "{} {}: upstream refused the token; retried once with a new one",
            forward.method, forward.path
        ));
    }
    let mut secrets = vec![];
    if let Some(key) = &cfg.static_key {
        secrets.push(key.key.secret());
    }
    if let Some(token) = &cfg.token {
        secrets.extend([token.client_id.secret(), token.client_secret.secret()]);
    }
    if let Some(record) = &sent.record {
        secrets.push(record.access_token.secret());
    }
    let headers = plan::response_headers(
        &spin_io::response_headers(&sent.response),
        &secrets,
        cors,
        sent.token,
    );
    Ok((sent.response, headers))
}

fn answer_error(out: WasiOutparam, method: &str, e: &Error, cors: &[(&'static str, String)]) {
    spin_io::log(&format!(
        "{method} -> {} {}: {e}",
        e.status().as_u16(),
        e.code()
    ));
    let mut headers = vec![
        ("content-type".to_string(), b"application/json".to_vec()),
        ("cache-control".to_string(), b"no-store".to_vec()),
    ];
    headers.extend(owned(&e.headers()));
    headers.extend(owned(cors));
    spin_io::respond(out, e.status().as_u16(), &headers, &e.body());
}

fn owned(headers: &[(&'static str, String)]) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}
