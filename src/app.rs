//! Wiring, in dependency order, each part made before what uses it (ARCHITECTURE.md, "Start-up"):
//! the stores and the cipher, the demo data, the clients of external systems (or, in sandbox
//! mode, the same clients pointed at the sandboxes), the real-time bus, the notifier, the actor
//! system, object storage and the audit log, then the gateway's state and the server. `start`
//! returns once the server is listening, so callers (main, tests) know the real address.

use anyhow::{bail, Context};
use hospital_actors::notifier::{Notifier, NotifierDeps};
use hospital_actors::{ActorConfig, ActorDeps, ActorSystem, Events};
use hospital_domain::time::HospitalZone;
use hospital_gateway::catalog_index::CatalogIndex;
use hospital_gateway::ratelimit::RateLimits;
use hospital_gateway::realtime::bus::{subscribe_redis, Bus, Fanout};
use hospital_gateway::realtime::hub::Hub;
use hospital_gateway::realtime::log::EventLog;
use hospital_gateway::realtime::Realtime;
use hospital_gateway::{AppState, Sandboxes};
use hospital_integrations::wechatpay::{WechatPay, WechatPayClient};
use hospital_integrations::{
    AliyunCloudauth, AliyunSms, RealNameVerifier, SmsSender, SubscribeClient, SubscribeConfig, SubscribeMessenger,
    WechatClient, WechatLogin,
};
use hospital_store::{DataStore, EmbeddedStore, EphemeralKv, RedisKv, SessionStore, Stores};
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::node_lease::NodeLease;
use crate::{keys, seed, serve};

/// A started platform: its address and a handle to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub scheme: &'static str,
    pub sandbox: bool,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    actors: ActorSystem,
    /// On ScyllaDB: this node's hold on the keyspace (one node runs its actors).
    node_lease: Option<NodeLease>,
    /// Sends confirmations and reminders; stops when dropped.
    _notifier: Notifier,
    _jobs: hospital_actors::JobRunner,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, stops the actors.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        let r = self.server.await;
        self.actors.shutdown().await;
        if let Some(lease) = self.node_lease {
            lease.release().await;
        }
        r.context("server task")?.context("server")
    }

    /// Waits until the server ends by itself (it does not, unless it fails) or the node lease is
    /// lost (then the process must end at once: another node may be taking over).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        match &mut self.node_lease {
            None => (&mut self.server).await.context("server task")?.context("server"),
            Some(lease) => tokio::select! {
                r = &mut self.server => r.context("server task")?.context("server"),
                why = lease.lost() => bail!("stopping: {why}"),
            },
        }
    }
}

