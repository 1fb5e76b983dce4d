//! The live events clients receive over the WebSocket gateway (PLAT-2), as types: every kind of
//! event with its payload, so what an actor publishes, what the log keeps and what a client
//! decodes are one definition. Encoded as `{"type": <kind>, "payload": {...}}` (serde's adjacent
//! tagging), the same in JSON and MessagePack; the gateway adds `seq` and `id` around it
//! (docs/realtime.md).
//!
//! Two families:
//! - `PersonalEvent`: for one account, numbered per account, logged, replayed on resume;
//! - `TopicEvent`: the current state of a public topic (`doctor:<id>`, `department:<id>`,
//!   `queue:<session>`), not numbered, coalesced (latest value wins) per `coalesce_key`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::account::Profile;
use crate::appointment::{Appointment, AppointmentStatus};
use crate::chat::console::ChatTyping;
use crate::chat::conversation::{ChatMessage, ConversationUpdate, ReadReceipt};
use crate::chat::dispatcher::ChatQueuePosition;
use crate::chat::ticket::TicketUpdate;
use crate::exam::{Exam, ExamKind, ExamStatus};
use crate::message::Message;
use crate::order::{Order, OrderKind, OrderStatus};
use crate::schedule::{Period, SessionStatus, SlotId};
use crate::{AccountId, AppointmentId, DepartmentId, DoctorId, ExamId, Fen, MessageId, OrderId, PatientId, SessionId};

/// An event for one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum PersonalEvent {
    /// One of the account's appointments changed (held, confirmed, cancelled, expired, ...).
    Appointment(AppointmentUpdate),
    /// One of the account's orders changed status (`created` included).
    Order(OrderUpdate),
    /// A new item in the message centre.
    Message(Message),
    /// The account's unread message count changed.
    Unread(UnreadCount),
    /// The patient's place in a waiting queue.
    Queue(QueueUpdate),
    /// An exam moved on.
    Exam(ExamUpdate),
    /// An exam's result is abnormal.
    ExamAlert(ExamAlert),
    /// The account's profile changed (on another device, say).
    Profile(ProfileUpdate),
    /// A new message in one of the account's customer-service conversations.
    ChatMessage(ChatMessage),
    /// One of the account's conversations changed: assigned (with the agent's name), handed
    /// back, transferred, closed, rated.
    Conversation(ConversationUpdate),
    /// The account's place in a service group's backlog and the estimated wait (CS-3).
    ChatQueue(ChatQueuePosition),
    /// The other side read the account's conversation up to a message.
    ChatRead(ReadReceipt),
    /// A message the account left outside service hours was answered or closed.
    Ticket(TicketUpdate),
    /// The account's balance moved (PAY-5): a top-up, a payment from it, a refund to it.
    Balance(BalanceUpdate),
}

impl PersonalEvent {
    /// The `type` on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            PersonalEvent::Appointment(_) => "appointment",
            PersonalEvent::Order(_) => "order",
            PersonalEvent::Message(_) => "message",
            PersonalEvent::Unread(_) => "unread",
            PersonalEvent::Queue(_) => "queue",
            PersonalEvent::Exam(_) => "exam",
            PersonalEvent::ExamAlert(_) => "exam_alert",
            PersonalEvent::Profile(_) => "profile",
            PersonalEvent::ChatMessage(_) => "chat_message",
            PersonalEvent::Conversation(_) => "conversation",
            PersonalEvent::ChatQueue(_) => "chat_queue",
            PersonalEvent::ChatRead(_) => "chat_read",
            PersonalEvent::Ticket(_) => "ticket",
            PersonalEvent::Balance(_) => "balance",
        }
    }

    /// Whether the account's unread count may have changed with this event (then the gateway
    /// follows it with a fresh `unread`).
    pub fn changes_unread(&self) -> bool {
        matches!(self, PersonalEvent::Message(_))
    }
}

