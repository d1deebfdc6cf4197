//! A 100 MB upstream answer streams through the real wasm without being held in memory.
//!
//! Alone in its own test binary, so the process's peak RSS (VmHWM) belongs to this one transfer:
//! the host, the component instance, the mock upstream and a client that counts bytes without
//! keeping them. A proxy that buffered the body would add at least 100 MB.

mod common;

use common::{App, Setup};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SIZE: u64 = 100 * 1024 * 1024;

#[tokio::test]
async fn hundred_megabyte_response_streams_with_flat_memory() {
    let app = App::start(Setup::default()).await;
    // Warm up: compile, instantiate, fetch the token, so the baseline includes all of that.
    let warm = app.get("/api/getty/__large?bytes=1048576").await;
    assert_eq!(warm.status, 200);
    assert_eq!(warm.body.len(), 1_048_576);
    let before = spin_test_host::mock::peak_rss_bytes();

    let mut stream = tokio::net::TcpStream::connect(app.host.addr())
        .await
        .unwrap();
    let request = format!(
        "GET /api/getty/__large?bytes={SIZE} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        app.host.addr()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut head = Vec::new();
    let mut body_bytes: u64 = 0;
    let mut in_body = false;
    let mut checksum: u64 = 0;
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if !in_body {
            head.extend_from_slice(chunk);
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                in_body = true;
                let rest = head[end + 4..].to_vec();
                head.truncate(end);
                body_bytes += rest.len() as u64;
                checksum = rest.iter().fold(checksum, |c, b| c.wrapping_add(*b as u64));
            }
            continue;
        }
        body_bytes += chunk.len() as u64;
        checksum = chunk
            .iter()
            .fold(checksum, |c, b| c.wrapping_add(*b as u64));
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-length: {SIZE}")),
        "the length is passed on: {head}"
    );
    assert_eq!(body_bytes, SIZE, "every byte arrived");
    assert!(checksum > 0);

    let after = spin_test_host::mock::peak_rss_bytes();
    let growth_mb = after.saturating_sub(before) as f64 / (1024.0 * 1024.0);
    let report = format!(
        "streamed {} MiB; peak RSS before {:.1} MiB, after {:.1} MiB, growth {growth_mb:.1} MiB\n",
        SIZE / (1024 * 1024),
        before as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    println!("{report}");
    let out = spin_test_host::project_root()
        .join("target")
        .join("streaming-memory.txt");
    let _ = std::fs::write(out, &report);
    assert!(
        growth_mb < 32.0,
        "peak memory grew by {growth_mb:.1} MiB for a 100 MiB body: something buffers it"
    );
    app.assert_no_secrets().await;
}
