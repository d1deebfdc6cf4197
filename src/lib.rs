//! credential-proxy: a Spin HTTP component that keeps API keys and OAuth2 tokens out of the
//! browser.
//!
//! This file only wires: the edge reads the request, `config` reads the variables, `decision`
//! decides, the edge sends, `answer` builds what the browser gets and the edge writes it.
//! `ARCHITECTURE.md` has the request flow and a map of every module.

pub mod answer;
pub mod config;
pub mod cors;
pub mod decision;
pub mod error;
pub mod headers;
pub mod origins;
pub mod path;
#[cfg(test)]
mod properties;
pub mod retry;
pub mod routes;
pub mod scrub;
pub mod secret;
pub mod spin_io;
pub mod target;
pub mod token;

use http::HeaderMap;
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

use config::Config;
use decision::Plan;
use spin_io::{respond, SpinVariables};

#[http_component]
fn handle(req: IncomingRequest, response_out: ResponseOutparam) {
    let out = response_out.into_inner();
    let head = match spin_io::request_head(&req) {
        Ok(head) => head,
        Err(e) => return respond(out, &answer::error(&"-", &e, &HeaderMap::new())),
    };
    let cfg = match Config::load(&SpinVariables) {
        Ok(cfg) => cfg,
        Err(e) => {
            let cors = decision::cors_without_config(&SpinVariables, &head);
            return respond(out, &answer::error(&head.method, &e, &cors));
        }
    };
    let decision = decision::decide(&cfg, &head);
    let cors = &decision.cors;
    let forward = match decision.outcome {
        Err(e) => return respond(out, &answer::error(&head.method, &e, cors)),
        Ok(Plan::Preflight(headers)) => return respond(out, &answer::preflight(headers)),
        Ok(Plan::Forward(forward)) => forward,
    };
    let sent = match spin_io::send(&cfg, req, &forward) {
        Ok(sent) => sent,
        Err(e) => return respond(out, &answer::error(&forward.method, &e, cors)),
    };
    let answer = answer::upstream(&cfg, &forward, &sent, &sent.response.head, cors);
    if let Err(unsent) = spin_io::respond_streaming(out, &answer, sent.response) {
        respond(
            unsent.out,
            &answer::error(&forward.method, &unsent.error, cors),
        );
    }
}