/// An appointment as live events carry it (the REST view has more; this is what changes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppointmentUpdate {
    pub id: AppointmentId,
    pub status: AppointmentStatus,
    pub slot_id: SlotId,
    pub place: u32,
    #[serde(serialize_with = "crate::timestamp::date")]
    pub date: NaiveDate,
    pub period: Period,
    pub patient_id: PatientId,
    pub order_id: OrderId,
    pub slip_no: Option<String>,
    #[serde(serialize_with = "crate::timestamp::serialize")]
    pub hold_expires_at: DateTime<Utc>,
    pub from_waitlist: bool,
}

impl From<&Appointment> for AppointmentUpdate {
    fn from(a: &Appointment) -> Self {
        Self {
            id: a.id,
            status: a.status,
            slot_id: a.slot,
            place: a.place,
            date: a.date,
            period: a.period,
            patient_id: a.patient_id,
            order_id: a.order_id,
            slip_no: a.slip_no.clone(),
            hold_expires_at: a.hold_expires_at,
            from_waitlist: a.from_waitlist,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderUpdate {
    pub id: OrderId,
    pub kind: OrderKind,
    pub status: OrderStatus,
    /// In fen.
    pub amount: Fen,
    /// Refunded so far, in fen.
    #[serde(default)]
    pub refunded: Fen,
    /// The appointment a registration order pays for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<AppointmentId>,
    #[serde(default, serialize_with = "crate::timestamp::serialize_opt")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The cash channel (`wechat_pay`, `alipay`, `balance`) once chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<crate::ledger::Channel>,
}

impl From<&Order> for OrderUpdate {
    fn from(o: &Order) -> Self {
        Self {
            id: o.id,
            kind: o.kind,
            status: o.status,
            amount: o.amount,
            refunded: o.refunded_total(),
            appointment_id: o.appointment_id,
            expires_at: Some(o.expires_at),
            channel: o.channel,
        }
    }
}

/// The account's balance after a movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceUpdate {
    /// In fen.
    pub balance: i64,
    /// What moved it: the movement's key, kind and amount (positive: in).
    pub key: String,
    pub kind: crate::ledger::MovementKind,
    pub amount: i64,
    pub order_id: Option<OrderId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadCount {
    pub count: usize,
}

/// Where a patient stands in a session's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueStatus {
    Waiting,
    Called,
    Skipped,
    Done,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueUpdate {
    pub session_id: SessionId,
    pub appointment_id: AppointmentId,
    pub status: QueueStatus,
    /// Waiting: 1 is next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ahead: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_wait_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<u32>,
    /// Called: the consulting room to go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub called_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExamUpdate {
    pub id: ExamId,
    pub patient_id: PatientId,
    pub name: String,
    pub kind: ExamKind,
    pub status: ExamStatus,
    /// 待检查 / 检查中 / 已完成
    pub status_label: String,
    pub abnormal: bool,
    /// The result preview is never in an event: events are kept in the outbox and the replay
    /// buffer, which are not sealed per patient (REC-5). The client reads it from
    /// `GET /api/v1/me/exams/{id}`, where the caller is checked.
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<&Exam> for ExamUpdate {
    fn from(e: &Exam) -> Self {
        Self {
            id: e.id,
            patient_id: e.patient_id,
            name: e.name.clone(),
            kind: e.kind,
            status: e.status,
            status_label: e.status.label().to_string(),
            abnormal: e.abnormal,
            updated_at: e.updated_at,
            completed_at: e.completed_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExamAlert {
    pub id: ExamId,
    pub patient_id: PatientId,
    pub name: String,
    pub status: ExamStatus,
    pub abnormal: bool,
    /// The alert's title in the message centre (no result preview: see `ExamUpdate`).
    pub title: String,
    pub message_id: MessageId,
}

impl ExamAlert {
    pub fn new(e: &Exam, alert: &Message) -> Self {
        Self {
            id: e.id,
            patient_id: e.patient_id,
            name: e.name.clone(),
            status: e.status,
            abnormal: e.abnormal,
            title: alert.title.clone(),
            message_id: alert.id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileUpdate {
    pub id: AccountId,
    /// Masked: `138****8000`.
    pub phone: Option<String>,
    pub email: Option<String>,
    pub wechat_bound: bool,
    pub has_password: bool,
    pub profile: Profile,
    pub created_at: DateTime<Utc>,
}

/// The state of a public topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum TopicEvent {
    /// Places left in one session of a doctor (`doctor:<id>` and `department:<id>`).
    Availability(TopicUpdate<Availability>),
    /// The public summary of a session's queue (`queue:<session>`): the waiting-room screen.
    QueueSummary(TopicUpdate<QueueSummary>),
    /// The agent is typing in one of the account's conversations (`conversation:<id>`): sent
    /// straight to the account's sockets, never logged (transient).
    Typing(TopicUpdate<ChatTyping>),
}

/// A topic's new state, wrapped with the topic's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicUpdate<T> {
    pub topic: String,
    pub data: T,
}

impl TopicEvent {
    pub fn availability(topic: String, data: Availability) -> Self {
        TopicEvent::Availability(TopicUpdate { topic, data })
    }

    pub fn queue_summary(data: QueueSummary) -> Self {
        TopicEvent::QueueSummary(TopicUpdate { topic: format!("queue:{}", data.session_id), data })
    }

    pub fn typing(data: ChatTyping) -> Self {
        TopicEvent::Typing(TopicUpdate { topic: format!("conversation:{}", data.conversation_id), data })
    }

    pub fn topic(&self) -> &str {
        match self {
            TopicEvent::Availability(u) => &u.topic,
            TopicEvent::QueueSummary(u) => &u.topic,
            TopicEvent::Typing(u) => &u.topic,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            TopicEvent::Availability(_) => "availability",
            TopicEvent::QueueSummary(_) => "queue_summary",
            TopicEvent::Typing(_) => "typing",
        }
    }

    /// What a newer update replaces: one value per session of a doctor or department (a doctor's
    /// topic carries each of its sessions), one per queue.
    pub fn coalesce_key(&self) -> (String, Option<SessionId>) {
        match self {
            TopicEvent::Availability(u) => (u.topic.clone(), Some(u.data.session_id)),
            TopicEvent::QueueSummary(u) => (u.topic.clone(), None),
            TopicEvent::Typing(u) => (u.topic.clone(), None),
        }
    }
}

/// Places left in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Availability {
    pub doctor_id: DoctorId,
    pub department_id: DepartmentId,
    pub session_id: SessionId,
    pub date: NaiveDate,
    pub period: Period,
    pub status: SessionStatus,
    /// Places left per segment, in the order of the doctor's schedule.
    pub remaining: Vec<u32>,
    /// The first segment still open to booking: those before it have closed, their time past
    /// (the REST schedule's `closed`); the number of segments once all have. A segment's closing
    /// is published as it happens. (Absent from events of nodes before it: all open.)
    #[serde(default)]
    pub open_from: usize,
    /// Patients on the session's waitlist.
    pub waiting: usize,
}

/// Who is being called, on the waiting-room screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calling {
    pub segment: u16,
    pub place: u32,
    pub room: String,
    pub called_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSummary {
    pub session_id: SessionId,
    pub doctor_id: DoctorId,
    pub date: NaiveDate,
    pub period: Period,
    pub calling: Option<Calling>,
    pub waiting: usize,
    pub skipped: usize,
    pub done: usize,
    pub average_consultation_minutes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_events_are_type_and_payload() {
        let e = PersonalEvent::Unread(UnreadCount { count: 3 });
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v, serde_json::json!({"type": "unread", "payload": {"count": 3}}));
        assert_eq!(e.kind(), "unread");
        let back: PersonalEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        // MessagePack carries the same map.
        let mp = rmp_serde::to_vec_named(&e).unwrap();
        assert_eq!(rmp_serde::from_slice::<PersonalEvent>(&mp).unwrap(), e);
    }

    #[test]
    fn kind_matches_the_serialised_tag() {
        let q = PersonalEvent::Queue(QueueUpdate {
            session_id: SessionId::new(),
            appointment_id: AppointmentId::new(),
            status: QueueStatus::Waiting,
            position: Some(2),
            ahead: Some(1),
            estimated_wait_minutes: Some(8),
            segment: None,
            place: None,
            room: None,
            called_at: None,
        });
        assert_eq!(serde_json::to_value(&q).unwrap()["type"], q.kind());
        let t = TopicEvent::queue_summary(QueueSummary {
            session_id: SessionId::new(),
            doctor_id: DoctorId::new(),
            date: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            period: Period::Morning,
            calling: None,
            waiting: 0,
            skipped: 0,
            done: 0,
            average_consultation_minutes: 0,
        });
        assert_eq!(serde_json::to_value(&t).unwrap()["type"], t.kind());
        assert!(t.topic().starts_with("queue:"));
    }

    #[test]
    fn chat_events_are_typed_like_the_others() {
        use crate::chat::conversation::{Conversation, MessageBody, Reader, Sender};
        use crate::chat::dispatcher::{Arrival, Dispatcher};
        use crate::chat::ticket::Ticket;
        use crate::chat::{AgentRef, GroupCode};
        use crate::{ConversationId, StaffId, TicketId};

        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let group = GroupCode::parse("booking").unwrap();
        let mut c = Conversation::open(ConversationId::new(), AccountId::new(), "李雷", group.clone(), now).unwrap();
        let mut d = Dispatcher::new(group.clone());
        let queued = d.arrive(Arrival::of(&c), now).unwrap().positions.remove(0);
        let message = c.append(Sender::Patient, MessageBody::text("你好").unwrap(), now).unwrap();
        c.assign(AgentRef { id: StaffId::new(), name: "小王".into() }, now).unwrap();
        let read = c.mark_read(Reader::Agent { id: c.agent.as_ref().unwrap().id }, 1, now).unwrap().unwrap();
        let ticket = Ticket::leave(TicketId::new(), c.account_id, "李雷", group, "留言", vec![], now).unwrap();
        let events = [
            (PersonalEvent::ChatMessage(message), "chat_message"),
            (PersonalEvent::Conversation((&c).into()), "conversation"),
            (PersonalEvent::ChatQueue(queued), "chat_queue"),
            (PersonalEvent::ChatRead(read), "chat_read"),
            (PersonalEvent::Ticket((&ticket).into()), "ticket"),
        ];
        for (e, kind) in events {
            assert_eq!(e.kind(), kind);
            let v = serde_json::to_value(&e).unwrap();
            assert_eq!(v["type"], kind);
            assert_eq!(serde_json::from_value::<PersonalEvent>(v).unwrap(), e);
            let mp = rmp_serde::to_vec_named(&e).unwrap();
            assert_eq!(rmp_serde::from_slice::<PersonalEvent>(&mp).unwrap(), e);
            assert!(!e.changes_unread());
        }
    }

    #[test]
    fn exam_events_never_carry_the_result() {
        use crate::exam::ExamChange;
        let now = Utc::now();
        let mut e = Exam::new(AccountId::new(), PatientId::new(), "胸部CT平扫", ExamKind::Imaging, now).unwrap();
        e.apply(ExamChange { status: ExamStatus::InProgress, abnormal: None, summary: None }, now).unwrap();
        let done =
            ExamChange { status: ExamStatus::Completed, abnormal: Some(true), summary: Some("右肺结节".into()) };
        e.apply(done, now).unwrap();
        let alert = e.messages().pop().expect("the alert");
        for event in [PersonalEvent::Exam((&e).into()), PersonalEvent::ExamAlert(ExamAlert::new(&e, &alert))] {
            let json = serde_json::to_string(&event).unwrap();
            assert!(!json.contains("右肺结节") && json.contains("\"abnormal\":true"), "{json}");
        }
    }
}
