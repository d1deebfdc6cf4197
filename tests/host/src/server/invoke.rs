//! Running one request in one fresh instance, as Spin's HTTP trigger does
//! (`crates/trigger-http/src/{wasi,headers}.rs`): the guest sees the URI
//! `http://<Host header><path?query>` and the `spin-*` headers appended after the client's own
//! (so a client-sent `spin-client-addr` comes first and the real one last); the guest's handler
//! runs on its own tokio task; the response is returned as soon as the guest sets it, its body
//! streaming while the guest still writes; the guest runs to its end even after its answer is
//! out or the client went away (Spin never aborts it), counted in the app's `running`.
//!
//! It does not choose the component or log the request (see `app.rs`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use http::{HeaderValue, Request, Response, Uri};
use tokio::sync::oneshot;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody as WasiBody;
use wasmtime_wasi_http::p2::WasiHttpView;

use super::instance::InstanceState;
use super::routes::RouteMatch;
use crate::runtime::{engine, LogSink};

/// Counts one guest invocation in its app's `running` until the guest returns (or is dropped).
pub struct Running(Arc<AtomicUsize>);

impl Running {
    pub fn start(count: &Arc<AtomicUsize>) -> Running {
        count.fetch_add(1, Ordering::SeqCst);
        Running(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Instantiates `pre` with `state`, hands it `req` and returns the guest's response.
pub async fn invoke(
    pre: &ProxyPre<InstanceState>,
    state: InstanceState,
    route_match: &RouteMatch,
    mut req: Request<WasiBody>,
    client_addr: SocketAddr,
    logs: &LogSink,
    running: Running,
) -> Result<Response<WasiBody>> {
    prepare_request(route_match, &mut req, client_addr)?;
    let mut store = Store::new(engine(), state);
    let proxy = pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| anyhow!("{e:?}"))
        .context("instantiation failed")?;
    let (tx, rx) = oneshot::channel();
    let (request, response) = {
        let mut http = store.data_mut().http();
        let request = http
            .new_incoming_request(Scheme::Http, req)
            .map_err(|e| anyhow!("{e:?}"))?;
        let response = http
            .new_response_outparam(tx)
            .map_err(|e| anyhow!("{e:?}"))?;
        (request, response)
    };
    let handle = tokio::spawn(async move {
        let _running = running;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, request, response)
            .await
            .map_err(|e| anyhow!("{e:?}"))
    });
    match rx.await {
        Ok(result) => {
            let logs = logs.clone();
            tokio::spawn(async move {
                match handle.await {
                    Err(e) => logs.host_line(&format!("guest invocation panicked: {e}")),
                    Ok(Err(e)) => {
                        logs.host_line(&format!("component error after response started: {e:#}"))
                    }
                    Ok(Ok(())) => {}
                }
            });
            let response =
                result.map_err(|code| anyhow!("guest failed to produce a response: {code:?}"))?;
            Ok(response)
        }
        Err(_) => {
            handle
                .await
                .context("guest invocation panicked")?
                .context("guest invocation failed")?;
            bail!("guest failed to produce a response prior to returning")
        }
    }
}

/// Sets the guest-visible URI (`http://<authority><path?query>`) and appends the `spin-*`
/// headers after the client's own.
pub(super) fn prepare_request(
    route_match: &RouteMatch,
    req: &mut Request<WasiBody>,
    client_addr: SocketAddr,
) -> Result<()> {
    let host_header = req
        .headers()
        .get(http::header::HOST)
        .map(|h| h.to_str().map(str::to_string))
        .transpose()
        .context("'Host' header is not valid UTF-8")?;
    let uri_authority = req.uri().authority().map(|a| a.to_string());
    let authority = match (&host_header, &uri_authority) {
        (None, None) => bail!("no 'Host' header present in request"),
        (Some(h), Some(u)) if h != u => {
            bail!("authority in 'Host' header does not match authority in URI")
        }
        (Some(a), _) | (None, Some(a)) => a.clone(),
    };
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let host_for_url = host_header.as_deref().unwrap_or("localhost");
    for (name, value) in route_match.spin_headers(host_for_url, &path_and_query, client_addr) {
        req.headers_mut()
            .append(name, HeaderValue::from_str(&value)?);
    }
    *req.uri_mut() = Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(path_and_query)
        .build()
        .context("cannot build request URI")?;
    Ok(())
}
