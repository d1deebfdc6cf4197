//! Compiles the project's Spin components (`credential-proxy` and the demo crates) for
//! `wasm32-wasip1 --release`, once per process, as `spin build` would with the manifest's build
//! commands; and the proxy's Spin 4 build (spin-sdk 6, a WASIp3 component) for
//! `wasm32-wasip2 --release`. The host's own probes are built the same two ways.
//!
//! It uses its own target dir (`target/spin-test-wasm`) so the inner cargo never waits on the
//! lock held by the outer `cargo test`, and strips the outer build's flags from the environment
//! so they do not leak into a wasm build. It does not load or run anything.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Result};

/// The project root (`/work/main`): two levels above this crate.
pub fn project_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = here.join("../..");
    root.canonicalize().unwrap_or(root)
}

/// Packages that make up the app, built when their crate exists.
const PACKAGES: [(&str, &str); 3] = [
    ("credential-proxy", "Cargo.toml"),
    ("demo-api", "demo/api/Cargo.toml"),
    ("demo-page", "demo/page/Cargo.toml"),
];

/// Builds the wasm once per process and returns the directory holding the `.wasm` files
/// (`<root>/target/spin-test-wasm/wasm32-wasip1/release`). The build's output is printed when
/// it fails.
pub fn build_wasm() -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| run_build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

fn run_build() -> Result<PathBuf> {
    let root = project_root();
    let target_dir = root.join("target").join("spin-test-wasm");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());

    // On a fresh machine this installs the pinned toolchain and its wasm32-wasip1 target from
    // rust-toolchain.toml; otherwise it is a quick no-op. Older rustups without the bare
    // `toolchain install` form fail harmlessly and the build below reports what is missing.
    if let Ok(out) = Command::new("rustup")
        .args(["toolchain", "install"])
        .current_dir(&root)
        .output()
    {
        if !out.status.success() {
            eprintln!(
                "spin-test-host: `rustup toolchain install` failed (continuing):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    let mut args = vec!["build", "--target", "wasm32-wasip1", "--release"];
    for (package, manifest) in PACKAGES {
        if root.join(manifest).exists() {
            args.extend(["-p", package]);
        }
    }
    cargo_wasm(&cargo, &root, &args, &target_dir)?;
    Ok(target_dir.join("wasm32-wasip1").join("release"))
}

/// Builds the proxy's Spin 4 component (`wasm32-wasip2`, a WASIp3 component on spin-sdk 6) once
/// per process, in the same target dir as [`build_wasm`], and returns the directory holding
/// `credential_proxy.wasm` (`<root>/target/spin-test-wasm/wasm32-wasip2/release`). Only the
/// proxy: the demo crates are Spin 3 components only.
pub fn build_wasm_p3() -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = project_root();
            let target_dir = root.join("target").join("spin-test-wasm");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
            let args = [
                "build",
                "--target",
                "wasm32-wasip2",
                "--release",
                "-p",
                "credential-proxy",
            ];
            cargo_wasm(&cargo, &root, &args, &target_dir)
                .map(|()| target_dir.join("wasm32-wasip2").join("release"))
                .map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

/// Builds the host's own probe component (`tests/host/probe`, its own workspace) and returns
/// the path of `spin_test_probe.wasm`. Test support for this crate only.
#[doc(hidden)]
pub fn build_probe() -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            build_probe_crate("probe", "wasm32-wasip1", "spin_test_probe.wasm")
                .map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

/// Builds the host's WASIp3 probe (`tests/host/probe-p3`, spin-sdk 6, its own workspace) and
/// returns the path of `spin_test_probe_p3.wasm`. Test support for this crate only.
#[doc(hidden)]
pub fn build_probe_p3() -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            build_probe_crate("probe-p3", "wasm32-wasip2", "spin_test_probe_p3.wasm")
                .map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

/// Builds `tests/host/<dir>` for `target` in `target/spin-test-probe` and returns `file`'s path.
fn build_probe_crate(dir: &str, target: &str, file: &str) -> Result<PathBuf> {
    let root = project_root();
    let target_dir = root.join("target").join("spin-test-probe");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let manifest = root.join("tests/host").join(dir).join("Cargo.toml");
    let manifest = manifest.to_string_lossy().into_owned();
    let args = [
        "build",
        "--manifest-path",
        manifest.as_str(),
        "--target",
        target,
        "--release",
    ];
    cargo_wasm(&cargo, &root, &args, &target_dir)?;
    Ok(target_dir.join(target).join("release").join(file))
}

/// Runs `cargo <args>` for wasm in `root` with its own target dir and a clean environment.
fn cargo_wasm(cargo: &str, root: &Path, args: &[&str], target_dir: &Path) -> Result<()> {
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir);
    // Settings of the outer (native) build that must not reach the wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {cargo}: {e}"))?;
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        bail!(
            "`cargo {}` failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