pub async fn start(config: Config) -> anyhow::Result<Running> {
    let zone = HospitalZone::parse(&config.gateway.timezone).context("gateway.timezone")?;
    let listener = bind(config.listen, config.socket_send_buffer_bytes)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if config.tls.is_some() { "https" } else { "http" };

    let store = EmbeddedStore::open(&config.data_dir)
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?
        .with_zone(zone)
        // Alone (no Redis, no ScyllaDB) it is the event log's kv too: booking writes log their
        // events themselves.
        .with_event_log(config.redis_url.is_none() && config.scylla_uri.is_none());
    store.start_sweeper(Duration::from_secs(5));
    let mut redis_conn = None;
    let kv: Arc<dyn EphemeralKv> = match &config.redis_url {
        Some(url) => {
            let timeout = Duration::from_millis(config.redis_response_timeout_ms);
            let r = RedisKv::connect_with(url.expose_secret(), &config.redis_prefix, timeout)
                .await
                .context("cannot connect to Redis")?;
            tracing::info!("sessions, codes, counters and event fan-out in Redis");
            redis_conn = Some(r.connection());
            Arc::new(r)
        }
        None => {
            tracing::info!("sessions, codes and counters in the embedded store (set REDIS_URL for Redis)");
            Arc::new(store.clone())
        }
    };
    let (stores, node_lease) = match &config.scylla_uri {
        None => (Stores { data: Arc::new(store.clone()), kv }, None),
        Some(uri) => cluster_stores(&config, uri, kv).await?,
    };

    let cipher = keys::field_cipher(&config.encryption, &config.data_dir)?;
    // Per-patient data keys, wrapped by the master key ring, in a vault apart from the data.
    let vault_dir = config.vault_dir.clone().unwrap_or_else(|| {
        let mut d = config.data_dir.clone().into_os_string();
        d.push(".vault");
        d.into()
    });
    let vault = EmbeddedStore::open(&vault_dir)
        .with_context(|| format!("cannot open the key vault in {}", vault_dir.display()))?;
    let records = hospital_store::PersonCipher::new(Arc::new(vault), cipher.clone());
    let actor_config = ActorConfig { zone, ..config.actors.clone() };
    if config.demo_data {
        seed::seed_if_empty(&stores, &actor_config, config.gateway.sandbox).await?;
    }

    let base = format!("{scheme}://{addr}");
    let (sms, wechat, wechat_pay, subscribe, real_name, sandbox) = external_clients(&config, &base)?;
    let alipay = alipay_client(&config, &base, sandbox.as_ref())?;
    let insurance = insurance_client(&config, &base, sandbox.as_ref())?;

    // The real-time side first (actors publish to it): the bus numbers personal events in the
    // log and fans out, locally or through Redis pub/sub to every node; at start it logs what a
    // crash left in the store's outbox.
    let hub = Arc::new(Hub::with_login_cache(config.gateway.auth.session_cache()));
    let log = EventLog::new(stores.kv.clone());
    let fanout = match (&config.redis_url, &redis_conn) {
        (Some(url), Some(conn)) => {
            let channel = format!("{}:events", config.redis_prefix);
            tokio::spawn(subscribe_redis(url.expose_secret().to_string(), channel.clone(), hub.clone()));
            Fanout::Redis { conn: conn.clone(), channel }
        }
        _ => Fanout::Local,
    };
    let bus = Bus::start(log.clone(), hub.clone(), stores.data.clone(), fanout);
    let events = Events::new(bus.clone());

    // Confirmations and visit reminders (MSG-2..4): reminders are rows, so a restart loses none.
    // Started before the actors, which report confirmed bookings to it.
    let notifier = Notifier::start(
        NotifierDeps {
            data: stores.data.clone(),
            sms: sms.clone(),
            wechat: Some(subscribe),
            events: events.clone(),
            zone,
        },
        config.actors.notifier.clone(),
    );

    let consoles = hospital_gateway::consoles::ConsoleHub::new();
    consoles.join(&hub, &bus);
    let mut deps = ActorDeps::new(stores.clone(), actor_config)
        .with_consoles(hospital_actors::Consoles::new(consoles.clone()))
        .with_wechat_pay(wechat_pay.clone())
        .with_events(events.clone())
        .with_notify(notifier.handle())
        .with_person_cipher(records.clone());
    if let Some(a) = &alipay {
        deps = deps.with_alipay(a.clone());
    }
    if let Some(i) = &insurance {
        deps =
            deps.with_insurance(hospital_actors::deps::InsuranceAccess { client: i.clone(), cipher: cipher.clone() });
    }
    let actors = ActorSystem::start(deps).await.context("cannot start the actor system")?;
    // Durable jobs (closing sessions at their end, erasures): rows, so a restart loses none.
    let eraser = Arc::new(hospital_actors::StoreEraser { data: stores.data.clone(), keys: records.clone() });
    // Reconciliation with the providers' bills (PAY-4): a daily job, the first one made here.
    let reconciler = Arc::new(hospital_actors::Reconciler {
        data: stores.data.clone(),
        system: actors.clone(),
        wechat_pay: Some(wechat_pay.clone()),
        alipay: alipay.clone(),
        insurance: insurance.clone(),
        zone,
    });
    if config.actors.jobs.reconcile {
        reconciler.ensure_scheduled().await.context("cannot schedule reconciliation")?;
    }
    // Each day's sessions get the job publishing their slots' closings (BOOK-2), today's at once.
    hospital_actors::closings::ensure_scheduled(stores.data.as_ref(), &actors)
        .await
        .context("cannot schedule the day's closings")?;
    // Stored schedule templates (BOOK-9): a daily job applying them ahead, the first one made here.
    hospital_actors::templates::ensure_scheduled(stores.data.as_ref(), &actors)
        .await
        .context("cannot schedule the schedule templates' run")?;
    let jobs = hospital_actors::JobRunner::start(
        stores.data.clone(),
        actors.clone(),
        Some(eraser),
        Some(Arc::new(hospital_actors::Announcer {
            data: stores.data.clone(),
            events: events.clone(),
            consoles: hospital_actors::Consoles::new(consoles.clone()),
        })),
        Some(reconciler),
        config.actors.jobs.clone(),
    );
    let realtime = Arc::new(Realtime { hub, log, bus });
    let objects = hospital_objects::Objects::from_config(&config.objects, &config.data_dir)
        .context("cannot open object storage (objects)")?;
    tracing::info!(store = ?objects, "uploaded files in object storage");
    let files = hospital_gateway::http::files::FileService::new(
        objects,
        keys::link_signer(&config.objects, &config.data_dir)?,
        &config.objects,
    )
    // Report files are stored sealed with their patient's data key: opened on the way out.
    .with_outbound(
        hospital_gateway::http::reports::PREFIX,
        Arc::new(hospital_gateway::http::reports::ReportOpener::new(records.clone())),
    );
    let _ = consoles.images.set(files.clone());
    let audit = hospital_store::AuditLog::start(stores.data.clone(), &config.audit_chain)
        .await
        .context("cannot start the audit log")?;
    let catalog = CatalogIndex::load(stores.data.as_ref()).await?;
    let roles = hospital_gateway::roles::Roles::load(stores.data.as_ref()).await.context("cannot load the roles")?;
    let state = AppState::new(hospital_gateway::state::Shared {
        sessions: SessionStore::new(stores.kv.clone()),
        stores,
        actors: actors.clone(),
        cipher,
        records,
        sms,
        wechat,
        real_name,
        wechat_pay: Some(wechat_pay),
        alipay,
        insurance,
        catalog: Arc::new(RwLock::new(Arc::new(catalog))),
        limits: Arc::new(RateLimits::new(&config.gateway.limits)),
        config: Arc::new(config.gateway.clone()),
        zone,
        metrics: hospital_gateway::metrics::prometheus(),
        realtime,
        events: events.clone(),
        files,
        roles,
        audit,
        consoles,
        sandbox,
        consent: Default::default(),
    });
    // Every node reloads what the back office changed on any node (roles, the catalogue).
    hospital_gateway::backoffice::follow_invalidations(state.clone());
    let limits = state.limits.clone();
    tokio::spawn(async move {
        let mut t = tokio::time::interval(Duration::from_secs(60));
        loop {
            t.tick().await;
            limits.prune();
        }
    });

    let app = hospital_gateway::router(state);
    let (tx, rx) = watch::channel(false);
    let tls = match &config.tls {
        None => None,
        Some(tls) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let rustls_config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .context("cannot load the TLS certificate or key")?;
            Some(tokio_rustls::TlsAcceptor::from(rustls_config.get_inner()))
        }
    };
    let limits = config.gateway.limits.clone();
    let server = tokio::spawn(async move { serve::serve(listener, app, tls, &limits, rx).await });
    Ok(Running {
        addr,
        scheme,
        sandbox: config.gateway.sandbox,
        shutdown: tx,
        server,
        actors,
        node_lease,
        _notifier: notifier,
        _jobs: jobs,
    })
}

