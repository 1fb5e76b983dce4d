//! The day's closings (BOOK-2): a daily job makes sure each of the day's sessions has its
//! `closes:` job, the one that publishes the session's places as each segment closes to booking.
//! Sessions the doctor's actor adds get theirs as they are added (`schedule::session_jobs`); this
//! catches the rest: sessions written before those jobs existed (an upgraded hospital's weeks of
//! schedules) and any written past the actor. Scheduling is insert-if-absent, so a session whose
//! job is pending keeps it, and one whose segments have all closed gets none.

use chrono::{Duration as Days, NaiveDate, NaiveTime, Utc};
use hospital_domain::jobs::Job;
use hospital_store::{DataStore, StoreError};

use crate::schedule::closing_job;
use crate::ActorSystem;

/// The run for `date`: every doctor's sessions of that day given their job if missing, then the
/// next day's run scheduled (at its midnight, in the hospital's zone). How many jobs it added.
pub async fn run_day(data: &dyn DataStore, system: &ActorSystem, date: NaiveDate) -> Result<usize, StoreError> {
    let config = system.config();
    let mut added = 0;
    for doctor in data.doctors().await? {
        for session in data.sessions_of_doctor(doctor.id, date, date).await? {
            if let Some(job) = closing_job(config, &session) {
                added += usize::from(data.schedule_job(&job).await?);
            }
        }
    }
    if added > 0 {
        tracing::info!(%date, added, "sessions given their closing jobs");
    }
    schedule_day(data, system, date + Days::days(1)).await?;
    Ok(added)
}

/// At start-up: today's run, at once (cheap, and it repairs what a stop left).
pub async fn ensure_scheduled(data: &dyn DataStore, system: &ActorSystem) -> Result<(), StoreError> {
    let now = Utc::now();
    let today = system.config().zone.local_date(now);
    data.schedule_job(&Job::day_closings(today, now, now)).await.map(|_| ())
}

async fn schedule_day(data: &dyn DataStore, system: &ActorSystem, date: NaiveDate) -> Result<(), StoreError> {
    let at = system.config().zone.to_utc(date, NaiveTime::MIN);
    data.schedule_job(&Job::day_closings(date, at, Utc::now())).await.map(|_| ())
}
