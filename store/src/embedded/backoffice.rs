//! The back office's store on the embedded engine: staff edits, documents (compare-and-set on
//! their version inside the write transaction), analytics counters (added in the same
//! transaction as the booking change they count: `add_deltas`), and paging through accounts.

use async_trait::async_trait;
use chrono::NaiveDate;
use hospital_domain::analytics::{merge, RollupDelta, RollupRow};
use hospital_domain::AccountId;
use serde::{Deserialize, Serialize};

use super::engine::{Reader, WriteCtx};
use super::keys::Key;
use super::tables::*;
use super::EmbeddedStore;
use crate::backoffice::{BackOfficeStore, Doc};
use crate::error::Result;
use crate::StaffMember;

#[derive(Serialize, Deserialize)]
struct StoredDoc {
    id: String,
    version: u64,
    body: String,
}

fn doc_key(kind: &str, id: &str) -> Key {
    Key::new().str(kind).str(id)
}

fn rollup_key(metric: &str, day: NaiveDate, dim: &str) -> Key {
    Key::new().str(metric).date(day).str(dim)
}

/// Adds counter deltas inside a write transaction (the booking write's own, so a counter moves
/// exactly when the rows it counts do).
pub(super) fn add_deltas(ctx: &mut WriteCtx<'_>, deltas: Vec<RollupDelta>) -> Result<()> {
    for d in merge(deltas) {
        let key = rollup_key(d.metric, d.day, &d.dim);
        let n: i64 = ctx.get(ANALYTICS_DAILY, &key)?.unwrap_or(0);
        ctx.put(ANALYTICS_DAILY, &key, &(n + d.n));
    }
    Ok(())
}

/// Decodes a rollup key's day and dim (after the metric's prefix).
fn decode_day_dim(key: &[u8], prefix_len: usize) -> Option<(NaiveDate, String)> {
    let rest = key.get(prefix_len..)?;
    let days = (u64::from_be_bytes(rest.get(..8)?.try_into().ok()?) ^ (1 << 63)) as i64;
    let day = NaiveDate::from_num_days_from_ce_opt(i32::try_from(days).ok()?)?;
    let (dim, _) = super::keys::read_str(&rest[8..])?;
    Some((day, dim))
}

#[async_trait]
impl BackOfficeStore for EmbeddedStore {
    async fn all_staff(&self) -> Result<Vec<StaffMember>> {
        let mut v: Vec<StaffMember> = self.engine.read(|r| r.scan(STAFF, &Key::new()))?;
        v.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(v)
    }

    async fn update_staff(&self, staff: &StaffMember) -> Result<bool> {
        let s = staff.clone();
        self.engine
            .write(move |ctx| {
                let key = Key::new().uuid(&s.id.0);
                let Some(old) = ctx.get::<StaffMember>(STAFF, &key)? else { return Ok(false) };
                ctx.put(STAFF, &key, &StaffMember { username: old.username, ..s });
                Ok(true)
            })
            .await
    }

    async fn doc(&self, kind: &str, id: &str) -> Result<Option<Doc>> {
        let d: Option<StoredDoc> = self.engine.read(|r| r.get(BACKOFFICE_DOCUMENTS, &doc_key(kind, id)))?;
        Ok(d.map(|d| Doc { kind: kind.into(), id: id.into(), version: d.version, body: d.body }))
    }

    async fn docs(&self, kind: &str) -> Result<Vec<Doc>> {
        let prefix = Key::new().str(kind);
        let rows: Vec<StoredDoc> = self.engine.read(|r| r.scan(BACKOFFICE_DOCUMENTS, &prefix))?;
        Ok(rows.into_iter().map(|d| Doc { kind: kind.into(), id: d.id, version: d.version, body: d.body }).collect())
    }

    async fn put_doc(&self, kind: &str, id: &str, body: &str, expected: u64) -> Result<bool> {
        let (key, body, id) = (doc_key(kind, id), body.to_string(), id.to_string());
        self.engine
            .write(move |ctx| {
                let now = ctx.get::<StoredDoc>(BACKOFFICE_DOCUMENTS, &key)?.map_or(0, |d| d.version);
                if now != expected {
                    return Ok(false);
                }
                ctx.put(BACKOFFICE_DOCUMENTS, &key, &StoredDoc { id, version: expected + 1, body });
                Ok(true)
            })
            .await
    }

    async fn delete_doc(&self, kind: &str, id: &str) -> Result<bool> {
        let key = doc_key(kind, id);
        self.engine
            .write(move |ctx| {
                if ctx.get::<StoredDoc>(BACKOFFICE_DOCUMENTS, &key)?.is_none() {
                    return Ok(false);
                }
                ctx.delete(BACKOFFICE_DOCUMENTS, &key);
                Ok(true)
            })
            .await
    }

    async fn add_rollups(&self, deltas: &[RollupDelta]) -> Result<()> {
        let deltas = deltas.to_vec();
        self.engine.write(move |ctx| add_deltas(ctx, deltas)).await
    }

    async fn rollups(&self, metric: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<RollupRow>> {
        if to < from {
            return Ok(Vec::new());
        }
        let prefix = Key::new().str(metric);
        let start = prefix.clone().date(from);
        let end = prefix.clone().date(to + chrono::Days::new(1));
        let rows = self.engine.read(|r| r.range(ANALYTICS_DAILY, start.bytes(), end.bytes(), usize::MAX))?;
        let mut out = Vec::with_capacity(rows.len());
        for (k, v) in rows {
            let Some((day, dim)) = decode_day_dim(&k, prefix.bytes().len()) else { continue };
            let n: i64 = super::engine::from_json(ANALYTICS_DAILY, &v)?;
            out.push(RollupRow { day, dim, n });
        }
        Ok(out)
    }

    async fn account_ids(&self, after: Option<AccountId>, limit: usize) -> Result<Vec<AccountId>> {
        // Account keys are 16 bytes (the id); the next key after `after` is `after` + one 0 byte.
        let start = match after {
            Some(a) => {
                let mut k = Key::new().uuid(&a.0).into_bytes();
                k.push(0);
                k
            }
            None => Vec::new(),
        };
        let end = [0xFFu8; 17];
        let rows = self.engine.read(|r| r.range(ACCOUNTS, &start, &end, limit))?;
        Ok(rows.into_iter().filter_map(|(k, _)| uuid::Uuid::from_slice(k.get(..16)?).ok().map(AccountId)).collect())
    }
}
