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

/// CPU time (user + system) this process has used so far, all threads, the finished included,
/// to the nanosecond (`CLOCK_PROCESS_CPUTIME_ID`); `None` if the clock cannot be read.
pub fn process_cpu_time() -> Option<std::time::Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    (rc == 0).then(|| {
        std::time::Duration::new(
            u64::try_from(now.tv_sec).unwrap_or(0),
            u32::try_from(now.tv_nsec).unwrap_or(0),
        )
    })
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

    #[test]
    fn cpu_time_grows_while_this_thread_works() {
        let spin = std::time::Instant::now();
        let before = super::process_cpu_time().unwrap();
        while spin.elapsed() < std::time::Duration::from_millis(5) {
            std::hint::black_box(0u64);
        }
        assert!(super::process_cpu_time().unwrap() > before);
    }
}
