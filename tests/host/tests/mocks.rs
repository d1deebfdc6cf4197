//! The mock token endpoint and upstream, exercised over real HTTP: credentials in the form and
//! in HTTP Basic, expiry and revocation as the upstream sees them, failure modes, echo and
//! recording, and the streamed large body.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use spin_test_host::mock::{
    large_body_byte, ExpiresIn, TokenFailure, TokenServer, TokenStatus, Upstream,
};

async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, http::HeaderMap, Bytes) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

async fn token(server: &TokenServer, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![FORM];
    all.extend_from_slice(headers);
    let (status, _, body) = send("POST", &server.token_url(), &all, body).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn token_server_issues_distinct_tokens_and_checks_clients() {
    let t = TokenServer::start().await;
    t.set_client("id", "s3cret");
    let form = "grant_type=client_credentials&client_id=id&client_secret=s3cret&scope=read";
    let (status, a) = token(&t, form, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(a["token_type"], "Bearer");
    assert_eq!(a["expires_in"], 1800);
    let (_, b) = token(&t, form, &[]).await;
    assert_ne!(a["access_token"], b["access_token"]);
    assert!(a["access_token"].as_str().unwrap().starts_with("tok-1-"));

    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("id:s3cret")
    );
    let (status, _) = token(
        &t,
        "grant_type=client_credentials",
        &[("authorization", &basic)],
    )
    .await;
    assert_eq!(status, 200);
    let (status, err) = token(
        &t,
        "grant_type=client_credentials&client_id=id&client_secret=no",
        &[],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (401, Some("invalid_client"))
    );

    assert_eq!(t.calls(), 4);
    assert_eq!(t.issued().len(), 3);
    let reqs = t.requests();
    assert_eq!(reqs[0].scope.as_deref(), Some("read"));
    assert_eq!(reqs[0].form_field("client_secret"), Some("s3cret"));
    assert!(!reqs[0].basic_auth);
    assert!(reqs[2].basic_auth);
    assert_eq!(reqs[2].client_id.as_deref(), Some("id"));
}

#[tokio::test]
async fn token_expiry_formats_and_failures() {
    let t = TokenServer::start().await;
    let form = "grant_type=client_credentials&client_id=a&client_secret=b";
    t.set_expires_in(ExpiresIn::String(60));
    assert_eq!(token(&t, form, &[]).await.1["expires_in"], "60");
    t.set_expires_in(ExpiresIn::Absent);
    t.set_default_ttl(Duration::from_millis(50));
    let (_, v) = token(&t, form, &[]).await;
    assert!(v.get("expires_in").is_none());
    let short = v["access_token"].as_str().unwrap().to_string();
    assert_eq!(t.status(&short), TokenStatus::Valid);
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(t.status(&short), TokenStatus::Expired);
    assert_eq!(t.status("nope"), TokenStatus::Unknown);

    t.set_failure(TokenFailure::Status500);
    assert_eq!(token(&t, form, &[]).await.0, 500);
    t.set_failure(TokenFailure::MalformedJson);
    assert_eq!(token(&t, form, &[]).await, (200, Value::Null));
    t.set_failure(TokenFailure::Empty200);
    let (status, _, body) = send("POST", &t.token_url(), &[FORM], form).await;
    assert_eq!((status, body.len()), (200, 0));
    t.set_failure(TokenFailure::Hang);
    let hung = tokio::time::timeout(
        Duration::from_millis(200),
        send("POST", &t.token_url(), &[FORM], form),
    )
    .await;
    assert!(hung.is_err());
    assert_eq!(t.calls(), 6);
}

#[tokio::test]
async fn upstream_checks_credentials_and_records_requests() {
    let t = TokenServer::start().await;
    let up = Upstream::start().await;
    up.require_key("api-key", "k");
    up.require_bearer_from(&t);
    let (_, v) = token(&t, "grant_type=client_credentials", &[]).await;
    let tok = v["access_token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {tok}");

    let url = format!("{}/v3/search?phrase=cat", up.url());
    let (status, headers, body) = send(
        "GET",
        &url,
        &[
            ("api-key", "k"),
            ("authorization", &bearer),
            ("x-rep", "1"),
            ("x-rep", "2"),
        ],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-upstream"], "mock");
    assert_eq!(headers["set-cookie"], "upstream=1");
    let echo: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["path"], "/v3/search");
    assert_eq!(echo["query"], "phrase=cat");

    assert_eq!(
        send("GET", &url, &[("authorization", &bearer)], "").await.0,
        401
    );
    t.revoke(&tok);
    assert_eq!(
        send(
            "GET",
            &url,
            &[("api-key", "k"), ("authorization", &bearer)],
            ""
        )
        .await
        .0,
        401
    );

    let reqs = up.requests();
    assert_eq!(up.hits(), 3);
    assert_eq!(reqs[0].header_all("x-rep"), vec!["1", "2"]);
    assert_eq!(reqs[0].bearer.as_deref(), Some(tok.as_str()));
    assert_eq!(reqs[0].token_status, Some(TokenStatus::Valid));
    assert!(reqs[2].used_stale_token());

    let q = Upstream::start().await;
    q.require_key_query("api_key", "k");
    assert_eq!(
        send("GET", &format!("{}/x?api_key=k", q.url()), &[], "")
            .await
            .0,
        200
    );
    assert_eq!(
        send("GET", &format!("{}/x?api_key=j", q.url()), &[], "")
            .await
            .0,
        401
    );
    q.set_always_401(true);
    assert_eq!(
        send("GET", &format!("{}/x?api_key=k", q.url()), &[], "")
            .await
            .0,
        401
    );
    let (_, _, body) = send("POST", &format!("{}/y", up.url()), &[], "12345").await;
    assert!(body.is_empty() || up.requests()[3].body_len == 5);
    assert_eq!(up.requests()[3].body, b"12345");
}

#[tokio::test]
async fn upstream_streams_large_bodies_and_can_be_slow() {
    let up = Upstream::start().await;
    let n = 3 * 65536 + 17;
    let (status, headers, body) = send(
        "GET",
        &format!("{}/v3/__large?bytes={n}", up.url()),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-length"], n.to_string().as_str());
    assert_eq!(body.len(), n);
    assert!(body
        .iter()
        .enumerate()
        .all(|(i, b)| *b == large_body_byte(i as u64)));

    up.set_delay(Duration::from_millis(300));
    let start = std::time::Instant::now();
    send("GET", &format!("{}/slow", up.url()), &[], "").await;
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn mock_servers_stop_on_shutdown_and_clones_share_them() {
    let t = TokenServer::start().await;
    let clone = t.clone();
    let form = "grant_type=client_credentials&client_id=a&client_secret=b";
    assert_eq!(token(&clone, form, &[]).await.0, 200);
    assert_eq!(t.calls(), 1, "clones share one server and its state");
    drop(clone);
    assert_eq!(
        token(&t, form, &[]).await.0,
        200,
        "dropping a clone stops nothing"
    );

    let up = Upstream::start().await;
    up.shutdown();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let gone = tokio::time::timeout(
        Duration::from_secs(5),
        client.get(format!("{}/x", up.url()).parse().unwrap()),
    )
    .await
    .expect("a stopped server answers or refuses at once");
    assert!(gone.is_err(), "a stopped server serves nothing");
}

#[tokio::test]
async fn token_server_can_be_slow_and_counts_calls_on_arrival() {
    let t = TokenServer::start().await;
    t.set_delay(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let pending = tokio::spawn({
        let t = t.clone();
        async move { token(&t, "grant_type=client_credentials", &[]).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(t.calls(), 1, "counted on arrival");
    assert!(t.issued().is_empty(), "issued when the answer is sent");
    let (status, v) = pending.await.unwrap();
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(t.issued(), vec![v["access_token"].as_str().unwrap()]);
}
