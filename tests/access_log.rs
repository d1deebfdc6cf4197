//! Component tests of the access log: the real wasm writes one JSON line per request to stdout,
//! with the fields README's "Access log" lists, never a query string, and none at all with
//! `access_log = "off"`. Each test ends with the secret canary check over every log line.

mod common;

use common::{App, Setup};
use serde_json::Value;

/// The access-log lines the component wrote so far: the JSON objects among its stdout and stderr
/// (the stderr lines start with `credential-proxy:`, the host's with `[spin-test-host]`), once
/// every instance has finished: a line is written after its answer is out.
async fn access_lines(app: &App) -> Vec<Value> {
    app.host.settled().await;
    app.host
        .logs()
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The only access line, asserting there is exactly one.
async fn only_line(app: &App) -> Value {
    let lines = access_lines(app).await;
    assert_eq!(lines.len(), 1, "one line per request: {lines:#?}");
    lines.into_iter().next().unwrap_or_default()
}

/// `2026-11-24T07:26:59.123Z`: digits where the shape has `0`.
fn is_utc_millis(time: &str) -> bool {
    let shape = "0000-00-00T00:00:00.000Z";
    time.len() == shape.len()
        && time.bytes().zip(shape.bytes()).all(|(t, s)| {
            if s == b'0' {
                t.is_ascii_digit()
            } else {
                t == s
            }
        })
}

#[tokio::test]
async fn each_upstream_answer_is_one_line_token_fetched_then_cached() {
    let app = App::start(Setup::default()).await;
    for _ in 0..2 {
        app.get("/api/getty/search/images?phrase=query-canary-7c1")
            .await
            .assert_status(200);
    }
    let lines = access_lines(&app).await;
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let line = &lines[0];
    // serde_json's map is sorted; the line's own order is a unit test in `access_log`.
    let mut keys: Vec<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = [
        "time",
        "route",
        "method",
        "path",
        "status",
        "upstream_status",
        "token",
        "attempts",
        "duration_ms",
        "error",
    ];
    keys.sort_unstable();
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(line["route"], "/api/getty");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/search/images");
    assert_eq!(line["status"], 200);
    assert_eq!(line["upstream_status"], 200);
    assert_eq!(line["attempts"], 1);
    assert_eq!(line["error"], Value::Null);
    assert!(line["duration_ms"].is_u64());
    let time = line["time"].as_str().unwrap();
    assert!(
        is_utc_millis(time),
        "RFC 3339 in UTC with milliseconds: {time}"
    );
    assert_eq!(lines[0]["token"], "fetched");
    assert_eq!(lines[1]["token"], "cached");
    assert!(
        !app.host.logs().contains("query-canary-7c1"),
        "a query string never reaches the log"
    );
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn a_refused_route_is_logged_with_its_code_and_no_upstream_call() {
    let app = App::start(Setup::default().var("allowed_routes", "GET /search/**")).await;
    app.get("/api/getty/admin/users?key=query-canary-2b9")
        .await
        .assert_error(403, "route_not_allowed");
    let line = only_line(&app).await;
    assert_eq!(line["path"], "/admin/users");
    assert_eq!(line["status"], 403);
    assert_eq!(line["error"], "route_not_allowed");
    assert_eq!(line["upstream_status"], Value::Null);
    assert_eq!(line["attempts"], 0);
    assert_eq!(line["token"], "none");
    assert!(!app.host.logs().contains("query-canary-2b9"));
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn a_path_refused_before_normalising_is_not_logged() {
    let app = App::start(Setup::default()).await;
    app.get("/api/getty/a/%2e%2e/path-canary-d41")
        .await
        .assert_error(400, "invalid_path");
    let line = only_line(&app).await;
    assert_eq!(line["path"], Value::Null);
    assert_eq!(line["error"], "invalid_path");
    assert!(!app.host.logs().contains("path-canary-d41"));
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn a_token_refused_upstream_is_logged_as_two_attempts() {
    let app = App::start(Setup::default()).await;
    app.get("/api/getty/first").await.assert_status(200);
    app.tokens.revoke(&app.tokens.issued()[0]);
    app.get("/api/getty/second").await.assert_status(200);
    let lines = access_lines(&app).await;
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(lines[1]["attempts"], 2);
    assert_eq!(lines[1]["upstream_status"], 200);
    assert_eq!(lines[1]["token"], "fetched");
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn an_unreachable_upstream_is_logged_with_its_attempt() {
    let app = App::start(Setup {
        forbid_upstream: true,
        ..Setup::default()
    })
    .await;
    app.get("/api/getty/x")
        .await
        .assert_error(502, "outbound_not_allowed");
    let line = only_line(&app).await;
    assert_eq!(line["attempts"], 1);
    assert_eq!(line["upstream_status"], Value::Null);
    assert_eq!(line["error"], "outbound_not_allowed");
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn a_preflight_is_one_line_too() {
    let app = App::start(Setup::default().var("allowed_origins", "https://site.example")).await;
    let reply = app
        .send(
            "OPTIONS",
            "/api/getty/search",
            &[
                ("Origin", "https://site.example"),
                ("Access-Control-Request-Method", "GET"),
            ],
            None,
        )
        .await;
    reply.assert_status(204);
    let line = only_line(&app).await;
    assert_eq!(
        (line["method"].as_str(), line["status"].as_u64()),
        (Some("OPTIONS"), Some(204))
    );
    assert_eq!(line["attempts"], 0);
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn a_broken_config_still_logs_its_line() {
    let app = App::start(Setup::default().var("upstream_timeout_secs", "0")).await;
    app.get("/api/getty/x")
        .await
        .assert_error(500, "config_invalid");
    let line = only_line(&app).await;
    assert_eq!(
        (line["status"].as_u64(), line["error"].as_str()),
        (Some(500), Some("config_invalid"))
    );
    assert_eq!(line["path"], Value::Null);
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn a_bad_switch_is_a_config_error_that_is_logged() {
    let app = App::start(Setup::default().var("access_log", "maybe")).await;
    let reply = app.get("/api/getty/x").await;
    reply.assert_error(500, "config_invalid");
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("access_log"));
    assert_eq!(only_line(&app).await["error"], "config_invalid");
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn switched_off_there_is_no_line() {
    let app = App::start(
        Setup::default()
            .var("access_log", "off")
            .var("allowed_routes", "GET /search/**"),
    )
    .await;
    app.get("/api/getty/search/images").await.assert_status(200);
    app.get("/api/getty/admin")
        .await
        .assert_error(403, "route_not_allowed");
    assert_eq!(access_lines(&app).await, Vec::<Value>::new());
    // The component's own stderr lines stay: the switch is for the access log only.
    assert!(app.host.logs().contains("credential-proxy: GET -> 403"));
    app.assert_no_secrets().await;
}

/// A client that goes away mid-answer: the component notices at its next write (on Spin the
/// guest is not aborted; its writes fail), stops, and logs the answer as incomplete, even for a
/// chunked answer whose end it cannot check against a length.
#[tokio::test]
async fn a_client_that_leaves_mid_answer_is_logged_as_incomplete() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for query in ["bytes=104857600&chunked=1", "bytes=104857600"] {
        let app = App::start(Setup::default()).await;
        let mut socket = tokio::net::TcpStream::connect(app.host.addr())
            .await
            .unwrap();
        let request = format!(
            "GET /api/getty/__large?{query} HTTP/1.1\r\nHost: {}\r\n\r\n",
            app.host.addr()
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut received = vec![0u8; 256 * 1024];
        let mut got = 0;
        while got < 128 * 1024 {
            let n = socket.read(&mut received[got..]).await.unwrap();
            assert!(n > 0, "{query}: the answer ended after {got} bytes");
            got += n;
        }
        assert!(received.starts_with(b"HTTP/1.1 200"), "{query}");
        drop(socket);
        // settled() inside: the guest stops soon after the client left.
        let line = only_line(&app).await;
        assert_eq!(
            (line["status"].as_u64(), line["error"].as_str()),
            (Some(200), Some("response_incomplete")),
            "{query}: {line:#}"
        );
    }
}