/// The durable store the configuration names, for the administrative commands (`create-staff`,
/// `audit`): ScyllaDB if `scylla_uri` is set (a cluster's first administrator and its audit log
/// are there, not in a local directory), else the embedded store in the command's `--data-dir`
/// or the configured one. No node lease: these commands run no actors.
pub async fn open_data(config: &Config, data_dir: Option<&std::path::Path>) -> anyhow::Result<Arc<dyn DataStore>> {
    match &config.scylla_uri {
        None => {
            let dir = data_dir.unwrap_or(&config.data_dir);
            Ok(Arc::new(
                EmbeddedStore::open(dir).with_context(|| format!("cannot open the store in {}", dir.display()))?,
            ))
        }
        Some(uri) => Ok(cluster_data(config, uri).await?),
    }
}

#[cfg(feature = "scylla")]
async fn cluster_data(config: &Config, uri: &str) -> anyhow::Result<Arc<hospital_store::scylla::ScyllaStore>> {
    let mut s =
        hospital_store::scylla::ScyllaStore::connect_with(uri, &config.scylla_keyspace, config.scylla_test_server)
            .await
            .with_context(|| format!("cannot connect to ScyllaDB at {uri}"))?;
    s = s.with_zone(HospitalZone::parse(&config.gateway.timezone).context("gateway.timezone")?);
    if let Some(rf) = config.scylla_create_schema {
        s = s.with_replication_factor(rf);
        s.create_schema().await.context("cannot create the ScyllaDB schema")?;
    }
    tracing::info!(%uri, keyspace = %config.scylla_keyspace, "durable data on ScyllaDB");
    Ok(Arc::new(s))
}

