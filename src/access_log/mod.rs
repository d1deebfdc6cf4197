//! The access log: one JSON line per request, so an operator can answer "why did my site's
//! search fail?" from the platform's log view (Spin writes component stdout to
//! `.spin/logs/<component>_stdout.txt`; `spin cloud logs`, `spin aka logs` and `kubectl logs`
//! show it too).
//!
//! An [`Entry`] is filled in as the request goes (request line, normalised path, upstream
//! attempts, token, the answer written) and rendered once at the end with serde_json, which
//! escapes whatever a client put in the method or path. [`Recorded`] wraps the upstream port to
//! count attempts and keep the last upstream status even when the send then fails. The
//! timestamp is formatted by `utc`.
//!
//! What a line never holds, by construction: a query string, a header value (only Spin's own
//! `spin-component-route`), a secret or a token, or a raw path (a path that failed
//! normalisation is logged as `null`). Pure: the edge supplies the clocks and writes the line;
//! whether logging is on is `config`'s `access_log`.

mod utc;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, StatusCode};
use serde::Serialize;

use crate::answer::Answer;
use crate::decision::RequestHead;
use crate::error::{Error, Result};
use crate::headers::last;
use crate::port::Io;
use crate::retry::Upstream;
use crate::token::TokenSource;

/// The `error` of a line whose answer began but whose body broke off (the upstream or the
/// client went away mid-stream). The browser got no JSON error for it; this code is the log's.
pub const RESPONSE_INCOMPLETE: &str = "response_incomplete";

/// How the bearer token of the answered attempt was got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenUse {
    Cached,
    Fetched,
    /// No token flow, or no upstream answer to report one for.
    None,
}

impl From<Option<TokenSource>> for TokenUse {
    fn from(source: Option<TokenSource>) -> TokenUse {
        match source {
            Some(TokenSource::Cached) => TokenUse::Cached,
            Some(TokenSource::Fetched) => TokenUse::Fetched,
            None => TokenUse::None,
        }
    }
}

/// Whether the answer's body was written to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Complete,
    /// The status went out, the body did not finish.
    CutShort,
}

/// One request's line. Field order is the line's order.
#[derive(Debug, Serialize)]
pub struct Entry {
    /// When the request arrived, RFC 3339 in UTC with milliseconds.
    time: String,
    /// The component's route prefix from Spin's `spin-component-route` (e.g. `/api/getty`), so
    /// the lines of several components sharing one log stream can be told apart.
    route: Option<String>,
    method: Option<String>,
    /// The normalised path after the route, without the query.
    path: Option<String>,
    status: u16,
    upstream_status: Option<u16>,
    token: TokenUse,
    attempts: u8,
    duration_ms: u64,
    /// The JSON error code the browser got, or [`RESPONSE_INCOMPLETE`].
    error: Option<&'static str>,
}

impl Entry {
    /// A line for a request that arrived at `time` and has not been answered yet.
    pub fn start(time: SystemTime) -> Entry {
        Entry {
            time: utc::rfc3339_millis(time.duration_since(UNIX_EPOCH).unwrap_or_default()),
            route: None,
            method: None,
            path: None,
            // Replaced by the answer; a line that still says 500 had none written.
            status: StatusCode::INTERNAL_SERVER_ERROR.as_u16(),
            upstream_status: None,
            token: TokenUse::None,
            attempts: 0,
            duration_ms: 0,
            error: None,
        }
    }

    /// The method and the component's route, from the request head.
    pub fn request(&mut self, head: &RequestHead) {
        self.method = Some(head.method.as_str().to_string());
        // Spin appends its own `spin-*` headers after the client's: only the last is Spin's.
        self.route = last(&head.headers, "spin-component-route").map(str::to_string);
    }

    /// The normalised path, once the decision has one (`None` for a path it refused).
    pub fn path(&mut self, path: Option<&str>) {
        self.path = path.map(str::to_string);
    }

