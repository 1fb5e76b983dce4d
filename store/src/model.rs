//! Rows the platform stores: accounts, patients (就诊人), staff, and login sessions. Sensitive
//! fields are held as `Sealed` (AES-256-GCM ciphertext, see `cipher`) from the moment they are
//! accepted, so a row in memory or on disk never holds them in clear.

use chrono::{DateTime, Utc};
use hospital_domain::account::Relation;
use hospital_domain::{AccountId, Email, Gender, PatientId, Phone, Profile, RoleName, StaffId};
use serde::{Deserialize, Serialize};

/// A ciphertext produced by `FieldCipher::seal`: `<key id>:<base64(nonce || ciphertext)>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(pub String);

/// A login: phone, WeChat openid or e-mail, owning several patients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    /// argon2id PHC string; None for accounts that only log in by code or WeChat.
    pub password_hash: Option<String>,
    pub wechat_openid: Option<String>,
    pub wechat_unionid: Option<String>,
    pub profile: Profile,
    pub created_at: DateTime<Utc>,
}

/// A 就诊人 under an account. The ID number is sealed; `id_card_index` is a keyed hash (blind
/// index) so the same person can be recognised across accounts without decrypting anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientRecord {
    pub id: PatientId,
    pub account_id: AccountId,
    pub name: String,
    pub relation: Relation,
    pub gender: Gender,
    pub birth_date: chrono::NaiveDate,
    pub id_card_sealed: Sealed,
    pub id_card_masked: String,
    pub id_card_index: String,
    pub phone_sealed: Option<Sealed>,
    pub created_at: DateTime<Utc>,
}

/// The caps `AccountStore::add_patient` enforces: patients per account, and accounts per
/// person (the same ID number under several accounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatientCaps {
    pub per_account: usize,
    pub accounts_per_person: usize,
}

/// A staff member of the back office (AUTH-4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffMember {
    pub id: StaffId,
    pub username: String,
    pub name: String,
    pub password_hash: String,
    pub roles: Vec<RoleName>,
    /// The doctor (catalogue entry) this staff member is, for the doctor's workstation: a doctor
    /// works on their own sessions only.
    #[serde(default)]
    pub doctor_id: Option<hospital_domain::DoctorId>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    Account { id: AccountId },
    Staff { id: StaffId, roles: Vec<RoleName> },
}

impl Subject {
    /// The key under which all of one subject's sessions are indexed (for "revoke all").
    pub fn key(&self) -> String {
        match self {
            Subject::Account { id } => format!("a:{id}"),
            Subject::Staff { id, .. } => format!("s:{id}"),
        }
    }
}

/// A login session (AUTH-5). The bearer token itself is never stored: only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginSession {
    pub token_hash: String,
    pub subject: Subject,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// Absolute expiry: the session ends then, however active.
    pub expires_at: DateTime<Utc>,
    /// Idle timeout in seconds: the session ends this long after it was last used.
    pub idle_timeout_secs: u64,
    /// What the client said it is ("iPhone 15 / WeChat 8.0"), for the device list.
    pub device: Option<String>,
}

impl LoginSession {
    /// When the session ends if it is not used again.
    pub fn ends_at(&self) -> DateTime<Utc> {
        let idle_end = self.last_seen_at + chrono::Duration::seconds(self.idle_timeout_secs as i64);
        idle_end.min(self.expires_at)
    }
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.ends_at()
    }
}
