//! The running app: loads every HTTP-triggered component of a manifest, serves HTTP/1.1 on
//! 127.0.0.1 with hyper, routes each request, and runs it in a FRESH store and instance of that
//! component (the `InstancePre` is reused), streaming bodies both ways.
//!
//! Request handling follows Spin's `crates/trigger-http/src/{server,wasi,headers}.rs`: the URI
//! given to the guest is `http://<Host header><path?query>`; the `spin-*` headers are appended
//! after the client's headers (so a client-sent `spin-client-addr` comes first and the real one
//! last); a guest that fails before responding gives an empty 500; an unmatched path an empty
//! 404; a `Host` that names a `*.spin.internal` service is dropped; dropping the response body
//! aborts the guest task. Service-chained requests enter through `handle_chained`, with
//! client address `0.0.0.0:0` as in Spin.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{Error as HttpError, WasiBody, WasiHttpView};

use crate::kv::{KvAccess, KvManager};
use crate::manifest::Manifest;
use crate::outbound::{service_chaining_target, AllowedHosts, OutboundHooks};
use crate::routes::{RouteMatch, Router};
use crate::runtime::{self, Ctx, LogSink};
use crate::variables::{ComponentVariables, ResolvedAppVariables};
use crate::HostOptions;

/// A component ready to serve.
struct LoadedComponent {
    pre: ProxyPre<Ctx>,
    allowed: Arc<AllowedHosts>,
    kv_allowed: Arc<HashSet<String>>,
    vars: Arc<ComponentVariables>,
}

/// One request that arrived from the network, as an access log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedRequest {
    pub method: String,
    /// The path as received (percent-encoding kept), without the query.
    pub path: String,
    pub query: Option<String>,
    /// The component that served it; `None` for 404s and `/.well-known/spin/*`.
    pub component: Option<String>,
    /// The response status sent (the body may still have failed afterwards).
    pub status: u16,
}

/// Everything requests share.
pub struct AppState {
    components: HashMap<String, LoadedComponent>,
    router: Router,
    pub(crate) kv: Arc<KvManager>,
    pub(crate) logs: LogSink,
    pub(crate) served: std::sync::Mutex<Vec<ServedRequest>>,
}

/// Spin's `CHAINED_CLIENT_ADDR`.
const CHAINED_CLIENT_ADDR: ([u8; 4], u16) = ([0, 0, 0, 0], 0);

