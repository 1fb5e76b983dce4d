//! The real-name rules (BOOK-6), read from a person's appointments across all accounts: checked
//! by the account's actor before a hold, a move or joining a waitlist, and by the doctor's actor
//! before it offers a waitlisted person a freed place (the person may have booked elsewhere since
//! joining).
//!
//! The person's turn. The rules are the person's (the ID number's), and a person may be a
//! patient of several accounts (a family's phones, each booking the grandmother during a
//! release): each account has its own actor, so the accounts' actors alone let two attempts for
//! one person read the same history and both pass. An account's actor therefore takes the
//! person's lock (`ActorSystem::persons`, a `KeyedLocks`) from the rules' read until the doctor's
//! actor has answered the hold (durable), so the next attempt reads a history that holds it. A
//! lock, not an actor: the turn is taken inside the account's actor, already the serial owner of
//! the attempt, and a further actor hop would cost every hold of a storm about what the account's
//! own hop costs. The doctor's actor offering a waitlisted person a place tries the turn and never
//! waits for it (the account's actor holding it may be waiting on that very doctor's actor):
//! `schedule::state`'s `screen_waitlist`. On several nodes the turn is also a short lock in Redis
//! (`Ownership::lock`), taken after the node's own (so a node's contenders queue in memory, not
//! on Redis): the accounts of one person may have their actors on two nodes. That lock lapses
//! after `CLUSTER_TURN` if its node dies; it is a lock, not a fence (ARCHITECTURE.md, "Several
//! nodes sharing ScyllaDB", says what would make it one).

use chrono::{Datelike, Duration as Days, Utc};
use hospital_domain::appointment::{Appointment, AppointmentStatus};
use hospital_domain::AppointmentId;
use hospital_store::StoreError;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;

use crate::booking::BookingError;
use crate::deps::Context;
use crate::error::ActorError;
use crate::ownership::Ownership;

/// How long a person's turn across nodes outlives a node that died holding it, and how long a
/// booking waits for it: a turn is held from the rules' read to the hold's durable answer,
/// milliseconds.
const CLUSTER_TURN: Duration = Duration::from_secs(3);

/// A person's turn: this node's lock and, on several nodes, the person's lock in Redis. Dropping
/// it lets both go, the node's after Redis's, so this node's next holder finds Redis's free.
pub(crate) struct Turn {
    local: Option<OwnedMutexGuard<()>>,
    cluster: Option<ClusterTurn>,
}

/// The person's lock in Redis: whose locks, the resource, and this holding's name.
type ClusterTurn = (Ownership, String, String);

impl Drop for Turn {
    fn drop(&mut self) {
        let local = self.local.take();
        let Some((ownership, resource, holding)) = self.cluster.take() else { return };
        // A drop cannot wait: the letting go runs on its own (the lock lapses if it cannot).
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                ownership.unlock(&resource, &holding).await;
                drop(local);
            });
        }
    }
}

/// A person's turn on its way to the doctor's actor with a hold (`Booker::turn`): that actor takes
/// it and keeps it until the hold is durable (`ScheduleState::turns`), so a caller that gives up
/// while its hold is in flight (a timeout, a client gone) lets no second attempt for the person
/// read a history without that hold. If nobody takes it (the message never arrived), it is let go
/// with the last copy. Copies share the one turn, as a message is built again for each attempt.
#[derive(Clone, Default)]
pub struct HeldTurn(Arc<Mutex<Option<Turn>>>);

impl HeldTurn {
    pub(crate) fn new(turn: Turn) -> Self {
        Self(Arc::new(Mutex::new(Some(turn))))
    }

    /// The turn, if no one took it yet.
    pub(crate) fn take(&self) -> Option<Turn> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl std::fmt::Debug for HeldTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.0.lock().map(|t| t.is_some()).unwrap_or(false);
        f.debug_tuple("HeldTurn").field(&held).finish()
    }
}

/// One try at `person`'s lock in Redis.
async fn try_cluster(ownership: &Ownership, person: &str) -> Result<Option<ClusterTurn>, StoreError> {
    let resource = format!("person:{person}");
    Ok(ownership.lock(&resource, CLUSTER_TURN).await?.map(|holding| (ownership.clone(), resource, holding)))
}

