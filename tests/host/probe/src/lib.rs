//! The probe component: answers JSON describing what it saw, per path-info.
//! `/headers`, `/var/<name>`, `/vars/<name>/<n>`, `/kv/<label>/<op>/<key>[/<value>]`, `/fetch/<absolute-url>`,
//! `/print`, `/status/<code>`. Test-only; it does not validate its input.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;
use spin_sdk::variables;
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{
    Fields, Method, OutgoingBody, OutgoingRequest, OutgoingResponse, Scheme,
};

/// Counts requests seen by this instance: a fresh instance per request always reports 1.
static REQUESTS: AtomicU32 = AtomicU32::new(0);

fn spin_header(req: &IncomingRequest, name: &str) -> String {
    req.headers()
        .get(&name.to_string())
        .last()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

#[http_component]
fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let count = REQUESTS.fetch_add(1, Ordering::SeqCst) + 1;
    let path_info = spin_header(&req, "spin-path-info");
    let pwq = req.path_with_query().unwrap_or_default();
    let mut status = 200;
    let body: Value = if path_info == "/headers" {
        let headers: Vec<(String, String)> = req
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        json!({
            "path_with_query": pwq,
            "authority": req.authority(),
            "scheme": format!("{:?}", req.scheme()),
            "method": format!("{:?}", req.method()),
            "headers": headers,
            "count": count,
        })
    } else if let Some(rest) = path_info.strip_prefix("/vars/") {
        // `/vars/<name>/<n>`: reads one variable n times (the bench's yardstick for the
        // variable reads a config makes per request).
        let (name, times) = rest.split_once('/').unwrap_or((rest, "1"));
        let times: u32 = times.parse().unwrap_or(1);
        let read = (0..times).filter(|_| variables::get(name).is_ok()).count();
        json!({ "read": read })
    } else if let Some(name) = path_info.strip_prefix("/var/") {
        match variables::get(name) {
            Ok(v) => json!({ "ok": v }),
            Err(e) => json!({ "err": format!("{e:?}") }),
        }
    } else if let Some(rest) = path_info.strip_prefix("/kv/") {
        kv(rest)
    } else if let Some(at) = pwq.find("/relay/") {
        return relay(&pwq[at + "/relay/".len()..], out.into_inner());
    } else if path_info == "/count" {
        json!({ "body_len": count_body(&req) })
    } else if let Some(at) = pwq.find("/fetch/") {
        fetch(&pwq[at + "/fetch/".len()..])
    } else if path_info == "/print" {
        println!("probe-stdout-line");
        eprintln!("probe-stderr-line");
        json!({ "ok": true })
    } else if let Some(code) = path_info.strip_prefix("/status/") {
        status = code.parse().unwrap_or(500);
        json!({ "status": status })
    } else {
        json!({ "path_info": path_info, "count": count })
    };
    respond(out.into_inner(), status, body.to_string().as_bytes());
}

fn kv(rest: &str) -> Value {
    let parts: Vec<&str> = rest.splitn(4, '/').collect();
    let (label, op) = (parts[0], parts.get(1).copied().unwrap_or(""));
    let key = parts.get(2).copied().unwrap_or("");
    let store = match Store::open(label) {
        Ok(s) => s,
        Err(e) => return json!({ "err": format!("{e:?}") }),
    };
    let result = match op {
        "set" => store
            .set(key, parts.get(3).unwrap_or(&"").as_bytes())
            .map(|()| json!(null)),
        "get" => store
            .get(key)
            .map(|v| json!(v.map(|v| String::from_utf8_lossy(&v).into_owned()))),
        "delete" => store.delete(key).map(|()| json!(null)),
        "exists" => store.exists(key).map(|b| json!(b)),
        "keys" => store.get_keys().map(|k| json!(k)),
        _ => return json!({ "err": "unknown op" }),
    };
    match result {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "err": format!("{e:?}") }),
    }
}

