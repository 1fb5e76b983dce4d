//! The actor crate's one configuration type, `ActorConfig` (with the notifier's section), and
//! every default in one place. It is the `[actors]` section of the platform's config file; keys
//! carry their unit (`_secs`, `_ms`), the fields are `Duration`s.

use chrono::NaiveTime;
use hospital_domain::message::MessageKind;
use hospital_domain::schedule::BookingClose;
use hospital_domain::time::HospitalZone;
use hospital_integrations::wechat_subscribe::MiniprogramState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Tunables of the actor system. `Default` gives production values; tests shorten the clocks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActorConfig {
    /// An actor that has had no message for this long stops itself; the next call starts a fresh
    /// one from the store. Keeps memory bounded by the active doctors and accounts.
    #[serde(rename = "idle_timeout_secs", with = "secs")]
    pub idle_timeout: Duration,
    /// The hospital's zone: which day "today" is when a schedule actor picks its window. Not a
    /// key of its own: the platform sets it from `gateway.timezone`.
    #[serde(skip)]
    pub zone: HospitalZone,
    /// The longest a caller waits for an actor's answer, so a stuck actor never hangs a request.
    #[serde(rename = "call_timeout_ms", with = "millis")]
    pub call_timeout: Duration,
    /// The longest a kind supervisor waits for a new actor's `pre_start` (a store read).
    #[serde(rename = "start_timeout_ms", with = "millis")]
    pub start_timeout: Duration,
    /// An id that fails more than this many times within `restart_window` is not restarted.
    pub max_restarts: u32,
    /// The window `max_restarts` counts over.
    #[serde(rename = "restart_window_secs", with = "secs")]
    pub restart_window: Duration,
    /// How many days ahead of today a schedule actor loads (it also keeps yesterday).
    pub schedule_days_ahead: u32,
    /// How long an unpaid hold lasts (BOOK-3).
    #[serde(rename = "hold_ttl_secs", with = "secs")]
    pub hold_ttl: Duration,
    /// How long a place offered from the waitlist is held (BOOK-7).
    #[serde(rename = "waitlist_hold_ttl_secs", with = "secs")]
    pub waitlist_hold_ttl: Duration,
    /// A slot can still be booked or moved into (and its session's line joined) this long after
    /// its segment ends; 0 closes it at the end. A session of an earlier day is closed whatever
    /// this says. Tests that book today's sessions at any hour set it to a day.
    #[serde(rename = "late_booking_secs", with = "secs")]
    pub late_booking: Duration,
    /// Set, a slot stops taking bookings (and moves into it) this long before it starts instead,
    /// for a hospital whose desk works from the list made before each slot; `late_booking` is
    /// then not used. Unset (the default), booking closes as `late_booking` says.
    #[serde(rename = "booking_cutoff_before_start_secs", with = "opt_secs")]
    pub booking_cutoff: Option<Duration>,
    /// A booking can be cancelled until this long before its segment starts (BOOK-5).
    #[serde(rename = "cancel_cutoff_secs", with = "secs")]
    pub cancel_cutoff: Duration,
    /// After creating a prepay order, ask the provider this long later if no notification came.
    #[serde(rename = "payment_check_after_secs", with = "secs")]
    pub payment_check_after: Duration,
    /// A fee order (检查费, 药费) or a top-up left unpaid this long expires: closed at the
    /// providers, its items free to be ordered again.
    #[serde(rename = "fee_order_ttl_secs", with = "secs")]
    pub fee_order_ttl: Duration,
    /// How often the open-order sweeper looks for orders due (expiry, a payment or refund to
    /// chase), including those a restart left.
    #[serde(rename = "order_sweep_secs", with = "secs")]
    pub order_sweep: Duration,
    /// Bookings per person per ISO week (BOOK-6).
    pub weekly_cap: usize,
    /// No-shows within `no_show_window` that trigger a ban, and the ban's length (BOOK-6).
    pub no_show_limit: usize,
    #[serde(rename = "no_show_window_secs", with = "secs")]
    pub no_show_window: Duration,
    #[serde(rename = "no_show_ban_secs", with = "secs")]
    pub no_show_ban: Duration,
    /// The notifier's section (`[actors.notifier]`).
    pub notifier: NotifierConfig,
    /// The durable jobs' section (`[actors.jobs]`).
    pub jobs: JobsConfig,
    /// The customer-service chat's section (`[actors.chat]`).
    pub chat: ChatConfig,
}

