//! Spin's variable expressions: the `{{ name }}` template grammar and the variable-name rule,
//! shared by manifest validation (`manifest.rs`) and variable resolution (`spin/variables.rs`).
//!
//! Mirrors spin-expressions (`crates/expressions/src/{lib,template}.rs`): the same grammar (an
//! unmatched `{{` is an error, whitespace inside braces is trimmed) and the same
//! `Key::validate` rules and messages. It knows no variable values and reads no manifest.

use anyhow::{bail, Result};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
