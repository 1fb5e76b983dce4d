//! Notifications (MSG-1..4): message categories, per-account channel preferences, reminders
//! (durable, due-time-ordered rows a notifier sends by each allowed channel), and outbound rows
//! (a message-centre message sent on by SMS and WeChat, written with the message).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::message::{Message, MessageKind};
use crate::{AccountId, AppointmentId, MessageId};

/// The tabs of the message centre. Every `MessageKind` belongs to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageCategory {
    /// Bookings, reminders, waitlist offers, clinic stops (就诊).
    Appointment,
    /// Payments and refunds (支付).
    Payment,
    /// Examination and lab reports (报告).
    Report,
    /// Notices and announcements from the hospital (系统).
    System,
}

impl MessageCategory {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "appointment" => Some(Self::Appointment),
            "payment" => Some(Self::Payment),
            "report" => Some(Self::Report),
            "system" => Some(Self::System),
            _ => None,
        }
    }
}

/// Every message kind, in a fixed order (preferences are listed in it).
pub const ALL_KINDS: [MessageKind; 12] = [
    MessageKind::BookingSuccess,
    MessageKind::VisitReminder,
    MessageKind::BookingFailure,
    MessageKind::WaitlistOffer,
    MessageKind::ClinicStopped,
    MessageKind::TimeChanged,
    MessageKind::PaymentSuccess,
    MessageKind::PaymentFailure,
    MessageKind::Refund,
    MessageKind::ReportReady,
    MessageKind::SystemNotice,
    MessageKind::Announcement,
];

/// The category a kind of message is filed under.
pub fn category_of(kind: MessageKind) -> MessageCategory {
    use MessageKind as K;
    match kind {
        K::VisitReminder
        | K::BookingSuccess
        | K::BookingFailure
        | K::WaitlistOffer
        | K::ClinicStopped
        | K::TimeChanged => MessageCategory::Appointment,
        K::PaymentSuccess | K::PaymentFailure | K::Refund => MessageCategory::Payment,
        K::ReportReady => MessageCategory::Report,
        K::SystemNotice | K::Announcement => MessageCategory::System,
    }
}

/// How a kind of message reaches a person beyond the message centre. The one place every kind
/// is mapped (a new kind does not compile until it is placed here): the store writes an outbound
/// row with every message of an `Outbound` kind, and nothing else decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutsideRoute {
    /// Reminder rows send it, with their own content (the booking confirmation, visit reminders;
    /// the queue's "your turn" message is in-app only, as it is live).
    Reminders,
    /// An outbound row, written in the same store write as the message, sends it by SMS and WeChat
    /// as the account's preferences for the kind say when it is sent.
    Outbound,
    /// The message centre only: notices and announcements go to many accounts at once, and their
    /// defaults say in-app only.
    InAppOnly,
}

pub fn outside_route(kind: MessageKind) -> OutsideRoute {
    use MessageKind as K;
    match kind {
        K::BookingSuccess | K::VisitReminder => OutsideRoute::Reminders,
        K::BookingFailure
        | K::WaitlistOffer
        | K::ClinicStopped
        | K::TimeChanged
        | K::PaymentSuccess
        | K::PaymentFailure
        | K::Refund
        | K::ReportReady => OutsideRoute::Outbound,
        K::SystemNotice | K::Announcement => OutsideRoute::InAppOnly,
    }
}

/// A way a notification reaches a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The message centre (a stored `Message`) and a live event to open sockets.
    InApp,
    /// A text message (Aliyun SMS) to the account's phone.
    Sms,
    /// A WeChat subscribe message (订阅消息) to the account's openid.
    Wechat,
}

/// The channels one kind of message goes out by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KindChannels {
    pub kind: MessageKind,
    pub in_app: bool,
    pub sms: bool,
    pub wechat: bool,
}