    /// What the upstream calls did, whether or not the send then succeeded.
    pub fn attempts(&mut self, attempts: &Attempts) {
        self.attempts = attempts.count;
        self.upstream_status = attempts.last_status.map(|s| s.as_u16());
    }

    pub fn token(&mut self, source: Option<TokenSource>) {
        self.token = source.into();
    }

    /// The error the browser is answered with.
    pub fn error(&mut self, e: &Error) {
        self.error = Some(e.code());
    }

    /// The answer written, and whether its body got out whole.
    pub fn written(&mut self, answer: &Answer, written: Written) {
        self.status = answer.status.as_u16();
        if written == Written::CutShort && self.error.is_none() {
            self.error = Some(RESPONSE_INCOMPLETE);
        }
    }

    /// The JSON line (no newline), with the time the request took.
    pub fn line(&mut self, took: Duration) -> String {
        self.duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        // Strings, numbers and unit enums only: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// How many times the request went upstream and the last status that came back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    pub count: u8,
    pub last_status: Option<StatusCode>,
}

/// The upstream port, counting into an [`Attempts`]: the retry returns the count only with a
/// response, and the log wants it when the second attempt or the token refresh fails too.
pub struct Recorded<'a, U> {
    pub inner: U,
    pub attempts: &'a mut Attempts,
}

