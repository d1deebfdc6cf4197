//! Reads a Spin application manifest (`spin_manifest_version = 2`) into the plain data the host
//! needs: app variables, HTTP triggers and components with their sources, outbound hosts, key-value
//! labels and variable templates.
//!
//! It enforces the manifest rules a real `spin up` enforces at load time (a variable is never both
//! `required` and defaulted, variable and component names follow Spin's spelling, every trigger
//! names a declared component, templates refer only to declared app variables), so a manifest that
//! Spin would reject fails here too. It does not resolve variable values (see `spin/variables.rs`) and
//! ignores what only the `spin` CLI uses (`build`, `watch`, `description`, ...).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use crate::template::{validate_key, Template};

/// An application variable from the top-level `[variables]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppVariable {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub description: Option<String>,
}

/// How a trigger is reached: a route pattern, or `{ private = true }` (service chaining only).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RouteConfig {
    Route(String),
    Private { private: bool },
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTrigger {
    pub route: RouteConfig,
    pub component: String,
}

/// One `[component.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub id: String,
    /// The `source` exactly as written (a path relative to the manifest, or absolute).
    pub source: String,
    pub allowed_outbound_hosts: Vec<String>,
    pub key_value_stores: Vec<String>,
    /// Component variable name -> template over app variables.
    pub variables: BTreeMap<String, String>,
}

/// A parsed and validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    /// The directory holding the manifest; relative sources resolve against it.
    pub dir: PathBuf,
    pub variables: BTreeMap<String, AppVariable>,
    pub http_triggers: Vec<HttpTrigger>,
    pub components: BTreeMap<String, Component>,
}

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, AppVariable>,
    #[serde(default)]
    trigger: BTreeMap<String, Vec<toml::Value>>,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
struct RawApplication {
    name: String,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: RouteConfig,
    component: toml::Value,
}

#[derive(Deserialize)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::parse(&text, dir).with_context(|| format!("invalid manifest {}", path.display()))
    }

    /// Parses and validates manifest text; `dir` is where relative sources resolve.
    pub fn parse(text: &str, dir: PathBuf) -> Result<Manifest> {
        let raw: RawManifest = toml::from_str(text).context("manifest is not valid TOML")?;
        if raw.spin_manifest_version.as_integer() != Some(2) {
            bail!("only spin_manifest_version = 2 is supported");
        }
        for (name, var) in &raw.variables {
            validate_key(name).map_err(|e| anyhow!("invalid variable name: {e}"))?;
            // Spin's rule: a variable is either required or has a default, never both.
            if var.required && var.default.is_some() {
                bail!("variable {name:?} cannot be both `required` and have a `default`");
            }
            if !var.required && var.default.is_none() {
                bail!("variable {name:?} must be `required = true` or have a `default`");
            }
        }

        let mut components = BTreeMap::new();
        for (id, rc) in raw.component {
            validate_component_id(&id)?;
            let source = match rc.source {
                toml::Value::String(s) => s,
                _ => bail!("component {id:?}: only a string `source` path is supported"),
            };
            for (name, template) in &rc.variables {
                validate_key(name)
                    .map_err(|e| anyhow!("component {id:?}: invalid variable name: {e}"))?;
                check_template_refs(template, &raw.variables)
                    .with_context(|| format!("component {id:?}: variable {name:?}"))?;
            }
            for host in &rc.allowed_outbound_hosts {
                check_template_refs(host, &raw.variables)
                    .with_context(|| format!("component {id:?}: allowed_outbound_hosts"))?;
            }
            components.insert(
                id.clone(),
                Component {
                    id,
                    source,
                    allowed_outbound_hosts: rc.allowed_outbound_hosts,
                    key_value_stores: rc.key_value_stores,
                    variables: rc.variables,
                },
            );
        }

        let mut http_triggers = Vec::new();
        for (kind, entries) in raw.trigger {
            if kind != "http" {
                bail!("trigger type {kind:?} is not supported by the test host");
            }
            for entry in entries {
                let t: RawHttpTrigger = entry.try_into().context("invalid [[trigger.http]]")?;
                let component = match t.component {
                    toml::Value::String(s) => s,
                    _ => bail!("[[trigger.http]]: only `component = \"name\"` is supported"),
                };
                if !components.contains_key(&component) {
                    bail!("[[trigger.http]] refers to undefined component {component:?}");
                }
                if let RouteConfig::Private { private: false } = t.route {
                    bail!(
                        "route must be a string pattern or '{{ private = true }}': \
                         component '{component}' has {{ private = false }}"
                    );
                }
                http_triggers.push(HttpTrigger {
                    route: t.route,
                    component,
                });
            }
        }

        Ok(Manifest {
            name: raw.application.name,
            dir,
            variables: raw.variables,
            http_triggers,
            components,
        })
    }

    /// Where a component's wasm lives: by file name in `wasm_dir` when given (so the shipped
    /// manifest's `target/wasm32-wasip1/release/x.wasm` maps to the test build), else relative
    /// to the manifest's directory, or as-is when absolute.
    pub fn source_path(&self, component: &Component, wasm_dir: Option<&Path>) -> Result<PathBuf> {
        let source = Path::new(&component.source);
        match wasm_dir {
            Some(dir) => {
                let file = source.file_name().with_context(|| {
                    format!("component {:?}: source has no file name", component.id)
                })?;
                Ok(dir.join(file))
            }
            None if source.is_absolute() => Ok(source.to_path_buf()),
            None => Ok(self.dir.join(source)),
        }
    }
}

