//! `fermyon:spin/variables@2.0.0` and `spin:variables/variables@3.0.0` (Spin 4's async
//! version): resolution of app variables (override > default, a required one without a value is
//! a startup error), each component's variables checked against their templates at load time, and
//! the guest-facing `variables.get` of both versions, which answer alike.
//!
//! Mirrors spin-expressions (`crates/expressions/src/lib.rs`): the same error variants and
//! messages for `variables.get` (`invalid-name` for a malformed name, `undefined` for a name the
//! component does not list). As in Spin, a `get` renders the variable's template again, looking
//! up each app variable it refers to through the environment provider first (`SPIN_VARIABLE_<NAME>`,
//! read in a blocking section as Spin's `variables-env` reads it) and then the value resolved at
//! startup; [`ResolvedAppVariables::prepare`] looks up every app variable that way, as each Spin
//! instance does before its first outbound request. It does not read the manifest (see
//! `manifest.rs`) nor parse templates (see `template.rs`), and it has no providers other than the
//! environment, overrides and defaults.

use std::collections::{BTreeMap, HashMap};

use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use wasmtime::component::{Accessor, HasData, Linker};

use crate::manifest::AppVariable;
use crate::spin::blocking;
use crate::template::{validate_key, Template};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "fermyon:spin/variables-host",
        imports: { default: async },
    });
}

mod bindings_v3 {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "fermyon:spin/variables-v3-host",
    });
}

use bindings::fermyon::spin::variables;
use bindings_v3::spin::variables::variables as variables_v3;

/// App variables: their values at startup, and where each comes from, so that a later lookup
/// asks the same providers in Spin's order.
#[derive(Debug, Clone, Default)]
pub struct ResolvedAppVariables {
    /// Startup values: override > environment > default.
    values: HashMap<String, String>,
    /// The `spin up --variable` role ([`crate::HostOptions::variable`]): Spin's static provider,
    /// asked first and without blocking.
    overrides: HashMap<String, String>,
    defaults: HashMap<String, String>,
}

/// The environment variable Spin's environment provider reads for app variable `name`.
fn env_key(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

impl ResolvedAppVariables {
    /// Gives every app variable its value in Spin's provider order: an override (the
    /// `spin up --variable` role; names are matched case-insensitively), then the process's
    /// `SPIN_VARIABLE_<NAME>`, then the default. A required variable with none of them is an
    /// error naming it, as `spin up` refuses to start.
    pub fn resolve(
        declared: &BTreeMap<String, AppVariable>,
        overrides: &[(String, String)],
    ) -> Result<ResolvedAppVariables> {
        let given: HashMap<String, &String> = overrides
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let mut vars = ResolvedAppVariables::default();
        for (name, var) in declared {
            if let Some(v) = given.get(name) {
                vars.overrides.insert(name.clone(), (*v).clone());
            }
            if let Some(d) = &var.default {
                vars.defaults.insert(name.clone(), d.clone());
            }
            let value = match (given.get(name), std::env::var(env_key(name)), &var.default) {
                (Some(v), _, _) => (*v).clone(),
                (None, Ok(v), _) => v,
                (None, Err(_), Some(d)) => d.clone(),
                (None, Err(_), None) => bail!("no provider resolved required variable {name:?}"),
            };
            vars.values.insert(name.clone(), value);
        }
        Ok(vars)
    }

    /// Expands a template (component variable or allowed host) against these values.
    pub fn expand(&self, text: &str) -> Result<String> {
        Template::parse(text)?.render(|name| self.value(name))
    }

    fn value(&self, name: &str) -> Result<String> {
        self.values
            .get(name)
            .cloned()
            .ok_or_else(|| anyhow!("invalid variable name: {name}"))
    }

    /// App variable `name` as Spin's resolver reads it on every use, asking its providers in
    /// order: an override (static, no blocking), then the environment (`SPIN_VARIABLE_<NAME>`,
    /// read inside a blocking section as Spin's `variables-env` does), then the default.
    pub async fn lookup(&self, name: &str) -> Result<String> {
        if let Some(v) = self.overrides.get(name) {
            return Ok(v.clone());
        }
        if !self.values.contains_key(name) {
            bail!("invalid variable name: {name}");
        }
        let key = env_key(name);
        let (key, found) = blocking(move || {
            let found = std::env::var(&key);
            (key, found)
        })
        .await?;
        match found {
            Ok(value) => Ok(value),
            Err(std::env::VarError::NotPresent) => self
                .defaults
                .get(name)
                .cloned()
                .ok_or_else(|| anyhow!("no provider resolved required variable {name:?}")),
            Err(e) => Err(e).with_context(|| format!("failed to resolve env var {key}")),
        }
    }

    /// Every app variable looked up again ([`ResolvedAppVariables::lookup`]), one after the
    /// other: what Spin's resolver `prepare` does in every instance before the instance's first
    /// outbound request is checked against `allowed_outbound_hosts`.
    pub async fn prepare(&self) -> Result<ResolvedAppVariables> {
        let mut values = HashMap::with_capacity(self.values.len());
        for name in self.values.keys() {
            values.insert(name.clone(), self.lookup(name).await?);
        }
        Ok(ResolvedAppVariables {
            values,
            ..ResolvedAppVariables::default()
        })
    }

    /// Renders `template`, looking up every reference as it comes, as Spin's `resolve` does.
    async fn render(&self, template: &Template) -> Result<String> {
        let mut found = HashMap::new();
        for name in template.references() {
            let value = self.lookup(name).await?;
            found.insert(name, value);
        }
        template.render(|name| {
            found
                .get(name)
                .cloned()
                .ok_or_else(|| anyhow!("invalid variable name: {name}"))
        })
    }
}

/// One component's variables: their templates, checked at startup, rendered on every `get`.
#[derive(Debug, Clone)]
pub struct ComponentVariables {
    pub component_id: String,
    templates: HashMap<String, Template>,
    app: Arc<ResolvedAppVariables>,
}

impl ComponentVariables {
    /// Parses the component's templates and checks that each renders with the app's variables.
    pub fn resolve(
        component_id: &str,
        templates: &BTreeMap<String, String>,
        app: Arc<ResolvedAppVariables>,
    ) -> Result<ComponentVariables> {
        let mut parsed = HashMap::new();
        for (name, text) in templates {
            let template = Template::parse(text)?;
            template.render(|name| app.value(name))?;
            parsed.insert(name.clone(), template);
        }
        Ok(ComponentVariables {
            component_id: component_id.to_string(),
            templates: parsed,
            app,
        })
    }

    /// `variables.get` exactly as Spin answers it, rendering the template as Spin does on
    /// every call.
    pub async fn get(&self, name: &str) -> Result<String, GetError> {
        validate_key(name).map_err(GetError::InvalidName)?;
        let template = self.templates.get(name).ok_or_else(|| {
            GetError::Undefined(format!("no variable for {:?}.{name:?}", self.component_id))
        })?;
        self.app
            .render(template)
            .await
            .map_err(|e| GetError::Provider(e.to_string()))
    }
}

/// Why `variables.get` failed: the cases both interface versions share.
#[derive(Debug)]
pub enum GetError {
    InvalidName(String),
    Undefined(String),
    /// The environment provider could not read a value (not UTF-8).
    Provider(String),
}

impl From<GetError> for variables::Error {
    fn from(e: GetError) -> Self {
        match e {
            GetError::InvalidName(m) => variables::Error::InvalidName(m),
            GetError::Undefined(m) => variables::Error::Undefined(m),
            GetError::Provider(m) => variables::Error::Provider(m),
        }
    }
}

impl From<GetError> for variables_v3::Error {
    fn from(e: GetError) -> Self {
        match e {
            GetError::InvalidName(m) => variables_v3::Error::InvalidName(m),
            GetError::Undefined(m) => variables_v3::Error::Undefined(m),
            GetError::Provider(m) => variables_v3::Error::Provider(m),
        }
    }
}

/// What an instance's `variables.get` reads: its component's variables.
pub struct VariablesView<'a>(pub &'a Arc<ComponentVariables>);

