//! The patient's privacy rights (SET-2, SET-3): the privacy policy and the user agreement as
//! numbered versions, consent recorded per version with its time, the rule that a patient who has
//! not accepted the current version of each may do nothing but read and accept it, and a request
//! to delete the account, carried out after a cooling-off period the patient can cancel.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::{AccountId, ValidationError};

/// Longest policy title and text, in characters.
pub const MAX_POLICY_TITLE_CHARS: usize = 100;
pub const MAX_POLICY_BODY_CHARS: usize = 100_000;
/// How long an account deletion waits before it is carried out, unless configured otherwise.
pub const DEFAULT_COOLING_OFF_DAYS: i64 = 7;

/// Which document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// 隐私政策
    Privacy,
    /// 用户协议
    Terms,
}

impl PolicyKind {
    pub const ALL: [PolicyKind; 2] = [PolicyKind::Privacy, PolicyKind::Terms];

    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Privacy => "privacy",
            PolicyKind::Terms => "terms",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            PolicyKind::Privacy => "隐私政策",
            PolicyKind::Terms => "用户协议",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One published version of a document. Versions of a kind count from 1 and are never changed
/// once published: a correction is a new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyVersion {
    pub kind: PolicyKind,
    pub version: u32,
    pub title: String,
    /// The text (plain text or the back office's sanitised markup), shown as published.
    pub body: String,
    pub published_at: DateTime<Utc>,
}

impl PolicyVersion {
    /// The version after `previous` (1 if none), validated.
    pub fn next(
        kind: PolicyKind,
        previous: Option<u32>,
        title: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        let title = title.trim();
        let n = title.chars().count();
        if n == 0 || n > MAX_POLICY_TITLE_CHARS || title.chars().any(char::is_control) {
            return Err(ValidationError::new("title", format!("must be 1 to {MAX_POLICY_TITLE_CHARS} characters")));
        }
        let body = body.trim();
        let n = body.chars().count();
        if n == 0 || n > MAX_POLICY_BODY_CHARS {
            return Err(ValidationError::new("body", format!("must be 1 to {MAX_POLICY_BODY_CHARS} characters")));
        }
        Ok(Self {
            kind,
            version: previous.unwrap_or(0) + 1,
            title: title.to_string(),
            body: body.to_string(),
            published_at: now,
        })
    }
}

/// A patient's acceptance of one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Consent {
    pub account_id: AccountId,
    pub kind: PolicyKind,
    pub version: u32,
    pub accepted_at: DateTime<Utc>,
}

/// The latest version of each kind, in `PolicyKind::ALL` order (a kind never published is left
/// out: nothing to consent to).
pub fn latest(versions: &[PolicyVersion]) -> Vec<&PolicyVersion> {
    PolicyKind::ALL.iter().filter_map(|k| versions.iter().filter(|v| v.kind == *k).max_by_key(|v| v.version)).collect()
}

/// The latest versions the patient has not accepted: while any is left, the API refuses all but
/// reading and accepting them.
pub fn pending<'a>(versions: &'a [PolicyVersion], consents: &[Consent]) -> Vec<&'a PolicyVersion> {
    latest(versions)
        .into_iter()
        .filter(|v| !consents.iter().any(|c| c.kind == v.kind && c.version == v.version))
        .collect()
}

/// A request to delete an account and everything of it, carried out at `erase_at` unless the
/// patient cancels first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeletionRequest {
    pub account_id: AccountId,
    pub requested_at: DateTime<Utc>,
    pub erase_at: DateTime<Utc>,
}

impl DeletionRequest {
    pub fn new(account_id: AccountId, now: DateTime<Utc>, cooling_off: Duration) -> Self {
        Self { account_id, requested_at: now, erase_at: now + cooling_off }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_and_consent_is_per_version() {
        let now = Utc::now();
        let p1 = PolicyVersion::next(PolicyKind::Privacy, None, "隐私政策", "我们如何处理您的个人信息……", now).unwrap();
        let t1 = PolicyVersion::next(PolicyKind::Terms, None, "用户协议", "……", now).unwrap();
        let p2 = PolicyVersion::next(PolicyKind::Privacy, Some(p1.version), "隐私政策（2026修订）", "……", now).unwrap();
        assert_eq!((p1.version, p2.version, t1.version), (1, 2, 1));
        assert_eq!(PolicyVersion::next(PolicyKind::Terms, None, " ", "x", now).unwrap_err().field, "title");
        assert_eq!(PolicyVersion::next(PolicyKind::Terms, None, "x", "", now).unwrap_err().field, "body");

        let all = vec![p1.clone(), t1.clone(), p2.clone()];
        assert_eq!(
            latest(&all).iter().map(|v| (v.kind, v.version)).collect::<Vec<_>>(),
            [(PolicyKind::Privacy, 2), (PolicyKind::Terms, 1)]
        );
        let account = AccountId::new();
        let consent = |kind, version| Consent { account_id: account, kind, version, accepted_at: now };
        assert_eq!(pending(&all, &[]).len(), 2);
        let old = [consent(PolicyKind::Privacy, 1), consent(PolicyKind::Terms, 1)];
        let left = pending(&all, &old);
        assert_eq!(
            left.iter().map(|v| (v.kind, v.version)).collect::<Vec<_>>(),
            [(PolicyKind::Privacy, 2)],
            "a new version needs consent again"
        );
        let all_in = [consent(PolicyKind::Privacy, 2), consent(PolicyKind::Terms, 1)];
        assert!(pending(&all, &all_in).is_empty());
        assert!(pending(&[], &[]).is_empty(), "nothing published, nothing to accept");
    }

    #[test]
    fn deletion_waits_the_cooling_off() {
        let now = Utc::now();
        let r = DeletionRequest::new(AccountId::new(), now, Duration::days(DEFAULT_COOLING_OFF_DAYS));
        assert_eq!(r.erase_at - r.requested_at, Duration::days(7));
    }
}
