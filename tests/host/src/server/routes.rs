//! HTTP routing and the `spin-*` request headers, as Spin's HTTP trigger does them.
//!
//! Follows `crates/http/src/routes.rs` (exact routes beat wildcards, the longest `/...` prefix
//! wins, a later duplicate route replaces an earlier one, `{ private = true }` routes are not
//! routable from outside, path-info is the part after the wildcard prefix, percent-encoding kept)
//! and `crates/trigger-http/src/headers.rs` (header names and values). Service chaining uses a
//! synthetic `/...` match, like `RouteMatch::synthetic`. Named wildcards (`/:id/`) are not
//! supported: routes are matched literally.

use std::net::SocketAddr;

use crate::manifest::{HttpTrigger, RouteConfig};

/// One routable entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub component: String,
    /// The route as written in the manifest (`raw_route` in Spin).
    pub raw: String,
    /// The route with base `/` applied: leading `/` ensured, one trailing `/` stripped.
    pub based: String,
    /// `Some(prefix)` for a trailing-wildcard route (`/foo/...` -> `/foo`).
    pub wildcard_prefix: Option<String>,
}

/// The router: all public routes of the app.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

/// The outcome of routing one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub component: String,
    pub based_route: String,
    pub raw_route: String,
    /// The part of the path after the wildcard prefix (`spin-path-info`).
    pub path_info: String,
}

impl Route {
    fn new(component: &str, raw: &str) -> Route {
        let absolute = if raw.starts_with('/') {
            raw.to_string()
        } else {
            format!("/{raw}")
        };
        let based = absolute
            .strip_suffix('/')
            .map(str::to_string)
            .unwrap_or(absolute);
        let wildcard_prefix = based
            .strip_suffix("/...")
            .or_else(|| based.strip_suffix("/*"))
            .map(str::to_string);
        Route {
            component: component.to_string(),
            raw: raw.to_string(),
            based,
            wildcard_prefix,
        }
    }
}

impl Router {
    /// Builds the router from the manifest's HTTP triggers, skipping private ones.
    pub fn build(triggers: &[HttpTrigger]) -> Router {
        let mut routes: Vec<Route> = Vec::new();
        for t in triggers {
            let RouteConfig::Route(raw) = &t.route else {
                continue;
            };
            let route = Route::new(&t.component, raw);
            // Spin keeps routes in an IndexMap keyed by the raw route: a duplicate replaces the
            // earlier entry's component but keeps its position.
            match routes.iter_mut().find(|r| r.raw == route.raw) {
                Some(existing) => *existing = route,
                None => routes.push(route),
            }
        }
        Router { routes }
    }

    /// The routes in manifest order (for the startup listing).
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Routes a raw (still percent-encoded) request path.
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        if let Some(r) = self
            .routes
            .iter()
            .find(|r| r.wildcard_prefix.is_none() && r.based == trimmed)
        {
            return Some(RouteMatch::from_route(r, String::new()));
        }
        self.routes
            .iter()
            .filter_map(|r| {
                let prefix = r.wildcard_prefix.as_deref()?;
                let rest = path.strip_prefix(prefix)?;
                (rest.is_empty() || rest.starts_with('/')).then_some((prefix.len(), r, rest))
            })
            .max_by_key(|(len, _, _)| *len)
            .map(|(_, r, rest)| RouteMatch::from_route(r, rest.to_string()))
    }
}

impl RouteMatch {
    fn from_route(r: &Route, path_info: String) -> RouteMatch {
        RouteMatch {
            component: r.component.clone(),
            based_route: r.based.clone(),
            raw_route: r.raw.clone(),
            path_info,
        }
    }

    /// A service-chaining match: Spin routes `http://<id>.spin.internal/<path>` as if it had
    /// matched `/...` (`RouteMatch::synthetic`), so path-info is the whole path.
    pub fn synthetic(component: &str, path: &str) -> RouteMatch {
        RouteMatch {
            component: component.to_string(),
            based_route: "/...".to_string(),
            raw_route: "/...".to_string(),
            path_info: path.to_string(),
        }
    }

    /// `raw_route_or_prefix`: the raw route without a trailing `/...`.
    pub fn component_route(&self) -> String {
        self.raw_route
            .strip_suffix("/...")
            .unwrap_or(&self.raw_route)
            .to_string()
    }