/// Agents' presence in the chat's dispatchers (CS-2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// A console connection not heard from (heartbeat) for this long is gone.
    #[serde(rename = "presence_lease_secs", with = "secs")]
    pub presence_lease: Duration,
    /// A console socket that closed still counts for this long (a page reload reconnects).
    #[serde(rename = "presence_grace_ms", with = "millis")]
    pub presence_grace: Duration,
    /// How often a dispatcher looks for lapsed connections.
    #[serde(rename = "presence_tick_ms", with = "millis")]
    pub presence_tick: Duration,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            presence_lease: Duration::from_secs(90),
            presence_grace: Duration::from_secs(10),
            presence_tick: Duration::from_secs(1),
        }
    }
}

impl ActorConfig {
    /// When booking into a segment closes, by `late_booking` and `booking_cutoff`.
    pub fn booking_close(&self) -> BookingClose {
        BookingClose { late: self.late_booking, before_start: self.booking_cutoff }
    }
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
            late_booking: Duration::ZERO,
            booking_cutoff: None,
            cancel_cutoff: Duration::from_secs(2 * 3600),
            payment_check_after: Duration::from_secs(60),
            fee_order_ttl: Duration::from_secs(30 * 60),
            order_sweep: Duration::from_secs(5),
            weekly_cap: 3,
            no_show_limit: 3,
            no_show_window: Duration::from_secs(90 * 24 * 3600),
            no_show_ban: Duration::from_secs(30 * 24 * 3600),
            notifier: NotifierConfig::default(),
            jobs: JobsConfig::default(),
            chat: ChatConfig::default(),
        }
    }
}

/// Tunables of the durable jobs' runner (`jobs`): closing sessions, erasing accounts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// How often due jobs are looked for.
    #[serde(rename = "tick_ms", with = "millis")]
    pub tick: Duration,
    /// A session is closed (its never-checked-in bookings become no-shows) this long after its
    /// last segment ends, so a late arrival at the desk is not a no-show yet.
    #[serde(rename = "session_close_grace_secs", with = "secs")]
    pub session_close_grace: Duration,
    /// How long a claimed job is ours; past it another worker may take it.
    #[serde(rename = "lease_secs", with = "secs")]
    pub lease: Duration,
    /// The first retry waits this long, each later one twice as long, at most `retry_max`.
    #[serde(rename = "retry_base_ms", with = "millis")]
    pub retry_base: Duration,
    #[serde(rename = "retry_max_secs", with = "secs")]
    pub retry_max: Duration,
    /// How far back due jobs are looked for (after a long outage).
    #[serde(rename = "lookback_secs", with = "secs")]
    pub lookback: Duration,
    /// At most this many jobs per tick.
    pub batch: usize,
    /// An account deletion is carried out this long after it was asked for, unless cancelled
    /// (SET-3: 7 days).
    #[serde(rename = "erase_cooling_off_secs", with = "secs")]
    pub erase_cooling_off: Duration,
    /// Stored schedule templates (BOOK-9) make sessions this many weeks ahead (from tomorrow)...
    pub template_weeks_ahead: u32,
    /// ... applied every day at this local time (and at once when a template is saved).
    pub template_apply_at: NaiveTime,
    /// Whether the daily reconciliation with the providers' bills (PAY-4) is scheduled; off
    /// where no bills can be fetched (the run route still works).
    pub reconcile: bool,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(5),
            session_close_grace: Duration::from_secs(30 * 60),
            lease: Duration::from_secs(120),
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(30 * 60),
            lookback: Duration::from_secs(30 * 24 * 3600),
            batch: 100,
            erase_cooling_off: Duration::from_secs(7 * 24 * 3600),
            template_weeks_ahead: 4,
            template_apply_at: NaiveTime::from_hms_opt(2, 0, 0).expect("02:00"),
            reconcile: true,
        }
    }
}