#[cfg(not(feature = "scylla"))]
async fn cluster_data(_config: &Config, _uri: &str) -> anyhow::Result<Arc<dyn DataStore>> {
    bail!(NO_SCYLLA)
}

#[cfg(not(feature = "scylla"))]
const NO_SCYLLA: &str = "scylla_uri is set but this build has no ScyllaDB backend: build with --features scylla";

/// Durable data on ScyllaDB; sessions, codes and counters in Redis when configured, else on
/// ScyllaDB too (its `kv_*` tables). The keyspace's node lease is taken before anything runs.
#[cfg(feature = "scylla")]
async fn cluster_stores(
    config: &Config,
    uri: &str,
    kv: Arc<dyn EphemeralKv>,
) -> anyhow::Result<(Stores, Option<NodeLease>)> {
    let s = cluster_data(config, uri).await?;
    let ttl = Duration::from_secs(config.scylla_node_lease_secs.max(3));
    let lease = NodeLease::take(s.clone(), config.scylla_node_name.clone(), ttl).await?;
    let kv: Arc<dyn EphemeralKv> = if config.redis_url.is_some() { kv } else { s.clone() };
    Ok((Stores { data: s, kv }, Some(lease)))
}

#[cfg(not(feature = "scylla"))]
async fn cluster_stores(
    _config: &Config,
    _uri: &str,
    _kv: Arc<dyn EphemeralKv>,
) -> anyhow::Result<(Stores, Option<NodeLease>)> {
    bail!(NO_SCYLLA)
}

/// The listening socket: a deep accept backlog (a release storm opens thousands of connections at
/// once), and optionally a fixed kernel send buffer per connection, which bounds the kernel memory
/// a client that stops reading can pin (accepted sockets inherit it from the listener).
fn bind(addr: SocketAddr, send_buffer: usize) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    if send_buffer > 0 {
        sock.set_send_buffer_size(send_buffer)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(4096)?;
    TcpListener::from_std(sock.into())
}

type Clients = (
    Arc<dyn SmsSender>,
    Arc<dyn WechatLogin>,
    Arc<dyn WechatPay>,
    Arc<dyn SubscribeMessenger>,
    Arc<dyn RealNameVerifier>,
    Option<Sandboxes>,
);

/// The real clients, pointed at the real services or, in sandbox mode, at the sandboxes this same
/// server mounts under `/sandbox/...`, so development exercises the real client code and its
/// signatures end to end.
fn external_clients(config: &Config, base: &str) -> anyhow::Result<Clients> {
    if config.gateway.sandbox {
        return sandbox_clients(config, base);
    }
    let Some(sms) = config.aliyun_sms.clone() else {
        bail!("aliyun_sms is not configured (required outside sandbox mode)")
    };
    let Some(wx) = config.wechat.clone() else { bail!("wechat is not configured (required outside sandbox mode)") };
    let Some(pay) = config.wechat_pay.clone() else {
        bail!("wechat_pay is not configured (required outside sandbox mode)")
    };
    let Some(cloudauth) = config.aliyun_cloudauth.clone() else {
        bail!("aliyun_cloudauth is not configured (required outside sandbox mode)")
    };
    let subscribe = SubscribeClient::new(SubscribeConfig {
        appid: wx.appid.clone(),
        secret: wx.secret.clone(),
        base_url: wx.base_url.clone(),
    })?;
    Ok((
        Arc::new(AliyunSms::new(sms)?),
        Arc::new(WechatClient::new(wx)?),
        Arc::new(WechatPayClient::new(pay)?),
        Arc::new(subscribe),
        Arc::new(AliyunCloudauth::new(cloudauth)?),
        None,
    ))
}

/// The AccessKeyId the real-name sandbox accepts (its secret is generated at start-up).
#[cfg(feature = "sandbox")]
const SANDBOX_CLOUDAUTH_KEY_ID: &str = "sandbox-cloudauth-key";