/// Reads the request body to the end and returns its length.
fn count_body(req: &IncomingRequest) -> u64 {
    let mut total = 0u64;
    if let Ok(body) = req.consume() {
        if let Ok(stream) = body.stream() {
            while let Ok(chunk) = stream.blocking_read(65536) {
                total += chunk.len() as u64;
            }
        }
    }
    total
}

/// Streams the GET answer of `url` to the client, splicing without buffering.
fn relay(url: &str, out: spin_sdk::wit::wasi::http0_2_0::types::ResponseOutparam) {
    let response = match get(url) {
        Ok(r) => r,
        Err(e) => return respond(out, 502, json!({ "err": e }).to_string().as_bytes()),
    };
    let mut headers = vec![];
    if let Some(len) = response
        .headers()
        .get(&"content-length".to_string())
        .first()
    {
        headers.push(("content-length".to_string(), len.clone()));
    }
    let outgoing =
        OutgoingResponse::new(Fields::from_list(&headers).unwrap_or_else(|_| Fields::new()));
    let _ = outgoing.set_status_code(response.status());
    let (Ok(out_body), Ok(in_body)) = (outgoing.body(), response.consume()) else {
        return;
    };
    spin_sdk::wit::wasi::http0_2_0::types::ResponseOutparam::set(out, Ok(outgoing));
    let (Ok(in_stream), Ok(out_stream)) = (in_body.stream(), out_body.write()) else {
        return;
    };
    while out_stream.blocking_splice(&in_stream, 65536).is_ok() {}
    drop(out_stream);
    let _ = OutgoingBody::finish(out_body, None);
}

fn get(url: &str) -> Result<spin_sdk::wit::wasi::http0_2_0::types::IncomingResponse, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("bad url".into());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_method(&Method::Get);
    let _ = request.set_scheme(Some(&if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    }));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    let pending = outgoing_handler::handle(request, None).map_err(|c| format!("{c:?}"))?;
    loop {
        match pending.get() {
            Some(Ok(Ok(r))) => return Ok(r),
            Some(Ok(Err(code))) => return Err(format!("{code:?}")),
            Some(Err(())) => return Err("taken".into()),
            None => pending.subscribe().block(),
        }
    }
}

fn fetch(url: &str) -> Value {
    let Some((scheme, rest)) = url.split_once("://") else {
        return json!({ "err": "bad url" });
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_method(&Method::Get);
    let _ = request.set_scheme(Some(&if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    }));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    let pending = match outgoing_handler::handle(request, None) {
        Ok(p) => p,
        Err(code) => return json!({ "err": format!("{code:?}"), "at": "handle" }),
    };
    let response = loop {
        match pending.get() {
            Some(Ok(Ok(r))) => break r,
            Some(Ok(Err(code))) => return json!({ "err": format!("{code:?}"), "at": "future" }),
            Some(Err(())) => return json!({ "err": "taken" }),
            None => pending.subscribe().block(),
        }
    };
    let status = response.status();
    let headers: Vec<(String, String)> = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let mut bytes = Vec::new();
    if let Ok(body) = response.consume() {
        if let Ok(stream) = body.stream() {
            while let Ok(chunk) = stream.blocking_read(65536) {
                bytes.extend_from_slice(&chunk);
            }
        }
    }
    json!({ "status": status, "headers": headers, "body": String::from_utf8_lossy(&bytes) })
}

fn respond(out: spin_sdk::wit::wasi::http0_2_0::types::ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::from_list(&[
        ("content-type".to_string(), b"application/json".to_vec()),
        (
            "content-length".to_string(),
            body.len().to_string().into_bytes(),
        ),
    ])
    .unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(out_body) = response.body() else {
        return;
    };
    spin_sdk::wit::wasi::http0_2_0::types::ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = out_body.write() {
        for chunk in body.chunks(4096) {
            let _ = stream.blocking_write_and_flush(chunk);
        }
    }
    let _ = OutgoingBody::finish(out_body, None);
}
