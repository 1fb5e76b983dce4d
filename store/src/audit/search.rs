//! Searching the audit log: one index (by time, staff member, action or patient account) over a
//! time range, newest first, in pages. The search walks the index's buckets from the newest down
//! and stops as soon as a page is full, so a page costs a few partition reads however long the
//! range; `next` continues where the page ended. Written once over `AuditStore`, for every
//! backend.

use chrono::{DateTime, Utc};
use hospital_domain::audit::{AuditEntry, Outcome};
use hospital_domain::{AccountId, StaffId};

use super::{AuditCursor, AuditIndex, AuditStore};
use crate::error::Result;

/// Most entries one page returns.
pub const MAX_PAGE: usize = 1000;

/// A search: which index, which time range (inclusive), where to continue, how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub index: AuditIndex,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Narrows the index's entries further (e.g. one staff member's `record.read`s).
    pub filter: AuditFilter,
    /// Continue after this (the previous page's `next`).
    pub after: Option<AuditCursor>,
    pub limit: usize,
}

/// Conditions checked on each entry of the index being read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub outcome: Option<Outcome>,
}

impl AuditFilter {
    fn matches(&self, e: &AuditEntry) -> bool {
        self.action.as_deref().is_none_or(|a| e.event.action.as_str() == a)
            && self.outcome.is_none_or(|o| e.event.outcome == o)
    }
}

impl AuditIndex {
    pub fn staff(id: StaffId) -> Self {
        AuditIndex::Actor(id.to_string())
    }
    pub fn account(id: AccountId) -> Self {
        AuditIndex::Account(id)
    }
}

impl AuditQuery {
    pub fn new(index: AuditIndex, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Self {
        AuditQuery { index, from, to, filter: AuditFilter::default(), after: None, limit }
    }
}

/// One page, newest first; `next` is set when the page is full (there may be more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next: Option<AuditCursor>,
}

/// Runs one page of a search.
pub async fn search(store: &dyn AuditStore, q: &AuditQuery) -> Result<AuditPage> {
    let limit = q.limit.clamp(1, MAX_PAGE);
    let mut entries = Vec::new();
    if q.from > q.to {
        return Ok(AuditPage { entries, next: None });
    }
    // Nothing is older than the oldest chain's first entry: no need to read buckets before it.
    let from = match store.audit_heads().await?.iter().map(|h| h.first_at).min() {
        Some(first) => q.from.max(first),
        None => return Ok(AuditPage { entries, next: None }),
    };
    let start = AuditCursor::after_time(q.to);
    let mut cursor = match &q.after {
        Some(c) if (c.at_ms, c.chain.as_str(), c.seq) < (start.at_ms, start.chain.as_str(), start.seq) => c.clone(),
        _ => start,
    };
    let width = q.index.bucket();
    let first_bucket = width.of(from);
    let Some(top) = DateTime::from_timestamp_millis(cursor.at_ms) else {
        return Ok(AuditPage { entries, next: None });
    };
    let mut bucket = width.of(top);
    'buckets: while bucket >= first_bucket {
        let want = (limit - entries.len()).max(64);
        let rows = store.audit_index_page(&q.index, bucket, &cursor, want).await?;
        let exhausted = rows.len() < want;
        for e in rows {
            cursor = AuditCursor::of(&e);
            if e.at < from {
                break 'buckets;
            }
            if q.filter.matches(&e) {
                entries.push(e);
                if entries.len() == limit {
                    break 'buckets;
                }
            }
        }
        if exhausted {
            bucket -= 1;
        }
    }
    let next = (entries.len() == limit).then(|| AuditCursor::of(entries.last().expect("a full page")));
    Ok(AuditPage { entries, next })
}