/// The sandbox's merchant and app ids: what a sandbox order is placed under.
#[cfg(feature = "sandbox")]
const SANDBOX_APPID: &str = "wxsandbox0000000";
#[cfg(feature = "sandbox")]
const SANDBOX_MCHID: &str = "1900000109";

/// Sandbox mode: the real clients pointed at the sandboxes this same server mounts under
/// `/sandbox/...`.
#[cfg(feature = "sandbox")]
fn sandbox_clients(config: &Config, base: &str) -> anyhow::Result<Clients> {
    use hospital_actors::notifier;
    use hospital_integrations::wechatpay::{test_keys, WechatPayConfig, WechatPaySandbox, WechatPaySandboxConfig};
    use hospital_integrations::{
        AliyunSmsConfig, CloudauthConfig, RealNameSandbox, SmsSandbox, SubscribeSandbox, WechatConfig, WechatSandbox,
    };
    use hospital_store::FieldCipher;
    use secrecy::SecretString;

    tracing::warn!(
        "SANDBOX MODE: SMS, WeChat and real-name checks go to local sandboxes under /sandbox; never run production like this"
    );
    let sms_secret = SecretString::from(FieldCipher::generate_key_b64());
    let sms_sandbox = SmsSandbox::new("sandbox-access-key", sms_secret.clone());
    let sms = AliyunSms::new(AliyunSmsConfig {
        access_key_id: "sandbox-access-key".into(),
        access_key_secret: sms_secret,
        sign_name: "示例医院".into(),
        code_template: hospital_integrations::sms::LOGIN_CODE_TEMPLATE.into(),
        endpoint: format!("{base}/sandbox/aliyun-sms"),
    })?;
    let cloudauth_secret = SecretString::from(FieldCipher::generate_key_b64());
    let wx_secret = SecretString::from(FieldCipher::generate_key_b64());
    let wx_sandbox = WechatSandbox::new(SANDBOX_APPID, wx_secret.clone());
    let wechat = WechatClient::new(WechatConfig {
        appid: SANDBOX_APPID.into(),
        secret: wx_secret.clone(),
        base_url: format!("{base}/sandbox/wechat"),
    })?;
    // Subscribe messages: the same mini-program credentials, its own sandbox and templates.
    for (code, text) in notifier::sms_templates() {
        sms_sandbox.add_template(code, text);
    }
    let subscribe_sandbox = SubscribeSandbox::new(SANDBOX_APPID, wx_secret.clone());
    for (id, keys) in notifier::wechat_templates() {
        subscribe_sandbox.add_template(id, keys);
    }
    let subscribe = SubscribeClient::new(SubscribeConfig {
        appid: SANDBOX_APPID.into(),
        secret: wx_secret,
        base_url: format!("{base}/sandbox/wechat-subscribe"),
    })?;
    // The sandbox speaks WeChat Pay v3 with its own (test-only) keys; our client signs with the
    // sandbox merchant key and verifies the sandbox platform key, exactly as in production.
    let mut pay_sandbox = WechatPaySandbox::new(WechatPaySandboxConfig::with_test_keys(SANDBOX_APPID, SANDBOX_MCHID))?;
    if let Some(secs) = config.sandbox_pay_retry_secs {
        pay_sandbox = pay_sandbox.with_retry_schedule(vec![Duration::from_secs(secs); 8]);
    }
    let pay = WechatPayClient::new(WechatPayConfig {
        mchid: SANDBOX_MCHID.into(),
        appid: SANDBOX_APPID.into(),
        merchant_serial_no: test_keys::MERCHANT_SERIAL_NO.into(),
        merchant_private_key_pem: SecretString::from(test_keys::MERCHANT_PRIVATE_KEY_PEM),
        apiv3_key: SecretString::from(test_keys::APIV3_KEY),
        platform_public_keys: vec![(test_keys::PLATFORM_SERIAL_NO.into(), test_keys::PLATFORM_PUBLIC_KEY_PEM.into())],
        base_url: format!("{base}/sandbox/wechatpay"),
        notify_url: format!("{base}/api/v1/payments/wechat/notify"),
    })?;
    let alipay = hospital_integrations::AlipaySandbox::new(
        hospital_integrations::AlipaySandboxConfig::with_test_keys(SANDBOX_ALIPAY_APP_ID, SANDBOX_ALIPAY_SELLER_ID),
    )?;
    let alipay = match config.sandbox_pay_retry_secs {
        Some(secs) => alipay.with_retry_schedule(vec![Duration::from_secs(secs); 8]),
        None => alipay,
    };
    let insurance =
        hospital_integrations::InsuranceSandbox::new(hospital_integrations::InsuranceSandboxConfig::with_test_keys())?;
    let sandboxes = Sandboxes {
        alipay,
        insurance,
        sms: sms_sandbox,
        wechat: wx_sandbox,
        wechat_pay: pay_sandbox,
        wechat_subscribe: subscribe_sandbox,
        real_name: RealNameSandbox::new(SANDBOX_CLOUDAUTH_KEY_ID, cloudauth_secret.clone()),
    };
    // A configured real-name provider is used even here, so a staging server can try the
    // real registry with the demo.
    let real_name = AliyunCloudauth::new(config.aliyun_cloudauth.clone().unwrap_or_else(|| CloudauthConfig {
        access_key_id: SANDBOX_CLOUDAUTH_KEY_ID.into(),
        access_key_secret: cloudauth_secret,
        endpoint: format!("{base}/sandbox/aliyun-cloudauth"),
    }))?;
    Ok((Arc::new(sms), Arc::new(wechat), Arc::new(pay), Arc::new(subscribe), Arc::new(real_name), Some(sandboxes)))
}