impl KindChannels {
    /// The defaults: what matters for getting to the visit (a booking, a reminder, an offered
    /// place, a clinic stop) goes by every channel; payment results and reports by the message
    /// centre and WeChat; hospital notices and announcements by the message centre only.
    pub fn default_for(kind: MessageKind) -> Self {
        use MessageKind as K;
        let (in_app, sms, wechat) = match kind {
            K::BookingSuccess | K::VisitReminder | K::WaitlistOffer | K::ClinicStopped | K::TimeChanged => {
                (true, true, true)
            }
            K::BookingFailure | K::PaymentSuccess | K::PaymentFailure | K::Refund | K::ReportReady => {
                (true, false, true)
            }
            K::SystemNotice | K::Announcement => (true, false, false),
        };
        Self { kind, in_app, sms, wechat }
    }

    pub fn allows(&self, channel: Channel) -> bool {
        match channel {
            Channel::InApp => self.in_app,
            Channel::Sms => self.sms,
            Channel::Wechat => self.wechat,
        }
    }

    /// The allowed channels, in a fixed order.
    pub fn channels(&self) -> Vec<Channel> {
        [Channel::InApp, Channel::Sms, Channel::Wechat].into_iter().filter(|c| self.allows(*c)).collect()
    }
}

/// An account's notification preferences: one entry per `MessageKind`, in `ALL_KINDS` order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationPreferences {
    pub kinds: Vec<KindChannels>,
}

impl Default for NotificationPreferences {
    fn default() -> Self {
        Self { kinds: ALL_KINDS.iter().map(|k| KindChannels::default_for(*k)).collect() }
    }
}

impl NotificationPreferences {
    /// The channels of `kind` (its default if, in a row written by an older version, it is missing).
    pub fn for_kind(&self, kind: MessageKind) -> KindChannels {
        self.kinds.iter().find(|k| k.kind == kind).copied().unwrap_or_else(|| KindChannels::default_for(kind))
    }

    /// Applies changes (each replaces its kind's entry); the result lists every kind once, in order.
    pub fn with_changes(&self, changes: &[KindChannels]) -> Self {
        let kinds = ALL_KINDS
            .iter()
            .map(|k| changes.iter().rev().find(|c| c.kind == *k).copied().unwrap_or_else(|| self.for_kind(*k)))
            .collect();
        Self { kinds }
    }
}

/// Why a reminder exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    /// The booking is confirmed (sent at once, by the channels the booking write did not cover).
    BookingConfirmed,
    /// The evening before the visit (18:00 local by default).
    DayBefore,
    /// Shortly before the segment starts (two hours by default).
    SoonBefore,
}

impl ReminderKind {
    /// The message kind whose preferences decide the channels.
    pub fn message_kind(self) -> MessageKind {
        match self {
            ReminderKind::BookingConfirmed => MessageKind::BookingSuccess,
            ReminderKind::DayBefore | ReminderKind::SoonBefore => MessageKind::VisitReminder,
        }
    }

    fn tag(self) -> u8 {
        match self {
            ReminderKind::BookingConfirmed => 1,
            ReminderKind::DayBefore => 2,
            ReminderKind::SoonBefore => 3,
        }
    }
}

/// A reminder's identity: derived from its appointment and kind, so scheduling the same
/// reminder twice (a repeated confirmation) finds the row already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid)]
pub struct ReminderId(pub Uuid);

impl ReminderId {
    /// A version-8 UUID: the appointment id's bytes with the kind folded into the last byte.
    pub fn of(appointment: AppointmentId, kind: ReminderKind) -> Self {
        let mut b = *appointment.0.as_bytes();
        b[15] ^= kind.tag();
        b[14] ^= 0x5a;
        Self(uuid::Builder::from_custom_bytes(b).into_uuid())
    }
}

impl std::fmt::Display for ReminderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where one channel of a reminder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not sent yet (or failed in a way worth retrying).
    Pending,
    Sent,
    /// Not applicable (no phone, no openid, or covered elsewhere).
    Skipped,
    /// Failed for good (the user refused the subscription, a bad number): not retried.
    Failed,
}

