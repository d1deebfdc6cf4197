//! The Spin 4 build's token in instance memory. Spin 4 reuses a WASIp3 instance for many
//! requests, several at once, so an instance can keep the token it last read or fetched and skip
//! the store while that token is fresh, and its concurrent requests can share one trip to the
//! store and the token endpoint.
//!
//! [`HeldToken`] is that memory: the record, the cache key it belongs to and when it was last
//! read, and the one flight in progress. A held token is used while fresh for at most
//! [`REREAD_AFTER`]; then the next request reads the store again, so a refresh or a revocation
//! seen by another instance is picked up. A 401 drops the refused token at once. The flight itself
//! (store, lease, endpoint) is `TokenCache`'s work, handed in as a future; this module only
//! decides when one is needed and shares it. The default build never uses it.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{FutureExt, Shared};

use super::cache::cached_token;
use super::{Token, TokenRecord};
use crate::error::Result;

/// How long a held token is used without looking at the store.
pub const REREAD_AFTER: Duration = Duration::from_secs(3);

/// A flight as the requests that wait on it see it: its leader's answer, when it lands.
type Flight = Shared<oneshot::Receiver<Rc<Result<Token>>>>;

/// One instance's token memory. Not `Sync`: an instance is single-threaded.
#[derive(Default)]
pub struct HeldToken {
    inner: RefCell<Inner>,
}

#[derive(Default)]
struct Inner {
    held: Option<Held>,
    /// The flight in progress, and the cache key it is for.
    flight: Option<(String, Flight)>,
}

struct Held {
    key: String,
    record: TokenRecord,
    read_at_ms: u64,
}

impl HeldToken {
    /// A token for `key`: the held one while fresh (by `skew_secs`) and read less than
    /// [`REREAD_AFTER`] ago. Past that interval one request reads the store again (the flight,
    /// built by `start`, which is given the held record to stand in if the store cannot be read
    /// or the endpoint fails); meanwhile the others keep using the held token while it is fresh,
    /// and only a request without one waits for the flight.
    pub async fn get<F, S>(
        &self,
        key: &str,
        now_ms: &dyn Fn() -> u64,
        skew_secs: u64,
        start: S,
    ) -> Result<Token>
    where
        S: FnOnce(Option<TokenRecord>) -> F,
        F: Future<Output = Result<Token>>,
    {
        let now = now_ms();
        let (held, running) = {
            let inner = self.inner.borrow();
            let held = inner
                .held
                .as_ref()
                .filter(|h| h.key == key)
                .map(|h| (h.record.clone(), h.read_at_ms));
            (held, inner.flight_for(key))
        };
        if let Some((record, read_at)) = &held {
            let recent = now.saturating_sub(*read_at) < REREAD_AFTER.as_millis() as u64;
            if (recent || running.is_some()) && record.is_fresh(now / 1000, skew_secs) {
                return Ok(cached_token(record.clone()));
            }
        }
        if let Some(flight) = running {
            if let Ok(result) = flight.await {
                return joined(&result);
            }
            // Its leader went away without an answer: lead one of our own.
        }
        self.lead(key, now_ms, start(held.map(|(record, _)| record)))
            .await
    }

    /// A token instead of `refused`, which the upstream just answered 401 to. The refused token
    /// is forgotten at once. Another token this instance already holds is used; a flight already
    /// in progress is joined unless it brings back the refused token; otherwise `start` (the
    /// cache's replace) runs as a new flight.
    pub async fn replace<F, S>(
        &self,
        key: &str,
        refused: &TokenRecord,
        now_ms: &dyn Fn() -> u64,
        start: S,
    ) -> Result<Token>
    where
        S: FnOnce() -> F,
        F: Future<Output = Result<Token>>,
    {
        self.forget(refused);
        // Another request of this instance already replaced it.
        let other = self
            .inner
            .borrow()
            .held
            .as_ref()
            .filter(|h| h.key == key && h.record.is_valid(now_ms() / 1000))
            .map(|h| h.record.clone());
        if let Some(record) = other {
            return Ok(cached_token(record));
        }
        let running = self.inner.borrow().flight_for(key);
        if let Some(flight) = running {
            if let Ok(result) = flight.await {
                match joined(&result) {
                    Ok(token) if token.record.access_token != refused.access_token => {
                        return Ok(token)
                    }
                    _ => self.forget(refused),
                }
            }
        }
        // Never a blind join here: a flight started meanwhile may bring back the refused token.
        self.lead(key, now_ms, start()).await
    }

