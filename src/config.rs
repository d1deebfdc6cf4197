//! Spin variables -> a validated [`Config`].
//!
//! This is the only file that knows the variable names of the configuration contract (README's
//! "Variables", `ARCHITECTURE.md`).
//! Each value is read through the [`Variables`] port, defaulted, parsed and checked together with
//! the values it depends on (a header name needs a key, a token URL needs client credentials).
//! Errors name the variable and say what is wrong, never what the value was. Reading the real Spin
//! variables lives in `spin_io`; this module only sees strings.

use std::time::Duration;

use http::HeaderName;
use url::Url;

use crate::error::{Error, Result};
use crate::origins::Origins;
use crate::response_cache::CacheConfig;
use crate::routes::Routes;
use crate::secret::{ApiKey, ClientId, ClientSecret};

/// Where configuration values come from. `Ok(None)` means the variable is not set: Spin's
/// `undefined` (not listed under the component's variables) or an empty value, which is what a
/// `"{{ secret }}"` template over an unset secret app variable gives.
pub trait Variables {
    fn get(&self, name: &str) -> Result<Option<String>>;
}

/// Every variable the config reads: an edge whose variables come asynchronously (the Spin 4
/// build) reads these first, then loads from what it read.
pub const NAMES: [&str; 20] = [
    "upstream_url",
    "api_key",
    "api_key_header",
    "api_key_query",
    "token_url",
    "client_id",
    "client_secret",
    "token_scope",
    "token_client_auth",
    "token_refresh_skew_secs",
    "token_default_ttl_secs",
    "allowed_routes",
    "allowed_origins",
    "max_body_bytes",
    "upstream_timeout_secs",
    "kv_store",
    "access_log",
    "cache_ttl_secs",
    "cache_max_body_bytes",
    "cache_slots",
];

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` as form fields in the body.
    Body,
    /// HTTP Basic with the form-urlencoded id and secret.
    Basic,
}

/// The OAuth2 client-credentials settings; present only when `token_url` is set.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub url: Url,
    pub client_id: ClientId,
    pub client_secret: ClientSecret,
    pub scope: Option<String>,
    pub client_auth: ClientAuth,
    pub refresh_skew_secs: u64,
    pub default_ttl_secs: u64,
}

/// Where the static key goes.
#[derive(Debug, Clone)]
pub struct StaticKey {
    pub key: ApiKey,
    pub header: Option<HeaderName>,
    pub query: Option<String>,
}

#[derive(Debug)]
pub struct Config {
    pub upstream_url: Url,
    pub static_key: Option<StaticKey>,
    pub token: Option<TokenConfig>,
    pub routes: Routes,
    pub origins: Origins,
    pub max_body_bytes: u64,
    pub upstream_timeout: Duration,
    pub kv_store: String,
    /// The response cache; `None` when `cache_ttl_secs` is 0 (the default).
    pub cache: Option<CacheConfig>,
    /// One JSON line per request on stdout (`access_log`).
    pub access_log: bool,
}

const DEFAULT_ROUTES: &str = "GET /**";
const DEFAULT_MAX_BODY_BYTES: u64 = 1_048_576;
const DEFAULT_TIMEOUT_SECS: u64 = 30;
const DEFAULT_SKEW_SECS: u64 = 60;
const DEFAULT_TTL_SECS: u64 = 300;
const DEFAULT_CACHE_MAX_BODY_BYTES: u64 = 262_144;
const DEFAULT_CACHE_SLOTS: u64 = 128;
/// Fermyon Cloud allows 1,024 keys per app; the token, its lease and other apps' keys need room.
const MAX_CACHE_SLOTS: u64 = 1000;
/// Fermyon Cloud's largest value is 1 MB; an entry adds its headers to the body.
const MAX_CACHE_BODY_BYTES: u64 = 900_000;

/// Headers the proxy sets or refuses itself; a static key in one of them would be dropped by
/// the runtime or clash with the proxy's own handling.
/// The hop-by-hop ones are also refused by wasi:http in outgoing requests.
const RESERVED_KEY_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "http2-settings",
    "cookie",
];

impl Config {
    pub fn load(vars: &dyn Variables) -> Result<Config> {
        let upstream_url = parse_http_url(
            "upstream_url",
            &vars
                .get("upstream_url")?
                .ok_or_else(|| Error::config("upstream_url", "is required but not set"))?,
        )?;
        // The static key first: for Getty, whose client id is the same secret, an unset secret
        // is then reported as `api_key`, the name the README tells users to set.
        let token_flow = vars.get("token_url")?.is_some();
        let static_key = load_static_key(vars, token_flow)?;
        let token = load_token(vars)?;

        let routes = Routes::parse(&text_or(vars, "allowed_routes", DEFAULT_ROUTES)?)
            .map_err(|reason| Error::config("allowed_routes", reason))?;
        let origins = load_origins(vars)?;
        let max_body_bytes = number_or(vars, "max_body_bytes", DEFAULT_MAX_BODY_BYTES)?;
        let timeout_secs = number_or(vars, "upstream_timeout_secs", DEFAULT_TIMEOUT_SECS)?;
        if timeout_secs == 0 {
            return Err(Error::config(
                "upstream_timeout_secs",
                "must be at least 1 second",
            ));
        }
        let kv_store = text_or(vars, "kv_store", "default")?.trim().to_string();
        if kv_store.is_empty()
            || !kv_store
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(Error::config(
                "kv_store",
                "must be a key-value store label (letters, digits, '-', '_')",
            ));
        }

        let access_log = load_access_log(vars)?;

        Ok(Config {
            upstream_url,
            static_key,
            token,
            routes,
            origins,
            max_body_bytes,
            upstream_timeout: Duration::from_secs(timeout_secs),
            kv_store,
            cache: load_cache(vars)?,
            access_log,
        })
    }
}

fn load_cache(vars: &dyn Variables) -> Result<Option<CacheConfig>> {
    let ttl_secs = number_or(vars, "cache_ttl_secs", 0)?;
    let max_body_bytes = number_or(vars, "cache_max_body_bytes", DEFAULT_CACHE_MAX_BODY_BYTES)?;
    let slots = number_or(vars, "cache_slots", DEFAULT_CACHE_SLOTS)?;
    if max_body_bytes > MAX_CACHE_BODY_BYTES {
        return Err(Error::config(
            "cache_max_body_bytes",
            "must be at most 900000 (a key-value value holds at most 1 MB)",
        ));
    }
    if !(1..=MAX_CACHE_SLOTS).contains(&slots) {
        return Err(Error::config(
            "cache_slots",
            "must be between 1 and 1000 (Fermyon Cloud allows 1,024 keys per app)",
        ));
    }
    Ok((ttl_secs > 0).then(|| CacheConfig {
        ttl_secs,
        max_body_bytes,
        slots: u32::try_from(slots).unwrap_or(1),
    }))
}

/// `access_log` alone: `on` (the default) or `off`, `true`/`false` accepted too, in any case.
/// Read by itself when the rest of the config is broken, so that failure is still logged.
pub fn load_access_log(vars: &dyn Variables) -> Result<bool> {
    let text = text_or(vars, "access_log", "on")?;
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(Error::config("access_log", "must be `on` or `off`")),
    }
}

/// `allowed_origins` alone, for the CORS headers of an answer given when the rest of the config
/// is broken.
pub fn load_origins(vars: &dyn Variables) -> Result<Origins> {
    Origins::parse(&text_or(vars, "allowed_origins", "")?)
        .map_err(|reason| Error::config("allowed_origins", reason))
}

fn load_static_key(vars: &dyn Variables, token_flow: bool) -> Result<Option<StaticKey>> {
    let key = vars.get("api_key")?;
    let header = match vars.get("api_key_header")? {
        Some(name) => Some(parse_key_header(&name, token_flow)?),
        None => None,
    };
    let query = match vars.get("api_key_query")? {
        Some(name) => Some(parse_key_query(&name)?),
        None => None,
    };
    if let (Some(key), Some(_)) = (&key, &header) {
        if http::HeaderValue::from_str(key).is_err() {
            return Err(Error::config(
                "api_key",
                "cannot be sent in a header (control characters or non-ASCII)",
            ));
        }
    }
    match (key, header.is_some() || query.is_some()) {
        (Some(key), true) => Ok(Some(StaticKey {
            key: ApiKey::new(key),
            header,
            query,
        })),
        (None, true) => Err(Error::config(
            "api_key",
            "is empty, but api_key_header or api_key_query is set: set the secret app variable \
             that api_key refers to",
        )),
        (Some(_), false) => Err(Error::config(
            "api_key_header",
            "api_key is set but neither api_key_header nor api_key_query says where to send it",
        )),
        (None, false) => Ok(None),
    }
}

/// `api_key_query`, trimmed: a name with surrounding spaces would send the key under the wrong
/// name and let the client's own parameter through (`target` removes only the exact name).
/// `&`, `=`, `#`, whitespace and control characters would change the query's structure.
fn parse_key_query(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::config("api_key_query", "is only whitespace"));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '&' | '=' | '#'))
    {
        return Err(Error::config(
            "api_key_query",
            "must be a plain query parameter name (no `&`, `=`, `#`, spaces or control \
             characters)",
        ));
    }
    Ok(name.to_string())
}

