//! The Spin 4 edge (WASIp3, spin-sdk 6): the same ports and functions as `spin_io`, so `lib.rs`
//! wires both builds with one body of code, on Spin 4's shapes: async calls, `http` types in
//! and a WASIp3 response out.
//!
//! Spin 4 reuses an instance for many requests, several at once, so this edge also keeps what
//! an instance may keep (`tokens`: the token in memory and one shared fetch) and bounds every
//! key-value call (`store`): with Redis down Spin's own call waits minutes, and a request must
//! not. Nothing here decides; errors from Spin become our own fixed descriptions.

mod body;
mod cache;
mod outbound;
mod respond;
mod store;
mod tokens;

pub use body::{request_head, RequestBody};
pub use cache::{open_response_cache, SpinResponseCache};
pub use outbound::{UpstreamResponse, UpstreamSender, WasiTokenEndpoint};
pub use respond::{respond, respond_streaming_kept, Unsent};

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;
use spin_sdk::variables;

use crate::access_log::{Attempts, Recorded};
use crate::config::{self, Config, TokenConfig, Variables};
use crate::decision::Forward;
use crate::error::{Error, Result};
use crate::port::Io;
use crate::retry::{send_with_token, Sent, Tokens};
use crate::token::{cache_key, system_now_ms, Clock, REREAD_AFTER};

pub use spin_sdk::wasip3::http::types::{ErrorCode, Response as Answered};

/// The request as spin-sdk 6 hands it over: `http` types, the body still in the runtime.
pub type Incoming = spin_sdk::http::Request;

/// Where the answer goes: the entry returns it to Spin as soon as it is sent, while the task
/// that sent it goes on writing the body.
pub type Outparam = oneshot::Sender<std::result::Result<Answered, ErrorCode>>;

/// A new outparam and the entry's side of it. A task that ends without answering gives an
/// empty 500, as a failing handler does in Spin.
pub fn outparam() -> (
    Outparam,
    impl Future<Output = std::result::Result<Answered, ErrorCode>>,
) {
    let (tx, rx) = oneshot::channel();
    (tx, async move {
        rx.await.unwrap_or(Err(ErrorCode::InternalError(None)))
    })
}

/// Runs `task` beside the entry, within this request's component task: it may outlive the
/// entry's return (the body, the cache write, the access log).
pub fn spawn(task: impl Future<Output = ()> + 'static) {
    spin_sdk::wasip3::wit_bindgen::spawn(task);
}

/// Reads the body, then sends through the core's retry with this instance's tokens, counting
/// the upstream calls into `attempts` for the access log.
pub async fn send(
    cfg: &Config,
    req: Incoming,
    forward: &Forward,
    attempts: &mut Attempts,
) -> Result<Sent<UpstreamResponse>> {
    let body = RequestBody::read(req, cfg.max_body_bytes).await?;
    let tokens = cfg
        .token
        .as_ref()
        .map(|token_cfg| tokens::InstanceTokens::new(cfg, token_cfg));
    let sender = UpstreamSender {
        forward,
        body: Some(body),
        timeout: cfg.upstream_timeout,
        max_body_bytes: cfg.max_body_bytes,
    };
    let mut sender = Recorded {
        inner: sender,
        attempts,
    };
    send_with_token(&mut sender, tokens.as_ref().map(|t| t as &dyn Tokens)).await
}

/// One line to stderr, which Spin logs. A failed write is dropped: `eprintln!` would panic, and
/// a panic here ends every request the instance is serving.
pub fn log(line: &str) {
    let _ = writeln!(std::io::stderr(), "credential-proxy: {line}");
}

/// One access-log line to stdout, in one write; a failed write is dropped (the answer is out).
pub fn access_log(line: &str) {
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// The system clock; sleeping yields to the instance's other requests.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        system_now_ms()
    }

    fn sleep(&self, duration: Duration) -> Io<'_, ()> {
        Box::pin(spin_sdk::time::sleep(duration))
    }
}

