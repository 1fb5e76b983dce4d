//! The platform's configuration: built-in defaults (the demo: sandbox on, embedded store), then a
//! TOML file (`--config`), then `HOSPITAL_*` environment variables (nested keys joined by `__`,
//! e.g. `HOSPITAL_GATEWAY__AUTH__IDLE_TIMEOUT_SECS=600`), then command-line flags. Secrets are
//! `SecretString`s: they never appear in logs or `Debug` output.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use hospital_actors::ActorConfig;
use hospital_gateway::GatewayConfig;
use hospital_integrations::wechatpay::WechatPayConfig;
use hospital_integrations::{AliyunSmsConfig, CloudauthConfig, WechatConfig};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where to listen (`HOSPITAL_LISTEN`).
    pub listen: SocketAddr,
    /// The embedded store's directory (`HOSPITAL_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The key vault's directory (`HOSPITAL_VAULT_DIR`): per-patient data keys (REC-5), kept
    /// apart from the data directory and its backups, so a backup of the data cannot be opened
    /// after a patient's key is destroyed. `<data_dir>.vault` beside the data when absent.
    pub vault_dir: Option<PathBuf>,
    /// Redis for sessions, codes and counters; the embedded store when absent. `REDIS_URL` is
    /// honoured too.
    #[serde(skip_serializing)]
    pub redis_url: Option<SecretString>,
    /// Namespace for every Redis key of this deployment.
    pub redis_prefix: String,
    /// How long a Redis command may take before the request fails as `unavailable` (ms).
    pub redis_response_timeout_ms: u64,
    /// ScyllaDB contact points (`host:port,host:port`): durable data on the cluster instead of
    /// the embedded store. Needs a build with `--features scylla`.
    pub scylla_uri: Option<String>,
    pub scylla_keyspace: String,
    /// Create the keyspace and tables at start-up (`schema.cql`), with this replication factor.
    pub scylla_create_schema: Option<u32>,
    /// `scylla_uri` is a single-node CQL server for tests (kassandra, as the end-to-end tests
    /// run), which keeps no schema versions: the driver does not wait for schema agreement or
    /// read schema metadata. Never on a cluster (its routing needs the metadata).
    pub scylla_test_server: bool,
    /// The node lease's lifetime on ScyllaDB (s; renewed at a third of it): how long after a
    /// node dies another may start on its keyspace.
    pub scylla_node_lease_secs: u64,
    /// This node's name in the node lease: a node restarting under the same name takes its own
    /// lease back at once. Unset: host, process id and a random part (a restart waits the lease
    /// out). Never give two live nodes one name.
    pub scylla_node_name: Option<String>,
    /// Seed the demo hospital (departments, doctors, schedules, demo staff) into an empty store.
    pub demo_data: bool,
    /// Logs as JSON lines (for collectors) instead of text.
    pub log_json: bool,
    /// Kernel send buffer per connection (bytes; Linux doubles it for bookkeeping). Small by
    /// default so a client that stops reading pins little kernel memory and is found slow soon
    /// (a WebSocket write then times out); 0 leaves the kernel's own autotuning (up to MBs).
    pub socket_send_buffer_bytes: usize,
    /// MiB of memory taken from the OS and touched at start-up, with freed memory kept from then
    /// on (`src/memory.rs`; at most 768): a release storm's burst then lands on pages already
    /// mapped. 0 (the default): the allocator's own behaviour.
    pub pretouch_mib: usize,
    pub tls: Option<TlsConfig>,
    pub encryption: EncryptionConfig,
    /// Aliyun SMS credentials; required unless `gateway.sandbox` is on.
    #[serde(skip_serializing)]
    pub aliyun_sms: Option<AliyunSmsConfig>,
    /// Aliyun ID Verification (cloudauth) credentials for real-name checks of 就诊人; required
    /// unless `gateway.sandbox` is on. When set, they are used in sandbox mode too (instead of
    /// the real-name sandbox).
    #[serde(skip_serializing)]
    pub aliyun_cloudauth: Option<CloudauthConfig>,
    /// WeChat mini-program credentials; required unless `gateway.sandbox` is on.
    #[serde(skip_serializing)]
    pub wechat: Option<WechatConfig>,
    /// WeChat Pay API v3 merchant credentials; required unless `gateway.sandbox` is on.
    #[serde(skip_serializing)]
    pub wechat_pay: Option<WechatPayConfig>,
    /// Alipay open-platform app credentials (RSA2). Optional: without them orders are paid by
    /// WeChat Pay only (outside sandbox mode, which plays Alipay with its sandbox).
    #[serde(skip_serializing)]
    pub alipay: Option<hospital_integrations::alipay::AlipayConfig>,
    /// The medical insurance platform's channel credentials (SM2/SM4). Optional: without them
    /// fee orders are not settled through insurance (outside sandbox mode, which plays the
    /// insurance centre with its sandbox).
    #[serde(skip_serializing)]
    pub insurance: Option<hospital_integrations::InsuranceConfig>,
    /// Sandbox only: seconds between the WeChat Pay sandbox's notification retries (WeChat's
    /// real schedule, 15 s rising to hours, when absent).
    pub sandbox_pay_retry_secs: Option<u64>,
    pub gateway: GatewayConfig,
    /// The actor system and the notifier (`[actors]`, `[actors.notifier]`): the actor crate's own
    /// config type and defaults.
    pub actors: ActorConfig,
    /// Object storage for uploaded files (`[objects]`): a directory under `data_dir` by default.
    pub objects: hospital_objects::ObjectsConfig,
    /// This node's audit chain. Each node of a cluster appends to its own chain: give every node
    /// its own name (its host name, say); two nodes with one name are refused by the store.
    pub audit_chain: String,
}

