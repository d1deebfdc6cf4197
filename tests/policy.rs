//! Component tests of the policy: routes and methods, CORS, hostile paths, body limit,
//! timeouts, configuration errors and the shipped manifest, all through the real wasm.

mod common;

use common::{App, Setup};
use spin_test_host::{HostOptions, SpinHost};

#[tokio::test]
async fn refused_routes_and_methods_never_reach_the_upstream() {
    let app =
        App::start(Setup::default().var("allowed_routes", "GET /search/**, POST /forms/contact"))
            .await;
    let reply = app.get("/api/getty/admin/keys").await;
    reply.assert_error(403, "route_not_allowed");
    assert_eq!(reply.header("content-type"), Some("application/json"));

    let reply = app
        .send("DELETE", "/api/getty/search/images", &[], None)
        .await;
    reply.assert_error(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));

    let reply = app
        .send("POST", "/api/getty/forms/other", &[], Some(b"x"))
        .await;
    assert_eq!(reply.status, 403);

    assert_eq!(app.upstream.hits(), 0);
    assert_eq!(app.tokens.calls(), 0, "a refused request costs no token");

    assert_eq!(
        app.get("/api/getty/search/images?phrase=x").await.status,
        200
    );
    assert_eq!(app.upstream.hits(), 1);
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn cors_preflight_and_origin_checks() {
    let app = App::start(Setup::default().var(
        "allowed_origins",
        "https://site.example, http://localhost:4321",
    ))
    .await;
    let reply = app
        .send(
            "OPTIONS",
            "/api/getty/search/images",
            &[
                ("Origin", "https://site.example"),
                ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Headers", "accept, x-evil, cookie"),
            ],
            None,
        )
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://site.example")
    );
    let methods = reply.header("access-control-allow-methods").unwrap();
    assert!(methods.contains("GET"), "{methods}");
    let allow_headers = reply.header("access-control-allow-headers").unwrap_or("");
    assert!(allow_headers.contains("accept"));
    assert!(!allow_headers.contains("x-evil") && !allow_headers.contains("cookie"));
    assert!(reply.header("vary").unwrap().contains("Origin"));
    assert_eq!(app.upstream.hits(), 0, "a preflight is answered locally");

    let reply = app
        .send(
            "OPTIONS",
            "/api/getty/search/images",
            &[
                ("Origin", "https://evil.example"),
                ("Access-Control-Request-Method", "GET"),
            ],
            None,
        )
        .await;
    reply.assert_error(403, "origin_not_allowed");
    assert!(reply.header("access-control-allow-origin").is_none());

    let reply = app
        .send(
            "GET",
            "/api/getty/search/images",
            &[("Origin", "https://evil.example")],
            None,
        )
        .await;
    assert_eq!(reply.status, 403);
    assert!(reply.header("access-control-allow-origin").is_none());
    assert_eq!(app.upstream.hits(), 0);

    let reply = app
        .send(
            "GET",
            "/api/getty/search/images",
            &[("Origin", "http://localhost:4321")],
            None,
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("http://localhost:4321")
    );
    assert!(reply.header("vary").unwrap_or("").contains("Origin"));
    assert!(reply
        .header("access-control-expose-headers")
        .unwrap_or("")
        .contains("x-credential-proxy-token"));

    // An allowed page also gets CORS headers on an error, so it can read the JSON.
    let reply = app
        .send(
            "GET",
            "/api/getty/../admin",
            &[("Origin", "http://localhost:4321")],
            None,
        )
        .await;
    assert!(reply.status == 400 || reply.status == 403);
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn no_allowed_origins_means_no_cross_origin_access() {
    let app = App::start(Setup::default()).await;
    let reply = app
        .send(
            "GET",
            "/api/getty/x",
            &[("Origin", "https://site.example")],
            None,
        )
        .await;
    reply.assert_error(403, "origin_not_allowed");
    // A same-origin request (the page served next to the proxy) is fine.
    let own = format!("http://{}", app.host.addr());
    let reply = app
        .send("GET", "/api/getty/x", &[("Origin", own.as_str())], None)
        .await;
    assert_eq!(reply.status, 200);
    app.assert_no_secrets().await;
}

