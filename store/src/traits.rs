//! The store traits, one method per query the platform makes. A backend implements all of them
//! over its own engine; nothing above this line knows which engine it talks to.

use async_trait::async_trait;
use chrono::NaiveDate;
use hospital_domain::appointment::Appointment;
use hospital_domain::booking::WaitEntry;
use hospital_domain::catalog::{Department, Doctor, Hospital};
use hospital_domain::message::Message;
use hospital_domain::order::Order;
use hospital_domain::schedule::ClinicSession;
use hospital_domain::{
    AccountId, AppointmentId, DepartmentId, DoctorId, Email, OrderId, PatientId, Phone, SessionId, StaffId,
};
use std::time::Duration;

use crate::error::Result;
use crate::{Account, PatientCaps, PatientRecord, PersonHolder, StaffMember};

/// Accounts and the patients under them (AUTH-1..3, AUTH-6).
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an account. `Conflict` if its phone, e-mail or openid already belongs to another.
    async fn create_account(&self, account: &Account) -> Result<()>;
    async fn account(&self, id: AccountId) -> Result<Option<Account>>;
    async fn account_by_phone(&self, phone: &Phone) -> Result<Option<Account>>;
    async fn account_by_email(&self, email: &Email) -> Result<Option<Account>>;
    async fn account_by_openid(&self, openid: &str) -> Result<Option<Account>>;
    /// Replaces an account, moving its lookup keys if the phone, e-mail or openid changed.
    /// `Conflict` if a new key belongs to another account. Several nodes: `fence` is the
    /// account's actor's lease token (`account:<id>`), as in every write of that actor here
    /// (`add_patient`, `remove_patient`, `put_notification_preferences`); the store refuses the
    /// write if it has seen a newer one for the account (`Conflict::StaleFence`).
    async fn update_account(
        &self,
        account: &Account,
        events: &[crate::PendingEvent],
        fence: Option<&crate::Fence>,
    ) -> Result<()>;

    /// Adds a patient, and its account to the person's holders (`PersonStore`), if the account
    /// holds fewer than `caps.per_account` patients and fewer than `caps.accounts_per_person`
    /// other accounts hold the person. `Conflict::Patient` if the same person (same ID number) is
    /// already under this account, `Conflict::PatientCap` at the account's cap, `Conflict::PersonCap`
    /// at the person's. Returns the other accounts holding the person
    /// when it was added. `fence`: the account's (`update_account`).
    async fn add_patient(
        &self,
        patient: &PatientRecord,
        caps: PatientCaps,
        fence: Option<&crate::Fence>,
    ) -> Result<Vec<PersonHolder>>;
    /// Replaces a patient's row (and its relation in the person's holders). The person (ID-number
    /// index) cannot change: `Conflict::PatientPerson`; that is removing and adding.
    async fn update_patient(&self, patient: &PatientRecord) -> Result<()>;
    /// The account's patients, oldest first.
    async fn patients_of(&self, account: AccountId) -> Result<Vec<PatientRecord>>;
    async fn patient(&self, account: AccountId, patient: PatientId) -> Result<Option<PatientRecord>>;
    /// Removes a patient, and its account from the person's holders; false if there was none.
    /// `fence`: the account's (`update_account`).
    async fn remove_patient(
        &self,
        account: AccountId,
        patient: PatientId,
        fence: Option<&crate::Fence>,
    ) -> Result<bool>;
}

/// Staff accounts (AUTH-4).
#[async_trait]
pub trait StaffStore: Send + Sync {
    /// `Conflict::Username` if taken.
    async fn create_staff(&self, staff: &StaffMember) -> Result<()>;
    async fn staff(&self, id: StaffId) -> Result<Option<StaffMember>>;
    async fn staff_by_username(&self, username: &str) -> Result<Option<StaffMember>>;
}

/// The hospital catalogue (INFO-1..3). Small and read-mostly: the gateway keeps it in memory and
/// reads the store at start-up and after staff change it.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    async fn put_hospital(&self, hospital: &Hospital) -> Result<()>;
    async fn hospital(&self) -> Result<Option<Hospital>>;
    async fn put_departments(&self, departments: &[Department]) -> Result<()>;
    async fn departments(&self) -> Result<Vec<Department>>;
    async fn put_doctors(&self, doctors: &[Doctor]) -> Result<()>;
    async fn doctors(&self) -> Result<Vec<Doctor>>;
    async fn doctor(&self, id: DoctorId) -> Result<Option<Doctor>>;
    async fn doctors_in_department(&self, department: DepartmentId) -> Result<Vec<Doctor>>;
}

/// Doctor schedules (BOOK-1).
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Inserts or replaces sessions (all in one durable write).
    async fn put_sessions(&self, sessions: &[ClinicSession]) -> Result<()>;
    async fn session(&self, id: SessionId) -> Result<Option<ClinicSession>>;
    /// A doctor's sessions with `from <= date <= to`, ordered by date then period.
    async fn sessions_of_doctor(&self, doctor: DoctorId, from: NaiveDate, to: NaiveDate) -> Result<Vec<ClinicSession>>;
}