    /// Drops `refused` from memory, so no request of this instance sends it again.
    fn forget(&self, refused: &TokenRecord) {
        let mut inner = self.inner.borrow_mut();
        if inner
            .held
            .as_ref()
            .is_some_and(|h| h.record.access_token == refused.access_token)
        {
            inner.held = None;
        }
    }

    /// Runs `flight` as the instance's flight for `key`, which the others may join, and keeps
    /// its token.
    async fn lead<F>(&self, key: &str, now_ms: &dyn Fn() -> u64, flight: F) -> Result<Token>
    where
        F: Future<Output = Result<Token>>,
    {
        let (landed, waiting) = oneshot::channel();
        let waiting = waiting.shared();
        self.inner.borrow_mut().flight = Some((key.to_string(), waiting.clone()));
        // The leader does the I/O on its own task: a runtime call belongs to the task that made
        // it (WASIp3), so the others wait for a plain message, never for the call itself.
        let result = flight.await;
        {
            let mut inner = self.inner.borrow_mut();
            if inner
                .flight
                .as_ref()
                .is_some_and(|(_, f)| f.ptr_eq(&waiting))
            {
                inner.flight = None;
            }
            if let Ok(token) = &result {
                inner.held = Some(Held {
                    key: key.to_string(),
                    record: token.record.clone(),
                    read_at_ms: now_ms(),
                });
            }
        }
        let result = Rc::new(result);
        let _ = landed.send(result.clone());
        Rc::try_unwrap(result).unwrap_or_else(|shared| (*shared).clone())
    }
}

impl Inner {
    /// The flight in progress for `key`; one for another key (a changed config) is not joined.
    fn flight_for(&self, key: &str) -> Option<Flight> {
        self.flight
            .as_ref()
            .filter(|(k, _)| k == key)
            .map(|(_, f)| f.clone())
    }
}