/// Paths a client might use to escape `upstream_url`'s prefix or reach another host.
const HOSTILE: &[&str] = &[
    "/api/getty/../../admin",
    "/api/getty/..%2f..%2fadmin",
    "/api/getty/%2e%2e/%2e%2e/admin",
    "/api/getty/%2E%2E/admin",
    "/api/getty/.%2e/admin",
    "/api/getty/%2e./admin",
    "/api/getty/search/..%2F..%2F..%2Fetc/passwd",
    "/api/getty/..%5c..%5cadmin",
    "/api/getty/..\\..\\admin",
    "/api/getty/%5c%5cevil.example/x",
    "/api/getty//evil.example/x",
    "/api/getty///evil.example/x",
    "/api/getty/@evil.example/x",
    "/api/getty/:@evil.example/x",
    "/api/getty/user:pass@evil.example/x",
    "/api/getty/%2f%2fevil.example/x",
    "/api/getty/%00/admin",
    "/api/getty/a%0d%0aHost:%20evil.example",
    "/api/getty/%c0%ae%c0%ae/admin",
    "/api/getty/%c0%af",
    "/api/getty/%e0%80%ae%e0%80%ae/admin",
    "/api/getty/%252e%252e/admin",
    "/api/getty/./../admin",
    "/api/getty/a/b/../../../admin",
    "/api/getty/..;/admin",
    "/api/getty/%2e%2e;x/admin",
    "/api/getty/...",
    "/api/getty/%ff%fe",
    "/api/getty/%zz",
    "/api/getty/http://evil.example/x",
    "/api/getty/https:%2f%2fevil.example",
    "/api/getty/..",
];

