//! The Spin edge: everything that touches `spin_sdk` or the wasi resources, and nothing that
//! decides.
//!
//! Here: the core's ports on Spin (variables, key-value, clock, the stderr log, the access log
//! on stdout), the request converted in (`request`, `convert`), the calls out (`outbound`), the
//! response cache's store (`cache`) and the answer written back (`respond`).
//! [`send`] wires the ports for one forwarded request and hands them to the core's retry. Errors
//! from Spin are turned into our own fixed descriptions, never their text.

mod cache;
mod convert;
mod outbound;
mod request;
mod respond;

pub use cache::{open_response_cache, SpinResponseCache};
pub use outbound::{UpstreamResponse, UpstreamSender, WasiTokenEndpoint};
pub use request::{request_head, RequestBody};
pub use respond::{respond, respond_streaming, respond_streaming_kept, Unsent};

/// The request as Spin hands it to this build, and where its answer goes.
pub type Incoming = IncomingRequest;
pub type Outparam = spin_sdk::wit::wasi::http0_2_0::types::ResponseOutparam;

use std::time::Duration;

use spin_sdk::http::IncomingRequest;
use spin_sdk::key_value::{self, Store};
use spin_sdk::variables;

use crate::access_log::{Attempts, Recorded};
use crate::config::{Config, Variables};
use crate::decision::Forward;
use crate::error::{Error, Result};
use crate::port::{ready, Io};
use crate::retry::{send_with_token, Sent, Tokens};
use crate::token::{system_now_ms, Clock, Contender, TokenCache, TokenPorts, TokenStore};
use crate::wasi_http::nanos;

/// Reads the body, builds the token cache on Spin's ports and sends through the core's retry,
/// counting the upstream calls into `attempts` for the access log. Nothing has been answered
/// yet, so an `Err` can still become the JSON error.
pub async fn send(
    cfg: &Config,
    req: IncomingRequest,
    forward: &Forward,
    attempts: &mut Attempts,
) -> Result<Sent<UpstreamResponse>> {
    let body = RequestBody::read(req, cfg.max_body_bytes)?;
    let timeout_ns = nanos(cfg.upstream_timeout);
    let endpoint = WasiTokenEndpoint { timeout_ns };
    let store = match &cfg.token {
        Some(token_cfg) => Some((token_cfg, KvTokenStore::open(&cfg.kv_store)?)),
        None => None,
    };
    let tokens = store.as_ref().map(|(token_cfg, store)| {
        let ports = TokenPorts {
            store: store.as_ref().map(|s| s as &dyn TokenStore),
            endpoint: &endpoint,
            clock: &SystemClock,
            log: &log,
        };
        TokenCache::new(token_cfg, ports, Contender::random(cfg.upstream_timeout))
    });
    let sender = UpstreamSender {
        forward,
        body: Some(body),
        timeout_ns,
        max_body_bytes: cfg.max_body_bytes,
    };
    let mut sender = Recorded {
        inner: sender,
        attempts,
    };
    send_with_token(&mut sender, tokens.as_ref().map(|t| t as &dyn Tokens)).await
}

/// The config from `vars`: each request has a fresh instance, so it loads anew every time.
pub fn config(vars: &SpinVariables) -> Result<Config> {
    Config::load(vars)
}

/// The component variables, read as the config asks for them.
pub async fn variables() -> SpinVariables {
    SpinVariables
}

pub fn log(line: &str) {
    eprintln!("credential-proxy: {line}");
}

/// Writes one access-log line to stdout, which Spin keeps per component
/// (`.spin/logs/<component>_stdout.txt`). Straight to wasi:cli's stream, the line and its
/// newline in one write (a call takes up to 4096 bytes): std's buffered `stdout()` would add
/// 2 KB of wasm for nothing, and `println!` panics when the write fails. A failed write is
/// dropped; the answer has already gone out.
pub fn access_log(line: &str) {
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    let out = spin_sdk::wit::wasi::cli0_2_0::stdout::get_stdout();
    for chunk in text.as_bytes().chunks(4096) {
        if out.blocking_write_and_flush(chunk).is_err() {
            return;
        }
    }
}

/// The system clock. Sleeping blocks this instance only (wasi's `poll_oneoff` on a clock): Spin
/// runs each request in its own instance, so other requests go on.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        system_now_ms()
    }

    fn sleep(&self, duration: Duration) -> Io<'_, ()> {
        std::thread::sleep(duration);
        Box::pin(ready(()))
    }
}

/// Spin's component variables. An empty value counts as unset, which is what a template over an
/// empty secret gives; `undefined` means the variable is not listed for this component.
pub struct SpinVariables;

impl Variables for SpinVariables {
    fn get(&self, name: &str) -> Result<Option<String>> {
        match variables::get(name) {
            Ok(value) if value.trim().is_empty() => Ok(None),
            Ok(value) => Ok(Some(value)),
            Err(variables::Error::Undefined(_)) => Ok(None),
            Err(variables::Error::InvalidName(_)) => {
                Err(Error::config(name, "is not a valid Spin variable name"))
            }
            Err(_) => Err(Error::config(
                name,
                "could not be read from the Spin variables provider",
            )),
        }
    }
}

/// The token cache on a Spin key-value store.
pub struct KvTokenStore(Store);

impl KvTokenStore {
    /// Opens the store. A label this component was not granted, or one the runtime does not
    /// define, is the configuration's fault (`config_invalid`). Any other failure (Spin answers
    /// `other` when Redis is down) is the store's: logged, and the request goes on without the
    /// cache (`Ok(None)`).
    pub fn open(label: &str) -> Result<Option<KvTokenStore>> {
        match Store::open(label) {
            Ok(store) => Ok(Some(KvTokenStore(store))),
            Err(key_value::Error::AccessDenied) => Err(Error::config(
                "kv_store",
                "names a store this component may not use: add it to key_value_stores in \
                 spin.toml",
            )),
            Err(key_value::Error::NoSuchStore) => Err(Error::config(
                "kv_store",
                "names a store the runtime does not have: define it in the runtime config",
            )),
            Err(e) => {
                log(&format!(
                    "token cache unavailable ({}); fetching tokens without it",
                    kv_error(&e)
                ));
                Ok(None)
            }
        }
    }
}

impl TokenStore for KvTokenStore {
    fn get<'a>(&'a self, key: &'a str) -> Io<'a, std::result::Result<Option<Vec<u8>>, String>> {
        Box::pin(ready(self.0.get(key).map_err(|e| kv_error(&e))))
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> Io<'a, std::result::Result<(), String>> {
        Box::pin(ready(self.0.set(key, value).map_err(|e| kv_error(&e))))
    }

    fn delete<'a>(&'a self, key: &'a str) -> Io<'a, std::result::Result<(), String>> {
        Box::pin(ready(self.0.delete(key).map_err(|e| kv_error(&e))))
    }
}

fn kv_error(e: &key_value::Error) -> String {
    match e {
        key_value::Error::StoreTableFull => "the store is full".into(),
        key_value::Error::AccessDenied => "access denied".into(),
        key_value::Error::NoSuchStore => "no such store".into(),
        key_value::Error::Other(_) => "the store reported an error".into(),
    }
}