/// What a request that joined a flight gets: its token, as one from the instance (only the
/// leader reports a fetch), or its error.
fn joined(result: &Result<Token>) -> Result<Token> {
    match result {
        Ok(token) => Ok(cached_token(token.record.clone())),
        Err(e) => Err(e.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::port::block_on;
    use crate::secret::AccessToken;
    use crate::token::TokenSource;
    use std::cell::Cell;

    fn record(token: &str, expires_at: u64) -> TokenRecord {
        TokenRecord {
            access_token: AccessToken::new(token),
            token_type: "Bearer".into(),
            expires_at,
            issued_at: None,
        }
    }

    fn fetched(token: &str) -> Result<Token> {
        Ok(Token {
            record: record(token, 1_000),
            source: TokenSource::Fetched,
        })
    }

    /// A flight that counts its runs and waits for `gate` before it lands.
    fn flight(
        runs: &Rc<Cell<u32>>,
        gate: futures::channel::oneshot::Receiver<()>,
        token: &'static str,
    ) -> impl Future<Output = Result<Token>> + 'static {
        runs.set(runs.get() + 1);
        async move {
            let _ = gate.await;
            fetched(token)
        }
    }

    #[test]
    fn concurrent_requests_share_one_flight_and_only_its_leader_says_fetched() {
        let held = HeldToken::default();
        let runs = Rc::new(Cell::new(0));
        let (open, gate) = futures::channel::oneshot::channel();
        let mut gate = Some(gate);
        let now = || 100_000;
        let requests = (0..5).map(|_| {
            let runs = runs.clone();
            let gate = gate.take();
            held.get("k", &now, 60, move |_| {
                let (_, never) = futures::channel::oneshot::channel();
                flight(&runs, gate.unwrap_or(never), "t1")
            })
        });
        let all = futures::future::join_all(requests);
        let _ = open.send(());
        let results = block_on(all);
        assert_eq!(runs.get(), 1, "one flight for five concurrent requests");
        let sources: Vec<_> = results.iter().map(|r| r.as_ref().unwrap().source).collect();
        assert_eq!(
            sources
                .iter()
                .filter(|s| **s == TokenSource::Fetched)
                .count(),
            1
        );
        assert!(results
            .iter()
            .all(|r| r.as_ref().unwrap().record.access_token.secret() == "t1"));
    }

    #[test]
    fn a_held_token_is_used_until_the_reread_interval_then_the_store_is_asked_again() {
        let held = HeldToken::default();
        let runs = Rc::new(Cell::new(0));
        let clock = Cell::new(100_000u64);
        let now = || clock.get();
        let get = |token: &'static str| {
            let runs = runs.clone();
            block_on(held.get("k", &now, 60, move |_| {
                let (open, gate) = futures::channel::oneshot::channel();
                let _ = open.send(());
                flight(&runs, gate, token)
            }))
            .unwrap()
        };
        assert_eq!(get("t1").source, TokenSource::Fetched);
        clock.set(100_000 + REREAD_AFTER.as_millis() as u64 - 1);
        let again = get("t2");
        assert_eq!(again.source, TokenSource::Cached);
        assert_eq!(again.record.access_token.secret(), "t1");
        assert_eq!(runs.get(), 1, "no store read within the interval");
        clock.set(100_000 + REREAD_AFTER.as_millis() as u64);
        assert_eq!(get("t2").record.access_token.secret(), "t2");
        assert_eq!(runs.get(), 2, "the store is read again after the interval");
    }

    #[test]
    fn a_stale_held_token_is_not_used_but_offered_to_the_flight_as_a_stand_in() {
        let held = HeldToken::default();
        let offered = Rc::new(Cell::new(false));
        let now = || 100_000;
        let o = offered.clone();
        block_on(held.get("k", &now, 60, |_| async { fetched("t1") })).unwrap();
        // t1 expires at 1000 s; 100 s is within the 60 s skew only later: make it stale.
        let late = || 999_000;
        let token = block_on(held.get("k", &late, 60, move |stand_in| {
            o.set(stand_in.is_some());
            async { fetched("t2") }
        }))
        .unwrap();
        assert!(offered.get());
        assert_eq!(token.record.access_token.secret(), "t2");
    }

    #[test]
    fn a_refused_token_is_dropped_at_once_and_replaced_by_one_flight() {
        let held = HeldToken::default();
        let now = || 100_000;
        let t1 = block_on(held.get("k", &now, 60, |_| async { fetched("t1") })).unwrap();
        let runs = Rc::new(Cell::new(0));
        let replace = |runs: Rc<Cell<u32>>| {
            held.replace("k", &t1.record, &now, move || {
                runs.set(runs.get() + 1);
                async { fetched("t2") }
            })
        };
        let both = futures::future::join(replace(runs.clone()), replace(runs.clone()));
        let (a, b) = block_on(both);
        assert_eq!(a.unwrap().record.access_token.secret(), "t2");
        assert_eq!(b.unwrap().record.access_token.secret(), "t2");
        assert_eq!(
            runs.get(),
            1,
            "two 401s in one instance cost one replacement"
        );
        let next = block_on(held.get("k", &now, 60, |_| async { fetched("t3") })).unwrap();
        assert_eq!(
            next.record.access_token.secret(),
            "t2",
            "t1 is never used again"
        );
    }

    #[test]
    fn a_failed_flight_gives_its_error_to_every_waiter_and_keeps_nothing() {
        let held = HeldToken::default();
        let now = || 100_000;
        let failing = || async { Err(Error::token_endpoint("down")) };
        let both = futures::future::join(
            held.get("k", &now, 60, |_| failing()),
            held.get("k", &now, 60, |_| failing()),
        );
        let (a, b) = block_on(both);
        assert_eq!(a.unwrap_err().code(), "token_endpoint_failed");
        assert_eq!(b.unwrap_err().code(), "token_endpoint_failed");
        let next = block_on(held.get("k", &now, 60, |_| async { fetched("t1") })).unwrap();
        assert_eq!(next.source, TokenSource::Fetched);
    }

    #[test]
    fn during_a_re_read_the_other_requests_keep_using_the_fresh_held_token() {
        let held = HeldToken::default();
        let clock = Cell::new(100_000u64);
        let now = || clock.get();
        block_on(held.get("k", &now, 60, |_| async { fetched("t1") })).unwrap();
        clock.set(100_000 + REREAD_AFTER.as_millis() as u64);
        let (open, gate) = futures::channel::oneshot::channel::<()>();
        let reread = held.get("k", &now, 60, move |_| async move {
            let _ = gate.await;
            fetched("t2")
        });
        let other = held.get("k", &now, 60, |_| async { fetched("never") });
        let mut reread = Box::pin(reread);
        // The re-read leads and waits on its gate; the other request does not wait for it.
        assert!(futures::FutureExt::now_or_never(reread.as_mut()).is_none());
        let other = futures::FutureExt::now_or_never(other)
            .expect("answered at once")
            .unwrap();
        assert_eq!(other.record.access_token.secret(), "t1");
        let _ = open.send(());
        let reread = block_on(reread).unwrap();
        assert_eq!(reread.record.access_token.secret(), "t2");
    }

    #[test]
    fn a_token_held_for_another_key_is_not_used() {
        let held = HeldToken::default();
        let now = || 100_000;
        block_on(held.get("a", &now, 60, |_| async { fetched("ta") })).unwrap();
        let other = block_on(held.get("b", &now, 60, |_| async { fetched("tb") })).unwrap();
        assert_eq!(other.record.access_token.secret(), "tb");
    }
}
