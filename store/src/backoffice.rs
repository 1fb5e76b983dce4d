//! The back office's store (ADM-1..4, INFO-5/6, BOOK-9 templates): staff listing and edits,
//! back-office documents, analytics counters, and paging through accounts for announcements.
//!
//! Documents: the back office keeps a few small, read-mostly kinds of record (roles, schedule
//! templates, announcements, articles, FAQ entries, policy versions, the state of its jobs), a
//! few to a few thousand rows of each. They share one table, `backoffice_documents ((kind), id)`,
//! one partition per kind, so a listing is one partition read. Each row carries a version that a
//! write must name (`put_doc`): a compare-and-set (a lightweight transaction on ScyllaDB), so two
//! editors, or two nodes claiming a scheduled announcement, never both win. `Docs` below is the
//! typed view every caller uses.
//!
//! Analytics counters (`analytics_daily ((metric, day), dim)`, see `domain::analytics`): the
//! booking writes add their deltas in the same write (`apply_booking`, `put_queue`); `rollups`
//! reads one metric over a date range, one partition per day, never an appointment.

use async_trait::async_trait;
use chrono::NaiveDate;
use hospital_domain::analytics::{RollupDelta, RollupRow};
use hospital_domain::AccountId;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Result;
use crate::{StaffMember, StoreError};

/// A stored document: its body (JSON) and version (1 for the first write, +1 each write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub kind: String,
    pub id: String,
    pub version: u64,
    pub body: String,
}

#[async_trait]
pub trait BackOfficeStore: Send + Sync {
    /// Every staff member (a hospital has hundreds), by username.
    async fn all_staff(&self) -> Result<Vec<StaffMember>>;
    /// Replaces a staff member's row (name, roles, password, active); the username stays the
    /// stored one whatever `staff` says. False if there is no such staff member.
    async fn update_staff(&self, staff: &StaffMember) -> Result<bool>;

    async fn doc(&self, kind: &str, id: &str) -> Result<Option<Doc>>;
    /// Every document of a kind, by id.
    async fn docs(&self, kind: &str) -> Result<Vec<Doc>>;
    /// Writes `body` as version `expected + 1` if the stored version is `expected` (0: there is
    /// none). False, and nothing written, if another write came first.
    async fn put_doc(&self, kind: &str, id: &str, body: &str, expected: u64) -> Result<bool>;
    /// Removes a document; false if there was none.
    async fn delete_doc(&self, kind: &str, id: &str) -> Result<bool>;

    /// Adds counter deltas (reports, imports of past figures, the payments' hook).
    async fn add_rollups(&self, deltas: &[RollupDelta]) -> Result<()>;
    /// One metric's counters with `from <= day <= to`, by day then dim.
    async fn rollups(&self, metric: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<RollupRow>>;

    /// Up to `limit` account ids after `after` (None: from the start), in a fixed order that
    /// covers every account once: an announcement to every patient pages through them.
    async fn account_ids(&self, after: Option<AccountId>, limit: usize) -> Result<Vec<AccountId>>;
}

/// The typed view of one kind of document.
pub struct Docs<'a, T> {
    store: &'a dyn BackOfficeStore,
    kind: &'static str,
    _t: std::marker::PhantomData<T>,
}

/// A document read with its version (to write it back).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

impl<'a, T: Serialize + DeserializeOwned> Docs<'a, T> {
    pub fn new(store: &'a dyn BackOfficeStore, kind: &'static str) -> Self {
        Self { store, kind, _t: std::marker::PhantomData }
    }

    fn decode(&self, d: &Doc) -> Result<T> {
        serde_json::from_str(&d.body).map_err(|source| StoreError::Decode { table: "backoffice_documents", source })
    }

    pub async fn get(&self, id: &str) -> Result<Option<Versioned<T>>> {
        match self.store.doc(self.kind, id).await? {
            Some(d) => Ok(Some(Versioned { value: self.decode(&d)?, version: d.version })),
            None => Ok(None),
        }
    }

    /// Every document of the kind, by id; one that no longer decodes is skipped and logged
    /// (a listing must not fail for one bad row).
    pub async fn list(&self) -> Result<Vec<Versioned<T>>> {
        let mut out = Vec::new();
        for d in self.store.docs(self.kind).await? {
            match self.decode(&d) {
                Ok(value) => out.push(Versioned { value, version: d.version }),
                Err(e) => tracing::warn!(kind = self.kind, id = %d.id, error = %e, "undecodable document skipped"),
            }
        }
        Ok(out)
    }

    /// Writes if the stored version is still `expected` (0 for a new document).
    pub async fn put(&self, id: &str, value: &T, expected: u64) -> Result<bool> {
        let body = serde_json::to_string(value).expect("documents serialise");
        self.store.put_doc(self.kind, id, &body, expected).await
    }

    pub async fn delete(&self, id: &str) -> Result<bool> {
        self.store.delete_doc(self.kind, id).await
    }
}
