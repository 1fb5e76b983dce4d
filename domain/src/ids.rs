//! Typed identifiers. Each wraps a UUID (v7, so ids sort by creation time) and prints as its
//! hyphenated form; a newtype per kind stops a `DoctorId` being passed where an `AccountId` is meant.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

use crate::ValidationError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id (`uuid`'s `fast-rng`: no system call per id).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn parse(s: &str) -> Result<Self, ValidationError> {
                Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|_| ValidationError::new($field, "must be a UUID"))
            }
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

id_type!(
    /// A login (phone, WeChat openid or e-mail); owns several patients.
    AccountId, "account_id");
id_type!(
    /// A real person seen by a doctor (就诊人).
    PatientId, "patient_id");
id_type!(
    /// A staff member (doctor, nurse, agent, finance, administrator).
    StaffId, "staff_id");
id_type!(
    /// A node of the department tree (科室).
    DepartmentId, "department_id");
id_type!(
    /// A doctor of the catalogue.
    DoctorId, "doctor_id");
id_type!(
    /// One doctor, one date, one period (出诊时段).
    SessionId, "session_id");
id_type!(
    /// A patient's booking of a slot (挂号/预约).
    AppointmentId, "appointment_id");
id_type!(
    /// Something to pay (订单).
    OrderId, "order_id");
id_type!(
    /// An item of a user's message centre (消息).
    MessageId, "message_id");
id_type!(
    /// An examination (检查/检验) of a patient.
    ExamId, "exam_id");
id_type!(
    /// A report file of an exam or a visit (检查报告, 影像) in object storage.
    ReportId, "report_id");
id_type!(
    /// A share link a patient made for a report file.
    ShareId, "share_id");
id_type!(
    /// A customer-service chat between a patient and agents (客服会话).
    ConversationId, "conversation_id");
id_type!(
    /// A message left outside service hours, answered later (留言工单).
    TicketId, "ticket_id");
id_type!(
    /// A question of the customer-service FAQ (常见问题).
    FaqId, "faq_id");
id_type!(
    /// A canned reply (快捷回复) of a service group or an agent.
    CannedReplyId, "canned_reply_id");
id_type!(
    /// A patient's feedback (意见反馈) on the service.
    FeedbackId, "feedback_id");

#[cfg(test)]
mod fresh_tests {
    use super::*;

    #[test]
    fn fresh_ids_are_v7_and_strictly_ordered_by_creation() {
        let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let ids: Vec<Uuid> = (0..20_000).map(|_| AppointmentId::new().0).collect();
        assert!(ids.iter().all(|u| u.get_version_num() == 7 && u.get_variant() == uuid::Variant::RFC4122));
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids must increase");
        let (secs, nanos) = ids[0].get_timestamp().expect("v7 has a time").to_unix();
        assert!(secs * 1000 + u64::from(nanos) / 1_000_000 >= before);
        // Across threads too: every id distinct.
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..5_000).map(|_| AppointmentId::new().0).collect::<Vec<_>>()))
            .collect();
        let mut all: Vec<Uuid> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 20_000);
    }
}
