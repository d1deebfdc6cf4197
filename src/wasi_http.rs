//! What both edges' wasi:http calls share, so each edge only binds its own wasi:http version:
//! the request line of a URL, a timeout in wasi's nanoseconds, and a wasi:http `error-code` in
//! our own words. The error code is a macro because each build's bindings generate their own
//! `ErrorCode` type (wasi:http 0.2 and 0.3 rc), with the same variants.
//!
//! Nothing here sends or decides anything.

use std::time::Duration;

use url::Url;

/// `url` as wasi:http's request line takes it.
pub struct RequestLine {
    pub https: bool,
    /// The host, and the port when the URL names one.
    pub authority: String,
    pub path_with_query: String,
}

impl RequestLine {
    pub fn of(url: &Url) -> RequestLine {
        let host = url.host_str().unwrap_or("");
        RequestLine {
            https: url.scheme() == "https",
            authority: match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            },
            path_with_query: match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_string(),
            },
        }
    }
}

/// A timeout as wasi's clocks and request options take it.
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A wasi:http `error-code` (`$code`, a reference to a value of the edge's `ErrorCode` type
/// `$kind`) as the [`crate::error::Failure`] of a call to `$url`. The runtime's own text (an
/// `internal-error` string may echo the URL, and the URL may carry `api_key_query`) is dropped
/// on purpose.
macro_rules! outbound_failure {
    ($code:expr, $kind:ident, $url:expr) => {{
        use $crate::error::Failure;
        match $code {
            $kind::HttpRequestDenied => Failure::NotAllowed {
                host: $url.host_str().unwrap_or("").to_string(),
            },
            $kind::ConnectionTimeout
            | $kind::ConnectionReadTimeout
            | $kind::ConnectionWriteTimeout
            | $kind::HttpResponseTimeout
            | $kind::DnsTimeout => Failure::Timeout,
            $kind::DnsError(_) => Failure::failed("its host name could not be resolved"),
            $kind::DestinationNotFound | $kind::DestinationUnavailable => {
                Failure::failed("its host is unavailable")
            }
            $kind::DestinationIpProhibited | $kind::DestinationIpUnroutable => {
                Failure::failed("its address cannot be reached")
            }
            $kind::ConnectionRefused => Failure::failed("the connection was refused"),
            $kind::ConnectionTerminated => {
                Failure::failed("the connection was closed before an answer")
            }
            $kind::TlsProtocolError | $kind::TlsCertificateError | $kind::TlsAlertReceived(_) => {
                Failure::failed("the TLS handshake failed")
            }
            $kind::HttpProtocolError | $kind::HttpResponseIncomplete => {
                Failure::failed("it answered with malformed HTTP")
            }
            _ => Failure::failed("the request failed"),
        }
    }};
}

pub(crate) use outbound_failure;
