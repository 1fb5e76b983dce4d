//! A message left outside service hours (留言, CS-4): it becomes a ticket that an agent of the
//! group answers later. Open -> answered (once, by an agent) -> closed (by the patient, the
//! agent or the system); the patient may also withdraw an open one (closed unanswered).
//!
//! Whether the group is open is the caller's question (`ServiceHours::is_open`): the gateway
//! offers a ticket instead of a conversation when it is not.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::conversation::{Closer, ImageRef, MAX_TEXT_CHARS};
use super::{AgentRef, GroupCode};
use crate::account::parse_name;
use crate::text::{parse_text, Lines};
use crate::{AccountId, TicketId, ValidationError};

/// The most images a ticket may carry.
pub const MAX_TICKET_IMAGES: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Open,
    Answered,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TicketAnswer {
    pub agent: AgentRef,
    pub text: String,
    pub answered_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("the ticket is {0:?}")]
    NotAllowed(TicketStatus),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ticket {
    pub id: TicketId,
    pub account_id: AccountId,
    pub patient_name: String,
    pub group: GroupCode,
    /// What the patient wrote: checked as a chat message.
    pub text: String,
    pub images: Vec<ImageRef>,
    pub status: TicketStatus,
    pub created_at: DateTime<Utc>,
    pub answer: Option<TicketAnswer>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<Closer>,
}

impl Ticket {
    /// The patient leaves a message: text as a chat message allows, up to `MAX_TICKET_IMAGES`
    /// images.
    pub fn leave(
        id: TicketId,
        account_id: AccountId,
        patient_name: &str,
        group: GroupCode,
        text: &str,
        images: Vec<ImageRef>,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        if images.len() > MAX_TICKET_IMAGES {
            return Err(ValidationError::new("images", format!("at most {MAX_TICKET_IMAGES}")));
        }
        images.iter().try_for_each(ImageRef::validate)?;
        Ok(Self {
            id,
            account_id,
            patient_name: parse_name("patient_name", patient_name)?,
            group,
            text: parse_text("text", text, MAX_TEXT_CHARS, Lines::Multi)?,
            images,
            status: TicketStatus::Open,
            created_at: now,
            answer: None,
            closed_at: None,
            closed_by: None,
        })
    }

    /// An agent answers an open ticket.
    pub fn answer(&mut self, agent: AgentRef, text: &str, now: DateTime<Utc>) -> Result<(), TicketError> {
        if self.status != TicketStatus::Open {
            return Err(TicketError::NotAllowed(self.status));
        }
        let text = parse_text("text", text, MAX_TEXT_CHARS, Lines::Multi)?;
        self.answer = Some(TicketAnswer { agent, text, answered_at: now });
        self.status = TicketStatus::Answered;
        Ok(())
    }

    /// Closes it, answered or not.
    pub fn close(&mut self, by: Closer, now: DateTime<Utc>) -> Result<(), TicketError> {
        if self.status == TicketStatus::Closed {
            return Err(TicketError::NotAllowed(self.status));
        }
        self.status = TicketStatus::Closed;
        self.closed_at = Some(now);
        self.closed_by = Some(by);
        Ok(())
    }
}

/// A ticket's new state, for its patient (live event `ticket`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TicketUpdate {
    pub id: TicketId,
    pub group: GroupCode,
    pub status: TicketStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<TicketAnswer>,
}

impl From<&Ticket> for TicketUpdate {
    fn from(t: &Ticket) -> Self {
        Self { id: t.id, group: t.group.clone(), status: t.status, answer: t.answer.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StaffId;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn ticket() -> Ticket {
        let img = ImageRef::new("chat/a.png", "image/png").unwrap();
        Ticket::leave(
            TicketId::new(),
            AccountId::new(),
            "韩梅梅",
            GroupCode::parse("billing").unwrap(),
            " 发票怎么开？ ",
            vec![img],
            t0(),
        )
        .unwrap()
    }

    #[test]
    fn open_answered_closed() {
        let mut t = ticket();
        assert_eq!((t.status, t.text.as_str()), (TicketStatus::Open, "发票怎么开？"));
        let agent = AgentRef { id: StaffId::new(), name: "小王".into() };
        assert!(matches!(t.answer(agent.clone(), "", t0()), Err(TicketError::Invalid(_))));
        t.answer(agent.clone(), "在“缴费记录”中申请电子发票。", t0()).unwrap();
        assert_eq!(t.status, TicketStatus::Answered);
        assert_eq!(t.answer(agent, "again", t0()), Err(TicketError::NotAllowed(TicketStatus::Answered)));
        let u = TicketUpdate::from(&t);
        assert_eq!(u.answer.unwrap().text, "在“缴费记录”中申请电子发票。");
        t.close(Closer::Patient, t0()).unwrap();
        assert_eq!(t.close(Closer::System, t0()), Err(TicketError::NotAllowed(TicketStatus::Closed)));
        let back: Ticket = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn withdrawn_unanswered_and_bad_input() {
        let mut t = ticket();
        t.close(Closer::Patient, t0()).unwrap();
        assert_eq!((t.status, t.answer.clone()), (TicketStatus::Closed, None));
        let g = GroupCode::parse("billing").unwrap();
        let img = ImageRef::new("chat/a.png", "image/png").unwrap();
        let leave = |text: &str, images: Vec<ImageRef>| {
            Ticket::leave(TicketId::new(), AccountId::new(), "韩梅梅", g.clone(), text, images, t0())
        };
        assert!(leave("", vec![]).is_err());
        assert!(leave("hi", vec![img.clone(); MAX_TICKET_IMAGES + 1]).is_err());
        let bad = ImageRef { key: "../x.png".into(), content_type: "image/png".into() };
        assert!(leave("hi", vec![bad]).is_err());
        assert!(leave("hi", vec![img; MAX_TICKET_IMAGES]).is_ok());
    }
}
