//! Mock servers for component tests: an OAuth2 client-credentials token endpoint
//! ([`TokenServer`]) and a configurable upstream API ([`Upstream`]), both built on one scaffold
//! ([`MockServer`]: a hyper server on 127.0.0.1 with shared state and a stop switch). Also
//! process memory readings for streaming tests. Nothing here talks to the component directly:
//! the component reaches the mocks through the host's outbound HTTP.

mod server;
mod token;
mod upstream;

pub use server::MockServer;
pub use token::{
    ExpiresIn, RecordedTokenRequest, TokenFailure, TokenServer, TokenState, TokenStatus,
};
pub use upstream::{large_body_byte, RecordedRequest, Upstream, UpstreamState, LARGE_PATTERN};

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .unwrap_or(0)
}

/// Peak resident set size of this process (`VmHWM`), in bytes; 0 where /proc is missing.
pub fn peak_rss_bytes() -> u64 {
    status_kb("VmHWM:") * 1024
}

/// Current resident set size of this process (`VmRSS`), in bytes; 0 where /proc is missing.
pub fn current_rss_bytes() -> u64 {
    status_kb("VmRSS:") * 1024
}

#[cfg(test)]
mod tests {
    #[test]
    fn rss_is_readable() {
        assert!(super::current_rss_bytes() > 0);
        assert!(super::peak_rss_bytes() >= super::current_rss_bytes() / 2);
    }
}
