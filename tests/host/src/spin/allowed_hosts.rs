//! `allowed_outbound_hosts`: parsing each entry and deciding whether a URI may leave a component.
//!
//! Follows Spin's `crates/outbound-networking-config/src/allowed_hosts.rs`:
//! `scheme://host[:port]`, `*` for any scheme/host/port, `*.domain` subdomain wildcards, port
//! ranges `a..b`, default ports by scheme, `self`, IP/CIDR hosts, no paths. `{{ var }}` templates
//! are expanded against the app variables before parsing. It only decides: enforcing the decision
//! on a request is `outbound.rs`'s job. Not done: relative (`http://self`) requests and Spin's
//! private-IP blocking (off by default in `spin up` anyway).

use std::net::IpAddr;

use anyhow::{bail, Context, Result};

use super::variables::ResolvedAppVariables;

const SERVICE_CHAINING_SUFFIX: &str = ".spin.internal";

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`, stored as `.example.com`.
    AnySubdomain(String),
    ToSelf,
    Exact(String),
    Cidr(IpAddr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Port(u16),
    Range(u16, u16),
}

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    original: String,
    /// `None` = any scheme.
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

/// All entries of one component.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    hosts: Vec<AllowedHost>,
}

fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    /// Parses one literal entry (templates already expanded).
    pub fn parse(text: &str) -> Result<AllowedHost> {
        let url = text.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            bail!("{url:?} does not contain a scheme (e.g., 'http://' or '*://')");
        };
        let (host, rest) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match rest.split_once('/') {
            Some((port, "")) => port,
            Some(_) => bail!("{url:?} has a path but is not allowed to"),
            None => rest,
        };
        let scheme = match scheme {
            "*" => None,
            s if s.starts_with('{') => bail!("scheme lists are not yet supported"),
            s if s.chars().any(|c| !c.is_alphabetic()) => {
                bail!("scheme {s:?} contains non alphabetic character")
            }
            s => Some(s.to_string()),
        };
        let host = parse_host(host)?;
        let port = match port {
            "" => {
                let s = scheme.as_deref().unwrap_or("*");
                PortPattern::Port(well_known_port(s).with_context(|| {
                    format!("no port was provided and the scheme {s:?} does not have a known default port number")
                })?)
            }
            "*" => PortPattern::Any,
            p if p.starts_with('{') => bail!("port lists are not yet supported"),
            p => match p.split_once("..") {
                Some((a, b)) => PortPattern::Range(
                    a.parse()
                        .with_context(|| format!("port range {p:?} contains non-number"))?,
                    b.parse()
                        .with_context(|| format!("port range {p:?} contains non-number"))?,
                ),
                None => PortPattern::Port(
                    p.parse()
                        .with_context(|| format!("port {p:?} is not a number"))?,
                ),
            },
        };
        Ok(AllowedHost {
            original: text.to_string(),
            scheme,
            host,
            port,
        })
    }

    fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::AnySubdomain(suffix) => host.ends_with(suffix.as_str()),
            HostPattern::Exact(h) => h == host,
            // `self` only covers relative URLs in Spin; an absolute URL never matches it.
            HostPattern::ToSelf => false,
            HostPattern::Cidr(net, bits) => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| cidr_contains(*net, *bits, ip)),
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Port(p) => port.or_else(|| well_known_port(scheme)) == Some(p),
            PortPattern::Range(a, b) => port
                .or_else(|| well_known_port(scheme))
                .is_some_and(|p| (a..b).contains(&p)),
        };
        scheme_ok && host_ok && port_ok
    }
}

impl std::fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.original)
    }
}

fn parse_host(host: &str) -> Result<HostPattern> {
    let host = host.trim();
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if host == "self" || host == "self.alt" {
        return Ok(HostPattern::ToSelf);
    }
    if host.starts_with('{') {
        bail!("host lists are not yet supported");
    }
    if let Some(net) = parse_cidr(host) {
        return Ok(net);
    }
    if matches!(host.split('/').nth(1), Some(path) if !path.is_empty()) {
        bail!("hosts must not contain paths");
    }
    if let Some(domain) = host.strip_prefix("*.") {
        if domain.contains('*') {
            bail!("Invalid allowed host {host}: wildcards are allowed only as prefixes");
        }
        return Ok(HostPattern::AnySubdomain(format!(".{domain}")));
    }
    if host.contains('*') {
        bail!("Invalid allowed host {host}: wildcards are allowed only as subdomains");
    }
    Ok(HostPattern::Exact(
        host.trim_end_matches('/').to_ascii_lowercase(),
    ))
}

fn parse_cidr(host: &str) -> Option<HostPattern> {
    let (ip, bits) = match host.split_once('/') {
        Some((ip, bits)) => (ip, Some(bits.parse::<u8>().ok()?)),
        None => (host, None),
    };
    let ip: IpAddr = ip
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    Some(HostPattern::Cidr(ip, bits.unwrap_or(max).min(max)))
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

impl AllowedHosts {
    /// Expands templates and parses every entry; `insecure:allow-all` is refused as in Spin.
    pub fn parse(entries: &[String], vars: &ResolvedAppVariables) -> Result<AllowedHosts> {
        if entries.len() == 1 && entries[0] == "insecure:allow-all" {
            bail!("'insecure:allow-all' is not allowed - use '*://*:*' instead");
        }
        let hosts = entries
            .iter()
            .map(|e| AllowedHost::parse(&vars.expand(e)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(AllowedHosts { hosts })
    }

    /// Whether a request to `uri` may leave the component.
    pub fn allows_uri(&self, uri: &http::Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        self.hosts
            .iter()
            .any(|h| h.allows(scheme, &host, uri.port_u16()))
    }
}

/// `http://<id>.spin.internal[:port]` -> `<id>` (Spin's `parse_service_chaining_target`).
pub fn service_chaining_target(uri: &http::Uri) -> Option<String> {
    let host = uri.host()?.trim();
    let (first, rest) = host.split_once('.')?;
    (format!(".{rest}") == SERVICE_CHAINING_SUFFIX).then(|| first.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        AllowedHosts::parse(&entries, &ResolvedAppVariables::default()).unwrap()
    }

    fn allows(h: &AllowedHosts, url: &str) -> bool {
        h.allows_uri(&url.parse().unwrap())
    }

    #[test]
    fn exact_hosts_use_default_ports_by_scheme() {
        let h = hosts(&["https://api.gettyimages.com"]);
        assert!(allows(&h, "https://api.gettyimages.com/v3/x"));
        assert!(allows(&h, "https://API.gettyimages.com:443/"));
        assert!(!allows(&h, "http://api.gettyimages.com/"));
        assert!(!allows(&h, "https://api.gettyimages.com:8443/"));
        assert!(!allows(&h, "https://evil.com/"));
        assert!(!allows(&h, "https://x.api.gettyimages.com/"));
    }

    #[test]
    fn wildcards_ports_and_ranges() {
        let h = hosts(&[
            "http://127.0.0.1:*",
            "https://*.example.com",
            "*://a.test:80..90",
        ]);
        assert!(allows(&h, "http://127.0.0.1:41234/x"));
        assert!(!allows(&h, "https://127.0.0.1:41234/x"));
        assert!(allows(&h, "https://deep.sub.example.com/"));
        assert!(!allows(&h, "https://example.com/"));
        assert!(allows(&h, "http://a.test:85/"));
        assert!(allows(&h, "https://a.test:80/"));
        assert!(!allows(&h, "http://a.test:90/"));
        let any = hosts(&["*://*:*"]);
        assert!(allows(&any, "https://anything:1/"));
    }

    #[test]
    fn cidr_and_service_chaining() {
        let h = hosts(&["http://10.0.0.0/8:*", "http://backend.spin.internal"]);
        assert!(allows(&h, "http://10.1.2.3:99/"));
        assert!(!allows(&h, "http://11.1.2.3:99/"));
        assert!(allows(&h, "http://backend.spin.internal/x"));
        assert!(!allows(&h, "http://other.spin.internal/x"));
        let all = hosts(&["http://*.spin.internal"]);
        assert!(allows(&all, "http://other.spin.internal/x"));
        let uri: http::Uri = "http://backend.spin.internal/x".parse().unwrap();
        assert_eq!(service_chaining_target(&uri).as_deref(), Some("backend"));
        let uri: http::Uri = "http://example.com/x".parse().unwrap();
        assert_eq!(service_chaining_target(&uri), None);
    }

    #[test]
    fn rejects_malformed_entries_like_spin() {
        for bad in [
            "example.com",
            "*",
            "https://example.com/path",
            "https://ex*ample.com",
            "https://*.ex*.com",
            "foo://example.com",
            "https://example.com:port",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
        let e = vec!["insecure:allow-all".to_string()];
        assert!(AllowedHosts::parse(&e, &ResolvedAppVariables::default()).is_err());
    }

    #[test]
    fn templates_expand_before_parsing() {
        let mut declared = std::collections::BTreeMap::new();
        declared.insert(
            "up".to_string(),
            crate::manifest::AppVariable {
                default: Some("127.0.0.1:5000".to_string()),
                required: false,
                secret: false,
                description: None,
            },
        );
        let vars = ResolvedAppVariables::resolve(&declared, &[]).unwrap();
        let h = AllowedHosts::parse(&["http://{{ up }}".to_string()], &vars).unwrap();
        assert!(allows(&h, "http://127.0.0.1:5000/x"));
        assert!(!allows(&h, "http://127.0.0.1:5001/x"));
    }
}