/// Waits for `person`'s turn (a booking, before the rules' read): this node's at most
/// `call_timeout`, as a call to an actor would (a holder is milliseconds from its durable answer,
/// unless its doctor's actor is stuck; then the caller hears so instead of queueing behind it).
pub(crate) async fn turn(ctx: &Context, person: &str) -> Result<Turn, BookingError> {
    let within = ctx.config.call_timeout;
    let Ok(local) = tokio::time::timeout(within, ctx.system.persons().lock(person)).await else {
        return Err(BookingError::Unavailable(ActorError::Timeout {
            kind: "person",
            id: "turn".into(),
            timeout: within,
        }));
    };
    let local = Some(local);
    let Some(ownership) = &ctx.ownership else { return Ok(Turn { local, cluster: None }) };
    let deadline = tokio::time::Instant::now() + CLUSTER_TURN;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(cluster) = try_cluster(ownership, person).await? {
            return Ok(Turn { local, cluster: Some(cluster) });
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Err(BookingError::Unavailable(ActorError::Unavailable {
                kind: "person",
                id: "turn".into(),
                reason: "another booking for this person is in progress on another node; try again".into(),
            }));
        }
        // Another node's holder is between its rules' read and its durable hold: milliseconds.
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

/// `person`'s turn if nobody holds it now, without waiting (a doctor's actor, before an offer).
/// A failing Redis counts as taken: the offer waits for the next tick.
pub(crate) async fn try_turn(ctx: &Context, person: &str) -> Option<Turn> {
    let local = Some(ctx.system.persons().try_lock(person)?);
    let Some(ownership) = &ctx.ownership else { return Some(Turn { local, cluster: None }) };
    match try_cluster(ownership, person).await {
        Ok(cluster) => cluster.map(|c| Turn { local, cluster: Some(c) }),
        Err(e) => {
            tracing::warn!(error = %e, "a person's turn could not be tried; the offer waits");
            None
        }
    }
}

/// The real-name rules (BOOK-6) for `person` booking in `department` on `date`, read from
/// the person's appointments across all accounts. `moving` is an appointment being moved,
/// which does not count against its own move.
pub(crate) async fn check(
    ctx: &Context,
    person: &str,
    department: hospital_domain::DepartmentId,
    date: chrono::NaiveDate,
    moving: Option<AppointmentId>,
) -> Result<(), BookingError> {
    let cfg = &ctx.config;
    let window = Days::from_std(cfg.no_show_window).unwrap_or(Days::days(90));
    let from = (date - window).min(date - Days::days(7));
    let to = date + Days::days(7);
    let history = ctx.stores.data.appointments_of_person(person, from, to).await?;
    let live = |a: &&Appointment| {
        Some(a.id) != moving
            && matches!(a.status, AppointmentStatus::Held | AppointmentStatus::Confirmed | AppointmentStatus::CheckedIn)
    };
    if history.iter().filter(live).any(|a| a.department_id == department && a.date == date) {
        return Err(BookingError::Rule {
            reason: "one_per_department_day",
            message: "this person already has a booking in this department on this day".into(),
        });
    }
    let week = date.iso_week();
    let this_week = history
        .iter()
        .filter(|a| Some(a.id) != moving && a.date.iso_week() == week)
        .filter(|a| {
            matches!(
                a.status,
                AppointmentStatus::Held
                    | AppointmentStatus::Confirmed
                    | AppointmentStatus::CheckedIn
                    | AppointmentStatus::Seen
            )
        })
        .count();
    if this_week >= cfg.weekly_cap {
        return Err(BookingError::Rule {
            reason: "weekly_cap",
            message: format!("at most {} bookings per person per week", cfg.weekly_cap),
        });
    }
    let today = cfg.zone.local_date(Utc::now());
    let missed: Vec<_> = history
        .iter()
        .filter(|a| a.status == AppointmentStatus::Missed && a.date > today - window)
        .map(|a| a.date)
        .collect();
    if missed.len() >= cfg.no_show_limit {
        let last = missed.iter().max().copied().unwrap_or(today);
        let until = last + Days::from_std(cfg.no_show_ban).unwrap_or(Days::days(30));
        if today < until {
            return Err(BookingError::Rule {
                reason: "no_show_ban",
                message: format!("{} missed appointments: booking is suspended until {until}", missed.len()),
            });
        }
    }
    Ok(())
}

/// A refusal's reason as a patient's message says it (in the hospital's language).
pub(crate) fn reason_zh(reason: &str) -> &'static str {
    match reason {
        "one_per_department_day" => "当日已有该科室的预约",
        "weekly_cap" => "本周预约已达上限",
        _ => "因爽约暂停预约",
    }
}
