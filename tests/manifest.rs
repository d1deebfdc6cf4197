//! Checks on the shipped `spin.toml` that no other test makes, because they are about the
//! newcomer's first command, `spin build --up`, not about the component's behaviour:
//!
//! - every component built from this repository gets its wasm target before `cargo build` runs
//!   (a pinned toolchain installed without `wasm32-wasip1` otherwise stops at "can't find crate
//!   for `core`", and rustup never adds targets to an installed toolchain on its own);
//! - the manifest uses only fields that Spin 3.0 understands, so the default build keeps running
//!   on Spin 3.x and on the platforms that run it (Fermyon Cloud, SpinKube's shim).
//!
//! Plain Rust on the parsed TOML: no wasm, no Spin, no network.

use std::path::PathBuf;

fn project_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn read_toml(name: &str) -> toml::Table {
    let text = std::fs::read_to_string(project_file(name))
        .unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
    text.parse()
        .unwrap_or_else(|e| panic!("{name} is not valid TOML: {e}"))
}

/// `[component.*]` tables, by id.
fn components(manifest: &toml::Table) -> Vec<(&String, &toml::Table)> {
    manifest["component"]
        .as_table()
        .expect("[component] tables")
        .iter()
        .map(|(id, c)| (id, c.as_table().expect("a component is a table")))
        .collect()
}

/// A build's commands in order: Spin accepts one string or a list, each run through the shell.
fn build_commands(build: &toml::Table) -> Vec<String> {
    match &build["command"] {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Array(list) => list
            .iter()
            .map(|c| c.as_str().expect("a build command is a string").to_string())
            .collect(),
        other => panic!("build.command is neither a string nor a list: {other}"),
    }
}

