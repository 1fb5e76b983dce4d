//! What every handler shares: the stores, the actor system, the clients of external systems,
//! the catalogue index, rate limiters and settings. Cheap to clone: one `Arc`.

use axum::extract::FromRef;
use hospital_actors::ActorSystem;
use hospital_domain::time::HospitalZone;
use hospital_integrations::wechatpay::WechatPay;
#[cfg(feature = "sandbox")]
use hospital_integrations::{wechatpay::WechatPaySandbox, RealNameSandbox, SmsSandbox, WechatSandbox};
use hospital_integrations::{RealNameVerifier, SmsSender, WechatLogin};
use hospital_store::{FieldCipher, SessionStore, Stores};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::{Arc, RwLock};

use crate::catalog_index::CatalogIndex;
use crate::config::GatewayConfig;
use crate::files::FileService;
use crate::ratelimit::RateLimits;
use crate::realtime::node::Realtime;

/// The handlers' shared state: one pointer to `Shared`. Why not the fields themselves: axum
/// clones the state for every extractor of every request, and a clone of thirty-odd `Arc`s is
/// thirty atomic increments and decrements on a hot path (2.8 % of a storm's CPU in a profile);
/// a clone of this is one.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What `AppState` points to.
pub struct Shared {
    pub stores: Stores,
    pub sessions: SessionStore,
    pub actors: ActorSystem,
    pub cipher: FieldCipher,
    /// Per-patient data keys (REC-5): visits and records are opened with them.
    pub records: hospital_store::PersonCipher,
    pub sms: Arc<dyn SmsSender>,
    pub wechat: Arc<dyn WechatLogin>,
    /// Checks a 就诊人's name against their ID number (Aliyun cloudauth, or its sandbox).
    pub real_name: Arc<dyn RealNameVerifier>,
    /// WeChat Pay (the real API, or the sandbox): verifies notifications.
    pub wechat_pay: Option<Arc<dyn WechatPay>>,
    /// Alipay (the real API, or the sandbox): verifies notifications.
    pub alipay: Option<Arc<dyn hospital_integrations::alipay::Alipay>>,
    /// The medical insurance platform (the real one, or the sandbox centre): binds identities.
    pub insurance: Option<Arc<dyn hospital_integrations::Insurance>>,
    pub catalog: Arc<RwLock<Arc<CatalogIndex>>>,
    pub limits: Arc<RateLimits>,
    pub config: Arc<GatewayConfig>,
    pub zone: HospitalZone,
    pub metrics: PrometheusHandle,
    /// The WebSocket side: hub, event log, bus.
    pub realtime: Arc<Realtime>,
    /// Where live events are published: the actors' handle, connected to the real-time bus.
    pub events: hospital_actors::Events,
    /// Object storage: checked uploads, signed download links (`http::files`).
    pub files: FileService,
    /// The role table (ADM-2), in memory; reloaded on every node when a role changes.
    pub roles: crate::roles::Roles,
    /// This node's agents' console sockets (`chat`): where the chat's actors' console events go.
    pub consoles: Arc<crate::consoles::ConsoleHub>,
    /// This node's audit chain (`audit::StaffAudit` records staff actions in it).
    pub audit: hospital_store::AuditLog,
    /// Present in sandbox mode only: the local stand-ins for SMS and WeChat.
    pub sandbox: Option<Sandboxes>,
    /// SET-2: the latest privacy texts and who accepted them (`http::consent`).
    pub consent: crate::consent_gate::ConsentGate,
}

/// The local stand-ins for the external systems (feature `sandbox`).
#[cfg(feature = "sandbox")]
#[derive(Clone)]
pub struct Sandboxes {
    pub sms: SmsSandbox,
    pub wechat: WechatSandbox,
    pub wechat_pay: WechatPaySandbox,
    /// Alipay (`/sandbox/alipay/gateway.do`; the payer at `.../sandbox/pay/{out_trade_no}`).
    pub alipay: hospital_integrations::AlipaySandbox,
    /// WeChat subscribe messages (`/sandbox/wechat-subscribe`, outbox at `.../outbox?openid=`).
    pub wechat_subscribe: hospital_integrations::SubscribeSandbox,
    /// Real-name verification (`/sandbox/aliyun-cloudauth`; persons at `/sandbox/real-name/persons`).
    pub real_name: RealNameSandbox,
    /// The medical insurance centre (`/sandbox/insurance`; the patient authorises at
    /// `.../sandbox/authorize`).
    pub insurance: hospital_integrations::InsuranceSandbox,
}

/// A build without the feature `sandbox` has no sandboxes: `AppState::sandbox` is always None.
#[cfg(not(feature = "sandbox"))]
#[derive(Clone)]
pub enum Sandboxes {}

impl AppState {
    pub fn realtime(&self) -> &Realtime {
        &self.realtime
    }

    /// The current catalogue snapshot; readers never block a reload for long.
    pub fn catalog(&self) -> Arc<CatalogIndex> {
        self.catalog.read().expect("catalog lock").clone()
    }

    /// Rebuilds the catalogue index from the store (after staff edit it).
    pub async fn reload_catalog(&self) -> Result<(), hospital_store::StoreError> {
        let idx = CatalogIndex::load(self.stores.data.as_ref()).await?;
        *self.catalog.write().expect("catalog lock") = Arc::new(idx);
        Ok(())
    }
}

impl FromRef<AppState> for FileService {
    fn from_ref(state: &AppState) -> Self {
        state.files.clone()
    }
}