impl<U: Upstream> Upstream for Recorded<'_, U> {
    type Response = U::Response;

    fn send<'a>(
        &'a mut self,
        authorization: Option<&'a HeaderValue>,
    ) -> Io<'a, Result<U::Response>> {
        Box::pin(async move {
            self.attempts.count = self.attempts.count.saturating_add(1);
            let response = self.inner.send(authorization).await?;
            self.attempts.last_status = Some(U::status(&response));
            Ok(response)
        })
    }

    fn status(response: &U::Response) -> StatusCode {
        U::status(response)
    }

    fn can_replay(&self) -> bool {
        self.inner.can_replay()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer;
    use crate::error::Failure;
    use crate::port::{block_on, Io};
    use http::{HeaderMap, HeaderName, Method};
    use serde_json::{json, Value};

    fn at(secs: u64, millis: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, millis * 1_000_000)
    }

    fn head(method: Method, headers: &[(&'static str, &'static str)]) -> RequestHead {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        RequestHead {
            method,
            query: Some("phrase=cat&api_key=CANARY".into()),
            headers: map,
        }
    }

    fn parse(line: &str) -> Value {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn an_upstream_answer_has_every_field() {
        let mut entry = Entry::start(at(1_700_000_000, 42));
        entry.request(&head(
            Method::GET,
            &[
                ("spin-component-route", "/client/fake"),
                ("origin", "https://site.example"),
                ("spin-component-route", "/api/getty"),
            ],
        ));
        entry.path(Some("/search/images"));
        entry.attempts(&Attempts {
            count: 2,
            last_status: Some(StatusCode::OK),
        });
        entry.token(Some(TokenSource::Fetched));
        let answer = answer::preflight(HeaderMap::new());
        entry.written(
            &Answer {
                status: StatusCode::OK,
                ..answer
            },
            Written::Complete,
        );
        // The exact text: field order, compact JSON, no newline.
        assert_eq!(
            entry.line(Duration::from_micros(12_900)),
            r#"{"time":"2023-11-14T22:13:20.042Z","route":"/api/getty","method":"GET","path":"/search/images","status":200,"upstream_status":200,"token":"fetched","attempts":2,"duration_ms":12,"error":null}"#
        );
    }

    #[test]
    fn a_refusal_has_its_code_and_no_upstream() {
        let mut entry = Entry::start(at(0, 0));
        entry.request(&head(Method::DELETE, &[]));
        entry.path(Some("/admin"));
        let e = Error::RouteNotAllowed {
            method: "DELETE".into(),
            path: "/admin".into(),
        };
        entry.error(&e);
        entry.written(
            &answer::error(&"DELETE", &e, &HeaderMap::new()),
            Written::Complete,
        );
        let v = parse(&entry.line(Duration::ZERO));
        assert_eq!(v["status"], 403);
        assert_eq!(v["error"], "route_not_allowed");
        assert_eq!(v["upstream_status"], Value::Null);
        assert_eq!(v["route"], Value::Null);
        assert_eq!(
            (v["attempts"].as_u64(), v["token"].as_str()),
            (Some(0), Some("none"))
        );
    }

    #[test]
    fn a_line_never_holds_the_query_or_a_header_value() {
        let mut entry = Entry::start(at(0, 0));
        entry.request(&head(
            Method::GET,
            &[("authorization", "Bearer CANARY"), ("cookie", "CANARY")],
        ));
        let line = entry.line(Duration::ZERO);
        assert!(!line.contains("CANARY"), "{line}");
        assert!(!line.contains("phrase"), "{line}");
    }

    #[test]
    fn an_unknown_request_logs_nulls_not_guesses() {
        let mut entry = Entry::start(at(0, 0));
        let e = Error::BadRequest { reason: "x".into() };
        entry.error(&e);
        entry.written(
            &answer::error(&"-", &e, &HeaderMap::new()),
            Written::Complete,
        );
        let v = parse(&entry.line(Duration::ZERO));
        assert_eq!(
            (v["method"].clone(), v["path"].clone()),
            (Value::Null, Value::Null)
        );
        assert_eq!(
            (v["status"].as_u64(), v["error"].as_str()),
            (Some(400), Some("bad_request"))
        );
    }

    #[test]
    fn a_body_cut_short_is_reported_without_hiding_an_error() {
        let ok = Answer {
            status: StatusCode::OK,
            ..answer::preflight(HeaderMap::new())
        };
        let mut entry = Entry::start(at(0, 0));
        entry.written(&ok, Written::CutShort);
        assert_eq!(
            parse(&entry.line(Duration::ZERO))["error"],
            RESPONSE_INCOMPLETE
        );

        let e = Error::upstream(Failure::Timeout);
        let mut entry = Entry::start(at(0, 0));
        entry.error(&e);
        entry.written(
            &answer::error(&"GET", &e, &HeaderMap::new()),
            Written::CutShort,
        );
        let v = parse(&entry.line(Duration::ZERO));
        assert_eq!(
            (v["status"].as_u64(), v["error"].as_str()),
            (Some(504), Some("upstream_timeout"))
        );
    }

    #[test]
    fn tokens_are_named_by_where_they_came_from() {
        let names: Vec<Value> = [Some(TokenSource::Cached), Some(TokenSource::Fetched), None]
            .into_iter()
            .map(|s| serde_json::to_value(TokenUse::from(s)).unwrap())
            .collect();
        assert_eq!(names, [json!("cached"), json!("fetched"), json!("none")]);
    }

    /// Answers with the statuses given, then fails.
    struct Script(Vec<u16>);
    impl Upstream for Script {
        type Response = u16;
        fn send<'a>(&'a mut self, _: Option<&'a HeaderValue>) -> Io<'a, Result<u16>> {
            Box::pin(async move {
                if self.0.is_empty() {
                    return Err(Error::upstream(Failure::Timeout));
                }
                Ok(self.0.remove(0))
            })
        }
        fn status(r: &u16) -> StatusCode {
            StatusCode::from_u16(*r).unwrap()
        }
        fn can_replay(&self) -> bool {
            true
        }
    }

    #[test]
    fn attempts_are_counted_even_when_a_later_one_fails() {
        let mut attempts = Attempts::default();
        let mut upstream = Recorded {
            inner: Script(vec![401]),
            attempts: &mut attempts,
        };
        assert_eq!(block_on(upstream.send(None)).unwrap(), 401);
        assert!(block_on(upstream.send(None)).is_err());
        assert!(upstream.can_replay());
        assert_eq!(
            attempts,
            Attempts {
                count: 2,
                last_status: Some(StatusCode::UNAUTHORIZED)
            }
        );
    }
}
