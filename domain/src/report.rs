//! Report files (REC-4): a PDF report, an image (X-ray, CT) or a DICOM file of an exam or a
//! visit, uploaded by the lab, PACS, the HIS or the doctor, kept in object storage (encrypted
//! per person, see the store's vault), and the share links a patient makes for one of them, with
//! an expiry, revocable at any time.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::visit::VisitId;
use crate::{AccountId, ExamId, PatientId, ReportId, ShareId, ValidationError};

/// Longest report title, in characters.
pub const MAX_TITLE_CHARS: usize = 100;
/// Longest external id a hospital system may send (HIS/LIS/PACS keys are short).
pub const MAX_EXTERNAL_ID_CHARS: usize = 128;
/// The shortest and longest lifetime of a share link.
pub const MIN_SHARE_SECS: i64 = 60;
pub const MAX_SHARE_SECS: i64 = 30 * 24 * 3600;

/// Who put a report file in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportSource {
    /// The laboratory system (LIS).
    Lab,
    /// The imaging archive (PACS).
    Pacs,
    /// The hospital information system (HIS).
    His,
    /// The doctor, from the workstation.
    Doctor,
}

/// One stored report file: what it is, whose, where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportFile {
    pub id: ReportId,
    pub account_id: AccountId,
    pub patient_id: PatientId,
    /// The exam it reports on, if any.
    pub exam_id: Option<ExamId>,
    /// The visit it belongs to, if any (a file the doctor attached, or the exam's visit).
    pub visit_id: Option<VisitId>,
    /// e.g. 胸部CT报告.
    pub title: String,
    /// The checked MIME type: application/pdf, image/png, image/jpeg, application/dicom, ...
    pub content_type: String,
    /// The plaintext size in bytes.
    pub size: u64,
    /// Where the (encrypted) bytes are in object storage.
    pub object_key: String,
    pub source: ReportSource,
    /// The sending system's id for it (idempotency of the integration API).
    pub external_id: Option<String>,
    pub uploaded_at: DateTime<Utc>,
}

/// A trimmed title of 1 to `MAX_TITLE_CHARS` characters without control characters.
pub fn parse_title(raw: &str) -> Result<String, ValidationError> {
    let s = raw.trim();
    let n = s.chars().count();
    if n == 0 || n > MAX_TITLE_CHARS || s.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "title",
            format!("must be 1 to {MAX_TITLE_CHARS} characters, no control characters"),
        ));
    }
    Ok(s.to_string())
}

/// An external system's id: 1 to 128 printable ASCII characters (no spaces).
pub fn parse_external_id(raw: &str) -> Result<String, ValidationError> {
    let s = raw.trim();
    if s.is_empty() || s.len() > MAX_EXTERNAL_ID_CHARS || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ValidationError::new(
            "external_id",
            format!("must be 1 to {MAX_EXTERNAL_ID_CHARS} printable ASCII characters"),
        ));
    }
    Ok(s.to_string())
}

/// Whether a share link may be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShareState {
    Active,
    Expired,
    Revoked,
}

/// A link a patient made so someone else (another hospital, a relative) can download one report
/// file without an account. The link carries a random token; only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareLink {
    pub id: ShareId,
    pub report_id: ReportId,
    pub account_id: AccountId,
    pub patient_id: PatientId,
    /// Hex SHA-256 of the token in the link.
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ShareLink {
    /// A new link of `report` valid for `secs` (checked against `MIN_SHARE_SECS..=MAX_SHARE_SECS`).
    pub fn new(
        report: &ReportFile,
        token_hash: String,
        secs: i64,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        if !(MIN_SHARE_SECS..=MAX_SHARE_SECS).contains(&secs) {
            return Err(ValidationError::new(
                "expires_in_secs",
                format!("must be between {MIN_SHARE_SECS} and {MAX_SHARE_SECS} (30 days)"),
            ));
        }
        Ok(Self {
            id: ShareId::new(),
            report_id: report.id,
            account_id: report.account_id,
            patient_id: report.patient_id,
            token_hash,
            created_at: now,
            expires_at: now + Duration::seconds(secs),
            revoked_at: None,
        })
    }

    pub fn state(&self, now: DateTime<Utc>) -> ShareState {
        if self.revoked_at.is_some() {
            ShareState::Revoked
        } else if now >= self.expires_at {
            ShareState::Expired
        } else {
            ShareState::Active
        }
    }

    /// Revokes the link; revoking again keeps the first time. True if this call revoked it.
    pub fn revoke(&mut self, now: DateTime<Utc>) -> bool {
        if self.revoked_at.is_some() {
            return false;
        }
        self.revoked_at = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ReportFile {
        ReportFile {
            id: ReportId::new(),
            account_id: AccountId::new(),
            patient_id: PatientId::new(),
            exam_id: Some(ExamId::new()),
            visit_id: None,
            title: "胸部CT报告".into(),
            content_type: "application/pdf".into(),
            size: 1000,
            object_key: "reports/x/y.pdf".into(),
            source: ReportSource::Lab,
            external_id: Some("LIS-1".into()),
            uploaded_at: Utc::now(),
        }
    }

    #[test]
    fn share_links_expire_and_are_revoked_once() {
        let now = Utc::now();
        assert_eq!(ShareLink::new(&report(), "h".into(), 59, now).unwrap_err().field, "expires_in_secs");
        assert!(ShareLink::new(&report(), "h".into(), MAX_SHARE_SECS + 1, now).is_err());
        let mut s = ShareLink::new(&report(), "h".into(), 3600, now).unwrap();
        assert_eq!(s.state(now), ShareState::Active);
        assert_eq!(s.state(now + Duration::seconds(3600)), ShareState::Expired);
        assert!(s.revoke(now));
        assert!(!s.revoke(now + Duration::seconds(5)), "revoked once");
        assert_eq!(s.revoked_at, Some(now));
        assert_eq!(s.state(now), ShareState::Revoked);
    }

    #[test]
    fn titles_and_external_ids_are_checked() {
        assert_eq!(parse_title(" 胸部CT报告 ").unwrap(), "胸部CT报告");
        assert!(parse_title("").is_err() && parse_title(&"报".repeat(101)).is_err() && parse_title("a\u{7}").is_err());
        assert_eq!(parse_external_id(" LIS-2026-0001 ").unwrap(), "LIS-2026-0001");
        for bad in ["", "has space", "中文", &"x".repeat(129)] {
            assert!(parse_external_id(bad).is_err(), "{bad:?}");
        }
    }
}
