//! Durable jobs (`hospital_domain::jobs`): closing clinic sessions at their end and erasing
//! accounts after their cooling-off. Two tables, as the notifier's reminders: `jobs ((job_id))`
//! holds the job and its lease, `jobs_due ((due_day), due_at, job_id)` is the queue, read a few
//! day partitions at a time (a day of one hospital's closings and erasures is small). A job that
//! is done leaves both; one that failed moves to its retry time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hospital_domain::jobs::Job;
use uuid::Uuid;

use crate::error::Result;

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Inserts the job unless one with its id exists (whatever its state); true if new.
    async fn schedule_job(&self, job: &Job) -> Result<bool>;
    /// Inserts or replaces the job (and moves its queue row to its due time).
    async fn put_job(&self, job: &Job) -> Result<()>;
    async fn job(&self, id: &str) -> Result<Option<Job>>;
    /// Removes the job and its queue row; false if there was none.
    async fn cancel_job(&self, id: &str) -> Result<bool>;
    /// Queue entries with `from <= due_at <= to`, oldest first, at most `limit`.
    async fn due_jobs(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Result<Vec<Job>>;
    /// Takes a due job for `owner` until `lease_until`, if it is still due, unchanged, and no
    /// other owner's lease runs; the job as stored, or None.
    async fn claim_job(
        &self,
        entry: &Job,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Job>>;
    /// The lease holder is done: the job is removed (`next` None) or rescheduled as `next`
    /// (a retry). False (nothing written) if `owner` no longer holds the lease.
    async fn finish_job(&self, id: &str, owner: Uuid, next: Option<&Job>) -> Result<bool>;
}
