//! Feedback (意见反馈, CS-4): what a patient tells the hospital about the service or the app,
//! with up to a few screenshots, listed for staff by month, newest first.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::conversation::ImageRef;
use crate::text::{parse_text, Lines};
use crate::{AccountId, FeedbackId, ValidationError};

pub const MAX_FEEDBACK_CHARS: usize = 2000;
pub const MAX_CONTACT_CHARS: usize = 50;
/// The most screenshots one feedback may carry.
pub const MAX_SCREENSHOTS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Feedback {
    pub id: FeedbackId,
    pub account_id: AccountId,
    pub text: String,
    /// How to reach the patient about it, if they want to be (a phone, an e-mail).
    pub contact: Option<String>,
    pub screenshots: Vec<ImageRef>,
    pub created_at: DateTime<Utc>,
}

impl Feedback {
    /// Text as a chat message allows, an optional one-line contact, up to `MAX_SCREENSHOTS`
    /// images (keys the patient uploaded: the caller checks whose they are).
    pub fn new(
        id: FeedbackId,
        account_id: AccountId,
        text: &str,
        contact: Option<&str>,
        screenshots: Vec<ImageRef>,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        if screenshots.len() > MAX_SCREENSHOTS {
            return Err(ValidationError::new("screenshots", format!("at most {MAX_SCREENSHOTS}")));
        }
        screenshots.iter().try_for_each(ImageRef::validate)?;
        let contact = match contact.map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => Some(parse_text("contact", c, MAX_CONTACT_CHARS, Lines::Single)?),
            None => None,
        };
        Ok(Self {
            id,
            account_id,
            text: parse_text("text", text, MAX_FEEDBACK_CHARS, Lines::Multi)?,
            contact,
            screenshots,
            created_at: now,
        })
    }
}

/// The month a row of a time-bucketed listing belongs to, `YYYYMM` in UTC (feedback, ratings,
/// an agent's conversations): listings read one month's partition at a time.
pub fn month_of(t: DateTime<Utc>) -> i32 {
    use chrono::Datelike;
    t.year() * 100 + t.month() as i32
}

/// The month before `month` (`YYYYMM`).
pub fn previous_month(month: i32) -> i32 {
    if month % 100 == 1 {
        (month / 100 - 1) * 100 + 12
    } else {
        month - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_is_checked() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let img = ImageRef::new("chat/a/b.png", "image/png").unwrap();
        let f =
            Feedback::new(FeedbackId::new(), AccountId::new(), " 挂号页面打不开 ", Some(" "), vec![img.clone()], now)
                .unwrap();
        assert_eq!((f.text.as_str(), f.contact.as_ref()), ("挂号页面打不开", None));
        assert!(Feedback::new(FeedbackId::new(), AccountId::new(), "", None, vec![], now).is_err());
        assert!(Feedback::new(FeedbackId::new(), AccountId::new(), "x", Some("两\n行"), vec![], now).is_err());
        assert!(Feedback::new(FeedbackId::new(), AccountId::new(), "x", None, vec![img; 5], now).is_err());
    }

    #[test]
    fn months() {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap(); // 2027-01-15
        assert_eq!(month_of(t), 202701);
        assert_eq!(previous_month(202701), 202612);
        assert_eq!(previous_month(202612), 202611);
    }
}
