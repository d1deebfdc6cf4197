//! Sending with a bearer token, and the one retry after a 401.
//!
//! When the upstream answers 401 to a request that carried a token, the token is dropped from the
//! cache, a new one is fetched, and the request is sent again once, if its body can be replayed.
//! Never twice: an upstream that refuses every token gets its 401 passed to the client. The
//! actual sending is behind [`Send`], so this logic is tested with a fake and no runtime.

use crate::error::Result;
use crate::token::{TokenRecord, TokenSource, Tokens};

/// One upstream attempt. The implementation owns method, URL, headers and body.
pub trait Send {
    type Response;

    /// Sends once, with `authorization` added when given.
    fn send(&mut self, authorization: Option<&str>) -> Result<Self::Response>;

    fn status(response: &Self::Response) -> u16;

    /// Whether a second `send` can carry the same body (none, or held in memory).
    fn replayable(&self) -> bool;
}

/// The upstream's answer and, with the token flow on, the token sent and where it came from.
pub struct Sent<R> {
    pub response: R,
    pub token: Option<TokenSource>,
    /// The token in the last attempt, so the answer can be checked for it.
    pub record: Option<TokenRecord>,
    /// How many times the request went upstream (1 or 2).
    pub attempts: u8,
}

pub fn send_with_token<S: Send>(
    sender: &mut S,
    tokens: Option<&Tokens>,
) -> Result<Sent<S::Response>> {
    let Some(tokens) = tokens else {
        return Ok(Sent {
            response: sender.send(None)?,
            token: None,
            record: None,
            attempts: 1,
        });
    };
    let (record, source) = tokens.get()?;
    let response = sender.send(Some(&record.authorization()))?;
    if S::status(&response) != 401 || !sender.replayable() {
        if S::status(&response) == 401 {
            // The body was streamed and is gone, so no retry; still drop the refused token so
            // the next request starts with a new one.
            tokens.invalidate(&record);
        }
        return Ok(Sent {
            response,
            token: Some(source),
            record: Some(record),
            attempts: 1,
        });
    }
    // RFC 6750 §3.1: 401 with a bearer token means invalid_token (revoked or expired early).
    drop(response);
    let record = tokens.refresh(&record)?;
    let response = sender.send(Some(&record.authorization()))?;
    Ok(Sent {
        response,
        token: Some(TokenSource::Fetched),
        record: Some(record),
        attempts: 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientAuth, TokenConfig};
    use crate::error::Error;
    use crate::secret::{ClientId, ClientSecret};
    use crate::token::{MapStore as Store, TokenEndpoint, TokenRequest};
    use std::cell::RefCell;

    struct Endpoint(RefCell<u32>);
    impl TokenEndpoint for Endpoint {
        fn send(&self, _: &TokenRequest) -> Result<(u16, Vec<u8>)> {
            *self.0.borrow_mut() += 1;
            let n = *self.0.borrow();
            Ok((200, format!(r#"{{"access_token":"t{n}"}}"#).into_bytes()))
        }
    }

    /// Answers 401 to the tokens in `refuse`, 200 otherwise; records what it saw.
    struct Fake {
        refuse: Vec<&'static str>,
        seen: Vec<Option<String>>,
        replayable: bool,
    }
    impl Send for Fake {
        type Response = u16;
        fn send(&mut self, authorization: Option<&str>) -> Result<u16> {
            self.seen.push(authorization.map(str::to_string));
            let refused = authorization
                .is_some_and(|a| self.refuse.iter().any(|t| *t == "*" || a.ends_with(t)));
            Ok(if refused { 401 } else { 200 })
        }
        fn status(r: &u16) -> u16 {
            *r
        }
        fn replayable(&self) -> bool {
            self.replayable
        }
    }

    fn cfg() -> TokenConfig {
        TokenConfig {
            url: url::Url::parse("https://auth.example.com/token").unwrap(),
            client_id: ClientId::new("id"),
            client_secret: ClientSecret::new("secret"),
            scope: None,
            client_auth: ClientAuth::Body,
            refresh_skew_secs: 60,
            default_ttl_secs: 300,
        }
    }

    fn run(fake: &mut Fake, endpoint: &Endpoint) -> Result<Sent<u16>> {
        let store = Store::default();
        let c = cfg();
        let tokens = Tokens {
            cfg: &c,
            store: &store,
            endpoint,
            now: 0,
            log: &|_| {},
        };
        send_with_token(fake, Some(&tokens))
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
        assert_eq!(sent.token, Some(TokenSource::Fetched));
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
        let sent = send_with_token(&mut fake, None).unwrap();
        assert_eq!(sent.token, None);
        assert_eq!(fake.seen, vec![None]);
    }

    #[test]
    fn token_endpoint_failure_is_the_error() {
        struct Down;
        impl TokenEndpoint for Down {
            fn send(&self, _: &TokenRequest) -> Result<(u16, Vec<u8>)> {
                Err(Error::TokenEndpointTimeout)
            }
        }
        let store = Store::default();
        let c = cfg();
        let tokens = Tokens {
            cfg: &c,
            store: &store,
            endpoint: &Down,
            now: 0,
            log: &|_| {},
        };
        let mut fake = Fake {
            refuse: vec![],
            seen: vec![],
            replayable: true,
        };
        let err = send_with_token(&mut fake, Some(&tokens)).err().unwrap();
        assert_eq!(err.status(), 504);
        assert!(fake.seen.is_empty(), "nothing is sent without a token");
    }
}
