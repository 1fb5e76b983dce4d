//! Persons across accounts. A person is the blind index of an ID number (a keyed hash, never
//! the number). `accounts_by_person` lists the accounts holding a person as a 就诊人: it is
//! written by `AccountStore::add_patient` / `remove_patient` together with the patient row, and
//! is what caps how many accounts may hold one person and finds the account holding the
//! person's `self` record. `real_name_checks` caches positive real-name verifications, so the
//! provider (which bills per check) is asked once per name and ID number.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hospital_domain::account::Relation;
use hospital_domain::{AccountId, PatientId};
use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::error::Result;
use crate::PatientRecord;

/// One account holding one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonHolder {
    pub person: String,
    pub account_id: AccountId,
    /// The account's record of the person.
    pub patient_id: PatientId,
    /// How the person is related to the account holder (`self` marks the person's own account).
    pub relation: Relation,
    pub added_at: DateTime<Utc>,
}

impl PersonHolder {
    pub fn of(p: &PatientRecord) -> Self {
        Self {
            person: p.id_card_index.clone(),
            account_id: p.account_id,
            patient_id: p.id,
            relation: p.relation,
            added_at: p.created_at,
        }
    }
}

/// A name the real-name provider confirmed for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealNameCheck {
    pub person: String,
    /// A keyed hash of the name together with the ID number: never the name, and the same
    /// name of two persons hashes differently.
    pub name_hash: String,
    pub verified_at: DateTime<Utc>,
    /// The provider's request id, for its support.
    pub request_id: String,
}

#[async_trait]
pub trait PersonStore: Send + Sync {
    /// The accounts holding `person`, by account id.
    async fn holders_of_person(&self, person: &str) -> Result<Vec<PersonHolder>>;
    /// A live positive check of this name for `person`, if one is stored.
    async fn real_name_check(&self, person: &str, name_hash: &str) -> Result<Option<RealNameCheck>>;
    /// Stores a positive check for `ttl` (replacing one of the same name and person).
    async fn put_real_name_check(&self, check: &RealNameCheck, ttl: Duration) -> Result<()>;
}
