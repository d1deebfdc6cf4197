//! credential-proxy: a Spin HTTP component that keeps API keys and OAuth2 tokens out of the
//! browser.
//!
//! This file only wires: the edge reads the request, `config` reads the variables, `decision`
//! decides, `response_cache` may answer a GET from the store, the edge sends, `answer` builds
//! what the browser gets and the edge writes it (keeping a copy for the cache when it may); every
//! path through notes what it did in one `access_log` entry, written once the body is out.
//! `ARCHITECTURE.md` has the request flow and a map of every module.

pub mod access_log;
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
pub mod response_cache;
pub mod retry;
pub mod routes;
pub mod scrub;
pub mod secret;
pub mod spin_io;
pub mod target;
pub mod token;

use std::fmt::Display;
use std::time::{Instant, SystemTime};

use http::HeaderMap;
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use spin_sdk::wit::wasi::http0_2_0::types::ResponseOutparam as Outparam;

use access_log::{Attempts, Entry};
use config::Config;
use decision::{Plan, RequestHead};
use error::Error;
use spin_io::{respond, SpinVariables};

#[http_component]
fn handle(req: IncomingRequest, response_out: ResponseOutparam) {
    let started = Instant::now();
    let mut entry = Entry::start(SystemTime::now());
    if serve(req, response_out.into_inner(), &mut entry) {
        spin_io::access_log(&entry.line(started.elapsed()));
    }
}

/// Answers one request, noting in `entry` what it did. Returns whether the access log is on: the
/// config's `access_log`, or with a broken config that variable alone, and on when it is broken
/// too, so the failure itself is logged.
// Out of line: inlined into spin-sdk's executor loop, the same code came out 3.9 KB larger in
// the release wasm (measured with the size build), which has a size budget.
#[inline(never)]
fn serve(req: IncomingRequest, out: Outparam, entry: &mut Entry) -> bool {
    let log_on = || config::load_access_log(&SpinVariables).unwrap_or(true);
    let head = match spin_io::request_head(&req) {
        Ok(head) => head,
        Err(e) => {
            refuse(out, &"-", &e, &HeaderMap::new(), entry);
            return log_on();
        }
    };
    entry.request(&head);
    match Config::load(&SpinVariables) {
        Ok(cfg) => {
            proxy(&cfg, req, &head, out, entry);
            cfg.access_log
        }
        Err(e) => {
            let cors = decision::cors_without_config(&SpinVariables, &head);
            refuse(out, &head.method, &e, &cors, entry);
            log_on()
        }
    }
}

/// The request under a config that loaded: decide, send, answer, and note each step.
fn proxy(cfg: &Config, req: IncomingRequest, head: &RequestHead, out: Outparam, entry: &mut Entry) {
    let decision = decision::decide(cfg, head);
    entry.path(decision.path.as_deref());
    let cors = &decision.cors;
    let forward = match decision.outcome {
        Err(e) => return refuse(out, &head.method, &e, cors, entry),
        Ok(Plan::Preflight(headers)) => {
            let answer = answer::preflight(headers);
            return entry.written(&answer, respond(out, &answer));
        }
        Ok(Plan::Forward(forward)) => forward,
    };
    // A response cache hit needs no token and no outbound request: look before either.
    let cache = spin_io::SpinResponseCache::open(cfg, &forward);
    if let Some(hit) = cache.as_ref().and_then(spin_io::SpinResponseCache::lookup) {
        let answer = answer::cached(hit, cors);
        return entry.written(&answer, respond(out, &answer));
    }
    let mut attempts = Attempts::default();
    let sent = spin_io::send(cfg, req, &forward, &mut attempts);
    entry.attempts(&attempts);
    let sent = match sent {
        Ok(sent) => sent,
        Err(e) => return refuse(out, &forward.method, &e, cors, entry),
    };
    entry.token(sent.token.as_ref().map(|t| t.source));
    let mut answer = answer::upstream(cfg, &forward, &sent, &sent.response.head, cors);
    if cache.is_some() {
        answer::mark_cache_miss(&mut answer);
    }
    let token = sent.token.as_ref();
    let fill = cache
        .as_ref()
        .and_then(|c| c.fill(cfg, token, &sent.response.head));
    let keep = fill.as_ref().map(|fill| fill.limit);
    match spin_io::respond_streaming_kept(out, &answer, sent.response, keep) {
        Ok((written, body)) => {
            entry.written(&answer, written);
            // After the body is out: the store's write never delays the browser.
            if let (Some(cache), Some(fill), Some(body)) = (&cache, fill, body) {
                cache.store(cfg, token, fill, body);
            }
        }
        Err(unsent) => refuse(unsent.out, &forward.method, &unsent.error, cors, entry),
    }
}

/// Answers with the JSON error and notes it.
fn refuse(out: Outparam, method: &dyn Display, e: &Error, cors: &HeaderMap, entry: &mut Entry) {
    let answer = answer::error(method, e, cors);
    entry.error(e);
    entry.written(&answer, respond(out, &answer));
}
