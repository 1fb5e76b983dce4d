//! Accounts, their profiles and staff roles.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::ValidationError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Male,
    Female,
    Unknown,
}

/// What an account holder says of themself (AUTH-6). All optional: a WeChat login starts empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Profile {
    pub name: Option<String>,
    pub gender: Option<Gender>,
    pub birth_date: Option<NaiveDate>,
}

/// A person's name as entered: 1 to 32 characters, no control characters.
pub fn parse_name(field: &'static str, raw: &str) -> Result<String, ValidationError> {
    let s = raw.trim();
    let n = s.chars().count();
    if n == 0 || n > 32 {
        return Err(ValidationError::new(field, "must be 1 to 32 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(ValidationError::new(field, "must not contain control characters"));
    }
    Ok(s.to_string())
}

/// A lower-cased e-mail address with one `@`, a local part and a dotted domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "li.lei@example.com")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim().to_lowercase();
        let err = || ValidationError::new("email", "must be an e-mail address such as li.lei@example.com");
        let (local, domain) = s.split_once('@').ok_or_else(err)?;
        let ok = !local.is_empty()
            && local.len() <= 64
            && s.len() <= 254
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(Self(s))
        } else {
            Err(err())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Email {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

/// Password policy: 8 to 128 characters with at least a letter and a digit. Checked only on
/// registration and change; login compares whatever is sent against the stored hash.
pub fn check_password_policy(pw: &str) -> Result<(), ValidationError> {
    let n = pw.chars().count();
    if !(8..=128).contains(&n) {
        return Err(ValidationError::new("password", "must be 8 to 128 characters"));
    }
    if !pw.chars().any(char::is_alphabetic) || !pw.chars().any(|c| c.is_ascii_digit()) {
        return Err(ValidationError::new("password", "must contain a letter and a digit"));
    }
    Ok(())
}

/// What a staff member may do (AUTH-4, ADM-2). A staff account holds one or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Scheduler,
    Doctor,
    Nurse,
    Agent,
    Finance,
}

impl Role {
    pub const ALL: [Role; 6] = [Role::Admin, Role::Scheduler, Role::Doctor, Role::Nurse, Role::Agent, Role::Finance];
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Role::Admin => "admin",
            Role::Scheduler => "scheduler",
            Role::Doctor => "doctor",
            Role::Nurse => "nurse",
            Role::Agent => "agent",
            Role::Finance => "finance",
        };
        f.write_str(s)
    }
}

/// How a patient is related to the account holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    #[serde(rename = "self")]
    Myself,
    Spouse,
    Child,
    Parent,
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_and_password_rules() {
        assert_eq!(Email::parse(" Li.Lei@Example.COM ").unwrap().as_str(), "li.lei@example.com");
        for bad in ["", "a@b", "@x.cn", "a@.cn", "a b@x.cn", "a@x.cn."] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(check_password_policy("abc12345").is_ok());
        assert!(check_password_policy("短密码1").is_err());
        assert!(check_password_policy("abcdefgh").is_err());
        assert!(check_password_policy("12345678").is_err());
        assert!(parse_name("name", "  张三 ").is_ok());
        assert!(parse_name("name", "").is_err());
        assert!(parse_name("name", "a\u{0}b").is_err());
    }
}
