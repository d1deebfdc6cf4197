//! The SpinKube manifests in `deploy/spinkube/` agree with `spin.toml`: the `SpinApp` binds every
//! variable the app needs, its secrets come from the `Secret` shipped next to it, its key-value
//! store carries the label the components use and points at the Redis that is deployed with it.
//!
//! Plain Rust on the parsed YAML and TOML: no cluster, no wasm. It cannot prove the operator
//! accepts the manifests; the field names follow spin-operator's `SpinApp` CRD
//! (api/v1alpha1/spinapp_types.go), as README's SpinKube section says.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Deserialize;
use serde_norway::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every YAML document in `deploy/spinkube/*.yaml`, with the file it came from.
fn manifests() -> Vec<(String, Value)> {
    let dir = root().join("deploy/spinkube");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).expect("a readable manifest");
        for doc in serde_norway::Deserializer::from_str(&text) {
            let value =
                Value::deserialize(doc).unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"));
            if !value.is_null() {
                docs.push((name.clone(), value));
            }
        }
    }
    docs
}

fn of_kind<'a>(docs: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|(_, d)| d["kind"].as_str() == Some(kind))
        .map(|(_, d)| d)
        .collect()
}

fn the_spin_app(docs: &[(String, Value)]) -> &Value {
    let apps = of_kind(docs, "SpinApp");
    assert_eq!(apps.len(), 1, "deploy/spinkube holds one SpinApp");
    let app = apps[0];
    assert_eq!(
        app["apiVersion"].as_str(),
        Some("core.spinkube.dev/v1alpha1")
    );
    app
}

fn spin_toml() -> toml::Table {
    std::fs::read_to_string(root().join("spin.toml"))
        .expect("spin.toml")
        .parse()
        .expect("spin.toml parses")
}

/// App-level variables that must be given a value on a cluster: required ones, and secrets
/// (whose shipped default, if any, is empty or a public demo value).
fn needed_variables(manifest: &toml::Table) -> BTreeSet<String> {
    manifest["variables"]
        .as_table()
        .expect("[variables]")
        .iter()
        .filter(|(_, v)| {
            v.get("secret").and_then(|s| s.as_bool()) == Some(true)
                || v.get("required").and_then(|r| r.as_bool()) == Some(true)
        })
        .map(|(name, _)| name.clone())
        .collect()
}

fn secret_variables(manifest: &toml::Table) -> BTreeSet<String> {
    manifest["variables"]
        .as_table()
        .expect("[variables]")
        .iter()
        .filter(|(_, v)| v.get("secret").and_then(|s| s.as_bool()) == Some(true))
        .map(|(name, _)| name.clone())
        .collect()
}

/// The keys a `Secret` of this name defines (`stringData` or `data`).
fn secret_keys(docs: &[(String, Value)], name: &str) -> BTreeSet<String> {
    let secret = of_kind(docs, "Secret")
        .into_iter()
        .find(|s| s["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no Secret named {name} in deploy/spinkube"));
    ["stringData", "data"]
        .iter()
        .filter_map(|field| secret[*field].as_mapping())
        .flat_map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_string)))
        .collect()
}

/// The `Secret` name and key a `valueFrom.secretKeyRef` points at.
fn secret_ref(value_from: &Value) -> Option<(&str, &str)> {
    let r = &value_from["secretKeyRef"];
    Some((r["name"].as_str()?, r["key"].as_str()?))
}

/// A `stringData` value of a shipped `Secret`.
fn secret_string(docs: &[(String, Value)], name: &str, key: &str) -> Option<String> {
    of_kind(docs, "Secret")
        .into_iter()
        .find(|s| s["metadata"]["name"].as_str() == Some(name))
        .and_then(|s| s["stringData"][key].as_str().map(str::to_string))
}

#[test]
fn the_spin_app_binds_every_variable_spin_toml_needs() {
    let docs = manifests();
    let app = the_spin_app(&docs);
    let manifest = spin_toml();
    let declared: BTreeSet<String> = manifest["variables"]
        .as_table()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let bound: Vec<&Value> = app["spec"]["variables"]
        .as_sequence()
        .map(|s| s.iter().collect())
        .unwrap_or_default();
    let bound_names: BTreeSet<String> = bound
        .iter()
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();

    let missing: Vec<_> = needed_variables(&manifest)
        .difference(&bound_names)
        .cloned()
        .collect();
    assert!(missing.is_empty(), "spinapp.yaml does not bind {missing:?}");
    let unknown: Vec<_> = bound_names.difference(&declared).cloned().collect();
    assert!(
        unknown.is_empty(),
        "spinapp.yaml binds variables spin.toml does not declare: {unknown:?}"
    );
    assert_eq!(
        bound.len(),
        bound_names.len(),
        "each variable is bound once"
    );
}

