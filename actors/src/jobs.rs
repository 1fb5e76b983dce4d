//! The durable jobs' runner (`hospital_domain::jobs`): closing clinic sessions at their end (their
//! bookings never checked in become no-shows, BOOK-6), publishing a session's places as each of its
//! slots closes to booking and giving each day's sessions that job (BOOK-2, `closings`), and
//! erasing accounts after their cooling-off (SET-3), publishing announcements at their time (ADM-4,
//! `announce`), reconciling each day with the payment providers' bills (PAY-4, `reconcile`),
//! applying stored schedule templates ahead (BOOK-9, `templates`). Jobs are rows (`JobStore`), so
//! one that fell due while no process ran is run at the next start. Like the notifier, a supervised
//! task, not an actor: every `tick` it reads what is due, claims each job (a lease, so two runners
//! never run one), runs it in its own task (a panic is caught and counted), and removes it, or
//! moves it to a retry time with an exponential backoff. Running a job twice (a lease lapsed
//! mid-run) is harmless: closing a closed session finds nobody left, erasing an erased account
//! finds nothing.

use async_trait::async_trait;
use chrono::Utc;
use hospital_domain::jobs::{Job, JobKind};
use hospital_domain::AccountId;
use hospital_store::DataStore;
use std::sync::Arc;
use uuid::Uuid;

use crate::announce::Announcer;
use crate::config::JobsConfig;
use crate::reconcile::Reconciler;
use crate::ActorSystem;

/// Carries out an account's erasure (the records service: keys destroyed, objects and rows
/// deleted). Given to the runner by the platform.
#[async_trait]
pub trait AccountEraser: Send + Sync {
    async fn erase(&self, account: AccountId) -> Result<(), String>;
}

/// The platform's erasure of an account (SET-3): each patient's data key destroyed first (from
/// then on every copy of their sealed data, in the store, object storage or a backup, is
/// unreadable), then every row of the account deleted (payment orders kept, without personal
/// data). Running it again finds nothing left to do.
pub struct StoreEraser {
    pub data: Arc<dyn DataStore>,
    pub keys: hospital_store::PersonCipher,
}

#[async_trait]
impl AccountEraser for StoreEraser {
    async fn erase(&self, account: AccountId) -> Result<(), String> {
        if self.data.deletion(account).await.map_err(|e| e.to_string())?.is_none() {
            tracing::info!(%account, "no deletion request stands (cancelled, or done): nothing erased");
            return Ok(());
        }
        let patients = self.data.patients_of(account).await.map_err(|e| e.to_string())?;
        for p in &patients {
            self.keys.destroy(p.id).await.map_err(|e| e.to_string())?;
        }
        let erased = self.data.erase_account(account).await.map_err(|e| e.to_string())?;
        tracing::info!(%account, keys = patients.len(), rows = ?erased, "account erased");
        metrics::counter!("accounts_erased_total").increment(1);
        Ok(())
    }
}

/// A running job runner; dropping it ends its task (the jobs stay in the store).
pub struct JobRunner {
    worker: Arc<Worker>,
    task: tokio::task::JoinHandle<()>,
    burst: tokio::task::JoinHandle<()>,
}

impl Drop for JobRunner {
    fn drop(&mut self) {
        self.task.abort();
        self.burst.abort();
    }
}

/// How long before a release the store is told that a burst of holds is coming: the flusher here
/// writes a full memtable (64 MiB) out in about a second, so it is done before the first tap.
const BURST_LEAD: chrono::Duration = chrono::Duration::seconds(5);

/// Watches for the next release (放号) among this node's sessions (the availability gate) and,
/// once it is within `BURST_LEAD`, has the store make room for the burst
/// (`DataStore::prepare_for_burst`), once per release instant. A second, not the jobs' tick: a
/// release moved to a few seconds ahead must still be seen in time.
async fn burst_watch(data: Arc<dyn DataStore>, system: ActorSystem) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prepared = None;
    loop {
        tick.tick().await;
        let now = Utc::now();
        let Some(at) = system.gate().next_release(now) else { continue };
        if at - now > BURST_LEAD || prepared == Some(at) {
            continue;
        }
        prepared = Some(at);
        match data.prepare_for_burst().await {
            Ok(true) => tracing::info!(release = %at, "the store made room for a release's burst"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot make room in the store for a burst"),
        }
    }
}

struct Worker {
    data: Arc<dyn DataStore>,
    system: ActorSystem,
    eraser: Option<Arc<dyn AccountEraser>>,
    announcer: Option<Arc<Announcer>>,
    reconciler: Option<Arc<Reconciler>>,
    config: JobsConfig,
    owner: Uuid,
}