impl DeliveryState {
    pub fn is_final(self) -> bool {
        !matches!(self, DeliveryState::Pending)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChannelDelivery {
    pub channel: Channel,
    pub state: DeliveryState,
    /// Attempts made on this channel.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl ChannelDelivery {
    pub fn pending(channel: Channel) -> Self {
        Self { channel, state: DeliveryState::Pending, attempts: 0, last_error: None, sent_at: None }
    }

    pub fn skipped(channel: Channel, why: &str) -> Self {
        Self { state: DeliveryState::Skipped, last_error: Some(why.into()), ..Self::pending(channel) }
    }
}

/// Where a reminder as a whole stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReminderStatus {
    /// Waiting for `due_at` (first time, or again after a failed channel).
    Pending,
    /// Every channel is sent, skipped or failed for good.
    Done,
    /// Not sent: the appointment was cancelled, or the reminder came too late to matter.
    Skipped,
    /// `max_attempts` reached with a channel still failing.
    GaveUp,
}

/// A reminder: one row, due at `due_at`, sent by the channels the account's preferences allow
/// when it first comes due (then fixed, so a retry never adds or drops a channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reminder {
    pub id: ReminderId,
    pub account_id: AccountId,
    pub appointment_id: AppointmentId,
    pub kind: ReminderKind,
    /// When it is next to be worked on: first the scheduled time, then each retry's.
    pub due_at: DateTime<Utc>,
    /// The scheduled time, never moved by a retry (the in-app message's time); a change of the
    /// visit's time (号源调整) moves it with `due_at`.
    pub scheduled_for: DateTime<Utc>,
    /// Past this (the visit's start) the reminder is pointless and is dropped, not sent.
    pub expires_at: DateTime<Utc>,
    /// Attempts made so far (each sends every channel still pending).
    pub attempts: u32,
    /// Empty until the first attempt decides the channels.
    pub channels: Vec<ChannelDelivery>,
    /// Channels something else already covered: the booking write stores the confirmation's
    /// in-app message itself.
    pub covered: Vec<Channel>,
    pub status: ReminderStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub note: Option<String>,
}

impl Reminder {
    pub fn new(
        account_id: AccountId,
        appointment_id: AppointmentId,
        kind: ReminderKind,
        due_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: ReminderId::of(appointment_id, kind),
            account_id,
            appointment_id,
            kind,
            due_at,
            scheduled_for: due_at,
            expires_at,
            attempts: 0,
            channels: Vec::new(),
            covered: Vec::new(),
            status: ReminderStatus::Pending,
            created_at: now,
            updated_at: now,
            note: None,
        }
    }

    pub fn channel(&self, c: Channel) -> Option<&ChannelDelivery> {
        self.channels.iter().find(|d| d.channel == c)
    }

    /// The id of the in-app message this reminder writes: derived from the reminder (so a retry
    /// after a crash rewrites the same message, never a second one) and time-ordered at the
    /// scheduled time, like every message id.
    pub fn message_id(&self) -> MessageId {
        let millis = self.scheduled_for.timestamp_millis().max(0) as u64;
        let tail: [u8; 10] = self.id.0.as_bytes()[6..16].try_into().expect("10 bytes");
        MessageId(uuid::Builder::from_unix_timestamp_millis(millis, &tail).into_uuid())
    }
}

