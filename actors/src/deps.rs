//! What the actor system is given (`ActorDeps`) and what every actor holds (`Context`).

use hospital_integrations::alipay::Alipay;
use hospital_integrations::insurance::Insurance;
use hospital_integrations::wechatpay::WechatPay;
use hospital_store::{FieldCipher, PersonCipher, Stores};
use std::sync::Arc;

use crate::config::ActorConfig;
use crate::console::Consoles;
use crate::effects::EffectSink;
use crate::events::Events;
use crate::notifier::NotifyHandle;
use crate::ownership::Ownership;
use crate::system::ActorSystem;

/// The insurance platform and the key ring its sealed fields (payAuthNo, ID number) open with
/// (used by the payment actors' insurance part, `payment::insurance`).
#[derive(Clone)]
pub struct InsuranceAccess {
    pub client: Arc<dyn Insurance>,
    pub cipher: FieldCipher,
}

/// What the platform gives the actor system: everything is made before it starts (in
/// dependency order: stores, the event bus, the payment client, the notifier), so nothing is
/// filled in later. `ActorSystem::start` adds what the system itself makes (`Context`).
#[derive(Clone)]
pub struct ActorDeps {
    pub stores: Stores,
    pub config: ActorConfig,
    /// Where actors publish live events (the real-time gateway's bus; `with_events`).
    pub events: Events,
    /// The WeChat Pay client (real, or pointed at the sandbox); without it orders can only be
    /// closed, not paid.
    pub wechat_pay: Option<Arc<dyn WechatPay>>,
    /// The Alipay client (real, or pointed at the sandbox); without it orders are not paid by Alipay.
    pub alipay: Option<Arc<dyn Alipay>>,
    /// Where the schedule actors report confirmed bookings (once durable) for the notifier.
    pub notify: NotifyHandle,
    /// Per-patient data keys (REC-5): visits are sealed with them. Without it visits cannot be
    /// written (the visit actors answer `Unavailable`).
    pub records: Option<PersonCipher>,
    /// Where the chat's actors send agents' console events (`with_consoles`).
    pub consoles: Consoles,
    /// Leases for running actors on one of several nodes (`with_ownership`); None on one node.
    pub ownership: Option<Ownership>,
    /// The medical insurance platform (real, or pointed at the sandbox); without it orders are
    /// not settled through insurance.
    pub insurance: Option<InsuranceAccess>,
}

impl ActorDeps {
    pub fn new(stores: Stores, config: ActorConfig) -> Self {
        Self {
            stores,
            config,
            events: Events::default(),
            wechat_pay: None,
            alipay: None,
            notify: Default::default(),
            consoles: Consoles::default(),
            records: None,
            ownership: None,
            insurance: None,
        }
    }

    /// Gives the payment actors the insurance platform's client.
    pub fn with_insurance(mut self, insurance: InsuranceAccess) -> Self {
        self.insurance = Some(insurance);
        self
    }

    /// Several nodes: schedule and payment actors take a lease and fence their writes (`ownership`).
    pub fn with_ownership(mut self, ownership: Ownership) -> Self {
        self.ownership = Some(ownership);
        self
    }

    /// Where actors publish live events (by default they are dropped, and personal ones wait in
    /// the store's outbox).
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// Gives the payment actors their provider client.
    pub fn with_wechat_pay(mut self, client: Arc<dyn WechatPay>) -> Self {
        self.wechat_pay = Some(client);
        self
    }

    /// The per-patient data keys visits are sealed with.
    pub fn with_person_cipher(mut self, records: PersonCipher) -> Self {
        self.records = Some(records);
        self
    }

    /// Gives the payment actors their Alipay client.
    pub fn with_alipay(mut self, client: Arc<dyn Alipay>) -> Self {
        self.alipay = Some(client);
        self
    }

    /// Where confirmed bookings are reported (`Notifier::handle`).
    pub fn with_notify(mut self, notify: NotifyHandle) -> Self {
        self.notify = notify;
        self
    }

    /// Where agents' console events go (by default nowhere).
    pub fn with_consoles(mut self, consoles: Consoles) -> Self {
        self.consoles = consoles;
        self
    }
}

/// What every actor holds: the platform's `ActorDeps`, and what `ActorSystem::start` made for
/// its actors before starting the tree: the effect dispatcher's sink and the system's handle
/// (how an actor reaches actors of other kinds). Nothing in it is filled in later.
pub struct Context {
    pub(crate) stores: Stores,
    pub(crate) config: ActorConfig,
    pub(crate) events: Events,
    pub(crate) wechat_pay: Option<Arc<dyn WechatPay>>,
    pub(crate) alipay: Option<Arc<dyn Alipay>>,
    pub(crate) notify: NotifyHandle,
    pub(crate) records: Option<PersonCipher>,
    pub(crate) consoles: Consoles,
    pub(crate) ownership: Option<Ownership>,
    pub(crate) insurance: Option<InsuranceAccess>,
    /// Where booking actors send work for the payment side.
    pub(crate) effects: EffectSink,
    /// Reaches actors of other kinds.
    pub(crate) system: ActorSystem,
}

impl Context {
    pub(crate) fn new(deps: ActorDeps, effects: EffectSink, system: ActorSystem) -> Self {
        let ActorDeps { stores, config, events, wechat_pay, alipay, notify, records, consoles, ownership, insurance } =
            deps;
        Self {
            stores,
            config,
            events,
            wechat_pay,
            alipay,
            notify,
            records,
            consoles,
            ownership,
            insurance,
            effects,
            system,
        }
    }
}

impl std::fmt::Debug for ActorDeps {
    // `Stores` holds trait objects without `Debug`; the config is what is worth printing.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorDeps").field("config", &self.config).finish_non_exhaustive()
    }
}
