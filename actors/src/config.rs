//! What the actor system needs from the outside: the stores and a few tunables.

use hospital_domain::time::HospitalZone;
use hospital_integrations::wechatpay::WechatPay;
use hospital_store::Stores;
use std::sync::Arc;
use std::time::Duration;

/// Tunables of the actor system. `Default` gives production values.
#[derive(Debug, Clone)]
pub struct ActorConfig {
    /// An actor that has had no message for this long stops itself; the next call starts a fresh
    /// one from the store. Keeps memory bounded by the active doctors and accounts.
    pub idle_timeout: Duration,
    /// The hospital's zone: which day "today" is when a schedule actor picks its window.
    pub zone: HospitalZone,
    /// The longest a caller waits for an actor's answer, so a stuck actor never hangs a request.
    pub call_timeout: Duration,
    /// The longest a kind supervisor waits for a new actor's `pre_start` (a store read).
    pub start_timeout: Duration,
    /// An id that fails more than this many times within `restart_window` is not restarted.
    pub max_restarts: u32,
    /// The window `max_restarts` counts over.
    pub restart_window: Duration,
    /// How many days ahead of today a schedule actor loads (it also keeps yesterday).
    pub schedule_days_ahead: u32,
    /// How long an unpaid hold lasts (BOOK-3).
    pub hold_ttl: Duration,
    /// How long a place offered from the waitlist is held (BOOK-7).
    pub waitlist_hold_ttl: Duration,
    /// A booking can be cancelled until this long before its segment starts (BOOK-5).
    pub cancel_cutoff: Duration,
    /// After creating a prepay order, ask the provider this long later if no notification came.
    pub payment_check_after: Duration,
    /// Bookings per person per ISO week (BOOK-6).
    pub weekly_cap: usize,
    /// No-shows within `no_show_window` that trigger a ban, and the ban's length (BOOK-6).
    pub no_show_limit: usize,
    pub no_show_window: Duration,
    pub no_show_ban: Duration,
}

impl Default for ActorConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            zone: HospitalZone::default(),
            call_timeout: Duration::from_secs(5),
            start_timeout: Duration::from_secs(5),
            max_restarts: 5,
            restart_window: Duration::from_secs(60),
            schedule_days_ahead: 60,
            hold_ttl: Duration::from_secs(15 * 60),
            waitlist_hold_ttl: Duration::from_secs(10 * 60),
            cancel_cutoff: Duration::from_secs(2 * 3600),
            payment_check_after: Duration::from_secs(60),
            weekly_cap: 3,
            no_show_limit: 3,
            no_show_window: Duration::from_secs(90 * 24 * 3600),
            no_show_ban: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// What the platform gives the actor system: everything is made before it starts (in
/// dependency order: stores, the event bus, the payment client, the notifier), so nothing is
/// filled in later. `ActorSystem::start` adds what the system itself makes (`Context`).
#[derive(Clone)]
pub struct ActorDeps {
    pub stores: Stores,
    pub config: ActorConfig,
    /// Where actors publish live events (the real-time gateway's bus; `with_events`).
    pub events: crate::Events,
    /// The WeChat Pay client (real, or pointed at the sandbox); without it orders can only be
    /// closed, not paid.
    pub wechat_pay: Option<Arc<dyn WechatPay>>,
    /// Where the schedule actors report confirmed bookings (once durable) for the notifier.
    pub notify: crate::notifier::NotifyHandle,
}

impl ActorDeps {
    pub fn new(stores: Stores, config: ActorConfig) -> Self {
        Self { stores, config, events: crate::Events::default(), wechat_pay: None, notify: Default::default() }
    }

    /// Where actors publish live events (by default they are dropped, and personal ones wait in
    /// the store's outbox).
    pub fn with_events(mut self, events: crate::Events) -> Self {
        self.events = events;
        self
    }

    /// Gives the payment actors their provider client.
    pub fn with_wechat_pay(mut self, client: Arc<dyn WechatPay>) -> Self {
        self.wechat_pay = Some(client);
        self
    }

    /// Where confirmed bookings are reported (`Notifier::handle`).
    pub fn with_notify(mut self, notify: crate::notifier::NotifyHandle) -> Self {
        self.notify = notify;
        self
    }
}

/// What every actor holds: the platform's `ActorDeps`, and what `ActorSystem::start` made for
/// its actors before starting the tree: the effect dispatcher's sink and the system's handle
/// (how an actor reaches actors of other kinds). Nothing in it is filled in later.
pub struct Context {
    pub(crate) stores: Stores,
    pub(crate) config: ActorConfig,
    pub(crate) events: crate::Events,
    pub(crate) wechat_pay: Option<Arc<dyn WechatPay>>,
    pub(crate) notify: crate::notifier::NotifyHandle,
    /// Where booking actors send work for the payment side.
    pub(crate) effects: crate::EffectSink,
    /// Reaches actors of other kinds.
    pub(crate) system: crate::ActorSystem,
}

impl Context {
    pub(crate) fn new(deps: ActorDeps, effects: crate::EffectSink, system: crate::ActorSystem) -> Self {
        let ActorDeps { stores, config, events, wechat_pay, notify } = deps;
        Self { stores, config, events, wechat_pay, notify, effects, system }
    }
}

impl std::fmt::Debug for ActorDeps {
    // `Stores` holds trait objects without `Debug`; the config is what is worth printing.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorDeps").field("config", &self.config).finish_non_exhaustive()
    }
}
