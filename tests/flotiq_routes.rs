//! The shipped `flotiq` component's route policy, through the real wasm: content types are
//! readable, contact-form submissions are write-only (`!GET /api/v1/content/contact_form/**`).
//!
//! The routes are read from the project's own `spin.toml`, then run in front of the mock
//! upstream (the shipped upstream is api.flotiq.com, which tests never call); the refusals are
//! also checked on the shipped manifest itself, where nothing is ever sent.

mod common;

use common::{App, Setup};
use spin_test_host::manifest::Manifest;
use spin_test_host::{HostOptions, SpinHost};

fn shipped_flotiq_routes() -> String {
    let manifest = Manifest::load(&spin_test_host::project_root().join("spin.toml"))
        .expect("the shipped manifest loads");
    manifest.components["flotiq"].variables["allowed_routes"].clone()
}

/// Every way a browser could ask to read contact-form submissions.
const CONTACT_FORM_READS: &[(&str, &str)] = &[
    ("GET", "/api/v1/content/contact_form"),
    ("GET", "/api/v1/content/contact_form/"),
    ("GET", "/api/v1/content/contact_form?limit=100"),
    ("GET", "/api/v1/content/contact_form/contact_form-1"),
    ("GET", "/api/v1/content/contact_form/contact_form-1/version"),
    ("GET", "/api/v1/content//contact_form"),
    ("GET", "/api/v1/content/contact%5Fform"),
    ("GET", "/api/v1/content/%63ontact_form/x"),
    ("HEAD", "/api/v1/content/contact_form"),
    ("HEAD", "/api/v1/content/contact_form/contact_form-1"),
];

/// A same-origin CORS preflight for `method` on the contact_form list.
async fn preflight(app: &App, own: &str, method: &str) -> common::Reply {
    app.send(
        "OPTIONS",
        "/api/getty/api/v1/content/contact_form",
        &[("Origin", own), ("Access-Control-Request-Method", method)],
        None,
    )
    .await
}

#[tokio::test]
async fn shipped_flotiq_routes_keep_contact_form_submissions_write_only() {
    let app = App::start(
        Setup {
            token_flow: false,
            ..Setup::default()
        }
        .var("allowed_routes", shipped_flotiq_routes()),
    )
    .await;
    for (method, path) in CONTACT_FORM_READS {
        let reply = app
            .send(method, &format!("/api/getty{path}"), &[], None)
            .await;
        assert_eq!(reply.status, 403, "{method} {path}");
        if *method != "HEAD" {
            assert_eq!(reply.error_code(), "route_not_allowed", "{method} {path}");
        }
    }
    assert_eq!(app.upstream.hits(), 0, "no read of contact_form went out");

    // Not advertised either: a 405 there lists only POST, and a preflight refuses GET.
    let reply = app
        .send(
            "DELETE",
            "/api/getty/api/v1/content/contact_form",
            &[],
            None,
        )
        .await;
    reply.assert_error(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("POST"));
    let own = format!("http://{}", app.host.addr());
    preflight(&app, &own, "GET")
        .await
        .assert_error(403, "route_not_allowed");
    let reply = preflight(&app, &own, "POST").await;
    reply.assert_status(204);
    assert_eq!(reply.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(app.upstream.hits(), 0);

    // Other content types stay readable, and the form still takes submissions.
    for path in [
        "/api/v1/content/blogpost",
        "/api/v1/content/blogpost/blogpost-1",
        "/api/v1/content/contact_form_faq",
    ] {
        app.get(&format!("/api/getty{path}"))
            .await
            .assert_status(200);
    }
    let reply = app
        .send(
            "POST",
            "/api/getty/api/v1/content/contact_form",
            &[("Content-Type", "application/json")],
            Some(br#"{"name":"Ada","email":"ada@example.com","message":"hi"}"#),
        )
        .await;
    reply.assert_status(200);
    let sent = app.upstream.requests();
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[3].method, "POST");
    assert_eq!(sent[3].path, "/v3/api/v1/content/contact_form");
    app.assert_no_secrets().await;
}

#[tokio::test]
async fn shipped_manifest_refuses_contact_form_reads_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = spin_test_host::project_root().join("spin.toml");
    let host = SpinHost::start(
        HostOptions::new(&manifest, dir.path())
            .wasm_dir(common::wasm_dir())
            .variable("flotiq_api_key", common::API_KEY),
    )
    .await
    .unwrap();
    for (method, path) in CONTACT_FORM_READS {
        let path = format!("/api/flotiq{path}");
        let reply = common::raw_request(host.addr(), method, &path, &[], None).await;
        assert_eq!(reply.status, 403, "{method} {path}");
    }
    let reply = common::raw_request(
        host.addr(),
        "DELETE",
        "/api/flotiq/api/v1/content/blogpost/1",
        &[],
        None,
    )
    .await;
    reply.assert_error(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    assert!(!host.logs().contains(common::API_KEY));
    host.shutdown().await;
}
