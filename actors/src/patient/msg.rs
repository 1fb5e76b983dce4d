//! What a patient (account) actor is sent (`PatientMsg`), and why adding a patient may fail
//! (`PatientError`).

use chrono::NaiveDate;
use hospital_domain::appointment::Appointment;
use hospital_domain::notify::{KindChannels, NotificationPreferences};
use hospital_domain::order::Order;
use hospital_domain::schedule::SlotId;
use hospital_domain::{AppointmentId, Gender, PatientId, Phone, SessionId};
use hospital_store::{Account, PatientCaps, PatientRecord, StoreError};
use ractor::RpcReplyPort;

use crate::booking::BookingError;
use crate::error::ActorError;

/// Why a patient was not added.
#[derive(Debug, thiserror::Error)]
pub enum PatientError {
    /// The account already holds the most patients it may.
    #[error("an account may hold at most {cap} patients")]
    PatientCap { cap: usize },
    /// The person (same ID number) is already a patient of the most accounts one person may be.
    #[error("this person is already a patient of {cap} other accounts, the most allowed")]
    PersonAccountCap { cap: usize },
    /// The same person (same ID number) is already a patient of the account.
    #[error("this person is already a patient of the account")]
    DuplicatePatient,
    /// A patient record was sent to another account's actor: a bug in the caller.
    #[error("the patient record belongs to another account")]
    WrongAccount,
    /// The actor or the store could not do it now; nothing was changed.
    #[error(transparent)]
    Unavailable(#[from] ActorError),
}

impl From<StoreError> for PatientError {
    fn from(e: StoreError) -> Self {
        PatientError::Unavailable(e.into())
    }
}

/// Why an account's own row was not changed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The account is gone (its token outlived it).
    #[error("no such account")]
    NoSuchAccount,
    /// The phone belongs to another account.
    #[error("this phone belongs to another account")]
    PhoneTaken,
    /// Unbinding asked of an account with no phone.
    #[error("the account has no phone bound")]
    NoPhone,
    /// Unbinding the phone would leave the account no way to sign in (no WeChat, no e-mail
    /// with a password).
    #[error("the phone is the account's only way to sign in")]
    LastSignInMethod,
    /// The password changed since the caller checked it (another device changed it first).
    #[error("the password was changed meanwhile")]
    PasswordChanged,
    /// The actor or the store could not do it now; nothing was changed.
    #[error(transparent)]
    Unavailable(#[from] ActorError),
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        AccountError::Unavailable(e.into())
    }
}

/// A change of an account's profile: the fields given are set, the others stay.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    pub name: Option<String>,
    pub gender: Option<Gender>,
    pub birth_date: Option<NaiveDate>,
}

/// Messages of a patient session actor.
#[derive(Debug)]
pub enum PatientMsg {
    /// The account's patients, oldest first, from memory.
    ListPatients { reply: RpcReplyPort<Vec<PatientRecord>> },
    /// Adds a patient if the account has fewer than `caps.per_account`, the same person (same
    /// ID-number index) or id is not already there, and fewer than `caps.accounts_per_person`
    /// other accounts hold the person. Written through the store first; memory changes only once
    /// the write succeeded. Then the account holding the person's `self` record, if another, is
    /// told in its message centre. Refusals are `PatientCap`, `DuplicatePatient`,
    /// `PersonAccountCap`, `WrongAccount`. The caller has checked the name against the ID number.
    AddPatient { record: PatientRecord, caps: PatientCaps, reply: RpcReplyPort<Result<PatientRecord, PatientError>> },
    /// Removes a patient; `Ok(false)` if the account had none with this id.
    RemovePatient { id: PatientId, reply: RpcReplyPort<Result<bool, ActorError>> },
    /// Changes the account's profile (the fields given) and tells its other devices (event
    /// `profile`, written with the change). The caller has validated the fields.
    UpdateProfile { change: ProfileChange, reply: RpcReplyPort<Result<Account, AccountError>> },
    /// Binds (or changes) the account's phone; the caller has checked the SMS code.
    BindPhone { phone: Phone, reply: RpcReplyPort<Result<Account, AccountError>> },
    /// Unbinds the account's phone (SET-1; the caller has checked an SMS code sent to it), unless
    /// it is the only way left to sign in.
    UnbindPhone { reply: RpcReplyPort<Result<Account, AccountError>> },
    /// Sets the password hash if the stored one is still `expected` (what the caller verified the
    /// current password against; None: the account had none).
    SetPassword { expected: Option<String>, hash: String, reply: RpcReplyPort<Result<Account, AccountError>> },
    /// Changes the channels of the kinds of message listed (each at most once); all of them.
    SetPreferences { kinds: Vec<KindChannels>, reply: RpcReplyPort<Result<NotificationPreferences, ActorError>> },
    /// Books `slot` for one of the account's patients (BOOK-3), after the real-name rules
    /// (BOOK-6). Serialised per account: two devices booking at once are checked one after the
    /// other. A retry with the same idempotency key gets the same appointment back.
    Book {
        slot: SlotId,
        patient: PatientId,
        idempotency_key: Option<String>,
        reply: RpcReplyPort<Result<(Appointment, Order), BookingError>>,
    },
    /// Moves one of the account's appointments to another slot of the same doctor (BOOK-5).
    Reschedule { appointment: AppointmentId, slot: SlotId, reply: RpcReplyPort<Result<Appointment, BookingError>> },
    /// Puts one of the account's patients on a full session's waitlist (BOOK-7).
    JoinWaitlist { session: SessionId, patient: PatientId, reply: RpcReplyPort<Result<usize, BookingError>> },
    /// Panics on purpose, so tests and operators can exercise supervision. Only with the
    /// `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    InjectFault,
    /// The idle clock's periodic tick; internal.
    #[doc(hidden)]
    Tick,
    /// Several nodes: renew the account's lease, or stop; internal.
    #[doc(hidden)]
    RenewLease,
}