/// One state change of the booking engine: every row it touches, written in one durable
/// transaction (a logged batch on ScyllaDB), so a crash never leaves half of it.
#[derive(Debug, Clone, Default)]
pub struct BookingWrite {
    pub appointments: Vec<Appointment>,
    pub orders: Vec<Order>,
    /// Replaces a session's whole waitlist (it is short).
    pub waitlists: Vec<(DoctorId, SessionId, Vec<WaitEntry>)>,
    /// Sessions whose quota or status changed.
    pub sessions: Vec<ClinicSession>,
    pub messages: Vec<Message>,
    /// The live events of the change, written with it (see `outbox`).
    pub events: Vec<crate::PendingEvent>,
    /// The writer's lease (several nodes): the store refuses the whole write if it has seen a
    /// newer token for the resource (`Conflict::StaleFence`), and remembers this one.
    pub fence: Option<crate::Fence>,
    /// Appointments and orders this change creates under ids made for it (a hold's, an
    /// offer's): no version of them is stored yet, so the store does not look for one (the
    /// analytics counters' "before" is nothing). Two point reads a hold, each through every
    /// memtable and segment, on the writer every hold of the node waits on. Only ids minted for
    /// this change belong here: a stored row named here would be counted twice.
    pub created: std::collections::HashSet<uuid::Uuid>,
}

impl BookingWrite {
    /// The writes as one, in order: where several touch the same row, the last wins and the row
    /// is written once (a ScyllaDB batch gives equal timestamps to all its writes, so it must not
    /// carry two versions of one row). Rows are found by id in maps: a burst of hundreds of holds
    /// on one doctor compares no row with every row before it.
    pub fn merged(writes: impl IntoIterator<Item = BookingWrite>) -> BookingWrite {
        use std::collections::HashMap;
        use std::hash::Hash;
        // foldhash: the keys are the server's own ids, and SipHash of them was most of a merge
        // (docs/benchmarks.md, stop 49).
        type At<K> = HashMap<K, usize, foldhash::fast::RandomState>;
        fn upsert<T, K: Eq + Hash>(all: &mut Vec<T>, at: &mut At<K>, items: Vec<T>, key: impl Fn(&T) -> K) {
            for item in items {
                match at.get(&key(&item)) {
                    Some(&i) => all[i] = item,
                    None => {
                        at.insert(key(&item), all.len());
                        all.push(item);
                    }
                }
            }
        }
        let mut out = BookingWrite::default();
        let writes: Vec<BookingWrite> = writes.into_iter().collect();
        // Room for every row at once, not grown by doubling (a burst merges hundreds).
        out.appointments.reserve(writes.iter().map(|w| w.appointments.len()).sum());
        out.orders.reserve(writes.iter().map(|w| w.orders.len()).sum());
        out.events.reserve(writes.iter().map(|w| w.events.len()).sum());
        let (mut appointments, mut orders, mut waitlists, mut sessions) =
            (At::default(), At::default(), At::default(), At::default());
        for w in writes {
            upsert(&mut out.appointments, &mut appointments, w.appointments, |a| a.id);
            upsert(&mut out.orders, &mut orders, w.orders, |o| o.id);
            upsert(&mut out.waitlists, &mut waitlists, w.waitlists, |w| w.1);
            upsert(&mut out.sessions, &mut sessions, w.sessions, |s| s.id);
            out.messages.extend(w.messages);
            out.events.extend(w.events);
            out.created.extend(w.created);
            // One writer's writes: the later holding's token (tokens only grow).
            if w.fence.is_some() {
                out.fence = w.fence;
            }
        }
        out
    }

    /// Appends `later`'s rows, as `merged` does.
    pub fn merge(&mut self, later: BookingWrite) {
        *self = Self::merged([std::mem::take(self), later]);
    }

    pub fn is_empty(&self) -> bool {
        self.appointments.is_empty()
            && self.orders.is_empty()
            && self.waitlists.is_empty()
            && self.sessions.is_empty()
            && self.messages.is_empty()
            && self.events.is_empty()
            && self.fence.is_none()
    }
}

