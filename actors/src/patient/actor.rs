//! The patient actor's handler, and patient sessions as an actor kind.

use hospital_domain::AccountId;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::directory::Published;
use super::msg::*;
use super::state::*;
use crate::idle::IdleClock;
use crate::ownership::Held;
use crate::supervisor::actor_kind;
use hospital_store::account_resource;

/// The patient session actor (stateless handler; the state is `PatientState`).
pub struct PatientActor;

impl Actor for PatientActor {
    type Msg = PatientMsg;
    type State = PatientState;
    type Arguments = PatientArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: PatientArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        // Several nodes: the account's lease and claim before its patients are loaded.
        let resource = account_resource(args.account);
        let held = Held::take(args.ctx.ownership.as_ref(), &resource, args.ctx.stores.data.as_ref()).await?;
        let patients = args.ctx.stores.data.patients_of(args.account).await?;
        tracing::debug!(account = %args.account, patients = patients.len(), "patient actor loaded");
        Ok(PatientState {
            account: args.account,
            idle: IdleClock::new(args.ctx.config.idle_timeout),
            patients: Published::new(args.ctx.system.patient_directory(), args.account, patients),
            ctx: args.ctx,
            myself,
            held,
        })
    }

    async fn post_start(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.start(&myself, || PatientMsg::Tick);
        state.held.start_renewing(state.ctx.ownership.as_ref(), &myself, || PatientMsg::RenewLease);
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.stop();
        state.held.release(state.ctx.ownership.as_ref()).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, PatientMsg::Tick | PatientMsg::RenewLease) {
            state.idle.touch();
        }
        // Replies are best effort: a caller that timed out has gone, and the write stands.
        match msg {
            PatientMsg::ListPatients { reply } => {
                let _ = reply.send(state.patients.list().to_vec());
            }
            PatientMsg::AddPatient { record, caps, reply } => {
                let result = state.add(record, caps).await;
                if let Err(e) = &result {
                    tracing::debug!(account = %state.account, error = %e, "patient not added");
                }
                let _ = reply.send(result);
            }
            PatientMsg::UpdateProfile { change, reply } => {
                let _ = reply.send(state.update_profile(change).await);
            }
            PatientMsg::BindPhone { phone, reply } => {
                let _ = reply.send(state.bind_phone(phone).await);
            }
            PatientMsg::UnbindPhone { reply } => {
                let _ = reply.send(state.unbind_phone().await);
            }
            PatientMsg::SetPassword { expected, hash, reply } => {
                let _ = reply.send(state.set_password(expected, hash).await);
            }
            PatientMsg::SetPreferences { kinds, reply } => {
                let _ = reply.send(state.set_preferences(&kinds).await);
            }
            PatientMsg::RemovePatient { id, reply } => {
                let _ = reply.send(state.remove(id).await);
            }
            PatientMsg::Book { slot, patient, idempotency_key, reply } => {
                let _ = reply.send(state.book(slot, patient, idempotency_key).await);
            }
            PatientMsg::Reschedule { appointment, slot, reply } => {
                let _ = reply.send(state.reschedule(appointment, slot).await);
            }
            PatientMsg::JoinWaitlist { session, patient, reply } => {
                let _ = reply.send(state.join_waitlist(session, patient).await);
            }
            #[cfg(feature = "fault-injection")]
            PatientMsg::InjectFault => {
                panic!("fault injected into patient actor {}", state.account);
            }
            PatientMsg::Tick => {
                state.idle.drain_if_idle(&myself, false, &state.account);
            }
            PatientMsg::RenewLease => {
                state.held.renew_or_stop(state.ctx.ownership.as_ref(), &myself, "patient", &state.account).await;
            }
        }
        Ok(())
    }
}

/// Patient sessions as an actor kind: keyed by `AccountId`, supervised by `patients`.
pub struct PatientKind;

actor_kind!(PatientKind, "patient", "patients", AccountId, PatientActor, PatientArgs { account });