impl Default for Config {
    fn default() -> Self {
        let gateway = GatewayConfig { sandbox: true, ..GatewayConfig::default() };
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            data_dir: PathBuf::from("./data"),
            vault_dir: None,
            redis_url: None,
            redis_prefix: "hospital".into(),
            redis_response_timeout_ms: hospital_store::redis_kv::DEFAULT_RESPONSE_TIMEOUT.as_millis() as u64,
            scylla_uri: None,
            scylla_keyspace: "hospital".into(),
            scylla_create_schema: None,
            scylla_test_server: false,
            scylla_node_lease_secs: 15,
            scylla_node_name: None,
            demo_data: true,
            log_json: false,
            socket_send_buffer_bytes: 64 * 1024,
            pretouch_mib: 0,
            tls: None,
            encryption: EncryptionConfig::default(),
            aliyun_sms: None,
            aliyun_cloudauth: None,
            wechat: None,
            wechat_pay: None,
            alipay: None,
            insurance: None,
            sandbox_pay_retry_secs: None,
            gateway,
            actors: ActorConfig::default(),
            objects: hospital_objects::ObjectsConfig::default(),
            audit_chain: "main".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Field encryption keys (AES-256-GCM, base64 of 32 bytes) by key id; new values are sealed with
/// `active`. With no keys configured, a key is generated once into `<data_dir>/keys/` (fine for
/// one machine; a cluster must configure the same keys on every node).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    pub active: String,
    #[serde(skip_serializing)]
    pub keys: BTreeMap<String, SecretString>,
}

impl Default for EncryptionConfig {
    fn default() -> Self {
        Self { active: "k1".into(), keys: BTreeMap::new() }
    }
}

/// Loads defaults, then `file` (if given), then `HOSPITAL_*` and `REDIS_URL` from the environment.
pub fn load(file: Option<&Path>) -> Result<Config, Box<figment::Error>> {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(f) = file {
        fig = fig.merge(Toml::file_exact(f));
    }
    if let Ok(url) = std::env::var("REDIS_URL") {
        fig = fig.merge(("redis_url", url));
    }
    // HOSPITAL_CONFIG, HOSPITAL_LOG (the log filter) and HOSPITAL_NEW_STAFF_PASSWORD (create-staff) are
    // read elsewhere: they are not config keys, and `deny_unknown_fields` would refuse them.
    fig = fig.merge(Env::prefixed("HOSPITAL_").split("__").ignore(&["config", "log", "new_staff_password"]));
    Ok(fig.extract()?)
}

#[cfg(test)]
// figment's `Jail` closures return its own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::time::Duration;