/// How long an instance reuses the variables it read: Spin resolves them when the app starts
/// (or asks a provider such as Vault), so within an instance they rarely change; the same
/// interval as the held token's re-read.
const VARIABLES_FOR: Duration = REREAD_AFTER;

type VariableValues = HashMap<&'static str, std::result::Result<Option<String>, &'static str>>;

thread_local! {
    /// The variables this instance last read, and when (Unix ms).
    static VARIABLES: RefCell<Option<(u64, Rc<VariableValues>)>> = const { RefCell::new(None) };
}

/// The component variables, every one the config reads: Spin 4's variables are async, the
/// config loader is not. Read at once, and kept by the instance for [`VARIABLES_FOR`], so a
/// request on a reused instance makes no variable calls at all.
pub async fn variables() -> SpinVariables {
    let now = system_now_ms();
    let kept = VARIABLES.with_borrow(|kept| {
        kept.as_ref()
            .filter(|(read_at, _)| now.saturating_sub(*read_at) < VARIABLES_FOR.as_millis() as u64)
            .map(|(_, values)| values.clone())
    });
    if let Some(values) = kept {
        return SpinVariables(values);
    }
    let values = futures::future::join_all(config::NAMES.iter().map(|name| async move {
        let value = match variables::get(name).await {
            Ok(value) if value.trim().is_empty() => Ok(None),
            Ok(value) => Ok(Some(value)),
            Err(variables::Error::Undefined(_)) => Ok(None),
            Err(variables::Error::InvalidName(_)) => Err("is not a valid Spin variable name"),
            Err(_) => Err("could not be read from the Spin variables provider"),
        };
        (*name, value)
    }))
    .await;
    let values: Rc<VariableValues> = Rc::new(values.into_iter().collect());
    VARIABLES.set(Some((system_now_ms(), values.clone())));
    SpinVariables(values)
}

/// The variables [`variables`] read. An empty value counts as unset, as in the default build.
pub struct SpinVariables(Rc<VariableValues>);

/// The config an instance loaded last, the variables it came from, and its token's cache key.
struct KeptConfig {
    from: Rc<VariableValues>,
    config: Rc<Config>,
    token_key: Option<String>,
}

thread_local! {
    static CONFIG: RefCell<Option<KeptConfig>> = const { RefCell::new(None) };
}

/// The config from `vars`, loaded once for each set of variables the instance reads (so at most
/// once per [`VARIABLES_FOR`]): a request on a reused instance neither parses nor validates it
/// again, nor hashes its token's cache key. A config that fails to load is not kept; its error
/// is made anew for every request, as in the default build.
pub fn config(vars: &SpinVariables) -> Result<Rc<Config>> {
    let kept = CONFIG.with_borrow(|kept| {
        kept.as_ref()
            .filter(|kept| Rc::ptr_eq(&kept.from, &vars.0))
            .map(|kept| kept.config.clone())
    });
    if let Some(config) = kept {
        return Ok(config);
    }
    let config = Rc::new(Config::load(vars)?);
    let token_key = config.token.as_ref().map(cache_key);
    CONFIG.set(Some(KeptConfig {
        from: vars.0.clone(),
        config: config.clone(),
        token_key,
    }));
    Ok(config)
}

/// The cache key of `token_cfg`, the token of `cfg`: the kept one when `cfg` is the kept config
/// (while it is kept, no other config can share its address).
fn token_key(cfg: &Config, token_cfg: &TokenConfig) -> String {
    CONFIG
        .with_borrow(|kept| {
            kept.as_ref()
                .filter(|kept| std::ptr::eq(Rc::as_ptr(&kept.config), cfg))
                .and_then(|kept| kept.token_key.clone())
        })
        .unwrap_or_else(|| cache_key(token_cfg))
}

impl Variables for SpinVariables {
    fn get(&self, name: &str) -> Result<Option<String>> {
        match self.0.get(name) {
            Some(Ok(value)) => Ok(value.clone()),
            Some(Err(reason)) => Err(Error::config(name, *reason)),
            None => Ok(None),
        }
    }
}