struct VariablesData;

impl HasData for VariablesData {
    type Data<'a> = VariablesView<'a>;
}

impl variables::Host for VariablesView<'_> {
    async fn get(&mut self, name: String) -> Result<String, variables::Error> {
        Ok(self.0.get(&name).await?)
    }
}

impl variables_v3::Host for VariablesView<'_> {}

/// The 3.0.0 `get` is an `async func`: it runs as its own task with access to the store.
impl variables_v3::HostWithStore for VariablesData {
    async fn get<T>(
        accessor: &Accessor<T, Self>,
        name: String,
    ) -> Result<String, variables_v3::Error> {
        let vars = accessor.with(|mut access| access.get().0.clone());
        Ok(vars.get(&name).await?)
    }
}

/// Links `fermyon:spin/variables@2.0.0` and `spin:variables/variables@3.0.0` into `linker`;
/// `view` picks the instance's variables.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> VariablesView<'_>,
) -> Result<()> {
    variables::add_to_linker::<T, VariablesData>(linker, view)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    variables_v3::add_to_linker::<T, VariablesData>(linker, view)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(default: Option<&str>, required: bool) -> AppVariable {
        AppVariable {
            default: default.map(String::from),
            required,
            secret: true,
            description: None,
        }
    }

    #[test]
    fn override_beats_default_and_required_needs_a_value() {
        let mut declared = BTreeMap::new();
        declared.insert("a".to_string(), var(Some("def"), false));
        declared.insert("b".to_string(), var(None, true));
        let err = ResolvedAppVariables::resolve(&declared, &[]).unwrap_err();
        assert!(err.to_string().contains("\"b\""), "{err}");

        let over = vec![
            ("B".to_string(), "set".to_string()),
            ("a".to_string(), "x".to_string()),
        ];
        let app = ResolvedAppVariables::resolve(&declared, &over).unwrap();
        assert_eq!(app.expand("{{ a }}/{{b}}").unwrap(), "x/set");
    }

    #[tokio::test]
    async fn get_answers_like_spin() {
        let mut declared = BTreeMap::new();
        declared.insert("secret".to_string(), var(Some("s3"), false));
        let app = ResolvedAppVariables::resolve(&declared, &[]).unwrap();
        let mut templates = BTreeMap::new();
        templates.insert("api_key".to_string(), "k-{{ secret }}".to_string());
        let vars = ComponentVariables::resolve("getty", &templates, Arc::new(app)).unwrap();
        assert_eq!(vars.get("api_key").await.unwrap(), "k-s3");
        assert!(matches!(
            vars.get("secret").await,
            Err(GetError::Undefined(m)) if m == "no variable for \"getty\".\"secret\""
        ));
        assert!(matches!(
            vars.get("Bad-Name").await,
            Err(GetError::InvalidName(_))
        ));
    }
}