fn empty(status: StatusCode) -> Response<WasiBody> {
    let mut r = Response::new(
        Empty::new()
            .map_err(|e: Infallible| match e {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r
}

impl AppState {
    /// Loads the manifest, resolves variables and compiles every HTTP-triggered component.
    pub async fn load(opts: &HostOptions) -> Result<AppState> {
        let manifest = Manifest::load(&opts.manifest)?;
        let app_vars = ResolvedAppVariables::resolve(&manifest.variables, &opts.variables)?;
        let kv = Arc::new(KvManager::new(&opts.state_dir)?);
        let router = Router::build(&manifest.http_triggers);
        let mut components = HashMap::new();
        for trigger in &manifest.http_triggers {
            let id = &trigger.component;
            if components.contains_key(id) {
                continue;
            }
            let c = manifest
                .components
                .get(id)
                .with_context(|| format!("undefined component {id:?}"))?;
            let path = manifest.source_path(c, opts.wasm_dir.as_deref())?;
            let component = tokio::task::spawn_blocking(move || runtime::load_component(&path))
                .await
                .context("component compilation panicked")??;
            let pre = runtime::prepare(&component)
                .with_context(|| format!("cannot prepare component {id:?}"))?;
            let allowed = AllowedHosts::parse(&c.allowed_outbound_hosts, &app_vars)
                .with_context(|| format!("component {id:?}: invalid allowed_outbound_hosts"))?;
            let vars = ComponentVariables::resolve(id, &c.variables, &app_vars)
                .with_context(|| format!("component {id:?}: cannot resolve variables"))?;
            components.insert(
                id.clone(),
                LoadedComponent {
                    pre,
                    allowed: Arc::new(allowed),
                    kv_allowed: Arc::new(c.key_value_stores.iter().cloned().collect()),
                    vars: Arc::new(vars),
                },
            );
        }
        Ok(AppState {
            components,
            router,
            kv,
            logs: LogSink::new(),
            served: Default::default(),
        })
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// A request from the network; recorded in the access log once answered.
    pub async fn handle_external(
        self: Arc<Self>,
        req: Request<Incoming>,
        client_addr: SocketAddr,
    ) -> Response<WasiBody> {
        let req = req.map(|b| b.map_err(HttpError::from).boxed_unsync());
        self.handle_logged(req, client_addr).await
    }

    /// A request handed over in-process (no socket), routed exactly like one from the network
    /// and recorded in the access log; the client address is the loopback.
    pub async fn handle_in_process(self: Arc<Self>, req: Request<WasiBody>) -> Response<WasiBody> {
        self.handle_logged(req, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
    }

    async fn handle_logged(
        self: Arc<Self>,
        req: Request<WasiBody>,
        client_addr: SocketAddr,
    ) -> Response<WasiBody> {
        let mut entry = ServedRequest {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            query: req.uri().query().map(str::to_string),
            component: None,
            status: 0,
        };
        let response = self
            .clone()
            .route_external(req, client_addr, &mut entry)
            .await;
        entry.status = response.status().as_u16();
        self.served
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry);
        response
    }

    async fn route_external(
        self: Arc<Self>,
        mut req: Request<WasiBody>,
        client_addr: SocketAddr,
        entry: &mut ServedRequest,
    ) -> Response<WasiBody> {
        let is_chaining_host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<Uri>().ok())
            .is_some_and(|u| service_chaining_target(&u).is_some());
        if is_chaining_host {
            req.headers_mut().remove(http::header::HOST);
        }
        let path = req.uri().path().to_string();
        if let Some(well_known) = path.strip_prefix("/.well-known/spin/") {
            return match well_known {
                "health" => Response::new(
                    Full::new(Bytes::from_static(b"OK"))
                        .map_err(|e: Infallible| match e {})
                        .boxed_unsync(),
                ),
                _ => empty(StatusCode::NOT_FOUND),
            };
        }
        let Some(route_match) = self.router.route(&path) else {
            return empty(StatusCode::NOT_FOUND);
        };
        entry.component = Some(route_match.component.clone());
        self.respond(route_match, req, client_addr).await
    }

    /// A service-chaining request from a component (`http://<target>.spin.internal/...`).
    pub async fn handle_chained(
        self: Arc<Self>,
        target: String,
        req: Request<WasiBody>,
    ) -> Result<Response<WasiBody>> {
        if !self.components.contains_key(&target) {
            bail!("unknown routing destination '{target}'");
        }
        let route_match = RouteMatch::synthetic(&target, req.uri().path());
        Ok(self
            .respond(route_match, req, SocketAddr::from(CHAINED_CLIENT_ADDR))
            .await)
    }

    async fn respond(
        self: Arc<Self>,
        route_match: RouteMatch,
        req: Request<WasiBody>,
        client_addr: SocketAddr,
    ) -> Response<WasiBody> {
        let component = route_match.component.clone();
        match self.clone().execute(route_match, req, client_addr).await {
            Ok(r) => r,
            Err(e) => {
                self.logs
                    .host_line(&format!("component {component:?}: {e:#}"));
                empty(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    async fn execute(
        self: Arc<Self>,
        route_match: RouteMatch,
        mut req: Request<WasiBody>,
        client_addr: SocketAddr,
    ) -> Result<Response<WasiBody>> {
        let component = self
            .components
            .get(&route_match.component)
            .with_context(|| format!("unknown component {:?}", route_match.component))?;
        prepare_request(&route_match, &mut req, client_addr)?;

        let hooks = OutboundHooks {
            allowed: component.allowed.clone(),
            app: self.clone(),
        };
        let kv = KvAccess {
            allowed: component.kv_allowed.clone(),
            manager: self.kv.clone(),
        };
        let ctx = Ctx::new(hooks, kv, component.vars.clone(), &self.logs);
        let mut store = Store::new(runtime::engine(), ctx);
        let proxy = component
            .pre
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
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, request, response)
                .await
                .map_err(|e| anyhow!("{e:?}"))
        });
        let abort = handle.abort_handle();
        match rx.await {
            Ok(result) => {
                let logs = self.logs.clone();
                tokio::spawn(async move {
                    match handle.await {
                        Err(e) if e.is_cancelled() => {}
                        Err(e) => logs.host_line(&format!("guest invocation panicked: {e}")),
                        Ok(Err(e)) => logs
                            .host_line(&format!("component error after response started: {e:#}")),
                        Ok(Ok(())) => {}
                    }
                });
                let response = result
                    .map_err(|code| anyhow!("guest failed to produce a response: {code:?}"))?;
                Ok(response.map(|body| AbortOnDropBody { body, abort }.boxed_unsync()))
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
}

/// Sets the guest-visible URI (`http://<authority><path?query>`) and appends the `spin-*`
/// headers after the client's own.
fn prepare_request(
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

/// Aborts the guest task when hyper drops the body (client went away), as Spin does.
struct AbortOnDropBody {
    body: WasiBody,
    abort: AbortHandle,
}

impl Drop for AbortOnDropBody {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

impl Body for AbortOnDropBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Accepts connections until `stop` fires (or its sender is dropped); then drops every open
/// connection too, so a stopped host answers nothing, even on a kept-alive connection.
pub async fn serve(app: Arc<AppState>, listener: TcpListener, mut stop: oneshot::Receiver<()>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            Some(_) = connections.join_next() => continue,
            a = listener.accept() => a,
        };
        let (stream, client_addr) = match accepted {
            Ok(a) => a,
            Err(_) => {
                // e.g. out of file descriptors: back off instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = app.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.handle_external(req, client_addr).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
