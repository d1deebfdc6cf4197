//! The WASIp3 probe: answers JSON describing what it saw, per path-info. `/count`, `/headers`,
//! `/var/<name>`, `/kv/<label>/<op>/<key>[/<value>]`, `/kv-race/<label>/<key>/<ms>` (a `get`
//! the probe gives up on after `ms`), `/fetch/<absolute-url>`, `/print`, `/sleep/<ms>`,
//! `/after/<ms>` (answers, then works `ms` more), `/stream/<chunks>` (64 KiB every 5 ms, then
//! says whether the client took them all), `/fail` (fails before answering), `/status/<code>`.
//! Test-only; it does not validate its input.

use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::future::{select, Either};
use futures::SinkExt;
use serde_json::{json, Value};
use spin_sdk::http::{IntoResponse, Request, StatusCode};
use spin_sdk::http_service;
use spin_sdk::key_value::Store;
use spin_sdk::variables;

/// Requests this instance has seen (all but `/stream`): grows while the host reuses it.
static REQUESTS: AtomicU32 = AtomicU32::new(0);
/// Requests this instance is serving right now, and the most it ever served at once.
static IN_FLIGHT: AtomicU32 = AtomicU32::new(0);
static MOST_IN_FLIGHT: AtomicU32 = AtomicU32::new(0);

async fn sleep_ms(ms: u64) {
    spin_sdk::time::sleep(Duration::from_millis(ms)).await;
}

fn header(req: &Request, name: &str) -> String {
    req.headers()
        .get_all(name)
        .iter()
        .last()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

#[http_service]
async fn handle(req: Request) -> spin_sdk::http::Result<spin_sdk::wasip3::http::types::Response> {
    let response = match header(&req, "spin-path-info").strip_prefix("/stream/") {
        Some(chunks) => stream(chunks.parse().unwrap_or(1)).into_response(),
        None => answer(req).await.into_response(),
    };
    Ok(response?)
}

/// A body of `chunks` chunks written after the answer is out, as long as the client reads.
fn stream(chunks: u32) -> impl IntoResponse {
    let (mut tx, body) = spin_sdk::http::body::stream::<Vec<u8>>();
    spin_sdk::wasip3::wit_bindgen::spawn(async move {
        for _ in 0..chunks {
            sleep_ms(5).await;
            if tx.send(vec![b'x'; 65536]).await.is_err() {
                println!("probe-p3-stream-stopped");
                return;
            }
        }
        println!("probe-p3-stream-done");
    });
    (StatusCode::OK, body)
}

async fn answer(req: Request) -> (StatusCode, String) {
    let count = REQUESTS.fetch_add(1, Ordering::SeqCst) + 1;
    let path_info = header(&req, "spin-path-info");
    let uri = req.uri().to_string();
    let mut status = 200;
    let body: Value = if path_info == "/headers" {
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        json!({ "uri": uri, "method": req.method().as_str(), "headers": headers, "count": count })
    } else if let Some(name) = path_info.strip_prefix("/var/") {
        match variables::get(name).await {
            Ok(v) => json!({ "ok": v }),
            Err(e) => json!({ "err": format!("{e:?}") }),
        }
    } else if let Some(rest) = path_info.strip_prefix("/kv-race/") {
        kv_race(rest).await
    } else if let Some(rest) = path_info.strip_prefix("/kv/") {
        kv(rest).await
    } else if let Some(at) = uri.find("/fetch/") {
        fetch(&uri[at + "/fetch/".len()..]).await
    } else if path_info == "/print" {
        println!("probe-p3-stdout-line");
        eprintln!("probe-p3-stderr-line");
        json!({ "ok": true })
    } else if let Some(ms) = path_info.strip_prefix("/sleep/") {
        let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
        MOST_IN_FLIGHT.fetch_max(now, Ordering::SeqCst);
        sleep_ms(ms.parse().unwrap_or(0)).await;
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        json!({ "count": count, "most_in_flight": MOST_IN_FLIGHT.load(Ordering::SeqCst) })
    } else if let Some(ms) = path_info.strip_prefix("/after/") {
        let ms: u64 = ms.parse().unwrap_or(0);
        spin_sdk::wasip3::wit_bindgen::spawn(async move {
            sleep_ms(ms).await;
            println!("probe-p3-after-done");
        });
        json!({ "count": count })
    } else if path_info == "/fail" {
        panic!("probe-p3 fails before answering");
    } else if let Some(code) = path_info.strip_prefix("/status/") {
        status = code.parse().unwrap_or(500);
        json!({ "status": status })
    } else {
        json!({ "path_info": path_info, "count": count })
    };
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body.to_string(),
    )
}

async fn kv(rest: &str) -> Value {
    let parts: Vec<&str> = rest.splitn(4, '/').collect();
    let (label, op) = (parts[0], parts.get(1).copied().unwrap_or(""));
    let key = parts.get(2).copied().unwrap_or("");
    let store = match Store::open(label).await {
        Ok(s) => s,
        Err(e) => return json!({ "err": format!("{e:?}") }),
    };
    let result = match op {
        "set" => store
            .set(key, parts.get(3).unwrap_or(&"").as_bytes())
            .await
            .map(|()| json!(null)),
        "get" => store
            .get(key)
            .await
            .map(|v| json!(v.map(|v| String::from_utf8_lossy(&v).into_owned()))),
        "delete" => store.delete(key).await.map(|()| json!(null)),
        "exists" => store.exists(key).await.map(|b| json!(b)),
        "keys" => store.get_keys().await.collect().await.map(|k| json!(k)),
        _ => return json!({ "err": "unknown op" }),
    };
    match result {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "err": format!("{e:?}") }),
    }
}

/// Opens `label` and reads `key`, giving up after `ms` (dropping the calls in progress), as the
/// proxy bounds its key-value calls.
async fn kv_race(rest: &str) -> Value {
    let parts: Vec<&str> = rest.splitn(3, '/').collect();
    let (label, key) = (
        parts[0].to_string(),
        parts.get(1).copied().unwrap_or("").to_string(),
    );
    let ms: u64 = parts.get(2).and_then(|m| m.parse().ok()).unwrap_or(100);
    let read = pin!(async move {
        let store = Store::open(&label).await?;
        store.get(&key).await
    });
    match select(read, pin!(sleep_ms(ms))).await {
        Either::Left((Ok(v), _)) => {
            json!({ "ok": v.map(|v| String::from_utf8_lossy(&v).into_owned()) })
        }
        Either::Left((Err(e), _)) => json!({ "err": format!("{e:?}") }),
        Either::Right(((), _)) => json!({ "gave_up": true }),
    }
}

async fn fetch(url: &str) -> Value {
    match spin_sdk::http::get(url).await {
        Ok(response) => json!({ "status": response.status().as_u16() }),
        Err(code) => json!({ "err": format!("{code:?}") }),
    }
}
