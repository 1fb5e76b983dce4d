//! Mainland China mobile numbers: 11 digits starting with 1[3-9]. A leading +86 or 86 is accepted
//! and dropped, so one person has one canonical key in every table.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::ValidationError;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "13800138000")]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s: String = raw.trim().chars().filter(|c| *c != ' ' && *c != '-').collect();
        let s = s.strip_prefix("+86").or_else(|| s.strip_prefix("0086")).unwrap_or(&s);
        let s = if s.len() == 13 { s.strip_prefix("86").unwrap_or(s) } else { s };
        let b = s.as_bytes();
        let ok = b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) && b.iter().all(u8::is_ascii_digit);
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(ValidationError::new("phone", "must be an 11-digit mainland mobile number such as 13800138000"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// `138****8000`: what screens and logs show.
    pub fn masked(&self) -> String {
        format!("{}****{}", &self.0[..3], &self.0[7..])
    }
}

impl TryFrom<String> for Phone {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}
/// Display masks: a phone number should never reach a log line in full by accident.
impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_canonicalises() {
        for raw in ["13800138000", "+8613800138000", "86 138 0013 8000", "138-0013-8000"] {
            assert_eq!(Phone::parse(raw).unwrap().as_str(), "13800138000", "{raw}");
        }
    }

    #[test]
    fn rejects_bad_numbers() {
        for raw in ["", "1380013800", "12800138000", "23800138000", "1380013800a", "138001380001"] {
            assert!(Phone::parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn masks() {
        assert_eq!(Phone::parse("13800138000").unwrap().masked(), "138****8000");
    }
}
