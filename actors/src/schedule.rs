//! The doctor schedule actor: one per doctor, holding that doctor's clinic sessions from
//! yesterday to `schedule_days_ahead` days ahead in memory, so schedule reads never touch the
//! store and (next issue) bookings on one doctor are serialised in one place.

use chrono::{Duration as Days, NaiveDate, Utc};
use hospital_domain::schedule::ClinicSession;
use hospital_domain::DoctorId;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;

use crate::idle::IdleClock;
use crate::{ActorDeps, ActorKind};

/// Messages of a doctor schedule actor.
#[derive(Debug)]
pub enum ScheduleMsg {
    /// The doctor's sessions with `from <= date <= to`, ordered by date then period, answered
    /// from memory. Only the loaded window (yesterday to `schedule_days_ahead` ahead) is held;
    /// dates outside it come back empty.
    GetSchedule { from: NaiveDate, to: NaiveDate, reply: RpcReplyPort<Vec<ClinicSession>> },
    /// Re-reads the doctor's sessions from the store: sent after staff change sessions.
    Reload,
    /// Panics on purpose, so tests and operators can exercise supervision (the supervisor
    /// restarts the actor, which reloads from the store). Only with the `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    InjectFault,
    /// The idle clock's periodic tick; internal.
    #[doc(hidden)]
    Tick,
}

/// Start-up arguments: which doctor, and the shared dependencies.
pub struct ScheduleArgs {
    pub doctor: DoctorId,
    pub deps: Arc<ActorDeps>,
}

/// The live state of one doctor's schedule.
pub struct ScheduleState {
    doctor: DoctorId,
    deps: Arc<ActorDeps>,
    /// Sessions in the window, ordered by date then period (as the store returns them).
    sessions: Vec<ClinicSession>,
    /// The local date the window was computed on; when the day changes the window moves.
    loaded_on: NaiveDate,
    idle: IdleClock,
    // Booking (next issue) keeps the holds and bookings of these sessions' slots here, so the
    // actor is the single writer of a doctor's remaining places.
}

impl ScheduleState {
    /// Reads the window around `today` from the store. On error the old data stays.
    async fn load(&mut self) -> Result<(), hospital_store::StoreError> {
        let (sessions, today) = load_window(self.doctor, &self.deps).await?;
        self.sessions = sessions;
        self.loaded_on = today;
        Ok(())
    }
}

async fn load_window(
    doctor: DoctorId,
    deps: &ActorDeps,
) -> Result<(Vec<ClinicSession>, NaiveDate), hospital_store::StoreError> {
    let today = deps.config.zone.local_date(Utc::now());
    // Yesterday too: a session that ran late last night may still be asked about.
    let from = today - Days::days(1);
    let to = today + Days::days(i64::from(deps.config.schedule_days_ahead));
    let sessions = deps.stores.data.sessions_of_doctor(doctor, from, to).await?;
    Ok((sessions, today))
}

/// The doctor schedule actor (stateless handler; the state is `ScheduleState`).
pub struct ScheduleActor;

impl Actor for ScheduleActor {
    type Msg = ScheduleMsg;
    type State = ScheduleState;
    type Arguments = ScheduleArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: ScheduleArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let (sessions, today) = load_window(args.doctor, &args.deps).await?;
        tracing::debug!(doctor = %args.doctor, sessions = sessions.len(), "schedule actor loaded");
        Ok(ScheduleState {
            doctor: args.doctor,
            idle: IdleClock::new(args.deps.config.idle_timeout),
            deps: args.deps,
            sessions,
            loaded_on: today,
        })
    }

    async fn post_start(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.start(&myself, || ScheduleMsg::Tick);
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.stop();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, ScheduleMsg::Tick) {
            state.idle.touch();
        }
        match msg {
            ScheduleMsg::GetSchedule { from, to, reply } => {
                let out: Vec<ClinicSession> =
                    state.sessions.iter().filter(|s| s.date >= from && s.date <= to).cloned().collect();
                // The caller may have timed out and gone; nothing to do then.
                let _ = reply.send(out);
            }
            ScheduleMsg::Reload => {
                // A failed reload keeps serving the data we have rather than crashing: the store
                // is the problem, and a restart would fail the same way.
                if let Err(e) = state.load().await {
                    tracing::warn!(doctor = %state.doctor, error = %e, "schedule reload failed; keeping old data");
                }
            }
            #[cfg(feature = "fault-injection")]
            ScheduleMsg::InjectFault => {
                panic!("fault injected into schedule actor {}", state.doctor);
            }
            ScheduleMsg::Tick => {
                if state.idle.expired() {
                    tracing::debug!(doctor = %state.doctor, "schedule actor idle; stopping");
                    state.idle.stop();
                    // Drain, not stop: anything already queued is still answered.
                    let _ = myself.drain();
                } else if state.deps.config.zone.local_date(Utc::now()) != state.loaded_on {
                    // Midnight passed: move the window so "60 days ahead" stays true.
                    if let Err(e) = state.load().await {
                        tracing::warn!(doctor = %state.doctor, error = %e, "schedule window move failed");
                    }
                }
            }
        }
        Ok(())
    }
}

/// Doctor schedules as an actor kind: keyed by `DoctorId`, supervised by `schedules`.
pub struct ScheduleKind;

impl ActorKind for ScheduleKind {
    const KIND: &'static str = "schedule";
    const SUPERVISOR: &'static str = "schedules";
    type Id = DoctorId;
    type Actor = ScheduleActor;

    fn actor() -> ScheduleActor {
        ScheduleActor
    }
    fn args(doctor: DoctorId, deps: &Arc<ActorDeps>) -> ScheduleArgs {
        ScheduleArgs { doctor, deps: deps.clone() }
    }
}
