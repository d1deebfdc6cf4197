//! The loaded app: every HTTP-triggered component of a manifest compiled and linked, the router,
//! the shared key-value stores and logs, and the access log. It decides what answers a request:
//! `/.well-known/spin/health`, Spin's empty 404 for an unmatched path, or the routed component:
//! a WASIp2 one in a fresh instance (`invoke.rs`), a WASIp3 one in a reused instance of its pool
//! (`invoke_p3.rs`, `reuse.rs`); a failure before responding is an empty 500.
//!
//! Follows Spin's `crates/trigger-http/src/server.rs`: a `Host` that names a `*.spin.internal`
//! service is dropped; service-chained requests from components arrive through the
//! [`ChainTarget`] implementation, routed as `/...` with client address `0.0.0.0:0`. It does not
//! accept connections (see `listen.rs`).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody as WasiBody;
use wasmtime_wasi_http::p2::hyper_request_error;

use super::instance::{self, InstanceState, Prepared};
use super::reuse::{InstancePool, ReuseLimits};
use super::routes::{RouteMatch, Router};
use super::{invoke, invoke_p3};
use crate::manifest::Manifest;
use crate::options::HostOptions;
use crate::runtime::{self, LogSink};
use crate::runtime_config;
use crate::spin::allowed_hosts::{service_chaining_target, AllowedHosts};
use crate::spin::http_client::OutboundClient;
use crate::spin::kv::{KvAccess, KvStores};
use crate::spin::outbound::{ChainTarget, InstanceHosts, OutboundHooks};
use crate::spin::variables::{ComponentVariables, ResolvedAppVariables};

/// How a component's requests get an instance.
enum Handler {
    /// WASIp2: a fresh instance per request.
    P2(ProxyPre<InstanceState>),
    /// WASIp3: reused instances, as Spin 4 does.
    P3(Arc<InstancePool>),
}

/// A component ready to serve.
struct LoadedComponent {
    handler: Handler,
    /// `allowed_outbound_hosts` as written, for each instance to prepare.
    allowed: Arc<[String]>,
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
pub struct App {
    components: HashMap<String, LoadedComponent>,
    router: Router,
    /// The app variables as resolved at startup, which instances look up again (as Spin's do).
    app_vars: Arc<ResolvedAppVariables>,
    pub(crate) kv: Arc<KvStores>,
    /// Outbound HTTP for every instance, on one connection pool.
    client: OutboundClient,
    pub(crate) logs: LogSink,
    /// Where each instance's stdout and stderr files go (`<state_dir>/logs`), as `.spin/logs`.
    log_dir: Option<PathBuf>,
    pub(crate) served: std::sync::Mutex<Vec<ServedRequest>>,
    /// Guest invocations that have not returned yet; a guest may go on after its response
    /// (a write after the body is out), as on Spin.
    pub(crate) running: Arc<std::sync::atomic::AtomicUsize>,
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

impl App {
    /// Loads the manifest, resolves variables and compiles every HTTP-triggered component.
    pub async fn load(opts: &HostOptions) -> Result<App> {
        let limits = ReuseLimits {
            max_instance_reuse_count: opts.max_instance_reuse_count,
            max_instance_concurrent_reuse_count: opts.max_instance_concurrent_reuse_count,
        };
        if limits.max_instance_reuse_count == 0 || limits.max_instance_concurrent_reuse_count == 0 {
            bail!("the instance reuse counts must be at least 1, got {limits:?}");
        }
        let logs = LogSink::new();
        // `spin up` logs component output under `.spin/logs`; the state dir is `.spin`.
        let log_dir = opts.state_dir.join("logs");
        let log_dir = match std::fs::create_dir_all(&log_dir) {
            Ok(()) => Some(log_dir),
            Err(e) => {
                logs.host_line(&format!("cannot create {}: {e}", log_dir.display()));
                None
            }
        };
        let running = Arc::<std::sync::atomic::AtomicUsize>::default();
        let manifest = Manifest::load(&opts.manifest)?;
        let app_vars = Arc::new(ResolvedAppVariables::resolve(
            &manifest.variables,
            &opts.variables,
        )?);
        let config = match &opts.runtime_config {
            Some(path) => runtime_config::load(path)?,
            None => Default::default(),
        };
        let mut stores = config.key_value_stores;
        stores.extend(opts.key_value_stores.iter().cloned());
        let kv = Arc::new(KvStores::new(&opts.state_dir, stores));
        let client = OutboundClient::new(config.outbound_http);
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
            let handler = match instance::prepare(&component)
                .with_context(|| format!("cannot prepare component {id:?}"))?
            {
                Prepared::P2(pre) => Handler::P2(pre),
                Prepared::P3(pre) => Handler::P3(InstancePool::new(
                    pre,
                    limits,
                    running.clone(),
                    logs.clone(),
                )),
            };
            // Checked now so a bad entry stops startup; every instance parses them again.
            AllowedHosts::parse(&c.allowed_outbound_hosts, &app_vars)
                .with_context(|| format!("component {id:?}: invalid allowed_outbound_hosts"))?;
            let vars = ComponentVariables::resolve(id, &c.variables, app_vars.clone())
                .with_context(|| format!("component {id:?}: cannot resolve variables"))?;
            components.insert(
                id.clone(),
                LoadedComponent {
                    handler,
                    allowed: c.allowed_outbound_hosts.clone().into(),
                    kv_allowed: Arc::new(c.key_value_stores.iter().cloned().collect()),
                    vars: Arc::new(vars),
                },
            );
        }
        Ok(App {
            components,
            router,
            app_vars,
            kv,
            client,
            logs,
            log_dir,
            served: Default::default(),
            running,
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
        let req = req.map(|b| b.map_err(hyper_request_error).boxed_unsync());
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
    async fn handle_chained(
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

    /// Runs the routed component with its grants: in a fresh instance (p2) or one of its pool's
    /// (p3).
    async fn execute(
        self: Arc<Self>,
        route_match: RouteMatch,
        req: Request<WasiBody>,
        client_addr: SocketAddr,
    ) -> Result<Response<WasiBody>> {
        let component = self
            .components
            .get(&route_match.component)
            .with_context(|| format!("unknown component {:?}", route_match.component))?;
        let running = invoke::Running::start(&self.running);
        let new_state = || {
            let outbound = OutboundHooks {
                allowed: InstanceHosts::new(component.allowed.clone(), self.app_vars.clone()),
                chain: self.clone(),
                client: self.client.clone(),
            };
            let kv = KvAccess {
                allowed: component.kv_allowed.clone(),
                stores: self.kv.clone(),
            };
            InstanceState::new(
                outbound,
                kv,
                component.vars.clone(),
                &self.logs,
                self.log_dir.as_deref(),
                &route_match.component,
            )
        };
        match &component.handler {
            Handler::P2(pre) => {
                let state = new_state();
                invoke::invoke(
                    pre,
                    state,
                    &route_match,
                    req,
                    client_addr,
                    &self.logs,
                    running,
                )
                .await
            }
            Handler::P3(pool) => {
                invoke_p3::invoke(
                    pool,
                    new_state,
                    &route_match,
                    req,
                    client_addr,
                    &self.logs,
                    running,
                )
                .await
            }
        }
    }
}

impl ChainTarget for App {
    fn dispatch(
        self: Arc<Self>,
        component: String,
        req: Request<WasiBody>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<WasiBody>>> + Send>> {
        Box::pin(self.handle_chained(component, req))
    }
}