/// Tunables of the notifier (`notifier`). `Default` gives production values; tests shorten the
/// clock.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifierConfig {
    /// How often due reminders and outbound messages are looked for.
    #[serde(rename = "tick_ms", with = "millis")]
    pub tick: Duration,
    /// The local time of the evening-before reminder.
    pub day_before_at: NaiveTime,
    /// How long before the segment starts the last reminder goes.
    #[serde(rename = "soon_before_secs", with = "secs")]
    pub soon_before: Duration,
    /// Attempts per reminder before the channels still failing are given up.
    pub max_attempts: u32,
    /// The first retry waits this long, each later one twice as long, at most `retry_max`.
    #[serde(rename = "retry_base_ms", with = "millis")]
    pub retry_base: Duration,
    #[serde(rename = "retry_max_secs", with = "secs")]
    pub retry_max: Duration,
    /// How long a claimed reminder is ours; past it another worker may take it.
    #[serde(rename = "lease_secs", with = "secs")]
    pub lease: Duration,
    /// How far back due reminders are looked for (after an outage): older ones are left.
    #[serde(rename = "lookback_secs", with = "secs")]
    pub lookback: Duration,
    /// At most this many reminders, and as many outbound messages, per tick.
    pub batch: usize,
    pub sms_booking_template: String,
    pub sms_reminder_template: String,
    /// WeChat subscribe-message templates (keys `thing1` patient, `time2` visit time, `thing3`
    /// doctor, `thing4` note); None = no WeChat for that kind.
    pub wechat_booking_template: Option<String>,
    pub wechat_reminder_template: Option<String>,
    pub miniprogram_state: MiniprogramState,
    /// The templates of the messages outbound rows send on (clinic stops, waitlist offers,
    /// payment results, ...), by message kind as the API names it: `[actors.notifier.outbound.
    /// clinic_stopped]` `sms_template = "..."`, `wechat_template = "..."`. Each takes the SMS
    /// parameters `title` and `content` and the WeChat keys `OUTBOUND_WECHAT_KEYS`.
    pub outbound: BTreeMap<String, OutboundTemplates>,
    /// The templates of a kind sent on that has no entry in `outbound` (a kind added later).
    pub outbound_fallback: OutboundTemplates,
}

/// The SMS and WeChat templates of one kind of message; None: not sent by that channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundTemplates {
    pub sms_template: Option<String>,
    pub wechat_template: Option<String>,
}

impl OutboundTemplates {
    fn of(sms: &str, wechat: &str) -> Self {
        Self { sms_template: Some(sms.into()), wechat_template: Some(wechat.into()) }
    }
}

impl NotifierConfig {
    /// The templates an outbound row of `kind` is sent with.
    pub fn outbound_templates(&self, kind: MessageKind) -> &OutboundTemplates {
        self.outbound.get(&kind_name(kind)).unwrap_or(&self.outbound_fallback)
    }

    /// `outbound` keys that name no message kind (a typo would otherwise silently fall back).
    pub fn unknown_outbound_kinds(&self) -> Vec<String> {
        let known: Vec<String> = hospital_domain::notify::ALL_KINDS.iter().map(|k| kind_name(*k)).collect();
        self.outbound.keys().filter(|k| !known.contains(k)).cloned().collect()
    }
}