#[test]
fn secret_variables_come_from_the_shipped_secret() {
    let docs = manifests();
    let app = the_spin_app(&docs);
    let manifest = spin_toml();
    for name in secret_variables(&manifest) {
        let binding = app["spec"]["variables"]
            .as_sequence()
            .and_then(|s| s.iter().find(|v| v["name"].as_str() == Some(name.as_str())))
            .unwrap_or_else(|| panic!("{name} is not bound"));
        assert!(
            binding.get("value").is_none(),
            "{name} is a secret: it must not sit in the SpinApp as a literal value"
        );
        let (secret, key) = secret_ref(&binding["valueFrom"])
            .unwrap_or_else(|| panic!("{name} does not come from valueFrom.secretKeyRef"));
        assert!(
            secret_keys(&docs, secret).contains(key),
            "{name} reads key {key} of Secret {secret}, which does not define it"
        );
    }
}

#[test]
fn the_key_value_store_label_matches_the_components_and_is_redis() {
    let docs = manifests();
    let app = the_spin_app(&docs);
    let manifest = spin_toml();
    let components = manifest["component"].as_table().expect("[component]");

    // Only the components the SpinApp runs, when it picks some.
    let selected: Option<BTreeSet<String>> = app["spec"]["components"].as_sequence().map(|s| {
        s.iter()
            .map(|c| c.as_str().expect("a component id").to_string())
            .collect()
    });
    if let Some(selected) = &selected {
        for id in selected {
            assert!(
                components.contains_key(id),
                "spin.toml has no component {id}"
            );
        }
    }
    let labels: BTreeSet<String> = components
        .iter()
        .filter(|(id, _)| selected.as_ref().is_none_or(|s| s.contains(*id)))
        .filter_map(|(_, c)| c.get("key_value_stores").and_then(|k| k.as_array()))
        .flatten()
        .filter_map(|l| l.as_str().map(str::to_string))
        .collect();
    assert!(
        labels.contains("default"),
        "the proxy components use `default`"
    );

    let stores = app["spec"]["runtimeConfig"]["keyValueStores"]
        .as_sequence()
        .expect("spec.runtimeConfig.keyValueStores");
    for label in &labels {
        let store = stores
            .iter()
            .find(|s| s["name"].as_str() == Some(label.as_str()))
            .unwrap_or_else(|| panic!("no keyValueStores entry for label {label}"));
        assert_eq!(store["type"].as_str(), Some("redis"), "store {label}");
        let url = store["options"]
            .as_sequence()
            .and_then(|o| o.iter().find(|o| o["name"].as_str() == Some("url")))
            .unwrap_or_else(|| panic!("store {label} has no url option"));
        let (secret, key) = secret_ref(&url["valueFrom"])
            .unwrap_or_else(|| panic!("store {label}'s url comes from a secretKeyRef"));
        assert!(
            secret_keys(&docs, secret).contains(key),
            "store {label}'s url reads key {key} of Secret {secret}, which does not define it"
        );

        // The shipped URL points at the Redis Service deployed next to the app.
        let url = secret_string(&docs, secret, key).expect("the shipped Redis URL");
        let host = url
            .strip_prefix("redis://")
            .and_then(|rest| rest.rsplit('@').next())
            .and_then(|rest| rest.split([':', '/']).next())
            .unwrap_or_else(|| panic!("not a redis:// URL: {url}"));
        let service = of_kind(&docs, "Service")
            .into_iter()
            .find(|s| s["metadata"]["name"].as_str() == Some(host))
            .unwrap_or_else(|| panic!("no Service {host} for the Redis URL"));
        let selector = service["spec"]["selector"]
            .as_mapping()
            .expect("the Service selects pods");
        let runs_redis = of_kind(&docs, "Deployment").into_iter().any(|d| {
            let labels = &d["spec"]["template"]["metadata"]["labels"];
            selector.iter().all(|(k, v)| &labels[k] == v)
                && d["spec"]["template"]["spec"]["containers"]
                    .as_sequence()
                    .is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c["image"]
                                .as_str()
                                .is_some_and(|i| i.starts_with("redis") || i.contains("/redis"))
                        })
                    })
        });
        assert!(
            runs_redis,
            "Service {host} selects a Deployment running Redis"
        );
    }
}
