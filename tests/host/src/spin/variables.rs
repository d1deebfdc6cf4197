//! `fermyon:spin/variables@2.0.0` and `spin:variables/variables@3.0.0` (Spin 4's async
//! version): resolution of app variables (override > default, a required one without a value is
//! a startup error), each component's variables rendered from their templates at load time, and
//! the guest-facing `variables.get` of both versions, which answer alike.
//!
//! Mirrors spin-expressions (`crates/expressions/src/lib.rs`): the same error variants and
//! messages for `variables.get` (`invalid-name` for a malformed name, `undefined` for a name the
//! component does not list). It does not read the manifest (see `manifest.rs`) nor parse
//! templates (see `template.rs`), and it has no providers other than overrides and defaults.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Result};
use wasmtime::component::{Accessor, HasData, Linker};

use crate::manifest::AppVariable;
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

/// App variables with their final values (what Spin's prepared resolver holds).
#[derive(Debug, Clone, Default)]
pub struct ResolvedAppVariables {
    values: HashMap<String, String>,
}

impl ResolvedAppVariables {
    /// Gives every app variable its value: an override (the `SPIN_VARIABLE_*` / `--variable`
    /// role; names are matched case-insensitively, as the env provider lowercases them) wins
    /// over the default. A required variable with neither is an error naming it, as
    /// `spin up` refuses to start.
    pub fn resolve(
        declared: &BTreeMap<String, AppVariable>,
        overrides: &[(String, String)],
    ) -> Result<ResolvedAppVariables> {
        let overrides: HashMap<String, &String> = overrides
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let mut values = HashMap::new();
        for (name, var) in declared {
            let value = match (overrides.get(name), &var.default) {
                (Some(v), _) => (*v).clone(),
                (None, Some(d)) => d.clone(),
                (None, None) => bail!("no provider resolved required variable {name:?}"),
            };
            values.insert(name.clone(), value);
        }
        Ok(ResolvedAppVariables { values })
    }

    /// Expands a template (component variable or allowed host) against these values.
    pub fn expand(&self, text: &str) -> Result<String> {
        Template::parse(text)?.render(|name| {
            self.values
                .get(name)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("invalid variable name: {name}"))
        })
    }
}

/// One component's variables, resolved at startup (values never change while the host runs).
#[derive(Debug, Clone, Default)]
pub struct ComponentVariables {
    pub component_id: String,
    pub values: HashMap<String, String>,
}

impl ComponentVariables {
    pub fn resolve(
        component_id: &str,
        templates: &BTreeMap<String, String>,
        app: &ResolvedAppVariables,
    ) -> Result<ComponentVariables> {
        let mut values = HashMap::new();
        for (name, template) in templates {
            values.insert(name.clone(), app.expand(template)?);
        }
        Ok(ComponentVariables {
            component_id: component_id.to_string(),
            values,
        })
    }

    /// `variables.get` exactly as Spin answers it.
    pub fn get(&self, name: &str) -> Result<String, GetError> {
        validate_key(name).map_err(GetError::InvalidName)?;
        self.values.get(name).cloned().ok_or_else(|| {
            GetError::Undefined(format!("no variable for {:?}.{name:?}", self.component_id))
        })
    }
}

/// Why `variables.get` failed: the cases both interface versions share.
#[derive(Debug)]
pub enum GetError {
    InvalidName(String),
    Undefined(String),
}

impl From<GetError> for variables::Error {
    fn from(e: GetError) -> Self {
        match e {
            GetError::InvalidName(m) => variables::Error::InvalidName(m),
            GetError::Undefined(m) => variables::Error::Undefined(m),
        }
    }
}

impl From<GetError> for variables_v3::Error {
    fn from(e: GetError) -> Self {
        match e {
            GetError::InvalidName(m) => variables_v3::Error::InvalidName(m),
            GetError::Undefined(m) => variables_v3::Error::Undefined(m),
        }
    }
}

/// What an instance's `variables.get` reads: its component's resolved variables.
pub struct VariablesView<'a>(pub &'a ComponentVariables);

struct VariablesData;

impl HasData for VariablesData {
    type Data<'a> = VariablesView<'a>;
}

impl variables::Host for VariablesView<'_> {
    async fn get(&mut self, name: String) -> Result<String, variables::Error> {
        Ok(self.0.get(&name)?)
    }
}

impl variables_v3::Host for VariablesView<'_> {}

/// The 3.0.0 `get` is an `async func`: it runs as its own task with access to the store.
impl variables_v3::HostWithStore for VariablesData {
    async fn get<T>(
        accessor: &Accessor<T, Self>,
        name: String,
    ) -> Result<String, variables_v3::Error> {
        Ok(accessor.with(|mut access| access.get().0.get(&name))?)
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

    #[test]
    fn get_answers_like_spin() {
        let mut declared = BTreeMap::new();
        declared.insert("secret".to_string(), var(Some("s3"), false));
        let app = ResolvedAppVariables::resolve(&declared, &[]).unwrap();
        let mut templates = BTreeMap::new();
        templates.insert("api_key".to_string(), "k-{{ secret }}".to_string());
        let vars = ComponentVariables::resolve("getty", &templates, &app).unwrap();
        assert_eq!(vars.get("api_key").unwrap(), "k-s3");
        assert!(matches!(
            vars.get("secret"),
            Err(GetError::Undefined(m)) if m == "no variable for \"getty\".\"secret\""
        ));
        assert!(matches!(
            vars.get("Bad-Name"),
            Err(GetError::InvalidName(_))
        ));
    }
}
