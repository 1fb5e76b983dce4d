//! The doctor schedule actor's handler, and schedules as an actor kind.

use chrono::Utc;
use hospital_domain::booking::{BookError, DoctorBook};
use hospital_domain::DoctorId;
use hospital_store::BookingWrite;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::time::Duration;

use super::check_in::*;
use super::msg::*;
use super::state::*;
use crate::booking::BookingError;
use crate::idle::IdleClock;
use crate::ownership::Held;
use crate::pipeline::WritePipeline;
use crate::supervisor::actor_kind;

/// The doctor schedule actor (stateless handler; the state is `ScheduleState`).
pub struct ScheduleActor;

impl Actor for ScheduleActor {
    type Msg = ScheduleMsg;
    type State = ScheduleState;
    type Arguments = ScheduleArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ScheduleArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        // A predecessor (before a panic) may still be writing what it acknowledged: wait for it,
        // so the book loaded below includes every acknowledged change.
        let owner = myself.get_name().unwrap_or_else(|| hospital_store::schedule_resource(args.doctor));
        let guard = WritePipeline::quiesce(&owner).await;
        // Several nodes: take the doctor's lease and claim it before loading, so nothing a
        // previous owner could still write is missing from what is loaded.
        let resource = hospital_store::schedule_resource(args.doctor);
        let held = Held::take(args.ctx.ownership.as_ref(), &resource, args.ctx.stores.data.as_ref()).await?;
        let (books, today) = load_window(args.doctor, &args.ctx).await?;
        tracing::debug!(doctor = %args.doctor, sessions = books.len(), "schedule actor loaded");
        // Whatever a predecessor left in the node's gate is replaced by what was loaded.
        args.ctx.system.gate().replace(args.doctor, books.iter());
        let me = myself.clone();
        let events = args.ctx.events.clone();
        let pipeline = WritePipeline::start(
            args.ctx.stores.data.clone(),
            guard,
            move |e| {
                let _ = me.cast(ScheduleMsg::WriteFailed(e.to_string()));
            },
            move |topics| topics.into_iter().for_each(|a| publish_availability(&events, a)),
        );
        Ok(ScheduleState {
            doctor: args.doctor,
            idle: IdleClock::new(args.ctx.config.idle_timeout),
            ctx: args.ctx,
            book: DoctorBook::new(books),
            loaded_on: today,
            pipeline,
            expiry: None,
            held,
            turns: Vec::new(),
        })
    }

    async fn post_start(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.start(&myself, || ScheduleMsg::Tick);
        state.expiry = Some(myself.send_interval(Duration::from_secs(1), || ScheduleMsg::ExpireTick));
        state.held.start_renewing(state.ctx.ownership.as_ref(), &myself, || ScheduleMsg::RenewLease);
        // Holds that lapsed while no actor ran are freed at once.
        let _ = myself.cast(ScheduleMsg::ExpireTick);
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        // Without an actor nobody keeps the entries current: "ask the actor" again.
        state.ctx.system.gate().forget(state.doctor);
        state.idle.stop();
        if let Some(t) = state.expiry.take() {
            t.abort();
        }
        state.held.release(state.ctx.ownership.as_ref()).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, ScheduleMsg::Tick | ScheduleMsg::ExpireTick | ScheduleMsg::RenewLease) {
            state.idle.touch();
        }
        match msg {
            ScheduleMsg::GetSchedule { from, to, reply } => {
                let out = state
                    .book
                    .sessions
                    .values()
                    .filter(|b| b.session.date >= from && b.session.date <= to)
                    .map(SessionAvailability::of)
                    .collect::<Vec<_>>();
                let mut out = out;
                out.sort_by_key(|s| (s.session.date, s.session.period));
                let _ = reply.send(out);
            }
            ScheduleMsg::Probe { slot, reply } => {
                let answer = match state.book.session(slot.session_id) {
                    None => Err(BookingError::Book(BookError::NoSuchSlot)),
                    Some(b) => b.bookable(slot.segment, Utc::now()).map_err(BookingError::from),
                };
                if matches!(answer, Err(BookingError::Book(BookError::SoldOut))) {
                    crate::count!("booking_attempts_total");
                    crate::count!("booking_sold_out_total");
                }
                let _ = reply.send(answer);
            }
            ScheduleMsg::Hold { slot, booker, reply } => {
                crate::count!("booking_attempts_total");
                // Taken out of the message: a refusal lets it go with the message; a hold keeps
                // it until the hold is durable (`persist` takes `turns`).
                let turn = booker.turn.take();
                match state.hold(slot, booker) {
                    Ok((w, a, o)) => {
                        crate::count!("booking_holds_total");
                        state.turns.extend(turn);
                        state.persist(w, vec![], Some(reply), Ok((a, o)));
                    }
                    Err(e) => {
                        if matches!(e, BookingError::Book(BookError::SoldOut)) {
                            crate::count!("booking_sold_out_total");
                        }
                        // A refusal changed nothing: answer at once, from memory.
                        let _ = reply.send(Err(e));
                    }
                }
            }
            ScheduleMsg::Confirm { appointment, reply } => {
                let stored = if state.book.session_of(appointment).is_none() {
                    state.ctx.stores.data.appointment(appointment).await.ok().flatten()
                } else {
                    None
                };
                match state.confirm(appointment, stored) {
                    Ok((w, a)) => state.persist(w, vec![], Some(reply), Ok(a)),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            ScheduleMsg::Cancel { appointment, account, reply } => match state.cancel(appointment, account).await {
                Ok((w, effects, a)) => state.persist(w, effects, Some(reply), Ok(a)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            ScheduleMsg::Move { appointment, account, slot, reply } => {
                match state.move_to(appointment, account, slot).await {
                    Ok((w, a)) => state.persist(w, vec![], Some(reply), Ok(a)),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            ScheduleMsg::JoinWaitlist { session, entry, reply } => {
                let now = Utc::now();
                let r = match state.book.session_mut(session) {
                    None => Err(BookingError::Book(BookError::NoSuchSlot)),
                    Some(b) => match super::state::open_from(&state.ctx, &b.session, now) {
                        // Its last segment is over: no line to join.
                        from if from == b.session.segments.len() => Err(BookingError::Book(BookError::BookingClosed)),
                        from => b.join_waitlist(entry, now, from).map_err(BookingError::from),
                    },
                };
                match r {
                    Ok(pos) => {
                        let w = BookingWrite { waitlists: vec![state.waitlist_write(session)], ..Default::default() };
                        state.persist(w, vec![], Some(reply), Ok(pos));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            ScheduleMsg::LeaveWaitlist { session, patient, reply } => {
                let left = state.book.session_mut(session).is_some_and(|b| b.leave_waitlist(patient));
                if left {
                    let w = BookingWrite { waitlists: vec![state.waitlist_write(session)], ..Default::default() };
                    state.pipeline.push(w, move |_| {
                        let _ = reply.send(true);
                    });
                } else {
                    let _ = reply.send(false);
                }
            }
            ScheduleMsg::SetQuota { session, segment, quota, reply } => {
                let r = match state.book.session_mut(session) {
                    None => Err(BookingError::Book(BookError::NoSuchSlot)),
                    Some(b) => b.set_quota(segment, quota).map(|_| b.session.clone()).map_err(BookingError::from),
                };
                match r {
                    Ok(s) => {
                        let mut w = BookingWrite { sessions: vec![s.clone()], ..Default::default() };
                        state.offer(session, &mut w).await;
                        state.persist(w, vec![], Some(reply), Ok(s));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            ScheduleMsg::SetSegments { session, segments, reply } => {
                match state.set_segments(session, segments).await {
                    Ok((w, answer)) => state.persist(w, vec![], Some(reply), Ok(answer)),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            ScheduleMsg::StopSession { session, reply } => match state.stop(session) {
                Ok((w, effects, report)) => state.persist(w, effects, Some(reply), Ok(report)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            ScheduleMsg::SessionAppointments { session, reply } => {
                let list = state.book.session(session).map(|b| b.live().cloned().collect()).unwrap_or_default();
                let _ = reply.send(list);
            }
            ScheduleMsg::AddSessions { sessions, reply } => match state.add_sessions(sessions).await {
                Ok((w, added)) => state.persist(w, vec![], Some(reply), Ok(added)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            ScheduleMsg::UpdateSession { session, fee, release_at, reply } => {
                match state.update_session(session, fee, release_at).await {
                    Ok((w, s)) => state.persist(w, vec![], Some(reply), Ok(s)),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            ScheduleMsg::CheckIn { appointment, account, reply } => {
                let now = Utc::now();
                let today = state.ctx.config.zone.local_date(now);
                match check_in_book(&mut state.book, appointment, account, today, now) {
                    Ok((a, true)) => {
                        let w = BookingWrite { appointments: vec![a.clone()], ..Default::default() };
                        state.persist(w, vec![], Some(reply), Ok(a));
                    }
                    r => {
                        let _ = reply.send(r.map(|(a, _)| a));
                    }
                }
            }
            ScheduleMsg::Attend { appointment, event, reply } => match state.attend(appointment, event).await {
                Ok((w, a)) if w.is_empty() => {
                    let _ = reply.send(Ok(a));
                }
                Ok((w, a)) => state.persist(w, vec![], Some(reply), Ok(a)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            ScheduleMsg::BookingClosed { session, reply } => state.booking_closed(session, reply),
            ScheduleMsg::CloseSession { session, reply } => match state.close_session(session).await {
                Ok((w, missed)) if w.is_empty() => {
                    let _ = reply.send(Ok(missed));
                }
                Ok((w, missed)) => state.persist(w, vec![], Some(reply), Ok(missed)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            #[cfg(feature = "fault-injection")]
            ScheduleMsg::InjectFault => {
                panic!("fault injected into schedule actor {}", state.doctor);
            }
            #[cfg(feature = "fault-injection")]
            ScheduleMsg::Stall { until } => {
                let _ = until.await;
            }
            ScheduleMsg::ExpireTick => {
                if let Some((w, effects)) = state.expire_due().await {
                    state.persist::<()>(w, effects, None, Ok(()));
                }
            }
            ScheduleMsg::RenewLease => {
                if !state.held.renew_or_stop(state.ctx.ownership.as_ref(), &myself, "schedule", &state.doctor).await {
                    // Nor may the node's gate answer from it.
                    state.ctx.system.gate().forget(state.doctor);
                }
            }
            ScheduleMsg::WriteFailed(e) => {
                // Memory may be ahead of the disk: rebuild from the durable truth. The gate was
                // copied from that memory, so it goes first (the successor publishes again).
                state.ctx.system.gate().forget(state.doctor);
                return Err(format!("booking write failed ({e}); restarting from the store").into());
            }
            ScheduleMsg::Tick => {
                // Holds and waitlists need this actor's timer: it stays while it has any.
                let busy = state.book.has_holds() || state.book.has_waitlists();
                let stopped = state.idle.drain_if_idle(&myself, busy, &state.doctor);
                if !stopped && state.ctx.config.zone.local_date(Utc::now()) != state.loaded_on {
                    // Midnight passed: move the window so "60 days ahead" stays true.
                    if let Err(e) = state.refresh().await {
                        tracing::warn!(doctor = %state.doctor, error = %e, "schedule window move failed");
                    }
                    state.ctx.system.gate().replace(state.doctor, state.book.sessions.values());
                }
            }
        }
        // Turns taken for offers the change did not make (`persist` took the others).
        state.turns.clear();
        Ok(())
    }
}

/// Doctor schedules as an actor kind: keyed by `DoctorId`, supervised by `schedules`.
pub struct ScheduleKind;

actor_kind!(ScheduleKind, "schedule", "schedules", DoctorId, ScheduleActor, ScheduleArgs { doctor });