#[tokio::test]
async fn hostile_paths_never_leave_the_upstream_prefix() {
    let app = App::start(Setup::default()).await;
    for path in HOSTILE {
        let reply = app.get(path).await;
        assert!(
            [200, 400, 403, 404].contains(&reply.status),
            "{path}: unexpected status {}",
            reply.status
        );
        if reply.status == 400 {
            // Refused by the proxy: the JSON names the reason.
            let code = reply.error_code();
            assert!(
                code == "invalid_path" || code == "bad_request",
                "{path}: {code}"
            );
        }
    }
    assert!(HOSTILE.len() >= 30);
    for seen in app.upstream.requests() {
        assert!(
            seen.path == "/v3" || seen.path.starts_with("/v3/"),
            "the upstream saw {} outside /v3",
            seen.path
        );
        assert!(
            !seen.path.contains(".."),
            "unresolved dots reached the upstream: {}",
            seen.path
        );
        let host = seen
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        assert_eq!(host, app.upstream.url().trim_start_matches("http://"));
    }
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn body_over_the_limit_gets_413_and_is_not_sent() {
    let app = App::start(
        Setup::default()
            .var("allowed_routes", "POST /upload")
            .var("max_body_bytes", "1000"),
    )
    .await;
    let big = vec![b'x'; 1001];
    let reply = app.send("POST", "/api/getty/upload", &[], Some(&big)).await;
    reply.assert_error(413, "body_too_large");

    // Chunked, so no Content-Length tells the size in advance: the proxy counts as it reads.
    let body = common::chunked(&[b'y'; 1200], 400);
    let reply = app
        .send(
            "POST",
            "/api/getty/upload",
            &[("Transfer-Encoding", "chunked")],
            Some(&body),
        )
        .await;
    assert_eq!(reply.status, 413, "chunked over the limit");
    assert_eq!(reply.error_code(), "body_too_large");
    assert_eq!(app.upstream.hits(), 0);

    let ok = vec![b'z'; 1000];
    let reply = app.send("POST", "/api/getty/upload", &[], Some(&ok)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(app.upstream.requests()[0].body_len, 1000);
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn large_chunked_bodies_stream_upstream_and_are_cut_at_the_limit() {
    // Over the 1 MiB held in memory for a retry, so the body streams to the upstream.
    let app = App::start(
        Setup {
            token_flow: false,
            ..Setup::default()
        }
        .var("allowed_routes", "POST /upload")
        .var("max_body_bytes", "3000000"),
    )
    .await;
    let two_mib = vec![b'a'; 2 * 1024 * 1024];
    let reply = app
        .send(
            "POST",
            "/api/getty/upload",
            &[("Transfer-Encoding", "chunked")],
            Some(&common::chunked(&two_mib, 64 * 1024)),
        )
        .await;
    reply.assert_status(200);
    assert_eq!(app.upstream.requests()[0].body_len, two_mib.len() as u64);

    let four_mib = vec![b'b'; 4 * 1024 * 1024];
    let reply = app
        .send(
            "POST",
            "/api/getty/upload",
            &[("Transfer-Encoding", "chunked")],
            Some(&common::chunked(&four_mib, 64 * 1024)),
        )
        .await;
    reply.assert_error(413, "body_too_large");
    assert!(
        app.upstream
            .requests()
            .iter()
            .all(|r| r.body_len <= 3_000_000),
        "the upstream never got more than max_body_bytes"
    );
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn upstream_redirects_never_carry_the_key_back() {
    let app = App::start(Setup {
        token_flow: false,
        key_in_query: true,
        ..Setup::default()
    })
    .await;
    let reply = app.get("/api/getty/x/__redirect?q=1").await;
    assert_eq!(reply.status, 301);
    let sent = &app.upstream.requests()[0];
    assert!(
        sent.query.as_deref().unwrap_or("").contains("api_key="),
        "the key went upstream in the query"
    );
    assert!(
        reply.header("location").is_none(),
        "Location repeated the key"
    );
    assert!(reply.header("content-location").is_none());
    assert!(reply.header("link").is_none());
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn slow_upstream_gives_504() {
    let app = App::start(
        Setup {
            token_flow: false,
            ..Setup::default()
        }
        .var("upstream_timeout_secs", "1"),
    )
    .await;
    app.upstream.set_delay(std::time::Duration::from_secs(5));
    let started = std::time::Instant::now();
    let reply = app.get("/api/getty/slow").await;
    reply.assert_error(504, "upstream_timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn missing_and_malformed_variables_name_the_variable() {
    let cases: &[(&str, &str, &str)] = &[
        ("max_body_bytes", "lots", "max_body_bytes"),
        ("allowed_routes", "GET", "allowed_routes"),
        ("token_client_auth", "magic", "token_client_auth"),
        ("upstream_url", "not a url", "upstream_url"),
        ("upstream_timeout_secs", "0", "upstream_timeout_secs"),
        ("allowed_origins", "site.example", "allowed_origins"),
        ("kv_store", "other", "kv_store"),
    ];
    for (name, value, named) in cases {
        let app = App::start(Setup::default().var(name, *value)).await;
        let reply = app.get("/api/getty/x").await;
        assert_eq!(reply.status, 500, "{name}={value}");
        assert_eq!(reply.error_code(), "config_invalid");
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(named), "{message} should name {named}");
        assert!(
            !message.contains(value) || value.len() < 3,
            "{message} shows the value"
        );
        assert_eq!(app.upstream.hits(), 0);
        app.assert_no_secrets().await;
    }
}

#[tokio::test]
async fn empty_secret_is_config_invalid() {
    let app = App::start(Setup::default()).await;
    let manifest = app.manifest.clone();
    let state = app.dir.path().join("other-state");
    // Same manifest, but the secret app variables are not set at all.
    let host = SpinHost::start(HostOptions::new(&manifest, &state).wasm_dir(common::wasm_dir()))
        .await
        .unwrap();
    let reply = common::raw_request(host.addr(), "GET", "/api/getty/x", &[], None).await;
    reply.assert_error(500, "config_invalid");
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("client_secret")
            || reply.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("api_key")
    );
    host.shutdown().await;
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn upstream_missing_from_allowed_outbound_hosts_gives_a_clear_502() {
    let app = App::start(Setup {
        token_flow: false,
        forbid_upstream: true,
        ..Setup::default()
    })
    .await;
    let reply = app.get("/api/getty/x").await;
    reply.assert_error(502, "outbound_not_allowed");
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("allowed_outbound_hosts"));
    assert_eq!(app.upstream.hits(), 0, "the runtime refused the connection");
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn shipped_manifest_loads_and_getty_without_secrets_is_config_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = spin_test_host::project_root().join("spin.toml");
    let host =
        SpinHost::start(HostOptions::new(&manifest, dir.path()).wasm_dir(common::wasm_dir()))
            .await
            .unwrap();
    for path in [
        "/api/getty/search/images?phrase=cat",
        "/api/flotiq/api/v1/content/blog",
    ] {
        let reply = common::raw_request(host.addr(), "GET", path, &[], None).await;
        assert_eq!(reply.status, 500, "{path}");
        assert_eq!(reply.error_code(), "config_invalid");
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains("api_key"), "{message}");
    }
    // Flotiq's policy is checked before anything else would be sent.
    let reply = common::raw_request(
        host.addr(),
        "DELETE",
        "/api/flotiq/api/v1/content/blog",
        &[],
        None,
    )
    .await;
    assert_eq!(reply.status, 500, "config is read first; nothing is sent");
    host.shutdown().await;
}
