//! Items of a user's message centre (MSG-1, MSG-2): stored per account in time order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{AccountId, MessageId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    VisitReminder,
    BookingSuccess,
    BookingFailure,
    WaitlistOffer,
    ClinicStopped,
    /// 号源调整: the time of a booked segment was changed by the hospital.
    TimeChanged,
    ReportReady,
    PaymentSuccess,
    PaymentFailure,
    Refund,
    SystemNotice,
    Announcement,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Message {
    pub id: MessageId,
    pub account_id: AccountId,
    pub kind: MessageKind,
    pub title: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub read: bool,
    /// What it is about (an appointment, order or exam id), for the client to link to.
    pub related: Option<String>,
    /// Needs the user's attention (an abnormal exam result): clients show it prominently.
    #[serde(default)]
    pub alert: bool,
}

impl Message {
    pub fn new(
        account_id: AccountId,
        kind: MessageKind,
        title: impl Into<String>,
        body: impl Into<String>,
        related: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: MessageId::new(),
            account_id,
            kind,
            title: title.into(),
            body: body.into(),
            created_at: now,
            read: false,
            related,
            alert: false,
        }
    }

    /// The same message, flagged as an alert.
    pub fn alert(mut self) -> Self {
        self.alert = true;
        self
    }
}
