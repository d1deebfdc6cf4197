//! Sending with a bearer token, and the one retry after a 401.
//!
//! Split the way tower's `retry::Policy` splits it: [`should_retry`] answers "does this answer
//! call for a second attempt?" (a 401 to a request that carried a token), and
//! [`Upstream::can_replay`] answers "can this request be sent again?" (only when its body is
//! absent or held in memory; a streamed body is spent). Never more than one retry: an upstream
//! that refuses every token gets its 401 passed to the client. The sending itself is behind
//! [`Upstream`], so this logic is tested with a fake and no runtime.

use http::{HeaderValue, StatusCode};

use crate::error::Result;
use crate::port::Io;
use crate::token::{Token, TokenCache, TokenRecord};

/// The upstream call, as the retry sees it. The implementation owns method, URL, headers and
/// body.
pub trait Upstream {
    type Response;

    /// Sends once, with `authorization` added when given.
    fn send<'a>(
        &'a mut self,
        authorization: Option<&'a HeaderValue>,
    ) -> Io<'a, Result<Self::Response>>;

    fn status(response: &Self::Response) -> StatusCode;

    /// tower's `clone_request`: whether a second `send` can carry the same body.
    fn can_replay(&self) -> bool;
}

/// Where the retry gets its tokens: a [`TokenCache`] for one request, or in the Spin 4 build the
/// instance's token held in memory in front of one.
pub trait Tokens {
    /// A token to send with.
    fn get(&self) -> Io<'_, Result<Token>>;
    /// A token instead of `refused`, which the upstream just answered 401 to.
    fn replace<'a>(&'a self, refused: &'a TokenRecord) -> Io<'a, Result<Token>>;
    /// Replaces `refused` for the next request; this one cannot be retried.
    fn retire<'a>(&'a self, refused: &'a TokenRecord) -> Io<'a, ()>;
}

impl Tokens for TokenCache<'_> {
    fn get(&self) -> Io<'_, Result<Token>> {
        Box::pin(TokenCache::get(self))
    }

    fn replace<'a>(&'a self, refused: &'a TokenRecord) -> Io<'a, Result<Token>> {
        Box::pin(TokenCache::replace(self, refused))
    }

    fn retire<'a>(&'a self, refused: &'a TokenRecord) -> Io<'a, ()> {
        Box::pin(TokenCache::retire(self, refused))
    }
}

/// tower's `Policy::retry`: RFC 6750 §3.1, a 401 to a bearer token means `invalid_token`
/// (revoked or expired early), so a new token may succeed. Without a token a 401 is final.
pub fn should_retry(status: StatusCode, sent_token: bool) -> bool {
    sent_token && status == StatusCode::UNAUTHORIZED
}

/// The upstream's answer and, with the token flow on, the token in the last attempt.
pub struct Sent<R> {
    pub response: R,
    pub token: Option<Token>,
    /// How many times the request went upstream (1 or 2).
    pub attempts: u8,
}

pub async fn send_with_token<U: Upstream>(
    upstream: &mut U,
    tokens: Option<&dyn Tokens>,
) -> Result<Sent<U::Response>> {
    let Some(tokens) = tokens else {
        return Ok(Sent {
            response: upstream.send(None).await?,
            token: None,
            attempts: 1,
        });
    };
    let token = tokens.get().await?;
    let authorization = token.record.authorization()?;
    let response = upstream.send(Some(&authorization)).await?;
    if !should_retry(U::status(&response), true) {
        return Ok(sent_once(response, token));
    }
    if !upstream.can_replay() {
        // The body was streamed and is gone, so no retry; still replace the refused token so
        // the next request starts with a new one.
        tokens.retire(&token.record).await;
        return Ok(sent_once(response, token));
    }
    drop(response);
    let token = tokens.replace(&token.record).await?;
    let authorization = token.record.authorization()?;
    let response = upstream.send(Some(&authorization)).await?;
    Ok(Sent {
        response,
        token: Some(token),
        attempts: 2,
    })
}