    /// The `spin-*` headers Spin sets, in Spin's order (`compute_default_headers`).
    /// `host` is the request's Host header (Spin falls back to `localhost`), `path_and_query`
    /// the request target as received.
    pub fn spin_headers(
        &self,
        host: &str,
        path_and_query: &str,
        client_addr: SocketAddr,
    ) -> Vec<(&'static str, String)> {
        vec![
            ("spin-path-info", self.path_info.clone()),
            ("spin-full-url", format!("http://{host}{path_and_query}")),
            ("spin-matched-route", self.based_route.clone()),
            ("spin-base-path", "/".to_string()),
            ("spin-raw-component-route", self.raw_route.clone()),
            ("spin-component-route", self.component_route()),
            ("spin-client-addr", client_addr.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        let triggers: Vec<HttpTrigger> = routes
            .iter()
            .map(|(c, r)| HttpTrigger {
                component: c.to_string(),
                route: if *r == "private" {
                    RouteConfig::Private { private: true }
                } else {
                    RouteConfig::Route(r.to_string())
                },
            })
            .collect();
        Router::build(&triggers)
    }

    #[test]
    fn exact_beats_wildcard_and_longest_prefix_wins() {
        let r = router(&[
            ("all", "/..."),
            ("one", "/one/..."),
            ("onetwo", "/one/two/..."),
            ("exact", "/one/two"),
        ]);
        assert_eq!(r.route("/one/two/three").unwrap().component, "onetwo");
        assert_eq!(r.route("/one/two").unwrap().component, "exact");
        assert_eq!(r.route("/one/x").unwrap().component, "one");
        assert_eq!(r.route("/onex").unwrap().component, "all");
        assert_eq!(r.route("/").unwrap().component, "all");
    }

    #[test]
    fn unmatched_and_private_routes_are_not_found() {
        let r = router(&[("api", "/api/..."), ("hidden", "private")]);
        assert!(r.route("/other").is_none());
        assert!(r.route("/apix").is_none());
        assert_eq!(r.routes().len(), 1);
    }

    #[test]
    fn path_info_keeps_encoding_and_trailing_slash() {
        let r = router(&[("getty", "/api/getty/...")]);
        let m = r.route("/api/getty/search/images").unwrap();
        assert_eq!(m.path_info, "/search/images");
        assert_eq!(r.route("/api/getty").unwrap().path_info, "");
        assert_eq!(r.route("/api/getty/").unwrap().path_info, "/");
        assert_eq!(r.route("/api/getty/a%2Fb/").unwrap().path_info, "/a%2Fb/");
    }

    #[test]
    fn later_duplicate_replaces_earlier() {
        let r = router(&[("a", "/x"), ("b", "/x")]);
        assert_eq!(r.route("/x").unwrap().component, "b");
        assert_eq!(r.routes().len(), 1);
    }

    #[test]
    fn spin_header_values_match_spin() {
        let r = router(&[("getty", "/api/getty/...")]);
        let m = r.route("/api/getty/search/images").unwrap();
        let addr: SocketAddr = "127.0.0.1:8777".parse().unwrap();
        let h = m.spin_headers(
            "localhost:3000",
            "/api/getty/search/images?phrase=cat",
            addr,
        );
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).unwrap().1.clone();
        assert_eq!(get("spin-path-info"), "/search/images");
        assert_eq!(
            get("spin-full-url"),
            "http://localhost:3000/api/getty/search/images?phrase=cat"
        );
        assert_eq!(get("spin-matched-route"), "/api/getty/...");
        assert_eq!(get("spin-base-path"), "/");
        assert_eq!(get("spin-raw-component-route"), "/api/getty/...");
        assert_eq!(get("spin-component-route"), "/api/getty");
        assert_eq!(get("spin-client-addr"), "127.0.0.1:8777");
    }

    #[test]
    fn synthetic_match_for_service_chaining() {
        let m = RouteMatch::synthetic("backend", "/v1/items");
        assert_eq!(m.path_info, "/v1/items");
        assert_eq!(m.based_route, "/...");
        assert_eq!(m.component_route(), "");
    }
}
