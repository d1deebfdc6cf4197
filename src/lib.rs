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
pub mod port;
#[cfg(test)]
mod properties;
pub mod response_cache;
pub mod retry;
pub mod routes;
pub mod scrub;
pub mod secret;
#[cfg(target_env = "p2")]
pub mod spin4_io;
#[cfg(not(target_env = "p2"))]
pub mod spin_io;
pub mod target;
pub mod token;
mod wasi_http;

use std::fmt::Display;
use std::time::{Instant, SystemTime};

use http::HeaderMap;

use access_log::{Attempts, Entry};
use config::Config;
use decision::{Plan, RequestHead};
use error::Error;

// The one edge of this build: both have the same functions, so everything below is written once.
#[cfg(target_env = "p2")]
use spin4_io as edge;
#[cfg(not(target_env = "p2"))]
use spin_io as edge;

use edge::{respond, Incoming, Outparam};

/// The default build's entry (WASIp2: a fresh instance per request).
#[cfg(not(target_env = "p2"))]
#[spin_sdk::http_component]
async fn handle(
    req: spin_sdk::http::IncomingRequest,
    response_out: spin_sdk::http::ResponseOutparam,
) {
    answer_and_log(req, response_out.into_inner()).await;
}

/// The Spin 4 build's entry (WASIp3: an instance serves many requests, several at once). The
/// request is served on a task of its own, which goes on after the answer's head is returned:
/// it streams the body, then writes the cache entry and the access-log line.
#[cfg(target_env = "p2")]
#[spin_sdk::http_service]
async fn handle(
    req: spin4_io::Incoming,
) -> std::result::Result<spin4_io::Answered, spin4_io::ErrorCode> {
    let (out, answered) = spin4_io::outparam();
    spin4_io::spawn(answer_and_log(req, out));
    answered.await
}

async fn answer_and_log(req: Incoming, out: Outparam) {
    let started = Instant::now();
    let mut entry = Entry::start(SystemTime::now());
    if serve(req, out, &mut entry).await {
        edge::access_log(&entry.line(started.elapsed()));
    }
}

/// Answers one request, noting in `entry` what it did. Returns whether the access log is on: the
/// config's `access_log`, or with a broken config that variable alone, and on when it is broken
/// too, so the failure itself is logged.
// Out of line: inlined into spin-sdk's executor loop, the same code came out 3.9 KB larger in
// the release wasm (measured with the size build), which has a size budget.
#[inline(never)]
async fn serve(req: Incoming, out: Outparam, entry: &mut Entry) -> bool {
    let vars = edge::variables().await;
    let log_on = || config::load_access_log(&vars).unwrap_or(true);
    let head = match edge::request_head(&req) {
        Ok(head) => head,
        Err(e) => {
            refuse(out, &"-", &e, &HeaderMap::new(), entry).await;
            return log_on();
        }
    };
    entry.request(&head);
    match edge::config(&vars) {
        Ok(cfg) => {
            proxy(&cfg, req, &head, out, entry).await;
            cfg.access_log
        }
        Err(e) => {
            let cors = decision::cors_without_config(&vars, &head);
            refuse(out, &head.method, &e, &cors, entry).await;
            log_on()
        }
    }
}

/// The request under a config that loaded: decide, send, answer, and note each step.
async fn proxy(cfg: &Config, req: Incoming, head: &RequestHead, out: Outparam, entry: &mut Entry) {
    let decision = decision::decide(cfg, head);
    entry.path(decision.path.as_deref());
    let cors = &decision.cors;
    let forward = match decision.outcome {
        Err(e) => return refuse(out, &head.method, &e, cors, entry).await,
        Ok(Plan::Preflight(headers)) => {
            let answer = answer::preflight(headers);
            return entry.written(&answer, respond(out, &answer).await);
        }
        Ok(Plan::Forward(forward)) => forward,
    };
    // A response cache hit needs no token and no outbound request: look before either.
    let cache = edge::open_response_cache(cfg, &forward).await;
    if let Some(cache) = &cache {
        if let Some(hit) = cache.lookup().await {
            let answer = answer::cached(hit, cors);
            return entry.written(&answer, respond(out, &answer).await);
        }
    }
    let mut attempts = Attempts::default();
    let sent = edge::send(cfg, req, &forward, &mut attempts).await;
    entry.attempts(&attempts);
    let sent = match sent {
        Ok(sent) => sent,
        Err(e) => return refuse(out, &forward.method, &e, cors, entry).await,
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
    match edge::respond_streaming_kept(out, &answer, sent.response, keep).await {
        Ok((written, body)) => {
            entry.written(&answer, written);
            // After the body is out: the store's write never delays the browser.
            if let (Some(cache), Some(fill), Some(body)) = (&cache, fill, body) {
                cache.store(cfg, token, fill, body).await;
            }
        }
        Err(unsent) => refuse(unsent.out, &forward.method, &unsent.error, cors, entry).await,
    }
}

/// Answers with the JSON error and notes it.
async fn refuse(
    out: Outparam,
    method: &dyn Display,
    e: &Error,
    cors: &HeaderMap,
    entry: &mut Entry,
) {
    let answer = answer::error(method, e, cors);
    entry.error(e);
    entry.written(&answer, respond(out, &answer).await);
}