/// The sandbox's Alipay app and merchant.
#[cfg(feature = "sandbox")]
const SANDBOX_ALIPAY_APP_ID: &str = "2021000000000001";
#[cfg(feature = "sandbox")]
const SANDBOX_ALIPAY_SELLER_ID: &str = "2088000000000001";

/// The Alipay client: configured, else (sandbox mode) pointed at the sandbox with its test keys;
/// none outside sandbox mode without credentials.
fn alipay_client(
    config: &Config,
    base: &str,
    sandbox: Option<&Sandboxes>,
) -> anyhow::Result<Option<Arc<dyn hospital_integrations::alipay::Alipay>>> {
    use hospital_integrations::alipay::AlipayClient;
    if let Some(c) = config.alipay.clone() {
        return Ok(Some(Arc::new(AlipayClient::new(c)?)));
    }
    #[cfg(feature = "sandbox")]
    if sandbox.is_some() {
        use hospital_integrations::alipay::{test_keys, AlipayConfig};
        let client = AlipayClient::new(AlipayConfig {
            app_id: SANDBOX_ALIPAY_APP_ID.into(),
            app_private_key: secrecy::SecretString::from(test_keys::APP_PRIVATE_KEY_PEM),
            alipay_public_key: test_keys::ALIPAY_PUBLIC_KEY_PEM.into(),
            seller_id: Some(SANDBOX_ALIPAY_SELLER_ID.into()),
            gateway_url: format!("{base}/sandbox/alipay/gateway.do"),
            notify_url: format!("{base}/api/v1/payments/alipay/notify"),
        })?;
        return Ok(Some(Arc::new(client)));
    }
    let _ = (base, sandbox);
    Ok(None)
}

/// The insurance platform's client: configured, else (sandbox mode) pointed at the sandbox
/// centre with its test keys; none outside sandbox mode without credentials.
fn insurance_client(
    config: &Config,
    base: &str,
    sandbox: Option<&Sandboxes>,
) -> anyhow::Result<Option<Arc<dyn hospital_integrations::Insurance>>> {
    use hospital_integrations::InsuranceClient;
    if let Some(c) = config.insurance.clone() {
        return Ok(Some(Arc::new(InsuranceClient::new(c)?)));
    }
    #[cfg(feature = "sandbox")]
    if sandbox.is_some() {
        let keys = hospital_integrations::InsuranceConfig::with_test_keys(&format!("{base}/sandbox/insurance"));
        let client = InsuranceClient::new(keys)?;
        return Ok(Some(Arc::new(client)));
    }
    let _ = (base, sandbox);
    Ok(None)
}

#[cfg(not(feature = "sandbox"))]
fn sandbox_clients(_config: &Config, _base: &str) -> anyhow::Result<Clients> {
    bail!("gateway.sandbox is on, but this build has no sandboxes: build with the default features (`sandbox`), or turn sandbox mode off")
}
