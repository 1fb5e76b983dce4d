//! Customer-service live chat (CS-1..CS-4), as pure rules the actors drive: no I/O and no clock,
//! every time is passed in.
//!
//! - `conversation`: one conversation's state machine, its numbered messages and read marks;
//! - `dispatcher`: one service group's agents (presence, caps) and backlog, and who gets what;
//! - `service_hours`: when a group answers, in the hospital's zone;
//! - `ticket`: a message left outside service hours, answered later;
//! - `canned`: canned replies with variables;
//! - `faq`: the searchable FAQ and the suggestions made from a patient's first message;
//! - `presence`: agents' presence from their consoles' connections, and the dispatcher's stored
//!   state;
//! - `console`: what agents' consoles are told live;
//! - `feedback`: patients' feedback with screenshots.
//!
//! Who writes what: the conversation actor owns a `Conversation` (its only writer: it numbers the
//! messages); the dispatcher actor of a group owns its `Dispatcher` and tells conversation actors
//! what it decided (`dispatcher::Outcome`), which apply it with the matching transition.

pub mod canned;
pub mod console;
pub mod conversation;
pub mod dispatcher;
pub mod faq;
pub mod feedback;
pub mod presence;
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

/// A group code as a small value that can be copied (actors are keyed by it: the dispatcher
/// actor of a group).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    len: u8,
    bytes: [u8; 32],
}

impl GroupKey {
    pub fn code(&self) -> GroupCode {
        GroupCode(self.as_str().to_string())
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("a group code is ASCII")
    }
}

impl From<&GroupCode> for GroupKey {
    fn from(g: &GroupCode) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..g.0.len()].copy_from_slice(g.0.as_bytes());
        Self { len: g.0.len() as u8, bytes }
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupKey({})", self.as_str())
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

/// An agent as the chat knows them: the groups they answer in and their cap of concurrent
/// conversations (the same in each group they sit in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentProfile {
    pub id: StaffId,
    pub name: String,
    pub groups: Vec<GroupCode>,
    /// 1 to `dispatcher::MAX_CAP`; `dispatcher::DEFAULT_CAP` unless set.
    pub cap: u32,
}

impl AgentProfile {
    pub fn new(id: StaffId, name: &str, groups: Vec<GroupCode>, cap: u32) -> Result<Self, ValidationError> {
        if !(1..=dispatcher::MAX_CAP).contains(&cap) {
            return Err(ValidationError::new("cap", format!("must be 1 to {}", dispatcher::MAX_CAP)));
        }
        let mut groups = groups;
        groups.sort();
        groups.dedup();
        Ok(Self { id, name: crate::account::parse_name("name", name)?, groups, cap })
    }

    pub fn agent_ref(&self) -> AgentRef {
        AgentRef { id: self.id, name: self.name.clone() }
    }
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
        let long = GroupCode::parse(&"x".repeat(32)).unwrap();
        let k = GroupKey::from(&long);
        assert_eq!(k.code(), long);
        assert_eq!(GroupKey::from(&g).to_string(), "billing");
    }
}
