//! Customer-service live chat (CS-1..CS-4), as pure rules the actors drive: no I/O and no clock,
//! every time is passed in.
//!
//! - `conversation`: one conversation's state machine, its numbered messages and read marks;
//! - `dispatcher`: one service group's agents (presence, caps) and backlog, and who gets what;
//! - `service_hours`: when a group answers, in the hospital's zone;
//! - `ticket`: a message left outside service hours, answered later;
//! - `canned`: canned replies with variables;
//! - `faq`: the searchable FAQ and the suggestions made from a patient's first message.
//!
//! Who writes what: the conversation actor owns a `Conversation` (its only writer: it numbers the
//! messages); the dispatcher actor of a group owns its `Dispatcher` and tells conversation actors
//! what it decided (`dispatcher::Outcome`), which apply it with the matching transition.

pub mod canned;
pub mod conversation;
pub mod dispatcher;
pub mod faq;
pub mod service_hours;
pub mod ticket;

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::{StaffId, ValidationError};

/// A service group's code (`booking`, `billing`, `reports`): 1 to 32 of `a-z`, `0-9`, `-`, `_`.
/// A code rather than an id because groups come from configuration and name their actors and
/// topics (`dispatcher:booking`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "booking")]
pub struct GroupCode(String);

impl GroupCode {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim();
        let ok = (1..=32).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(ValidationError::new("group", "must be 1 to 32 of a-z, 0-9, - and _"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GroupCode {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<GroupCode> for String {
    fn from(g: GroupCode) -> String {
        g.0
    }
}

impl fmt::Display for GroupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A service group (预约咨询, 缴费与医保, 报告咨询): its code, the name patients see, its hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceGroup {
    pub code: GroupCode,
    pub name: String,
    pub hours: service_hours::ServiceHours,
}

/// An agent as patients and other agents see them: who, and the name shown when they are called
/// to a conversation (CS-3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentRef {
    pub id: StaffId,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_codes() {
        assert_eq!(GroupCode::parse(" booking ").unwrap().as_str(), "booking");
        assert!(GroupCode::parse("lab-reports_2").is_ok());
        for bad in ["", "Booking", "预约", "a b", &"x".repeat(33)] {
            assert!(GroupCode::parse(bad).is_err(), "{bad:?}");
        }
        let g: GroupCode = serde_json::from_str("\"billing\"").unwrap();
        assert_eq!(serde_json::to_string(&g).unwrap(), "\"billing\"");
        assert!(serde_json::from_str::<GroupCode>("\"Bad Code\"").is_err());
    }
}
