//! The patient side of `ActorSystem`: one method per message, through `asks!`.

use hospital_domain::appointment::Appointment;
use hospital_domain::notify::{KindChannels, NotificationPreferences};
use hospital_domain::order::Order;
use hospital_domain::schedule::SlotId;
use hospital_domain::{AccountId, AppointmentId, PatientId, Phone, SessionId};
use hospital_store::{Account, PatientCaps, PatientRecord};
use ractor::ActorRef;

use super::actor::PatientKind;
use super::msg::{AccountError, PatientError, PatientMsg, ProfileChange};
use super::state::{book_patient, find_patient};
use crate::booking::BookingError;
use crate::error::ActorError;
use crate::schedule::GateAnswer;
use crate::system::{asks, ActorSystem, Retry};

impl ActorSystem {
    /// The account's patient session actor, started if it was not running.
    pub async fn patient(&self, account: AccountId) -> Result<ActorRef<PatientMsg>, ActorError> {
        self.resolve::<PatientKind>(account).await
    }

    /// Adds a patient to `record.account_id` within `caps` (see `PatientMsg::AddPatient`).
    pub async fn add_patient(&self, record: PatientRecord, caps: PatientCaps) -> Result<PatientRecord, PatientError> {
        let account = record.account_id;
        self.ask::<PatientKind, _>(account, Retry::UndeliveredOnly, |reply| PatientMsg::AddPatient {
            record: record.clone(),
            caps,
            reply,
        })
        .await?
    }

    /// Books a slot for one of the account's patients: the real-name rules under the person's
    /// turn, then the doctor's actor (the place). A slot this node's availability gate knows to be
    /// stopped, not yet released or sold out is refused at once, with no actor hop and no store
    /// read (`schedule::gate` says why that answer is always the actor's). Without an idempotency
    /// key, and with the account's actor running, the rules are read on this task from the
    /// patients that actor published (`directory`): one actor round trip fewer. A retry
    /// (`idempotency_key`) goes through the account's actor, which alone may look for its first
    /// answer before the account's next booking runs.
    pub async fn book(
        &self,
        account: AccountId,
        slot: SlotId,
        patient: PatientId,
        idempotency_key: Option<String>,
    ) -> Result<(Appointment, Order), BookingError> {
        if idempotency_key.is_none() {
            let gate = match self.gate().answer(slot, chrono::Utc::now()) {
                GateAnswer::Refuse(refusal) => return Err(crate::schedule::gate_refused(refusal)),
                other => other,
            };
            if let (Some(patients), Some(ctx)) = (self.patient_directory().get(account), self.context()) {
                let p = find_patient(&patients, patient)?;
                // The gate's answer of a moment ago: nothing was waited for since.
                return book_patient(&ctx, p, slot, None, gate).await;
            }
        }
        self.ask::<PatientKind, _>(account, Retry::UndeliveredOnly, |reply| PatientMsg::Book {
            slot,
            patient,
            idempotency_key: idempotency_key.clone(),
            reply,
        })
        .await?
    }

    /// Makes the account's patient actor panic (see `PatientMsg::InjectFault`).
    #[cfg(feature = "fault-injection")]
    pub async fn inject_patient_fault(&self, account: AccountId) -> Result<(), ActorError> {
        self.tell::<PatientKind>(account, PatientMsg::InjectFault).await
    }

    asks! { PatientKind:
        /// Moves one of the account's appointments to another slot of the same doctor.
        pub fn reschedule(account: AccountId, appointment: AppointmentId, slot: SlotId) -> Appointment, BookingError
            = once |reply| PatientMsg::Reschedule { appointment, slot, reply };
        /// Puts one of the account's patients on a full session's waitlist; the position.
        pub fn join_waitlist(account: AccountId, session: SessionId, patient: PatientId) -> usize, BookingError
            = once |reply| PatientMsg::JoinWaitlist { session, patient, reply };
        /// The account's patients, oldest first.
        pub fn list_patients(account: AccountId) -> Vec<PatientRecord>
            = reads |reply| PatientMsg::ListPatients { reply };
        /// Changes the account's profile (see `PatientMsg::UpdateProfile`).
        pub fn update_profile(account: AccountId, change: ProfileChange) -> Account, AccountError
            = once |reply| PatientMsg::UpdateProfile { change: change.clone(), reply };
        /// Binds the account's phone (the SMS code was checked).
        pub fn bind_phone(account: AccountId, phone: Phone) -> Account, AccountError
            = once |reply| PatientMsg::BindPhone { phone: phone.clone(), reply };
        /// Unbinds the account's phone (the SMS code was checked).
        pub fn unbind_phone(account: AccountId) -> Account, AccountError
            = once |reply| PatientMsg::UnbindPhone { reply };
        /// Sets a new password hash if the stored one is still `expected`.
        pub fn set_password(account: AccountId, expected: Option<String>, hash: String) -> Account, AccountError
            = once |reply| PatientMsg::SetPassword { expected: expected.clone(), hash: hash.clone(), reply };
        /// Changes the channels of the kinds of message listed; the account's preferences.
        pub fn set_notification_preferences(account: AccountId, kinds: Vec<KindChannels>) -> NotificationPreferences, ActorError
            = once |reply| PatientMsg::SetPreferences { kinds: kinds.clone(), reply };
        /// Removes a patient; `Ok(false)` if the account had none with this id.
        pub fn remove_patient(account: AccountId, patient: PatientId) -> bool, ActorError
            = once |reply| PatientMsg::RemovePatient { id: patient, reply };
    }
}