/// `api_key_header`, trimmed: an HTTP field name (RFC 9110 §5.1, a token) that the proxy does
/// not manage itself.
fn parse_key_header(name: &str, token_flow: bool) -> Result<HeaderName> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::config("api_key_header", "is only whitespace"));
    }
    let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        Error::config(
            "api_key_header",
            "is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~)",
        )
    })?;
    if RESERVED_KEY_HEADERS.contains(&header.as_str())
        || header.as_str().starts_with("spin-")
        || header.as_str().starts_with("proxy-")
    {
        return Err(Error::config(
            "api_key_header",
            "names a header the proxy manages itself",
        ));
    }
    if token_flow && header == http::header::AUTHORIZATION {
        return Err(Error::config(
            "api_key_header",
            "cannot be Authorization while token_url is set: the bearer token goes there",
        ));
    }
    Ok(header)
}

fn load_token(vars: &dyn Variables) -> Result<Option<TokenConfig>> {
    let Some(url) = vars.get("token_url")? else {
        return Ok(None);
    };
    let url = parse_http_url("token_url", &url)?;
    let client_id = vars.get("client_id")?.ok_or_else(|| {
        Error::config(
            "client_id",
            "is empty, but token_url is set: set the secret app variable that client_id refers to",
        )
    })?;
    let client_secret = vars.get("client_secret")?.ok_or_else(|| {
        Error::config(
            "client_secret",
            "is empty, but token_url is set: set the secret app variable that client_secret \
             refers to",
        )
    })?;
    let client_auth = match text_or(vars, "token_client_auth", "body")?.trim() {
        "body" => ClientAuth::Body,
        "basic" => ClientAuth::Basic,
        _ => {
            return Err(Error::config(
                "token_client_auth",
                "must be `body` (form fields) or `basic` (HTTP Basic), in lowercase",
            ))
        }
    };
    let default_ttl_secs = number_or(vars, "token_default_ttl_secs", DEFAULT_TTL_SECS)?;
    if default_ttl_secs == 0 {
        return Err(Error::config(
            "token_default_ttl_secs",
            "must be at least 1 second",
        ));
    }
    Ok(Some(TokenConfig {
        url,
        client_id: ClientId::new(client_id),
        client_secret: ClientSecret::new(client_secret),
        scope: vars.get("token_scope")?,
        client_auth,
        refresh_skew_secs: number_or(vars, "token_refresh_skew_secs", DEFAULT_SKEW_SECS)?,
        default_ttl_secs,
    }))
}

