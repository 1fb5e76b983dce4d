//! Stored schedule templates applied ahead (BOOK-9): each doctor's `StoredTemplate` (a
//! back-office document) is turned into sessions from tomorrow to `jobs.template_weeks_ahead`
//! weeks ahead, by two durable jobs: `templates:<date>` every day at `jobs.template_apply_at`
//! local time for every template (each run schedules the next day's), and `template:<doctor>`
//! at once when a template is saved. The sessions go through the doctor's schedule actor, which
//! adds only dates and periods the doctor has no session for: a session already there (booked,
//! stopped, its quota or times changed by hand) is never touched, and a second run (a retry, a
//! restart, a second node after a lapsed lease) adds nothing.

use chrono::{Duration as Days, NaiveDate, Utc};
use hospital_domain::jobs::Job;
use hospital_domain::schedule::{StoredTemplate, TemplateRun, TEMPLATE_DOCS, TEMPLATE_RUNS};
use hospital_domain::DoctorId;
use hospital_store::{DataStore, Docs, StoreError};
use serde::{Deserialize, Serialize};

use crate::ActorSystem;

/// The document kind marking a day whose daily run is done (id: the date), so a restart on the
/// same day schedules the next day's run instead of repeating it.
pub const TEMPLATE_DAYS: &str = "schedule_template_day";

#[derive(Debug, Serialize, Deserialize)]
struct DayDone {
    at: chrono::DateTime<Utc>,
    templates: usize,
}

/// The dates a run made now covers: tomorrow (local) to `weeks` weeks from today.
pub fn horizon(system: &ActorSystem) -> (NaiveDate, NaiveDate) {
    let cfg = system.config();
    let today = cfg.zone.local_date(Utc::now());
    let weeks = i64::from(cfg.jobs.template_weeks_ahead.max(1));
    (today + Days::days(1), today + Days::days(7 * weeks))
}

/// Applies one doctor's stored template to the horizon and records what it did; None if the
/// doctor has no template (deleted since) or is no longer in the catalogue.
pub async fn apply(
    data: &dyn DataStore,
    system: &ActorSystem,
    doctor: DoctorId,
) -> Result<Option<TemplateRun>, String> {
    let id = doctor.to_string();
    let Some(t) = Docs::<StoredTemplate>::new(data, TEMPLATE_DOCS).get(&id).await.map_err(text)? else {
        return Ok(None);
    };
    let Some(d) = data.doctor(doctor).await.map_err(text)? else {
        tracing::warn!(%doctor, "a stored template's doctor is not in the catalogue; not applied");
        return Ok(None);
    };
    let (from, to) = horizon(system);
    let sessions = t.value.sessions(d.department_id, d.fee(), from, to, system.config().zone).map_err(|e| e.reason)?;
    let added = system.add_sessions(doctor, sessions).await.map_err(text)?;
    let run = TemplateRun {
        doctor_id: doctor,
        at: Utc::now(),
        template_version: t.version,
        from,
        to,
        created: added.created.len(),
        skipped: added.skipped,
    };
    let runs = Docs::<TemplateRun>::new(data, TEMPLATE_RUNS);
    let expected = runs.get(&id).await.map_err(text)?.map_or(0, |r| r.version);
    // Losing this race means another run recorded itself just now: either record will do.
    runs.put(&id, &run, expected).await.map_err(text)?;
    tracing::info!(%doctor, created = run.created, skipped = run.skipped, %from, %to, "schedule template applied");
    metrics::counter!("schedule_template_sessions_total").increment(run.created as u64);
    Ok(Some(run))
}

/// The daily run: every stored template applied, the day marked done and the next day's run
/// scheduled. A template that fails fails the job (it retries; the others add nothing again).
pub async fn run_day(data: &dyn DataStore, system: &ActorSystem, date: NaiveDate) -> Result<(), String> {
    let templates = Docs::<StoredTemplate>::new(data, TEMPLATE_DOCS).list().await.map_err(text)?;
    let mut failed = Vec::new();
    for t in &templates {
        if let Err(e) = apply(data, system, t.value.doctor_id).await {
            failed.push(format!("{}: {e}", t.value.doctor_id));
        }
    }
    schedule_day(data, system, date + Days::days(1)).await.map_err(text)?;
    if !failed.is_empty() {
        return Err(failed.join("; "));
    }
    let done = DayDone { at: Utc::now(), templates: templates.len() };
    Docs::<DayDone>::new(data, TEMPLATE_DAYS).put(&date.to_string(), &done, 0).await.map_err(text)?;
    Ok(())
}

/// At start-up: today's daily run (at once if its time has passed), or tomorrow's if today's is
/// done.
pub async fn ensure_scheduled(data: &dyn DataStore, system: &ActorSystem) -> Result<(), StoreError> {
    let today = system.config().zone.local_date(Utc::now());
    let done = data.doc(TEMPLATE_DAYS, &today.to_string()).await?.is_some();
    schedule_day(data, system, if done { today + Days::days(1) } else { today }).await
}

async fn schedule_day(data: &dyn DataStore, system: &ActorSystem, date: NaiveDate) -> Result<(), StoreError> {
    let cfg = system.config();
    let now = Utc::now();
    let job = Job::apply_templates(date, cfg.zone.to_utc(date, cfg.jobs.template_apply_at), now);
    data.schedule_job(&job).await.map(|_| ())
}

/// A saved template is applied at once (replacing a pending run of the same doctor's).
pub async fn schedule_now(data: &dyn DataStore, doctor: DoctorId) -> Result<(), StoreError> {
    let now = Utc::now();
    data.put_job(&Job::apply_template(doctor, now, now)).await
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}
