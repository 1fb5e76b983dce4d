//! Durable jobs on the embedded engine: the job and its lease in `jobs`, its queue row in
//! `jobs_due`, changed together in one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hospital_domain::jobs::{due_day, Job};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::engine::{Reader, WriteCtx};
use super::keys::Key;
use super::tables::{JOBS, JOBS_DUE};
use super::EmbeddedStore;
use crate::error::Result;
use crate::jobs::JobStore;

/// The `jobs` row: the job and its lease.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredJob {
    job: Job,
    lease_owner: Option<Uuid>,
    lease_until_ms: i64,
}

fn job_key(id: &str) -> Key {
    Key::new().str(id)
}

fn due_key(due_at: DateTime<Utc>, id: &str) -> Key {
    Key::new().i64(due_day(due_at)).i64(due_at.timestamp_millis()).str(id)
}

fn put(ctx: &mut WriteCtx<'_>, job: &Job) {
    ctx.put(JOBS_DUE, &due_key(job.due_at, &job.id), job);
    ctx.put(JOBS, &job_key(&job.id), &StoredJob { job: job.clone(), lease_owner: None, lease_until_ms: 0 });
}

/// Removes the job's queue row (where its stored version has it).
fn unqueue(ctx: &mut WriteCtx<'_>, id: &str) -> Result<Option<StoredJob>> {
    let stored = ctx.get::<StoredJob>(JOBS, &job_key(id))?;
    if let Some(s) = &stored {
        ctx.delete(JOBS_DUE, &due_key(s.job.due_at, id));
    }
    Ok(stored)
}

#[async_trait]
impl JobStore for EmbeddedStore {
    async fn schedule_job(&self, job: &Job) -> Result<bool> {
        let j = job.clone();
        self.engine
            .write(move |ctx| {
                if ctx.get_raw(JOBS, job_key(&j.id).bytes())?.is_some() {
                    return Ok(false);
                }
                put(ctx, &j);
                Ok(true)
            })
            .await
    }

    async fn put_job(&self, job: &Job) -> Result<()> {
        let j = job.clone();
        self.engine
            .write(move |ctx| {
                unqueue(ctx, &j.id)?;
                put(ctx, &j);
                Ok(())
            })
            .await
    }

    async fn job(&self, id: &str) -> Result<Option<Job>> {
        let s: Option<StoredJob> = self.engine.read(|r| r.get(JOBS, &job_key(id)))?;
        Ok(s.map(|s| s.job))
    }

    async fn cancel_job(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.engine
            .write(move |ctx| {
                let had = unqueue(ctx, &id)?.is_some();
                ctx.delete(JOBS, &job_key(&id));
                Ok(had)
            })
            .await
    }

    async fn due_jobs(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Result<Vec<Job>> {
        self.engine.read(|r| {
            let mut out = Vec::new();
            for day in due_day(from)..=due_day(to) {
                let rows: Vec<Job> = r.scan(JOBS_DUE, &Key::new().i64(day))?;
                for j in rows.into_iter().filter(|j| j.due_at >= from && j.due_at <= to) {
                    if out.len() >= limit {
                        return Ok(out);
                    }
                    out.push(j);
                }
            }
            Ok(out)
        })
    }

    async fn claim_job(
        &self,
        entry: &Job,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Job>> {
        let (id, entry_due) = (entry.id.clone(), entry.due_at);
        self.engine
            .write(move |ctx| {
                let Some(mut s) = ctx.get::<StoredJob>(JOBS, &job_key(&id))? else {
                    ctx.delete(JOBS_DUE, &due_key(entry_due, &id));
                    return Ok(None);
                };
                if s.job.due_at != entry_due {
                    // A stale queue row: the job moved (a retry, a new request).
                    ctx.delete(JOBS_DUE, &due_key(entry_due, &id));
                    return Ok(None);
                }
                let leased = s.lease_owner.is_some_and(|o| o != owner) && s.lease_until_ms > now.timestamp_millis();
                if s.job.due_at > now || leased {
                    return Ok(None);
                }
                s.lease_owner = Some(owner);
                s.lease_until_ms = lease_until.timestamp_millis();
                ctx.put(JOBS, &job_key(&id), &s);
                Ok(Some(s.job))
            })
            .await
    }

    async fn finish_job(&self, id: &str, owner: Uuid, next: Option<&Job>) -> Result<bool> {
        let (id, next) = (id.to_string(), next.cloned());
        self.engine
            .write(move |ctx| {
                let Some(s) = ctx.get::<StoredJob>(JOBS, &job_key(&id))? else { return Ok(false) };
                if s.lease_owner != Some(owner) {
                    return Ok(false);
                }
                ctx.delete(JOBS_DUE, &due_key(s.job.due_at, &id));
                match next {
                    Some(j) => put(ctx, &j),
                    None => ctx.delete(JOBS, &job_key(&id)),
                }
                Ok(true)
            })
            .await
    }
}