fn sent_once<R>(response: R, token: Token) -> Sent<R> {
    Sent {
        response,
        token: Some(token),
        attempts: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientAuth, TokenConfig};
    use crate::error::{Error, Failure, Target};
    use crate::port::{block_on, Io};
    use crate::token::test_support::{ports, token_config, At, MapStore as Store, ME};
    use crate::token::{TokenEndpoint, TokenRequest, TokenSource};
    use std::cell::RefCell;

    struct Endpoint(RefCell<u32>);
    impl TokenEndpoint for Endpoint {
        fn send<'a>(&'a self, _: &'a TokenRequest) -> Io<'a, Result<(u16, Vec<u8>)>> {
            Box::pin(async move {
                *self.0.borrow_mut() += 1;
                let n = *self.0.borrow();
                Ok((200, format!(r#"{{"access_token":"t{n}"}}"#).into_bytes()))
            })
        }
    }

    /// Answers 401 to the tokens in `refuse`, 200 otherwise; records what it saw.
    struct Fake {
        refuse: Vec<&'static str>,
        seen: Vec<Option<String>>,
        replayable: bool,
    }
    impl Upstream for Fake {
        type Response = u16;
        fn send<'a>(&'a mut self, authorization: Option<&'a HeaderValue>) -> Io<'a, Result<u16>> {
            Box::pin(async move {
                let authorization = authorization.map(|a| a.to_str().unwrap().to_string());
                let refused = authorization
                    .as_deref()
                    .is_some_and(|a| self.refuse.iter().any(|t| *t == "*" || a.ends_with(t)));
                self.seen.push(authorization);
                Ok(if refused { 401 } else { 200 })
            })
        }
        fn status(r: &u16) -> StatusCode {
            StatusCode::from_u16(*r).unwrap()
        }
        fn can_replay(&self) -> bool {
            self.replayable
        }
    }

    fn cfg() -> TokenConfig {
        token_config(ClientAuth::Body)
    }

    fn run(fake: &mut Fake, endpoint: &Endpoint) -> Result<Sent<u16>> {
        let store = Store::default();
        let c = cfg();
        let tokens = TokenCache::new(&c, ports(&store, endpoint, &At(0)), ME);
        block_on(send_with_token(fake, Some(&tokens)))
    }

    #[test]
    fn only_a_401_to_a_token_calls_for_a_retry() {
        assert!(should_retry(StatusCode::UNAUTHORIZED, true));
        assert!(!should_retry(StatusCode::UNAUTHORIZED, false));
        assert!(!should_retry(StatusCode::FORBIDDEN, true));
        assert!(!should_retry(StatusCode::OK, true));
    }

    #[test]
    fn revoked_token_is_refreshed_and_retried_once() {
        let mut fake = Fake {
            refuse: vec!["t1"],
            seen: vec![],
            replayable: true,
        };
        let ep = Endpoint(RefCell::new(0));
        let sent = run(&mut fake, &ep).unwrap();
        assert_eq!(sent.response, 200);
        assert_eq!(sent.attempts, 2);
        assert_eq!(sent.token.map(|t| t.source), Some(TokenSource::Fetched));
        assert_eq!(*ep.0.borrow(), 2);
        assert_eq!(
            fake.seen,
            vec![Some("Bearer t1".into()), Some("Bearer t2".into())]
        );
    }

    #[test]
    fn an_upstream_that_always_refuses_is_retried_only_once() {
        let mut fake = Fake {
            refuse: vec!["*"],
            seen: vec![],
            replayable: true,
        };
        let ep = Endpoint(RefCell::new(0));
        let sent = run(&mut fake, &ep).unwrap();
        assert_eq!((sent.response, sent.attempts), (401, 2));
        assert_eq!(fake.seen.len(), 2);
        assert_eq!(*ep.0.borrow(), 2);
    }

    #[test]
    fn a_streamed_body_is_not_replayed() {
        let mut fake = Fake {
            refuse: vec!["*"],
            seen: vec![],
            replayable: false,
        };
        let ep = Endpoint(RefCell::new(0));
        let sent = run(&mut fake, &ep).unwrap();
        assert_eq!((sent.response, sent.attempts), (401, 1));
        assert_eq!(fake.seen.len(), 1);
    }

    #[test]
    fn without_a_token_flow_nothing_is_added() {
        let mut fake = Fake {
            refuse: vec![],
            seen: vec![],
            replayable: true,
        };
        let sent = block_on(send_with_token(&mut fake, None)).unwrap();
        assert!(sent.token.is_none());
        assert_eq!(fake.seen, vec![None]);
    }

    #[test]
    fn token_endpoint_failure_is_the_error() {
        struct Down;
        impl TokenEndpoint for Down {
            fn send<'a>(&'a self, _: &'a TokenRequest) -> Io<'a, Result<(u16, Vec<u8>)>> {
                Box::pin(async move {
                    Err(Error::Outbound {
                        target: Target::TokenEndpoint,
                        failure: Failure::Timeout,
                    })
                })
            }
        }
        let store = Store::default();
        let c = cfg();
        let tokens = TokenCache::new(&c, ports(&store, &Down, &At(0)), ME);
        let mut fake = Fake {
            refuse: vec![],
            seen: vec![],
            replayable: true,
        };
        let err = block_on(send_with_token(&mut fake, Some(&tokens)))
            .err()
            .unwrap();
        assert_eq!(err.status(), 504);
        assert!(fake.seen.is_empty(), "nothing is sent without a token");
    }
}
