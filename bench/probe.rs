//! The yardstick for the token path's cost: a tiny component (the test host's probe,
//! `tests/host/probe`, on the same spin-sdk as the proxy) that answers either without touching
//! the key-value store, or after opening it and reading one token-sized value. The difference of
//! the two is what one raw key-value read costs a request in this host, measured in the same run
//! as the proxy's static-key and token paths. A third request reads a variable six times, as many
//! variable reads as the token flow's config adds, to show how much of the token path they are.
//!
//! The same tiny request to the WASIp3 probe (`tests/host/probe-p3`, spin-sdk 6), served with
//! Spin 4's instance reuse, is the yardstick for the Spin 4 build: what reusing an instance is
//! worth in this host for a hello world, against the 2.0x a real Spin 4.0.2 measures.

use anyhow::{Context, Result};
use spin_test_host::SpinHost;

use crate::load::Target;

/// The key the read scenario gets, and a value the size of a stored token record.
const KEY: &str = "credential-proxy:token:v1:bench";
const VALUE: &[u8] = br#"{"access_token":"tok-0123456789abcdef0123456789abcdef","token_type":"Bearer","expires_at":4102444800,"issued_at":4102441200}"#;

/// A host running the probe component at `/probe/...`.
pub struct KvProbe {
    host: SpinHost,
    _dir: tempfile::TempDir,
}

impl KvProbe {
    /// The WASIp2 probe (a fresh instance per request, as the default build gets).
    pub async fn start() -> Result<KvProbe> {
        KvProbe::start_built(spin_test_host::build_probe).await
    }

    /// The WASIp3 probe, served with the host's defaults: Spin 4's instance reuse.
    pub async fn start_p3() -> Result<KvProbe> {
        KvProbe::start_built(spin_test_host::build_probe_p3).await
    }

    async fn start_built(build: fn() -> Result<std::path::PathBuf>) -> Result<KvProbe> {
        let probe = tokio::task::spawn_blocking(build)
            .await
            .context("building the probe component")??;
        let dir = tempfile::tempdir().context("creating a temp dir")?;
        let manifest = dir.path().join("spin.toml");
        let text = format!(
            r#"spin_manifest_version = 2

[application]
name = "credential-proxy-bench-probe"

[[trigger.http]]
route = "/probe/..."
component = "probe"

[component.probe]
source = {source}
key_value_stores = ["default"]

[component.probe.variables]
setting = "a-variable-value"
"#,
            source = serde_json::to_string(&probe.display().to_string())?,
        );
        std::fs::write(&manifest, text).context("writing the probe manifest")?;
        let host = SpinHost::start(crate::app::host_options(
            &manifest,
            dir.path().join("state"),
        ))
        .await?;
        host.kv_set("default", KEY, VALUE);
        Ok(KvProbe { host, _dir: dir })
    }

    /// The host serving the probe, whose key-value reads the bench counts.
    pub fn host(&self) -> &SpinHost {
        &self.host
    }

    /// A request the probe answers without the key-value store.
    pub fn no_read(&self) -> Target {
        self.target("/probe/noop")
    }

    /// A request the probe answers after opening the store and reading one value.
    pub fn one_read(&self) -> Target {
        self.target(&format!("/probe/kv/default/get/{KEY}"))
    }

    /// A request the probe answers after reading a variable six times: as many variable reads
    /// as the token flow's config adds to the static-key config's.
    pub fn six_variables(&self) -> Target {
        self.target("/probe/vars/setting/6")
    }

    fn target(&self, path: &str) -> Target {
        Target {
            addr: self.host.addr(),
            path: path.to_string(),
            headers: vec![("accept".into(), "application/json".into())],
        }
    }

    pub async fn shutdown(self) {
        self.host.shutdown().await;
    }
}