/// An outbound delivery: a message-centre message of an `OutsideRoute::Outbound` kind, to be sent
/// by SMS and WeChat. Written with the message (same store write, so a crash loses neither) and
/// keyed by its id, so writing the message again finds the row there. The channels are decided
/// from the account's preferences at the first attempt, then fixed; each channel keeps its own
/// state, so a retry never sends a channel twice. Same lease, backoff and give-up as reminders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbound {
    /// The message as written (its id is the row's id; its text is what goes out).
    pub message: Message,
    /// When it is next to be worked on: the message's time, then each retry's.
    pub due_at: DateTime<Utc>,
    /// Attempts made so far (each sends every channel still pending).
    pub attempts: u32,
    /// Empty until the first attempt decides the channels (never `InApp`: the message is stored).
    pub channels: Vec<ChannelDelivery>,
    pub status: ReminderStatus,
    pub updated_at: DateTime<Utc>,
    pub note: Option<String>,
}

impl Outbound {
    /// The row for a newly written message, due at once.
    pub fn of(message: &Message) -> Self {
        let mut m = message.clone();
        m.read = false;
        Self {
            due_at: m.created_at,
            updated_at: m.created_at,
            message: m,
            attempts: 0,
            channels: Vec::new(),
            status: ReminderStatus::Pending,
            note: None,
        }
    }

    pub fn id(&self) -> MessageId {
        self.message.id
    }

    pub fn channel(&self, c: Channel) -> Option<&ChannelDelivery> {
        self.channels.iter().find(|d| d.channel == c)
    }
}

/// The hour bucket (unix hours) a due time falls in: the partition of the `reminders_due` table.
pub fn due_bucket(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_category_and_defaults() {
        let p = NotificationPreferences::default();
        assert_eq!(p.kinds.len(), ALL_KINDS.len());
        assert_eq!(
            p.for_kind(MessageKind::BookingSuccess).channels(),
            vec![Channel::InApp, Channel::Sms, Channel::Wechat]
        );
        assert_eq!(p.for_kind(MessageKind::VisitReminder).channels().len(), 3);
        assert_eq!(p.for_kind(MessageKind::Announcement).channels(), vec![Channel::InApp]);
        assert_eq!(category_of(MessageKind::Refund), MessageCategory::Payment);
        assert_eq!(category_of(MessageKind::VisitReminder), MessageCategory::Appointment);
        let changed = p.with_changes(&[KindChannels {
            kind: MessageKind::VisitReminder,
            in_app: true,
            sms: false,
            wechat: true,
        }]);
        assert_eq!(changed.for_kind(MessageKind::VisitReminder).channels(), vec![Channel::InApp, Channel::Wechat]);
        assert_eq!(changed.kinds.len(), ALL_KINDS.len());
    }

    #[test]
    fn every_outbound_kind_may_go_out_and_in_app_only_kinds_default_to_in_app() {
        for k in ALL_KINDS {
            let d = KindChannels::default_for(k);
            match outside_route(k) {
                OutsideRoute::InAppOnly => assert!(!d.sms && !d.wechat, "{k:?}"),
                OutsideRoute::Outbound | OutsideRoute::Reminders => assert!(d.sms || d.wechat, "{k:?}"),
            }
        }
        let m = Message::new(AccountId::new(), MessageKind::ClinicStopped, "停诊通知", "b", None, Utc::now());
        let o = Outbound::of(&m);
        assert_eq!((o.id(), o.due_at, o.status), (m.id, m.created_at, ReminderStatus::Pending));
    }

    #[test]
    fn reminder_ids_are_stable_and_distinct() {
        let a = AppointmentId::new();
        assert_eq!(ReminderId::of(a, ReminderKind::DayBefore), ReminderId::of(a, ReminderKind::DayBefore));
        assert_ne!(ReminderId::of(a, ReminderKind::DayBefore), ReminderId::of(a, ReminderKind::SoonBefore));
        assert_ne!(ReminderId::of(a, ReminderKind::DayBefore).0, a.0);
        let now = Utc::now();
        let r = Reminder::new(AccountId::new(), a, ReminderKind::DayBefore, now, now, now);
        assert_eq!(r.message_id(), r.message_id());
        assert_eq!(r.message_id().0.get_version_num(), 7);
        assert_eq!(due_bucket(now), now.timestamp() / 3600);
    }
}