/// Spin component ids are kebab-case: lowercase letters and digits in `-`-separated words
/// (Spin also allows `_` as separator), starting with a letter.
fn validate_component_id(id: &str) -> Result<()> {
    let ok = id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with(['-', '_'])
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !id.contains("--")
        && !id.contains("__");
    if !ok {
        bail!(
            "invalid component id {id:?}: use lowercase letters, digits and single '-' or '_' separators"
        );
    }
    Ok(())
}

fn check_template_refs(text: &str, vars: &BTreeMap<String, AppVariable>) -> Result<()> {
    let template = Template::parse(text)?;
    for name in template.references() {
        if !vars.contains_key(name) {
            bail!("invalid variable template: unknown variable {name:?}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest> {
        Manifest::parse(text, PathBuf::from("/app"))
    }

    const MINIMAL: &str = r#"
spin_manifest_version = 2
[application]
name = "x"
[variables]
key = { default = "", secret = true }
[[trigger.http]]
route = "/api/..."
component = "proxy"
[[trigger.http]]
route = { private = true }
component = "hidden"
[component.proxy]
source = "target/wasm32-wasip1/release/p.wasm"
allowed_outbound_hosts = ["https://example.com"]
key_value_stores = ["default"]
[component.proxy.variables]
api_key = "{{ key }}"
[component.proxy.build]
command = "cargo build"
[component.hidden]
source = "/abs/h.wasm"
"#;

    #[test]
    fn parses_the_projects_own_manifest() {
        let path = crate::project_root().join("spin.toml");
        let m = Manifest::load(&path).unwrap();
        assert!(!m.http_triggers.is_empty());
        for t in &m.http_triggers {
            assert!(m.components.contains_key(&t.component));
        }
    }

    #[test]
    fn parses_triggers_components_and_ignores_build() {
        let m = parse(MINIMAL).unwrap();
        assert_eq!(m.name, "x");
        assert_eq!(m.http_triggers.len(), 2);
        assert_eq!(
            m.http_triggers[1].route,
            RouteConfig::Private { private: true }
        );
        let proxy = &m.components["proxy"];
        assert_eq!(proxy.variables["api_key"], "{{ key }}");
        assert_eq!(proxy.key_value_stores, vec!["default"]);
        assert!(m.variables["key"].secret);
    }

    #[test]
    fn resolves_sources() {
        let m = parse(MINIMAL).unwrap();
        let proxy = &m.components["proxy"];
        assert_eq!(
            m.source_path(proxy, None).unwrap(),
            PathBuf::from("/app/target/wasm32-wasip1/release/p.wasm")
        );
        assert_eq!(
            m.source_path(proxy, Some(Path::new("/w"))).unwrap(),
            PathBuf::from("/w/p.wasm")
        );
        let hidden = &m.components["hidden"];
        assert_eq!(
            m.source_path(hidden, None).unwrap(),
            PathBuf::from("/abs/h.wasm")
        );
    }

    #[test]
    fn rejects_required_variable_with_default() {
        let text = MINIMAL.replace(
            "key = { default = \"\", secret = true }",
            "key = { default = \"\", required = true }",
        );
        let err = format!("{:#}", parse(&text).unwrap_err());
        assert!(err.contains("both"), "{err}");
    }

    #[test]
    fn rejects_bad_variable_names() {
        for bad in ["Key", "1key", "k__ey", "key_", "k-ey"] {
            let text = MINIMAL
                .replace("key = { default", &format!("\"{bad}\" = {{ default"))
                .replace("{{ key }}", "x");
            assert!(parse(&text).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn rejects_unknown_template_variable_and_undefined_component() {
        let text = MINIMAL.replace("{{ key }}", "{{ nope }}");
        assert!(format!("{:#}", parse(&text).unwrap_err()).contains("nope"));
        let text = MINIMAL.replace("component = \"hidden\"", "component = \"ghost\"");
        assert!(format!("{:#}", parse(&text).unwrap_err()).contains("ghost"));
    }

    #[test]
    fn rejects_public_false_private_route() {
        let text = MINIMAL.replace("private = true", "private = false");
        assert!(parse(&text).is_err());
    }
}
