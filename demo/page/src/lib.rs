//! demo-page: serves the credential proxy's one-page demo (`demo/page/index.html`) at `/`.
//!
//! The page is compiled into the component with `include_str!`, so there is nothing to deploy
//! beside the `.wasm` and no file-server component to configure. `respond` decides on plain
//! values and is tested natively; the `#[http_component]` function only converts. This component
//! does not proxy anything and knows no secret: the page calls the `demo` proxy component itself.

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

/// The demo page: plain HTML, CSS and JS with no external resource.
pub const PAGE: &str = include_str!("../index.html");

/// What the page may do, enforced by the browser: load nothing from anywhere (images are inline
/// `data:` URIs), run only its own inline script and style, and call any origin with `fetch`,
/// because `?api=` may point it at a proxy on another origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; img-src data:; \
     style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src *; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A response as values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: &'static str,
}

impl PageResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

fn text(status: u16, body: &'static str) -> PageResponse {
    PageResponse {
        status,
        headers: vec![
            ("content-type", "text/plain; charset=utf-8"),
            ("cache-control", "no-store"),
        ],
        body,
    }
}

/// The page for `GET`/`HEAD` of `/` or `/index.html`; 405 for other methods there; 404 elsewhere.
pub fn respond(method: &str, path: &str) -> PageResponse {
    if path != "/" && path != "/index.html" {
        return text(404, "not found\n");
    }
    if method != "GET" && method != "HEAD" {
        let mut resp = text(405, "method not allowed\n");
        resp.headers.push(("allow", "GET, HEAD"));
        return resp;
    }
    PageResponse {
        status: 200,
        headers: vec![
            ("content-type", "text/html; charset=utf-8"),
            // The page is tiny and changes with every build; a stale copy would confuse a demo.
            ("cache-control", "no-store"),
            ("content-security-policy", CONTENT_SECURITY_POLICY),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
        ],
        body: if method == "HEAD" { "" } else { PAGE },
    }
}

#[http_component]
fn handle_demo_page(req: Request) -> impl IntoResponse {
    let resp = respond(&req.method().to_string(), req.path());
    let mut builder = Response::builder();
    builder.status(resp.status);
    for (name, value) in resp.headers {
        builder.header(name, value);
    }
    builder.body(resp.body).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_page_at_root_and_index_html() {
        for path in ["/", "/index.html"] {
            let resp = respond("GET", path);
            assert_eq!(resp.status, 200);
            assert_eq!(
                resp.header("content-type"),
                Some("text/html; charset=utf-8")
            );
            assert_eq!(resp.header("cache-control"), Some("no-store"));
            assert!(resp.body.starts_with("<!doctype html>"));
        }
    }

    #[test]
    fn head_has_headers_but_no_body() {
        let resp = respond("HEAD", "/");
        assert_eq!(resp.status, 200);
        assert!(resp.body.is_empty());
    }

    #[test]
    fn anything_else_is_404() {
        for path in [
            "/favicon.ico",
            "/index.htm",
            "/api/demo/x",
            "//",
            "/index.html/",
        ] {
            assert_eq!(respond("GET", path).status, 404, "{path}");
        }
    }

    #[test]
    fn other_methods_are_405() {
        let resp = respond("POST", "/");
        assert_eq!(resp.status, 405);
        assert_eq!(resp.header("allow"), Some("GET, HEAD"));
    }

    #[test]
    fn page_has_the_elements_the_browser_tests_use() {
        for id in [
            "phrase",
            "search",
            "results",
            "token-status",
            "sent-headers",
            "received-headers",
            "refused",
            "refused-result",
            "error",
        ] {
            assert!(PAGE.contains(&format!("id=\"{id}\"")), "missing id={id}");
        }
        assert!(PAGE.contains("'/api/demo/search/images?phrase=' + encodeURIComponent(phrase)"));
        assert!(PAGE.contains("'/api/demo/admin/keys'"));
        assert!(PAGE.contains("x-credential-proxy-token"));
    }

    #[test]
    fn page_loads_nothing_from_elsewhere() {
        let lower = PAGE.to_ascii_lowercase();
        for needle in [
            "<link",
            "<script src",
            "<img src",
            "<iframe",
            "@import",
            "https://",
            "http://",
        ] {
            assert!(!lower.contains(needle), "the page contains {needle:?}");
        }
        let css = &lower[lower.find("<style>").unwrap()..lower.find("</style>").unwrap()];
        assert!(!css.contains("url("), "the CSS loads a resource");
    }
}