/// A kind's name as the API and the config spell it (`clinic_stopped`).
fn kind_name(kind: MessageKind) -> String {
    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// The SMS templates the notifier uses, as approved in the Aliyun console (and registered in the
/// SMS sandbox by the app).
pub const SMS_BOOKING_TEMPLATE: &str = "SMS_BOOKING_SUCCESS";
pub const SMS_BOOKING_TEXT: &str = "${name}您好，您已预约${time}${doctor}门诊，就诊序号${no}。";
pub const SMS_REMINDER_TEMPLATE: &str = "SMS_VISIT_REMINDER";
pub const SMS_REMINDER_TEXT: &str = "${name}您好，您预约的${doctor}门诊将于${time}开始，请提前15分钟到院签到。";
/// The WeChat subscribe-message templates' ids and keys (the sandbox registers the same).
pub const WECHAT_BOOKING_TEMPLATE: &str = "booking-success-tmpl";
pub const WECHAT_REMINDER_TEMPLATE: &str = "visit-reminder-tmpl";
pub const WECHAT_TEMPLATE_KEYS: &[&str] = &["thing1", "time2", "thing3", "thing4"];

/// The approved templates of the messages outbound rows send on, by kind: (kind, SMS template
/// code, its text as approved, WeChat subscribe template id). Every SMS one takes `title` and
/// `content`; every WeChat one the keys `OUTBOUND_WECHAT_KEYS` (`thing1` title, `time2` the
/// message's time, `thing3` its text, shortened).
pub const OUTBOUND_TEMPLATES: &[(MessageKind, &str, &str, &str)] = &[
    (
        MessageKind::ClinicStopped,
        "SMS_CLINIC_STOPPED",
        "${title}：${content}如需就诊请重新预约。",
        "clinic-stopped-tmpl",
    ),
    (MessageKind::WaitlistOffer, "SMS_WAITLIST_OFFER", "${title}：${content}", "waitlist-offer-tmpl"),
    (MessageKind::BookingFailure, "SMS_BOOKING_FAILURE", "${title}：${content}", "booking-failure-tmpl"),
    (MessageKind::PaymentSuccess, "SMS_PAYMENT_RESULT", SMS_PAYMENT_TEXT, "payment-result-tmpl"),
    (MessageKind::PaymentFailure, "SMS_PAYMENT_RESULT", SMS_PAYMENT_TEXT, "payment-result-tmpl"),
    (MessageKind::Refund, "SMS_PAYMENT_RESULT", SMS_PAYMENT_TEXT, "payment-result-tmpl"),
    (MessageKind::ReportReady, "SMS_REPORT_READY", "${title}：${content}请在“我的报告”中查看。", "report-ready-tmpl"),
];
const SMS_PAYMENT_TEXT: &str = "${title}：${content}如有疑问请联系医院收费处。";
/// (SMS template code, its text, WeChat template id) of a kind sent on without its own entry.
pub const OUTBOUND_FALLBACK: (&str, &str, &str) =
    ("SMS_HOSPITAL_NOTICE", "${title}：${content}", "hospital-notice-tmpl");
pub const OUTBOUND_WECHAT_KEYS: &[&str] = &["thing1", "time2", "thing3"];

/// Every SMS template the notifier sends, with its approved text: what the sandbox registers.
pub fn sms_templates() -> Vec<(&'static str, &'static str)> {
    let mut v = vec![(SMS_BOOKING_TEMPLATE, SMS_BOOKING_TEXT), (SMS_REMINDER_TEMPLATE, SMS_REMINDER_TEXT)];
    v.extend(OUTBOUND_TEMPLATES.iter().map(|(_, code, text, _)| (*code, *text)));
    v.push((OUTBOUND_FALLBACK.0, OUTBOUND_FALLBACK.1));
    v.sort();
    v.dedup();
    v
}

/// Every WeChat subscribe template the notifier sends, with its keys: what the sandbox registers.
pub fn wechat_templates() -> Vec<(&'static str, &'static [&'static str])> {
    let mut v = vec![(WECHAT_BOOKING_TEMPLATE, WECHAT_TEMPLATE_KEYS), (WECHAT_REMINDER_TEMPLATE, WECHAT_TEMPLATE_KEYS)];
    v.extend(OUTBOUND_TEMPLATES.iter().map(|(_, _, _, id)| (*id, OUTBOUND_WECHAT_KEYS)));
    v.push((OUTBOUND_FALLBACK.2, OUTBOUND_WECHAT_KEYS));
    v.sort();
    v.dedup();
    v
}

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(2),
            day_before_at: NaiveTime::from_hms_opt(18, 0, 0).expect("18:00"),
            soon_before: Duration::from_secs(2 * 3600),
            max_attempts: 6,
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(30 * 60),
            lease: Duration::from_secs(60),
            lookback: Duration::from_secs(24 * 3600),
            batch: 200,
            sms_booking_template: SMS_BOOKING_TEMPLATE.into(),
            sms_reminder_template: SMS_REMINDER_TEMPLATE.into(),
            wechat_booking_template: Some(WECHAT_BOOKING_TEMPLATE.into()),
            wechat_reminder_template: Some(WECHAT_REMINDER_TEMPLATE.into()),
            miniprogram_state: MiniprogramState::Formal,
            outbound: OUTBOUND_TEMPLATES
                .iter()
                .map(|(kind, sms, _, wechat)| (kind_name(*kind), OutboundTemplates::of(sms, wechat)))
                .collect(),
            outbound_fallback: OutboundTemplates::of(OUTBOUND_FALLBACK.0, OUTBOUND_FALLBACK.2),
        }
    }
}

/// `Duration`s as whole seconds in the config file.
mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// Optional `Duration`s as whole seconds in the config file (absent: `None`).
mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|o| o.map(Duration::from_secs))
    }
}

/// `Duration`s as whole milliseconds in the config file.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
