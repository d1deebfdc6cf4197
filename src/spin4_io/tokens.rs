//! This instance's tokens: the core's [`HeldToken`] (the token in memory, one shared flight)
//! in front of a `TokenCache` on a bounded store, as the retry's [`Tokens`] port.
//!
//! The request that leads a flight runs it on its own task, on borrowed config; the others
//! wait for its answer.

use std::rc::Rc;
use std::time::Duration;

use super::store::BoundedStore;
use super::{log, SystemClock, WasiTokenEndpoint};
use crate::config::{Config, TokenConfig};
use crate::error::Result;
use crate::port::Io;
use crate::retry::Tokens;
use crate::token::{
    Clock, Contender, HeldToken, Token, TokenCache, TokenPorts, TokenRecord, TokenStore,
};

thread_local! {
    /// The instance's token memory: Spin 4 keeps an instance for many requests.
    static HELD: Rc<HeldToken> = Rc::new(HeldToken::default());
}

/// One request's view of the instance's tokens.
pub struct InstanceTokens<'a> {
    cfg: &'a TokenConfig,
    kv_store: &'a str,
    timeout: Duration,
    key: String,
    held: Rc<HeldToken>,
}

impl<'a> InstanceTokens<'a> {
    pub fn new(cfg: &'a Config, token_cfg: &'a TokenConfig) -> InstanceTokens<'a> {
        InstanceTokens {
            cfg: token_cfg,
            kv_store: &cfg.kv_store,
            timeout: cfg.upstream_timeout,
            key: super::token_key(cfg, token_cfg),
            held: HELD.with(Rc::clone),
        }
    }

    /// What a flight runs on.
    fn flight(&self) -> Flight<'_> {
        Flight {
            cfg: self.cfg,
            kv_store: self.kv_store,
            timeout: self.timeout,
        }
    }
}

fn now_ms() -> u64 {
    SystemClock.now_ms()
}

impl Tokens for InstanceTokens<'_> {
    fn get(&self) -> Io<'_, Result<Token>> {
        let flight = self.flight();
        Box::pin(self.held.get(
            &self.key,
            &now_ms,
            self.cfg.refresh_skew_secs,
            move |held| flight.run(Need::Get(held)),
        ))
    }

    fn replace<'a>(&'a self, refused: &'a TokenRecord) -> Io<'a, Result<Token>> {
        let flight = self.flight();
        Box::pin(self.held.replace(&self.key, refused, &now_ms, move || {
            flight.run(Need::Replace(refused))
        }))
    }

    fn retire<'a>(&'a self, refused: &'a TokenRecord) -> Io<'a, ()> {
        Box::pin(async move {
            if let Err(e) = Tokens::replace(self, refused).await {
                log(&format!(
                    "replacing a refused token failed ({}); the next request tries again",
                    e.code()
                ));
            }
        })
    }
}

enum Need<'a> {
    /// A token; the instance's held record stands in if no new one can be had.
    Get(Option<TokenRecord>),
    /// A token instead of this refused one.
    Replace(&'a TokenRecord),
}

struct Flight<'a> {
    cfg: &'a TokenConfig,
    kv_store: &'a str,
    timeout: Duration,
}

impl Flight<'_> {
    /// The store (bounded), the lease and the endpoint, through the core's `TokenCache`.
    async fn run(self, need: Need<'_>) -> Result<Token> {
        let store = BoundedStore::for_tokens(self.kv_store).await?;
        let endpoint = WasiTokenEndpoint {
            timeout: self.timeout,
        };
        let ports = TokenPorts {
            store: store.as_ref().map(|s| s as &dyn TokenStore),
            endpoint: &endpoint,
            clock: &SystemClock,
            log: &log,
        };
        let cache = TokenCache::new(self.cfg, ports, Contender::random(self.timeout));
        match need {
            Need::Get(held) => cache.get_or(held).await,
            Need::Replace(refused) => cache.replace(refused).await,
        }
    }
}