fn text_or(vars: &dyn Variables, name: &str, default: &str) -> Result<String> {
    Ok(vars.get(name)?.unwrap_or_else(|| default.to_string()))
}

fn number_or(vars: &dyn Variables, name: &str, default: u64) -> Result<u64> {
    match vars.get(name)? {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|_| Error::config(name, "must be a whole number")),
    }
}

/// An absolute http(s) URL with a host and nothing that could smuggle credentials or change
/// meaning when the request path is appended.
fn parse_http_url(variable: &str, text: &str) -> Result<Url> {
    let url =
        Url::parse(text.trim()).map_err(|_| Error::config(variable, "is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::config(variable, "must be an http or https URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::config(variable, "has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(
            variable,
            "must not carry user info; use client_id/client_secret or api_key",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config(
            variable,
            "must not have a query or fragment; use api_key_query for a key parameter",
        ));
    }
    Ok(url)
}

/// A map of variables for unit tests; an empty value counts as unset, as on Spin.
#[cfg(test)]
pub(crate) struct MapVars(pub std::collections::HashMap<&'static str, &'static str>);

#[cfg(test)]
impl Variables for MapVars {
    fn get(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .0
            .get(name)
            .filter(|v| !v.is_empty())
            .map(|v| v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Variables that answer every name with a value and record what was asked.
    struct Asked(std::cell::RefCell<Vec<String>>);

    impl Variables for Asked {
        fn get(&self, name: &str) -> Result<Option<String>> {
            self.0.borrow_mut().push(name.to_string());
            Ok(Some("1".into()))
        }
    }

    #[test]
    fn names_lists_every_variable_the_config_reads() {
        let asked = Asked(Default::default());
        let _ = Config::load(&asked);
        let _ = load_access_log(&asked);
        let _ = load_origins(&asked);
        let full = MapVars(
            getty()
                .into_iter()
                .chain([("cache_ttl_secs", "60")])
                .collect(),
        );
        let recording = Recording(&full, Default::default());
        Config::load(&recording).unwrap();
        for name in asked.0.borrow().iter().chain(recording.1.borrow().iter()) {
            assert!(
                NAMES.contains(&name.as_str()),
                "{name} is missing from NAMES"
            );
        }
    }

    struct Recording<'a>(&'a MapVars, std::cell::RefCell<Vec<String>>);

    impl Variables for Recording<'_> {
        fn get(&self, name: &str) -> Result<Option<String>> {
            self.1.borrow_mut().push(name.to_string());
            self.0.get(name)
        }
    }

    fn load(pairs: &[(&'static str, &'static str)]) -> Result<Config> {
        Config::load(&MapVars(pairs.iter().copied().collect()))
    }

    fn getty() -> Vec<(&'static str, &'static str)> {
        vec![
            ("upstream_url", "https://api.gettyimages.com/v3"),
            ("api_key", "key-abc"),
            ("api_key_header", "Api-Key"),
            (
                "token_url",
                "https://authentication.gettyimages.com/oauth2/token",
            ),
            ("client_id", "key-abc"),
            ("client_secret", "secret-xyz"),
        ]
    }

    fn with(
        mut base: Vec<(&'static str, &'static str)>,
        k: &'static str,
        v: &'static str,
    ) -> Vec<(&'static str, &'static str)> {
        base.retain(|(name, _)| *name != k);
        base.push((k, v));
        base
    }

    fn variable_of(err: Error) -> String {
        match err {
            Error::ConfigInvalid { variable, .. } => variable,
            other => panic!("expected config_invalid, got {other:?}"),
        }
    }

    #[test]
    fn defaults_apply_when_only_upstream_is_set() {
        let cfg = load(&[("upstream_url", "https://api.example.com")]).unwrap();
        assert!(cfg.static_key.is_none());
        assert!(cfg.token.is_none());
        assert_eq!(cfg.max_body_bytes, 1_048_576);
        assert_eq!(cfg.upstream_timeout, Duration::from_secs(30));
        assert_eq!(cfg.kv_store, "default");
        assert!(cfg.routes.check("GET", "/anything/at/all").is_ok());
        assert!(cfg.routes.check("POST", "/x").is_err());
        assert!(matches!(cfg.origins, Origins::None));
    }

    #[test]
    fn getty_style_config_combines_key_and_token() {
        let cfg = load(&getty()).unwrap();
        let key = cfg.static_key.unwrap();
        assert_eq!(key.header.unwrap().as_str(), "api-key");
        assert_eq!(key.key.secret(), "key-abc");
        let token = cfg.token.unwrap();
        assert_eq!(token.client_auth, ClientAuth::Body);
        assert_eq!(token.refresh_skew_secs, 60);
        assert_eq!(token.default_ttl_secs, 300);
        assert_eq!(token.scope, None);
    }

    #[test]
    fn optional_token_settings_are_read() {
        let cfg = load(&with(
            with(
                with(getty(), "token_client_auth", "basic"),
                "token_scope",
                "read write",
            ),
            "token_refresh_skew_secs",
            "5",
        ))
        .unwrap();
        let token = cfg.token.unwrap();
        assert_eq!(token.client_auth, ClientAuth::Basic);
        assert_eq!(token.scope.as_deref(), Some("read write"));
        assert_eq!(token.refresh_skew_secs, 5);
    }

    #[test]
    fn missing_upstream_url_names_the_variable() {
        assert_eq!(variable_of(load(&[]).unwrap_err()), "upstream_url");
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases: Vec<(&'static str, &'static str)> = vec![
            ("upstream_url", "not a url"),
            ("upstream_url", "ftp://example.com"),
            ("upstream_url", "https://user:pw@example.com"),
            ("upstream_url", "https://example.com/v3?key=1"),
            ("token_url", "/relative/token"),
            ("token_client_auth", "jwt"),
            ("token_refresh_skew_secs", "-1"),
            ("token_default_ttl_secs", "0"),
            ("token_default_ttl_secs", "ten"),
            ("max_body_bytes", "1MB"),
            ("upstream_timeout_secs", "0"),
            ("upstream_timeout_secs", "1.5"),
            ("api_key_header", "bad header"),
            ("api_key_header", "Host"),
            ("api_key_header", "Authorization"),
            ("api_key_header", "Proxy-Authorization"),
            ("api_key_header", "keep-alive"),
            ("api_key", "line\nbreak"),
            ("api_key_query", "a&b"),
            ("api_key_query", "a=b"),
            ("api_key_query", "a#b"),
            ("api_key_query", "api key"),
            ("api_key_query", "a\tb"),
            ("api_key_query", "a\u{7f}"),
            ("api_key_query", "   "),
            ("api_key_header", "   "),
            ("api_key_header", "Api:Key"),
            ("api_key_header", "Api\u{e9}"),
            ("api_key_header", " spin-x "),
            ("kv_store", " a b "),
            ("token_client_auth", " Basic "),
            ("allowed_routes", "GET"),
            ("allowed_routes", "GET no-slash"),
            ("allowed_origins", "example.com"),
            ("kv_store", "a/b"),
        ];
        for (name, value) in cases {
            let err = load(&with(getty(), name, value)).unwrap_err();
            assert_eq!(variable_of(err), name, "for {name} = {value:?}");
        }
    }

    #[test]
    fn the_response_cache_is_off_by_default_and_checked_when_set() {
        let off = load(&getty()).unwrap();
        assert!(off.cache.is_none());
        let on = load(&with(getty(), "cache_ttl_secs", "60")).unwrap();
        let expected = CacheConfig {
            ttl_secs: 60,
            max_body_bytes: 262_144,
            slots: 128,
        };
        assert_eq!(on.cache, Some(expected));
        for (name, value) in [
            ("cache_ttl_secs", "-1"),
            ("cache_ttl_secs", "1m"),
            ("cache_slots", "0"),
            ("cache_slots", "1001"),
            ("cache_max_body_bytes", "2000000"),
        ] {
            let err = load(&with(with(getty(), "cache_ttl_secs", "60"), name, value)).unwrap_err();
            assert_eq!(variable_of(err), name, "for {name} = {value:?}");
        }
    }

    #[test]
    fn empty_secret_names_the_variable() {
        assert_eq!(
            variable_of(load(&with(getty(), "api_key", "")).unwrap_err()),
            "api_key"
        );
        assert_eq!(
            variable_of(load(&with(getty(), "client_secret", "")).unwrap_err()),
            "client_secret"
        );
        assert_eq!(
            variable_of(load(&with(getty(), "client_id", "")).unwrap_err()),
            "client_id"
        );
    }

    #[test]
    fn key_without_destination_is_refused() {
        let err = load(&[
            ("upstream_url", "https://api.example.com"),
            ("api_key", "k"),
        ])
        .unwrap_err();
        assert_eq!(variable_of(err), "api_key_header");
    }

    #[test]
    fn errors_never_show_the_value() {
        let err = load(&with(getty(), "max_body_bytes", "sekrit-looking-value")).unwrap_err();
        assert!(!err.to_string().contains("sekrit"));
        let err = load(&with(getty(), "upstream_url", "https://sekrit:pw@x.com")).unwrap_err();
        assert!(!err.to_string().contains("sekrit"));
    }

    #[test]
    fn debug_of_config_hides_secrets() {
        let cfg = load(&getty()).unwrap();
        let printed = format!("{cfg:?}");
        assert!(!printed.contains("key-abc"));
        assert!(!printed.contains("secret-xyz"));
    }

    #[test]
    fn access_log_is_on_unless_switched_off() {
        assert!(load(&getty()).unwrap().access_log);
        for (value, on) in [
            ("off", false),
            (" OFF ", false),
            ("false", false),
            ("On", true),
        ] {
            let cfg = load(&with(getty(), "access_log", value)).unwrap();
            assert_eq!(cfg.access_log, on, "for {value:?}");
        }
        let err = load(&with(getty(), "access_log", "no")).unwrap_err();
        assert_eq!(variable_of(err), "access_log");
        // Alone, for a config that is otherwise broken.
        let broken = MapVars([("access_log", "off")].into_iter().collect());
        assert!(Config::load(&broken).is_err());
        assert_eq!(load_access_log(&broken), Ok(false));
    }

    #[test]
    fn names_are_trimmed() {
        let cfg = load(&[
            ("upstream_url", "https://api.example.com"),
            ("api_key", "k"),
            ("api_key_query", " api_key\t"),
            ("api_key_header", "  X-AUTH-TOKEN "),
            ("kv_store", " default "),
        ])
        .unwrap();
        let key = cfg.static_key.unwrap();
        assert_eq!(key.query.as_deref(), Some("api_key"));
        assert_eq!(key.header.unwrap().as_str(), "x-auth-token");
        assert_eq!(cfg.kv_store, "default");
        let cfg = load(&with(getty(), "token_client_auth", " basic\n")).unwrap();
        assert_eq!(cfg.token.unwrap().client_auth, ClientAuth::Basic);
    }

    #[test]
    fn bad_names_never_show_their_value() {
        for (name, value) in [
            ("api_key_query", "sekrit&x"),
            ("api_key_header", "sekrit header"),
            ("kv_store", "sekrit/x"),
            ("token_client_auth", "sekrit"),
        ] {
            let err = load(&with(getty(), name, value)).unwrap_err();
            assert_eq!(err.code(), "config_invalid");
            assert!(err.to_string().contains(name), "{err}");
            assert!(!err.to_string().contains("sekrit"), "{err}");
        }
    }

    #[test]
    fn key_in_query_parameter() {
        let cfg = load(&[
            ("upstream_url", "https://api.example.com"),
            ("api_key", "k"),
            ("api_key_query", "api_key"),
        ])
        .unwrap();
        let key = cfg.static_key.unwrap();
        assert_eq!(key.query.as_deref(), Some("api_key"));
        assert!(key.header.is_none());
    }

    #[test]
    fn hosts_are_ascii_with_idn_in_punycode() {
        // `url` runs on idna_adapter's ASCII-only backend (a smaller wasm, see ARCHITECTURE.md):
        // an internationalised host is written as punycode.
        let cfg = load(&[("upstream_url", "https://xn--bcher-kva.example/v3")]).unwrap();
        assert_eq!(cfg.upstream_url.host_str(), Some("xn--bcher-kva.example"));
        let err = load(&[("upstream_url", "https://bücher.example/v3")]).unwrap_err();
        assert_eq!(variable_of(err), "upstream_url");
    }
}
