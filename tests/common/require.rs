//! "Run when the program is there, skip loudly when it is not, never skip on CI": the one policy
//! for tests that need a program outside Rust (Chromium and chromedriver for the browser test,
//! `redis-server` for the Redis tests).
//!
//! - Found on `PATH`: the test gets the program's path and runs.
//! - Missing on a developer machine: one line on stderr names the test, the missing programs and
//!   the install command, and the test returns early, so a fresh `cargo test` is green.
//! - Missing with `CI` set (any value but empty, `0` or `false`; GitHub Actions, GitLab and most
//!   CI services set `CI=true`): the test panics with the same line. CI installs these programs
//!   (`.ci/run`), so a skip there would hide a broken install.
//!
//! Standard library only, so any test crate can use it: the component tests through `mod common`
//! (`common::require::require_programs`), another crate by path, e.g. from `tests/host/tests/`:
//!
//! ```ignore
//! #[path = "../../common/require.rs"]
//! mod require;
//!
//! let Some([redis]) = require::require_programs("redis tests", ["redis-server"], "apt-get install redis-server") else {
//!     return;
//! };
//! ```
//!
//! It does not start, version-check or clean up the programs; the test does.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

/// The paths of `programs`, looked up on `PATH`, or `None` after printing why `test` is skipped.
/// Panics instead of skipping when [`on_ci`] holds. `install` is the command that provides all
/// of them, shown to the reader as is.
pub fn require_programs<const N: usize>(
    test: &str,
    programs: [&str; N],
    install: &str,
) -> Option<[PathBuf; N]> {
    let found = programs.map(find_on_path);
    let missing: Vec<&str> = programs
        .iter()
        .zip(&found)
        .filter(|(_, path)| path.is_none())
        .map(|(name, _)| *name)
        .collect();
    if missing.is_empty() {
        return Some(found.map(|path| path.expect("checked above")));
    }
    let line = format!(
        "{test} needs {} (not found on PATH); install: {install}",
        missing.join(", ")
    );
    if on_ci() {
        panic!("{line}. CI is set, so this fails instead of skipping.");
    }
    // Straight to the process's stderr: libtest captures `eprintln!` of passing tests, and this
    // line must reach the person who ran `cargo test`.
    let _ = writeln!(std::io::stderr(), "skipped: {line}");
    None
}

/// The path of one program on `PATH`, with the same skip-or-fail policy.
pub fn require_program(test: &str, program: &str, install: &str) -> Option<PathBuf> {
    require_programs(test, [program], install).map(|[path]| path)
}

/// Whether the tests run on CI: `CI` is set to anything but empty, `0` or `false`.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        let v = v.trim();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
    })
}

/// The first executable file called `name` in a `PATH` directory.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| {
            [
                dir.join(name),
                dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX)),
            ]
        })
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}