/// Appointments, orders, waitlists and messages (BOOK-3..9, PAY-4, MSG-1).
#[async_trait]
pub trait BookingStore: Send + Sync {
    async fn apply_booking(&self, write: BookingWrite) -> Result<()>;
    async fn appointment(&self, id: AppointmentId) -> Result<Option<Appointment>>;
    /// A doctor's appointments (every status) with `from <= date <= to`, by date.
    async fn appointments_of_doctor(
        &self,
        doctor: DoctorId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Appointment>>;
    /// An account's appointments, oldest first.
    async fn appointments_of_account(&self, account: AccountId) -> Result<Vec<Appointment>>;
    /// A person's appointments across accounts (the real-name rules), by date.
    async fn appointments_of_person(&self, person: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<Appointment>>;
    /// The waitlists of a doctor's sessions.
    async fn waitlists_of_doctor(&self, doctor: DoctorId) -> Result<Vec<(SessionId, Vec<WaitEntry>)>>;
    async fn order(&self, id: OrderId) -> Result<Option<Order>>;
    /// An account's messages, newest first, at most `limit`.
    async fn messages_of(&self, account: AccountId, limit: usize) -> Result<Vec<Message>>;
}

/// Everything durable, as one object the platform holds.
#[async_trait]
pub trait DataStore:
    AccountStore
    + StaffStore
    + CatalogStore
    + ScheduleStore
    + BookingStore
    + crate::exams::ExamStore
    + crate::queues::QueueStore
    + crate::notify::NotifyStore
    + crate::outbox::OutboxStore
    + crate::persons::PersonStore
    + crate::audit::AuditStore
    + crate::backoffice::BackOfficeStore
    + crate::payments::PaymentStore
    + crate::chat::ChatStore
    + crate::records::RecordStore
    + crate::jobs::JobStore
{
    /// A cheap round trip that proves the store answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// Several nodes: a new owner's claim of what `fence` is for (`Fence::owned`), made before it
    /// loads anything. Once it returns, a write under an older token is refused
    /// (`Conflict::StaleFence`), so what the owner loads next is final; a newer token already
    /// seen refuses the claim itself.
    async fn claim_fence(&self, fence: &crate::Fence) -> Result<()>;

    /// Makes room for a burst of writes about to come (a release, 放号, in a few seconds): the
    /// embedded store writes its memtable out now, in the background, so the burst's holds do not
    /// share the cores with that flush (docs/benchmarks.md, the storm of 18,000). Whether it did
    /// anything. Elsewhere nothing: a ScyllaDB cluster's memtables are its own to manage.
    async fn prepare_for_burst(&self) -> Result<bool> {
        Ok(false)
    }
}

/// How long a log's counter lives after its last append: far longer than its values, so numbers
/// never restart while a client may still hold one.
pub const LOG_COUNTER_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The keys of a log (`EphemeralKv::log_append_all`), the same on every backend.
pub fn log_counter_key(stream: &str) -> String {
    format!("log:{stream}:head")
}
pub fn log_value_key(stream: &str, n: u64) -> String {
    format!("log:{stream}:{n}")
}
pub fn log_id_key(event_id: &str) -> String {
    format!("logid:{event_id}")
}

/// Short-lived keys with TTLs and atomic counters: sessions, SMS codes, rate-limit counters
/// (PLAT-4). Redis in a cluster; the embedded store on one machine. Every operation is atomic on
/// its own, which is all the callers rely on.
#[async_trait]
pub trait EphemeralKv: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Sets `key` with a TTL, replacing what was there.
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()>;
    /// Sets `key` only if absent; true if it was set.
    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool>;
    /// Gets and deletes in one step: of two concurrent callers, only one gets the value.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// Time left before `key` expires; None if absent.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>>;
    /// Adds 1 and returns the new count; the TTL is set when the key is created.
    async fn incr(&self, key: &str, ttl: Duration) -> Result<i64>;
    /// Appends each `(event_id, value)` to the log `stream`, in order, under the stream's next
    /// numbers, once per event id (an id appended before, earlier in `items` too, answers its
    /// first number, `fresh` false), even when two callers append the same id at once. Values and
    /// the id markers live `ttl`; the counter outlives them (`LOG_COUNTER_TTL`). Returns
    /// (number, fresh) for each item, in order.
    ///
    /// No number is ever handed out without its value: the embedded store writes all of them in
    /// one transaction (one counter update, one commit: a hold's appointment and order events
    /// are two), Redis in one script (one round trip); ScyllaDB's kv writes each as one row taken
    /// `IF NOT EXISTS` (schema.cql `kv_log`), one after the other, so on an error some may have
    /// been appended: appending them again is harmless (each id once). A value missing later has
    /// expired (the client reloads).
    async fn log_append_all(&self, stream: &str, items: &[(&str, &[u8])], ttl: Duration) -> Result<Vec<(u64, bool)>>;

    /// The latest number of the log `stream` (0 if none).
    async fn log_head(&self, stream: &str) -> Result<u64> {
        Ok(self.get(&log_counter_key(stream)).await?.and_then(|v| String::from_utf8(v).ok()?.parse().ok()).unwrap_or(0))
    }

    /// The values numbered `from..=to` of the log `stream`, in order; None where a value is no
    /// longer kept.
    async fn log_range(&self, stream: &str, from: u64, to: u64) -> Result<Vec<Option<Vec<u8>>>>;
    /// Adds a member to a set, (re)setting the set's TTL to at least `ttl`.
    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<()>;
    async fn set_remove(&self, key: &str, member: &str) -> Result<()>;
    async fn set_members(&self, key: &str) -> Result<Vec<String>>;
    async fn ping(&self) -> Result<()>;
}
