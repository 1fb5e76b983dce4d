//! Durable jobs on ScyllaDB (see `schema.cql`): as reminders, every write of a `jobs` row is a
//! lightweight transaction (insert `IF NOT EXISTS`, claim `IF body = ? AND lease_until = ?`,
//! finish `IF lease_owner = ?`), so two nodes never both run one job; the queue row is written
//! before and deleted after the record changes, so a crash leaves at worst a stale queue row,
//! which the next claim removes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hospital_domain::jobs::{due_day, Job};
use uuid::Uuid;

use super::{decode, encode, ScyllaStore};
use crate::error::Result;
use crate::jobs::JobStore;

const INSERT_JOB: &str = "INSERT INTO {ks}.jobs (job_id, body, lease_until) VALUES (?, ?, 0) IF NOT EXISTS";
const PUT_JOB: &str = "UPDATE {ks}.jobs SET body = ?, lease_owner = null, lease_until = 0 WHERE job_id = ?";
const GET_JOB: &str = "SELECT body, lease_owner, lease_until FROM {ks}.jobs WHERE job_id = ?";
const DELETE_JOB: &str = "DELETE FROM {ks}.jobs WHERE job_id = ?";
const CLAIM_JOB: &str =
    "UPDATE {ks}.jobs SET lease_owner = ?, lease_until = ? WHERE job_id = ? IF body = ? AND lease_until = ?";
const FINISH_JOB: &str =
    "UPDATE {ks}.jobs SET body = ?, lease_owner = null, lease_until = 0 WHERE job_id = ? IF lease_owner = ?";
const DROP_JOB: &str = "DELETE FROM {ks}.jobs WHERE job_id = ? IF lease_owner = ?";
const PUT_DUE: &str = "INSERT INTO {ks}.jobs_due (due_day, due_at, job_id, body) VALUES (?, ?, ?, ?)";
const DELETE_DUE: &str = "DELETE FROM {ks}.jobs_due WHERE due_day = ? AND due_at = ? AND job_id = ?";
const DUE_IN_DAY: &str = "SELECT body FROM {ks}.jobs_due WHERE due_day = ? AND due_at >= ? AND due_at <= ? LIMIT ?";

impl ScyllaStore {
    async fn put_job_due(&self, j: &Job) -> Result<()> {
        self.exec(PUT_DUE, (due_day(j.due_at), j.due_at.timestamp_millis(), j.id.as_str(), encode(j))).await?;
        Ok(())
    }

    async fn delete_job_due(&self, due_at: DateTime<Utc>, id: &str) -> Result<()> {
        self.exec(DELETE_DUE, (due_day(due_at), due_at.timestamp_millis(), id)).await?;
        Ok(())
    }

    /// The stored body, the job, its lease owner and lease end.
    async fn stored_job(&self, id: &str) -> Result<Option<(String, Job, Option<Uuid>, i64)>> {
        let row: Option<(String, Option<Uuid>, Option<i64>)> = self.row(GET_JOB, (id,)).await?;
        match row {
            None => Ok(None),
            Some((body, owner, until)) => {
                let j: Job = decode("jobs", &body)?;
                Ok(Some((body, j, owner, until.unwrap_or(0))))
            }
        }
    }
}

#[async_trait]
impl JobStore for ScyllaStore {
    async fn schedule_job(&self, job: &Job) -> Result<bool> {
        // The queue row first: a crash before the insert leaves a stale row a claim removes.
        self.put_job_due(job).await?;
        let lwt = self.lwt(INSERT_JOB, (job.id.as_str(), encode(job))).await?;
        if !lwt.applied {
            if let Some((_, existing, _, _)) = self.stored_job(&job.id).await? {
                if existing.due_at != job.due_at {
                    self.delete_job_due(job.due_at, &job.id).await?;
                }
            }
        }
        Ok(lwt.applied)
    }

    async fn put_job(&self, job: &Job) -> Result<()> {
        let old = self.stored_job(&job.id).await?;
        self.put_job_due(job).await?;
        self.exec(PUT_JOB, (encode(job), job.id.as_str())).await?;
        if let Some((_, o, _, _)) = old.filter(|(_, o, _, _)| o.due_at != job.due_at) {
            self.delete_job_due(o.due_at, &job.id).await?;
        }
        Ok(())
    }

    async fn job(&self, id: &str) -> Result<Option<Job>> {
        Ok(self.stored_job(id).await?.map(|(_, j, _, _)| j))
    }

    async fn cancel_job(&self, id: &str) -> Result<bool> {
        let Some((_, j, _, _)) = self.stored_job(id).await? else { return Ok(false) };
        self.exec(DELETE_JOB, (id,)).await?;
        self.delete_job_due(j.due_at, id).await?;
        Ok(true)
    }

    async fn due_jobs(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Result<Vec<Job>> {
        let mut out = Vec::new();
        for day in due_day(from)..=due_day(to) {
            let left = limit.saturating_sub(out.len());
            if left == 0 {
                break;
            }
            let cql_limit = i32::try_from(left).unwrap_or(i32::MAX);
            let rows: Vec<Job> = self
                .bodies("jobs_due", DUE_IN_DAY, (day, from.timestamp_millis(), to.timestamp_millis(), cql_limit))
                .await?;
            out.extend(rows);
        }
        out.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
        out.truncate(limit);
        Ok(out)
    }

    async fn claim_job(
        &self,
        entry: &Job,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Job>> {
        let Some((body, j, lease_owner, until)) = self.stored_job(&entry.id).await? else {
            self.delete_job_due(entry.due_at, &entry.id).await?;
            return Ok(None);
        };
        if j.due_at != entry.due_at {
            self.delete_job_due(entry.due_at, &entry.id).await?;
            return Ok(None);
        }
        let leased = lease_owner.is_some_and(|o| o != owner) && until > now.timestamp_millis();
        if j.due_at > now || leased {
            return Ok(None);
        }
        let lwt = self.lwt(CLAIM_JOB, (owner, lease_until.timestamp_millis(), j.id.as_str(), body, until)).await?;
        Ok(lwt.applied.then_some(j))
    }

    async fn finish_job(&self, id: &str, owner: Uuid, next: Option<&Job>) -> Result<bool> {
        let Some((_, old, lease_owner, _)) = self.stored_job(id).await? else { return Ok(false) };
        if lease_owner != Some(owner) {
            return Ok(false);
        }
        match next {
            Some(j) => {
                self.put_job_due(j).await?;
                if !self.lwt(FINISH_JOB, (encode(j), id, owner)).await?.applied {
                    return Ok(false);
                }
                if old.due_at != j.due_at {
                    self.delete_job_due(old.due_at, id).await?;
                }
            }
            None => {
                if !self.lwt(DROP_JOB, (id, owner)).await?.applied {
                    return Ok(false);
                }
                self.delete_job_due(old.due_at, id).await?;
            }
        }
        Ok(true)
    }
}