/// The shell steps in order: the commands, each split at `&&`, `||` and `;`.
fn shell_steps(commands: &[String]) -> Vec<String> {
    commands
        .iter()
        .flat_map(|c| {
            c.split("&&")
                .flat_map(|p| p.split("||"))
                .flat_map(|p| p.split(';'))
                .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// The `--target` of a `cargo build` step.
fn cargo_target(step: &str) -> Option<String> {
    if !step.starts_with("cargo build") {
        return None;
    }
    let words: Vec<&str> = step.split_whitespace().collect();
    words.iter().enumerate().find_map(|(i, w)| {
        if *w == "--target" {
            words.get(i + 1).map(|t| t.to_string())
        } else {
            w.strip_prefix("--target=").map(str::to_string)
        }
    })
}

/// The targets that `rust-toolchain.toml` asks rustup to install with the toolchain.
fn pinned_targets() -> Vec<String> {
    let toolchain = read_toml("rust-toolchain.toml");
    toolchain["toolchain"]
        .get("targets")
        .and_then(|t| t.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `step` installs `target` for the toolchain `cargo` will use.
fn ensures_target(step: &str, target: &str, pinned: &[String]) -> bool {
    // Bare `rustup toolchain install` (rustup >= 1.28) installs the toolchain named in
    // rust-toolchain.toml with its listed targets, and adds those missing from an installed one.
    if step == "rustup toolchain install" {
        return pinned.iter().any(|t| t == target);
    }
    step.starts_with("rustup target add") && step.split_whitespace().any(|w| w == target)
}

/// The two manifests: the default build, and the same app on the Spin 4 native build.
const MANIFESTS: [&str; 2] = ["spin.toml", "spin4.toml"];

#[test]
fn every_build_command_ensures_its_wasm_target_first() {
    for name in MANIFESTS {
        build_commands_ensure_their_targets(&read_toml(name));
    }
}

fn build_commands_ensure_their_targets(manifest: &toml::Table) {
    let pinned = pinned_targets();
    let mut checked = 0;
    for (id, component) in components(manifest) {
        let Some(build) = component.get("build").and_then(|b| b.as_table()) else {
            continue;
        };
        let steps = shell_steps(&build_commands(build));
        let cargo = steps
            .iter()
            .position(|s| cargo_target(s).is_some())
            .unwrap_or_else(|| panic!("component {id}: no `cargo build --target …` in {steps:?}"));
        let target = cargo_target(&steps[cargo]).expect("found above");
        assert!(
            steps[..cargo]
                .iter()
                .any(|s| ensures_target(s, &target, &pinned)),
            "component {id}: nothing before `{}` installs {target} \
             (`rustup toolchain install` with {target} in rust-toolchain.toml, \
             or `rustup target add {target}`)",
            steps[cargo]
        );
        checked += 1;
    }
    assert!(
        checked >= 3,
        "the proxy, the demo API and the demo page all build"
    );
}

#[test]
fn every_local_wasm_source_is_built_for_the_target_it_is_read_from() {
    for name in MANIFESTS {
        sources_are_built_for_their_targets(&read_toml(name));
    }
}

fn sources_are_built_for_their_targets(manifest: &toml::Table) {
    for (id, component) in components(manifest) {
        let Some(source) = component["source"].as_str() else {
            continue; // a registry or URL source is not built here
        };
        let Some(rest) = source.strip_prefix("target/") else {
            continue;
        };
        let triple = rest.split('/').next().expect("target/<triple>/…");
        let build = component
            .get("build")
            .and_then(|b| b.as_table())
            .unwrap_or_else(|| panic!("component {id} reads {source} but has no build"));
        let steps = shell_steps(&build_commands(build));
        assert!(
            steps
                .iter()
                .any(|s| cargo_target(s).as_deref() == Some(triple)
                    && s.contains("--release") == rest.contains("/release/")),
            "component {id} reads {source}, but its build does not produce it: {steps:?}"
        );
    }
}

#[test]
fn the_pinned_toolchain_names_the_wasm_target() {
    for target in ["wasm32-wasip1", "wasm32-wasip2"] {
        assert!(
            pinned_targets().iter().any(|t| t == target),
            "rust-toolchain.toml lists {target}, so `rustup toolchain install` installs it"
        );
    }
}

/// A manifest with every proxy component's wasm and build target written as the default
/// build's, and the leading comment dropped: what must be equal between the two manifests.
fn as_default_build(name: &str) -> toml::Table {
    let text = std::fs::read_to_string(project_file(name)).expect("readable manifest");
    text.replace(
        "wasm32-wasip2/release/credential_proxy.wasm",
        "wasm32-wasip1/release/credential_proxy.wasm",
    )
    .replace(
        "--target wasm32-wasip2 --release -p credential-proxy",
        "--target wasm32-wasip1 --release -p credential-proxy",
    )
    .parse()
    .expect("valid TOML")
}

#[test]
fn spin4_toml_declares_the_same_app_as_spin_toml_on_the_spin4_build() {
    // Same components, routes, variables, hosts, stores and builds, but for the build target.
    assert_eq!(
        as_default_build("spin4.toml"),
        as_default_build("spin.toml")
    );
    let spin4 = read_toml("spin4.toml");
    let proxies: Vec<_> = components(&spin4)
        .into_iter()
        .filter(|(_, c)| {
            c["source"]
                .as_str()
                .is_some_and(|s| s.ends_with("/credential_proxy.wasm"))
        })
        .collect();
    assert!(proxies.len() >= 3, "getty, flotiq and the demo proxy");
    for (id, component) in proxies {
        assert_eq!(
            component["source"].as_str(),
            Some("target/wasm32-wasip2/release/credential_proxy.wasm"),
            "component {id} runs the Spin 4 build"
        );
    }
}

/// Fields of Spin 3.0's manifest v2 schema (spinframework/spin v3.0.0,
/// crates/manifest/src/schema/v2.rs and common.rs). A field outside these lists would need a
/// newer Spin, and the default build promises to run on every Spin 3.x.
const SPIN3_TOP_LEVEL: &[&str] = &[
    "spin_manifest_version",
    "application",
    "variables",
    "trigger",
    "component",
];
const SPIN3_APPLICATION: &[&str] = &[
    "name",
    "version",
    "description",
    "authors",
    "trigger",
    "tool",
];
const SPIN3_COMPONENT: &[&str] = &[
    "source",
    "description",
    "variables",
    "environment",
    "files",
    "exclude_files",
    "allowed_http_hosts",
    "allowed_outbound_hosts",
    "key_value_stores",
    "sqlite_databases",
    "ai_models",
    "build",
    "tool",
    "dependencies_inherit_configuration",
    "dependencies",
];
const SPIN3_BUILD: &[&str] = &["command", "workdir", "watch"];
// `description` on a variable came after 3.0.
const SPIN3_VARIABLE: &[&str] = &["default", "required", "secret"];

fn assert_known(what: &str, table: &toml::Table, known: &[&str]) {
    for key in table.keys() {
        assert!(
            known.contains(&key.as_str()),
            "{what}: `{key}` is not a Spin 3.0 manifest field"
        );
    }
}

#[test]
fn spin_toml_uses_only_spin_3_manifest_fields() {
    let manifest = read_toml("spin.toml");
    assert_eq!(
        manifest["spin_manifest_version"].as_integer(),
        Some(2),
        "manifest version 2"
    );
    assert_known("top level", &manifest, SPIN3_TOP_LEVEL);
    assert_known(
        "[application]",
        manifest["application"].as_table().expect("[application]"),
        SPIN3_APPLICATION,
    );
    if let Some(vars) = manifest.get("variables").and_then(|v| v.as_table()) {
        for (name, var) in vars {
            let var = var.as_table().expect("a variable is a table");
            assert_known(&format!("[variables] {name}"), var, SPIN3_VARIABLE);
            assert!(
                !(var.contains_key("default") && var.get("required") == Some(&true.into())),
                "variable {name} is required and has a default; Spin refuses both"
            );
        }
    }
    for (id, component) in components(&manifest) {
        assert_known(&format!("[component.{id}]"), component, SPIN3_COMPONENT);
        if let Some(build) = component.get("build").and_then(|b| b.as_table()) {
            assert_known(&format!("[component.{id}.build]"), build, SPIN3_BUILD);
        }
    }
}
