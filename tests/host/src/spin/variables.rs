//! Spin variables: `{{ name }}` templates, Spin's variable-name rules, resolution of app
//! variables (override > default, a required one without a value is a startup error), and the
//! guest-facing `fermyon:spin/variables@2.0.0` implementation.
//!
//! Mirrors spin-expressions (`crates/expressions/src/{lib,template}.rs`): the same template
//! grammar, the same `Key::validate` rules and the same error variants and messages for
//! `variables.get` (`invalid-name` for a malformed name, `undefined` for a name the component
//! does not list). It does not read the manifest itself (see `manifest.rs`).

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Result};

use crate::bindings::fermyon::spin::variables;
use crate::manifest::AppVariable;
use crate::runtime::Ctx;

/// A parsed template: literal text and `{{ expr }}` references, as in spin-expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Expr(String),
}

impl Template {
    /// Parses `text`; an unmatched `{{` is an error (whitespace inside braces is trimmed).
    pub fn parse(text: &str) -> Result<Template> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("{{") {
                let Some((expr, tail)) = after.split_once("}}") else {
                    bail!("invalid variable template: unmatched '{{{{' in template");
                };
                parts.push(Part::Expr(expr.trim().to_string()));
                rest = tail;
            } else {
                let end = rest.find("{{").unwrap_or(rest.len());
                parts.push(Part::Lit(rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
        Ok(Template { parts })
    }

    /// The variable names this template refers to.
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(e) => Some(e.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// Expands the template; `lookup` gives each referenced variable's value.
    pub fn render(&self, lookup: impl Fn(&str) -> Result<String>) -> Result<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(l) => out.push_str(l),
                Part::Expr(e) => out.push_str(&lookup(e)?),
            }
        }
        Ok(out)
    }
}

/// Spin's variable-name rule (spin-expressions `Key::validate`): lowercase ASCII letters,
/// digits and single underscores; starts with a letter, ends with a letter or digit.
/// The error text is the `invalid-name` payload Spin gives the guest.
pub fn validate_key(key: &str) -> Result<(), String> {
    let reason = if key.is_empty() {
        Some("must not be empty".to_string())
    } else if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        Some(format!(
            "invalid character {c:?}. Variable names may contain only lower-case letters, numbers, and underscores."
        ))
    } else if !key.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("must start with a lowercase ASCII letter".to_string())
    } else if !key.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        Some("must end with a lowercase ASCII letter or digit".to_string())
    } else if key.contains("__") {
        Some("must not contain multiple consecutive underscores".to_string())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(format!("{key:?}: {reason}")),
        None => Ok(()),
    }
}

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
    pub fn get(&self, name: &str) -> Result<String, variables::Error> {
        validate_key(name).map_err(variables::Error::InvalidName)?;
        self.values.get(name).cloned().ok_or_else(|| {
            variables::Error::Undefined(format!("no variable for {:?}.{name:?}", self.component_id))
        })
    }
}

impl variables::Host for Ctx {
    async fn get(&mut self, name: String) -> Result<String, variables::Error> {
        self.vars.get(&name)
    }
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
    fn templates_expand_with_whitespace_inside_braces() {
        let t = Template::parse("a-{{x}}-{{  y }}{{ x }}").unwrap();
        assert_eq!(t.references().collect::<Vec<_>>(), vec!["x", "y", "x"]);
        let out = t
            .render(|n| Ok(if n == "x" { "1" } else { "2" }.to_string()))
            .unwrap();
        assert_eq!(out, "a-1-21");
        assert!(Template::parse("{{ ok }} {{ unmatched").is_err());
        assert_eq!(Template::parse("plain").unwrap().references().count(), 0);
    }

    #[test]
    fn keys_follow_spin_rules() {
        for good in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3"] {
            validate_key(good).unwrap();
        }
        for bad in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y"] {
            assert!(validate_key(bad).is_err(), "{bad}");
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
            Err(variables::Error::Undefined(m)) if m == "no variable for \"getty\".\"secret\""
        ));
        assert!(matches!(
            vars.get("Bad-Name"),
            Err(variables::Error::InvalidName(_))
        ));
    }
}
