//! Announcements (ADM-4): a notice from the hospital to every patient, to the patients of one
//! department (those with a booking there), or to staff, published now or at a set time. At its
//! time each addressed patient gets it in their message centre and, if connected, live; staff
//! read theirs in the console. Stored as a back-office document (`ANNOUNCEMENT_DOCS`) whose
//! version is a compare-and-set, and published by a durable job, so a restart or a second node
//! never loses or doubles one: each patient's copy has an id derived from the announcement and
//! the account, so publishing again rewrites the same message.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::message::{Message, MessageKind};
use crate::{AccountId, DepartmentId, MessageId, StaffId, ValidationError};

/// The back-office document kind announcements are stored as.
pub const ANNOUNCEMENT_DOCS: &str = "announcement";

/// Who an announcement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Audience {
    /// Every patient account.
    AllPatients,
    /// Accounts with a booking (held, confirmed or attended) in the department or one below it.
    Department { department_id: DepartmentId },
    /// Staff, in the console (not the patients' message centre).
    Staff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnnouncementState {
    /// Waiting for its time.
    Scheduled,
    /// Delivered to every addressed account.
    Published,
    /// Withdrawn before its time.
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Announcement {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub title: String,
    pub body: String,
    pub audience: Audience,
    /// When it goes out (UTC).
    pub publish_at: DateTime<Utc>,
    pub state: AnnouncementState,
    pub created_by: StaffId,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    /// Patient accounts it reached (0 for staff announcements).
    pub recipients: u64,
}

impl Announcement {
    /// A new announcement, checked: a title of 1 to 64 and a body of 1 to 4000 characters, a
    /// time not in the past (a minute's slack for clocks), at most a year ahead.
    pub fn new(
        title: &str,
        body: &str,
        audience: Audience,
        publish_at: Option<DateTime<Utc>>,
        by: StaffId,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        let title = title.trim();
        let body = body.trim();
        if title.is_empty() || title.chars().count() > 64 || title.chars().any(char::is_control) {
            return Err(ValidationError::new("title", "1 to 64 printable characters"));
        }
        if body.is_empty() || body.chars().count() > 4000 || body.chars().any(|c| c.is_control() && c != '\n') {
            return Err(ValidationError::new("body", "1 to 4000 characters"));
        }
        let publish_at = publish_at.unwrap_or(now);
        if publish_at < now - chrono::Duration::minutes(1) || publish_at > now + chrono::Duration::days(366) {
            return Err(ValidationError::new("publish_at", "now, or a time within the next year"));
        }
        Ok(Announcement {
            id: Uuid::now_v7(),
            title: title.to_string(),
            body: body.to_string(),
            audience,
            publish_at,
            state: AnnouncementState::Scheduled,
            created_by: by,
            created_at: now,
            published_at: None,
            recipients: 0,
        })
    }

    /// The id of the durable job that publishes it.
    pub fn job_id(id: Uuid) -> String {
        format!("announce:{id}")
    }

    /// The copy in one account's message centre. Its id is derived from the announcement and the
    /// account, so a second publishing (a retry, another node) rewrites it instead of adding one.
    pub fn message_for(&self, account: AccountId, now: DateTime<Utc>) -> Message {
        let mut m =
            Message::new(account, MessageKind::Announcement, &self.title, &self.body, Some(self.id.to_string()), now);
        m.id = MessageId(derived_id(self.id, account));
        m
    }
}

/// A UUID (version 8, RFC 9562, "custom") from an announcement's id and an account's: the
/// account's id xor a constant of the announcement. Xor with a constant is a bijection, and the
/// bits version 8 overwrites are the version and variant bits, which are the same in every
/// account id (all version 7), so two accounts never share an id for one announcement, and the
/// same pair always gives the same id.
fn derived_id(announcement: Uuid, account: AccountId) -> Uuid {
    let mixed = account.as_uuid().as_u128() ^ announcement.as_u128().rotate_left(61);
    uuid::Builder::from_custom_bytes(mixed.to_be_bytes()).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_input_and_derives_one_message_id_per_account() {
        let now = Utc::now();
        let by = StaffId::new();
        let a = Announcement::new(" 停车场施工 ", "本周六停车场施工。", Audience::AllPatients, None, by, now).unwrap();
        assert_eq!((a.title.as_str(), a.publish_at, a.state), ("停车场施工", now, AnnouncementState::Scheduled));
        assert!(Announcement::new("", "x", Audience::Staff, None, by, now).is_err());
        assert!(Announcement::new("t", "", Audience::Staff, None, by, now).is_err());
        let past = now - chrono::Duration::hours(1);
        assert_eq!(Announcement::new("t", "b", Audience::Staff, Some(past), by, now).unwrap_err().field, "publish_at");
        let (x, y) = (AccountId::new(), AccountId::new());
        let mx = a.message_for(x, now);
        assert_eq!(mx.id, a.message_for(x, now + chrono::Duration::seconds(5)).id, "the same id when sent again");
        assert_ne!(mx.id, a.message_for(y, now).id);
        assert_eq!((mx.kind, mx.related.clone()), (MessageKind::Announcement, Some(a.id.to_string())));
        let json = serde_json::to_value(Audience::Department { department_id: DepartmentId::new() }).unwrap();
        assert_eq!(json["kind"], "department");
    }
}
