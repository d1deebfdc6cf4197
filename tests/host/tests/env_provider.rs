//! Spin's environment variables provider, as a component sees it: every `variables.get` looks up
//! `SPIN_VARIABLE_<NAME>` again (after a `--variable` value, before the default), and every new
//! instance prepares its `allowed_outbound_hosts` again from the variables as they are then.
//!
//! The only test in its own binary: it changes the process's environment, which no other test
//! may read at the same time.

mod common;

use std::path::Path;

use common::{probe, probe_wasm};
use spin_test_host::mock::Upstream;
use spin_test_host::{HostOptions, SpinHost};

const GREETING_ENV: &str = "SPIN_VARIABLE_CP_ENV_TEST_GREETING";
const HOST_ENV: &str = "SPIN_VARIABLE_CP_ENV_TEST_HOST";
const FLAGGED_ENV: &str = "SPIN_VARIABLE_CP_ENV_TEST_FLAGGED";

fn manifest(dir: &Path, probe: &Path, upstream: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
spin_manifest_version = 2
[application]
name = "env-provider"

[variables]
cp_env_test_greeting = {{ default = "from-default" }}
cp_env_test_host = {{ default = "{upstream}" }}
cp_env_test_flagged = {{ required = true }}

[[trigger.http]]
route = "/probe/..."
component = "probe"

[component.probe]
source = "{}"
allowed_outbound_hosts = ["http://{{{{ cp_env_test_host }}}}"]
[component.probe.variables]
greeting = "say {{{{ cp_env_test_greeting }}}}"
flagged = "{{{{ cp_env_test_flagged }}}}"
"#,
        probe.display()
    );
    common::write_manifest(dir, &text)
}

#[tokio::test(flavor = "multi_thread")]
async fn variables_and_allowed_hosts_follow_the_environment_per_use() {
    let probe_wasm = probe_wasm().await;
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), &probe_wasm, &upstream.addr().to_string());
    // `spin up --variable`'s role: Spin's first provider, before the environment.
    let opts = HostOptions::new(&manifest, dir.path().join("state"))
        .variable("cp_env_test_flagged", "from-flag");
    let host = SpinHost::start(opts).await.unwrap();
    let fetch = format!("/probe/fetch/{}/x", upstream.url());

    assert_eq!(
        probe(&host, "/probe/var/greeting").await["ok"],
        "say from-default"
    );
    assert_eq!(probe(&host, &fetch).await["status"], 200);

    // No request is in flight while the environment changes.
    std::env::set_var(GREETING_ENV, "from-env");
    std::env::set_var(HOST_ENV, "127.0.0.1:1");
    std::env::set_var(FLAGGED_ENV, "from-env");
    let greeting = probe(&host, "/probe/var/greeting").await;
    let flagged = probe(&host, "/probe/var/flagged").await;
    let refused = probe(&host, &fetch).await;
    std::env::remove_var(GREETING_ENV);
    std::env::remove_var(HOST_ENV);
    std::env::remove_var(FLAGGED_ENV);

    assert_eq!(greeting["ok"], "say from-env", "{greeting}");
    assert_eq!(flagged["ok"], "from-flag", "{flagged}");
    assert_eq!(refused["err"], "ErrorCode::HttpRequestDenied", "{refused}");
    assert_eq!(upstream.hits(), 1);

    assert_eq!(
        probe(&host, "/probe/var/greeting").await["ok"],
        "say from-default"
    );
    assert_eq!(probe(&host, &fetch).await["status"], 200);
    assert_eq!(upstream.hits(), 2);
}
