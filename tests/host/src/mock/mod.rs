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

/// CPU time (user + system) this process has used so far, all threads, the dead included;
/// `None` where /proc is missing. Its resolution is the kernel's clock tick (10 ms), so it is for
/// runs of seconds.
pub fn process_cpu_time() -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 2..)?
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15, so 11 and 12 after the state (field 3).
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux's USER_HZ is 100 on every architecture it runs on.
    Some(std::time::Duration::from_millis(ticks * 10))
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
        let spin = std::time::Instant::now();
        let before = super::process_cpu_time().unwrap();
        while spin.elapsed() < std::time::Duration::from_millis(60) {
            std::hint::black_box(0u64);
        }
        assert!(super::process_cpu_time().unwrap() > before);
        assert!(super::peak_rss_bytes() >= super::current_rss_bytes() / 2);
    }
}