fn chrono(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl JobRunner {
    pub fn start(
        data: Arc<dyn DataStore>,
        system: ActorSystem,
        eraser: Option<Arc<dyn AccountEraser>>,
        announcer: Option<Arc<Announcer>>,
        reconciler: Option<Arc<Reconciler>>,
        config: JobsConfig,
    ) -> JobRunner {
        let burst = tokio::spawn(burst_watch(data.clone(), system.clone()));
        let worker = Arc::new(Worker { data, system, eraser, announcer, reconciler, config, owner: Uuid::new_v4() });
        let w = worker.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(w.config.tick);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let w = w.clone();
                if let Err(e) = tokio::spawn(async move { w.run_due().await }).await {
                    if e.is_panic() {
                        metrics::counter!("jobs_panics_total").increment(1);
                        tracing::error!(error = %e, "job runner panicked; continuing");
                    }
                }
            }
        });
        tracing::info!(owner = %worker.owner, "job runner started");
        JobRunner { worker, task, burst }
    }

    /// Runs what is due now, at once (tests; the loop does it every tick).
    pub async fn run_due(&self) -> usize {
        self.worker.run_due().await
    }
}

impl Worker {
    /// Claims and runs every due job; how many ran (successfully or not).
    async fn run_due(&self) -> usize {
        let now = Utc::now();
        let due = match self.data.due_jobs(now - chrono(self.config.lookback), now, self.config.batch).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read due jobs");
                return 0;
            }
        };
        let mut ran = 0;
        for entry in due {
            let lease = now + chrono(self.config.lease);
            let job = match self.data.claim_job(&entry, self.owner, now, lease).await {
                Ok(Some(j)) => j,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(job = %entry.id, error = %e, "cannot claim a job");
                    continue;
                }
            };
            ran += 1;
            let next = match self.run(&job).await {
                Ok(again) => {
                    metrics::counter!("jobs_done_total").increment(1);
                    again
                }
                Err(e) => {
                    metrics::counter!("jobs_failed_total").increment(1);
                    tracing::warn!(job = %job.id, attempts = job.attempts + 1, error = %e, "job failed; retrying later");
                    let mut retry = job.clone();
                    retry.retry_later(&e, Utc::now(), chrono(self.config.retry_base), chrono(self.config.retry_max));
                    Some(retry)
                }
            };
            if let Err(e) = self.data.finish_job(&job.id, self.owner, next.as_ref()).await {
                tracing::warn!(job = %job.id, error = %e, "cannot record a job's outcome; it runs again");
            }
        }
        ran
    }

    /// Runs one job: what is left of it (the same job, due again later), if anything.
    async fn run(&self, job: &Job) -> Result<Option<Job>, String> {
        let done = match &job.kind {
            JobKind::CloseSession { session_id, doctor_id } => {
                let missed = self.system.close_session(*doctor_id, *session_id).await.map_err(|e| e.to_string())?;
                tracing::info!(session = %session_id, missed = missed.len(), "clinic session closed");
                metrics::counter!("appointments_missed_total").increment(missed.len() as u64);
                Ok(())
            }
            JobKind::BookingCloses { session_id, doctor_id } => {
                let next = self.system.booking_closed(*doctor_id, *session_id).await.map_err(|e| e.to_string())?;
                return Ok(next.map(|due| Job::booking_closes(*session_id, *doctor_id, due, Utc::now())));
            }
            JobKind::DayClosings { date } => crate::closings::run_day(self.data.as_ref(), &self.system, *date)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            JobKind::EraseAccount { account_id } => match &self.eraser {
                Some(e) => e.erase(*account_id).await,
                None => Err("no eraser configured".into()),
            },
            JobKind::PublishAnnouncement { announcement_id } => match &self.announcer {
                Some(a) => a.publish(*announcement_id).await.map(|_| ()),
                None => Err("no announcer configured".into()),
            },
            JobKind::Reconcile { date } => match &self.reconciler {
                Some(r) => r.run_job(*date).await,
                None => Err("no reconciler configured".into()),
            },
            JobKind::ApplyTemplate { doctor_id } => {
                crate::templates::apply(self.data.as_ref(), &self.system, *doctor_id).await.map(|_| ())
            }
            JobKind::ApplyTemplates { date } => {
                crate::templates::run_day(self.data.as_ref(), &self.system, *date).await
            }
        };
        done.map(|()| None)
    }
}