    #[test]
    fn defaults_file_and_env_layer() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "h.toml",
                r#"
                listen = "127.0.0.1:9000"
                [gateway]
                sandbox = false
                [gateway.auth]
                idle_timeout_secs = 120
                [encryption.keys]
                k1 = "c2VjcmV0"
                [actors]
                call_timeout_ms = 2500
                [actors.notifier]
                tick_ms = 500
                day_before_at = "19:30:00"
                "#,
            )?;
            jail.set_env("HOSPITAL_DATA_DIR", "/tmp/h");
            jail.set_env("HOSPITAL_GATEWAY__AUTH__SMS_DAILY_CAP", "3");
            jail.set_env("HOSPITAL_ACTORS__HOLD_TTL_SECS", "2");
            jail.set_env("REDIS_URL", "redis://127.0.0.1:1/0");
            jail.set_env("HOSPITAL_OBJECTS__BACKEND", "s3");
            jail.set_env("HOSPITAL_OBJECTS__S3__BUCKET", "reports");
            jail.set_env("HOSPITAL_OBJECTS__S3__REGION", "cn-hangzhou");
            jail.set_env("HOSPITAL_OBJECTS__S3__ACCESS_KEY_ID", "AKID");
            jail.set_env("HOSPITAL_OBJECTS__S3__SECRET_ACCESS_KEY", "s3-secret-value");
            jail.set_env("HOSPITAL_OBJECTS__LINK_SECRET", "link-secret-value");
            // Read by main (log filter, create-staff), not config keys: they must not be refused.
            jail.set_env("HOSPITAL_LOG", "debug");
            jail.set_env("HOSPITAL_NEW_STAFF_PASSWORD", "x");
            let c = load(Some(Path::new("h.toml"))).expect("loads");
            assert_eq!(c.listen.port(), 9000);
            assert_eq!(c.data_dir, PathBuf::from("/tmp/h"));
            assert!(!c.gateway.sandbox);
            assert_eq!(c.gateway.auth.idle_timeout_secs, 120);
            assert_eq!(c.gateway.auth.sms_daily_cap, 3);
            assert_eq!(c.gateway.auth.sms_cooldown_secs, 60, "untouched defaults stay");
            // The actor crate's own config type: keys with units, `Duration` fields.
            assert_eq!(c.actors.hold_ttl, Duration::from_secs(2));
            assert_eq!(c.actors.call_timeout, Duration::from_millis(2500));
            assert_eq!(c.actors.waitlist_hold_ttl, Duration::from_secs(600), "untouched defaults stay");
            assert_eq!(c.actors.notifier.tick, Duration::from_millis(500));
            assert_eq!(c.actors.notifier.day_before_at, chrono::NaiveTime::from_hms_opt(19, 30, 0).unwrap());
            assert_eq!(c.actors.notifier.max_attempts, 6, "untouched defaults stay");
            assert_eq!(c.redis_url.as_ref().unwrap().expose_secret(), "redis://127.0.0.1:1/0");
            assert!(!format!("{c:?}").contains("c2VjcmV0"), "secrets never print");
            assert_eq!(c.objects.backend, hospital_objects::Backend::S3);
            let s3 = c.objects.s3.as_ref().unwrap();
            assert_eq!((s3.bucket.as_str(), s3.path_style, s3.endpoint.as_deref()), ("reports", false, None));
            assert_eq!(c.objects.link_ttl_secs, 300, "untouched defaults stay");
            for secret in ["s3-secret-value", "link-secret-value"] {
                assert!(!format!("{c:?}").contains(secret), "secrets never print");
            }
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "lisen = \"127.0.0.1:1\"\n")?;
            assert!(load(Some(Path::new("bad.toml"))).is_err(), "a typo is reported, not ignored");
            Ok(())
        });
    }

    #[test]
    fn production_example_parses_with_sandbox_off() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/production.example.toml");
        let c = load(Some(&path)).expect("the example config is valid");
        assert!(!c.gateway.sandbox, "production runs without the sandbox");
        assert!(!c.demo_data);
        assert!(c.aliyun_sms.is_some() && c.wechat.is_some() && c.wechat_pay.is_some() && c.tls.is_some());
        assert!(c.aliyun_cloudauth.is_some(), "real-name checks need the real provider");
        assert_eq!(c.gateway.person_account_cap, 3);
    }
}
