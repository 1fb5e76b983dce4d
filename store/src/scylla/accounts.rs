//! Accounts, patients and staff on ScyllaDB.
//!
//! Uniqueness (one account per phone, per e-mail, per openid; one staff member per username) is
//! a lookup row claimed with `INSERT ... IF NOT EXISTS`: Paxos lets exactly one of two concurrent
//! claimants win. A create claims its keys first and writes the row after, releasing what it
//! claimed (`DELETE ... IF <owner> = me`) if a later step fails, so a refused create leaves
//! nothing behind. Lookups are followed to the row and checked against it, so a claim whose row
//! is not written yet (or a key being moved) reads as absent rather than as the wrong account.
//!
//! The patient cap is a compare-and-set on the static `version` column of the account's
//! partition: add_patient reads the partition (patients and version in one query), checks the
//! duplicate and the cap, and writes the new row with `IF version = <read>` while bumping the
//! version. Of two concurrent adds only one applies; the other re-reads and re-checks. (A
//! per-account counter row would also need the duplicate check to be serialised with it; the
//! version guards both rules with one condition, in the partition the listing reads anyway.)
//!
//! The accounts-per-person cap is the same compare-and-set on the static `version` of the
//! person's partition of `accounts_by_person`: add_patient first claims the account's row there
//! (if the person is not at the cap), then adds the patient row; if that is refused or fails, it
//! releases the claim (`DELETE ... IF patient_id = <this patient>`). Two partitions cannot change
//! atomically, so for a moment a claim may count for a patient not yet written (a refusal then
//! errs on the safe side), and a claim whose release failed keeps counting until an operator
//! deletes it; both are logged. remove_patient deletes the patient row, then the claim.
//!
//! Several nodes: the account's actor fences its writes with the `fence` column of the account's
//! row (`check_account_fence`, before anything else of the write). Its rows outside that
//! conditional batch are lightweight transactions of their own (the lookup keys, the patient and
//! person claims), each sent only within the lease's deadline as a payment's claims are, or plain
//! rows written at the write's timestamp (the account's row, its events, the preferences).

use async_trait::async_trait;
use hospital_domain::{AccountId, Email, PatientId, Phone, StaffId};
use std::time::Duration;
use uuid::Uuid;

use scylla::statement::batch::BatchType;
use scylla::value::CqlValue;

use super::fence::within_deadline;
use super::{decode, encode, text, ScyllaStore, Writes};
use crate::error::Conflict;
use crate::error::Result;
use crate::traits::{AccountStore, StaffStore};
use crate::{Account, Fence, Owned, PatientCaps, PatientRecord, PersonHolder, StaffMember, StoreError};

/// A lookup table: its statements and what to call its key in a conflict.
struct LookupTable {
    claim: &'static str,
    release: &'static str,
    get: &'static str,
    what: Conflict,
}

const BY_PHONE: LookupTable = LookupTable {
    claim: "INSERT INTO {ks}.accounts_by_phone (phone, account_id) VALUES (?, ?) IF NOT EXISTS",
    release: "DELETE FROM {ks}.accounts_by_phone WHERE phone = ? IF account_id = ?",
    get: "SELECT account_id FROM {ks}.accounts_by_phone WHERE phone = ?",
    what: Conflict::Phone,
};
const BY_EMAIL: LookupTable = LookupTable {
    claim: "INSERT INTO {ks}.accounts_by_email (email, account_id) VALUES (?, ?) IF NOT EXISTS",
    release: "DELETE FROM {ks}.accounts_by_email WHERE email = ? IF account_id = ?",
    get: "SELECT account_id FROM {ks}.accounts_by_email WHERE email = ?",
    what: Conflict::Email,
};
const BY_OPENID: LookupTable = LookupTable {
    claim: "INSERT INTO {ks}.accounts_by_openid (openid, account_id) VALUES (?, ?) IF NOT EXISTS",
    release: "DELETE FROM {ks}.accounts_by_openid WHERE openid = ? IF account_id = ?",
    get: "SELECT account_id FROM {ks}.accounts_by_openid WHERE openid = ?",
    what: Conflict::WechatAccount,
};

const GET_ACCOUNT: &str = "SELECT body FROM {ks}.accounts WHERE account_id = ?";
const PUT_ACCOUNT: &str = "INSERT INTO {ks}.accounts (account_id, body) VALUES (?, ?)";

const PATIENT_STATE: &str =
    "SELECT version, patient_id, id_card_index FROM {ks}.patients_by_account WHERE account_id = ?";
const ADD_PATIENT_FIRST: &str = "UPDATE {ks}.patients_by_account SET version = ?, id_card_index = ?, body = ? \
     WHERE account_id = ? AND patient_id = ? IF version = null";
const ADD_PATIENT: &str = "UPDATE {ks}.patients_by_account SET version = ?, id_card_index = ?, body = ? \
     WHERE account_id = ? AND patient_id = ? IF version = ?";
const UPDATE_PATIENT: &str = "UPDATE {ks}.patients_by_account SET id_card_index = ?, body = ? \
     WHERE account_id = ? AND patient_id = ? IF EXISTS";
const LIST_PATIENTS: &str = "SELECT body FROM {ks}.patients_by_account WHERE account_id = ?";
const GET_PATIENT: &str = "SELECT body FROM {ks}.patients_by_account WHERE account_id = ? AND patient_id = ?";
const REMOVE_PATIENT: &str = "DELETE FROM {ks}.patients_by_account WHERE account_id = ? AND patient_id = ? IF EXISTS";

pub(super) const PERSON_STATE: &str = "SELECT version, body FROM {ks}.accounts_by_person WHERE person = ?";
const CLAIM_PERSON_FIRST: &str = "UPDATE {ks}.accounts_by_person SET version = ?, patient_id = ?, body = ? \
     WHERE person = ? AND account_id = ? IF version = null";
const CLAIM_PERSON: &str = "UPDATE {ks}.accounts_by_person SET version = ?, patient_id = ?, body = ? \
     WHERE person = ? AND account_id = ? IF version = ?";
/// Points an account's existing row at its (new) patient record, or records a relation change.
const SET_HOLDER: &str = "UPDATE {ks}.accounts_by_person SET patient_id = ?, body = ? \
     WHERE person = ? AND account_id = ? IF EXISTS";
const RELEASE_PERSON: &str =
    "DELETE FROM {ks}.accounts_by_person WHERE person = ? AND account_id = ? IF patient_id = ?";

const CLAIM_USERNAME: &str = "INSERT INTO {ks}.staff_by_username (username, staff_id) VALUES (?, ?) IF NOT EXISTS";
const RELEASE_USERNAME: &str = "DELETE FROM {ks}.staff_by_username WHERE username = ? IF staff_id = ?";
const GET_USERNAME: &str = "SELECT staff_id FROM {ks}.staff_by_username WHERE username = ?";
const GET_STAFF: &str = "SELECT body FROM {ks}.staff WHERE staff_id = ?";
const PUT_STAFF: &str = "INSERT INTO {ks}.staff (staff_id, body) VALUES (?, ?)";

/// How often add_patient re-reads and retries when a concurrent change beat it.
const PATIENT_CAS_ATTEMPTS: u32 = 16;

/// The lookup rows an account owns: (table, key).
fn lookups(a: &Account) -> Vec<(&'static LookupTable, String)> {
    let mut v = Vec::new();
    if let Some(p) = &a.phone {
        v.push((&BY_PHONE, p.as_str().to_string()));
    }
    if let Some(e) = &a.email {
        v.push((&BY_EMAIL, e.as_str().to_string()));
    }
    if let Some(o) = &a.wechat_openid {
        v.push((&BY_OPENID, o.clone()));
    }
    v
}

fn same_lookup(a: &(&'static LookupTable, String), b: &(&'static LookupTable, String)) -> bool {
    std::ptr::eq(a.0, b.0) && a.1 == b.1
}

/// Whether the account row really holds the key a lookup row pointed from.
fn holds(a: &Account, table: &LookupTable, key: &str) -> bool {
    match table.what {
        Conflict::Phone => a.phone.as_ref().is_some_and(|p| p.as_str() == key),
        Conflict::Email => a.email.as_ref().is_some_and(|e| e.as_str() == key),
        _ => a.wechat_openid.as_deref() == Some(key),
    }
}

impl ScyllaStore {
    /// Claims each lookup row for `owner`, in order. On a conflict or an error, releases what this
    /// call claimed and fails. A row the owner already holds counts as claimed.
    async fn claim_all(&self, keys: &[(&'static LookupTable, String)], owner: Uuid) -> Result<()> {
        for (i, (table, key)) in keys.iter().enumerate() {
            let outcome = self.lwt(table.claim, (key, owner)).await;
            let err = match outcome {
                Ok(l) if l.applied || l.uuid("account_id") == Some(owner) => continue,
                Ok(_) => StoreError::Conflict(table.what),
                Err(e) => e,
            };
            // Release everything up to and including this key (an error may hide a claim that
            // was applied); `IF account_id = owner` never touches another account's row.
            for (t, k) in &keys[..=i] {
                self.release(t, k, owner).await;
            }
            return Err(err);
        }
        Ok(())
    }

    /// Gives a lookup row up if `owner` still holds it. Best effort: a failure is logged, and the
    /// orphaned row only blocks that key until an operator deletes it.
    async fn release(&self, table: &LookupTable, key: &str, owner: Uuid) {
        if let Err(e) = self.lwt(table.release, (key, owner)).await {
            tracing::warn!(error = %e, what = table.what.what(), "releasing a lookup row failed");
        }
    }

    async fn account_row(&self, id: Uuid) -> Result<Option<Account>> {
        // A claim of an account never written (several nodes) leaves a row with a fence only.
        self.owned_body("accounts", GET_ACCOUNT, (id,)).await
    }

    /// Several nodes: the account's actor's fence checked (or claimed) in the account's row before
    /// anything else of a write to `account` is sent, so a stale owner's write claims no key, no
    /// patient and no person; a fence that is not `account`'s is refused by name. Returns the
    /// write's timestamp for its plain rows; None with no fence (one node).
    pub(super) async fn check_account_fence(&self, fence: Option<&Fence>, account: AccountId) -> Result<Option<i64>> {
        let Some((owned, token, at)) = self.start_fenced_as(fence, "user account", Owned::Account(account))? else {
            return Ok(None);
        };
        self.fenced_batch(owned, token, Writes::default(), true).await?;
        Ok(Some(at))
    }

    /// The account's patient partition checked for adding `p`: `Conflict(Conflict::Patient)` if the
    /// person is there, `Conflict(Conflict::PatientCap)` at the cap; else its version (None: never
    /// written).
    async fn patient_state(&self, p: &PatientRecord, cap: usize) -> Result<Option<i64>> {
        let rows: Vec<(Option<i64>, Option<Uuid>, Option<String>)> =
            self.rows(PATIENT_STATE, (p.account_id.0,)).await?;
        // The static version comes with every row (and alone when the partition has none).
        let version = rows.first().and_then(|r| r.0);
        let existing: Vec<&Option<String>> = rows.iter().filter(|r| r.1.is_some()).map(|r| &r.2).collect();
        if existing.iter().any(|idx| idx.as_deref() == Some(p.id_card_index.as_str())) {
            return Err(StoreError::Conflict(Conflict::Patient));
        }
        if existing.len() >= cap {
            return Err(StoreError::Conflict(Conflict::PatientCap));
        }
        Ok(version)
    }

    /// Writes the patient row if the account's rules still allow it (compare-and-set on the
    /// partition's version, re-checked after every lost round; each round within `fence`'s deadline).
    async fn put_new_patient(&self, p: &PatientRecord, cap: usize, fence: Option<&Fence>) -> Result<()> {
        let body = encode(p);
        for attempt in 0..PATIENT_CAS_ATTEMPTS {
            let version = self.patient_state(p, cap).await?;
            let next = version.unwrap_or(0) + 1;
            let outcome = match version {
                None => {
                    self.lwt_within(fence, ADD_PATIENT_FIRST, (next, &p.id_card_index, &body, p.account_id.0, p.id.0))
                        .await?
                }
                Some(v) => {
                    let values = (next, &p.id_card_index, &body, p.account_id.0, p.id.0, v);
                    self.lwt_within(fence, ADD_PATIENT, values).await?
                }
            };
            if outcome.applied {
                return Ok(());
            }
            // Another add won the round: back off a little and re-check against what it wrote.
            tokio::time::sleep(Duration::from_millis(2 << attempt.min(6))).await;
        }
        Err(StoreError::Scylla("add_patient: too much contention on the account".into()))
    }

    /// Claims the account's row in the person's partition unless `cap` other accounts hold the
    /// person (`Conflict(Conflict::PersonCap)`). Returns the other holders and whether this call wrote
    /// the row (false: the account had one already, e.g. left by a failed release). Each round
    /// within `fence`'s deadline.
    async fn claim_person(
        &self,
        p: &PatientRecord,
        cap: usize,
        fence: Option<&Fence>,
    ) -> Result<(Vec<PersonHolder>, bool)> {
        let holder = encode(&PersonHolder::of(p));
        for attempt in 0..PATIENT_CAS_ATTEMPTS {
            let rows: Vec<(Option<i64>, Option<String>)> = self.rows(PERSON_STATE, (&p.id_card_index,)).await?;
            let version = rows.first().and_then(|r| r.0);
            let holders: Vec<PersonHolder> = rows
                .iter()
                .filter_map(|r| r.1.as_deref())
                .map(|b| decode("accounts_by_person", b))
                .collect::<Result<_>>()?;
            let mine = holders.iter().any(|h| h.account_id == p.account_id);
            let others: Vec<PersonHolder> = holders.into_iter().filter(|h| h.account_id != p.account_id).collect();
            if others.len() >= cap {
                return Err(StoreError::Conflict(Conflict::PersonCap));
            }
            if mine {
                return Ok((others, false));
            }
            let next = version.unwrap_or(0) + 1;
            let (person, account) = (&p.id_card_index, p.account_id.0);
            let outcome = match version {
                None => self.lwt_within(fence, CLAIM_PERSON_FIRST, (next, p.id.0, &holder, person, account)).await?,
                Some(v) => self.lwt_within(fence, CLAIM_PERSON, (next, p.id.0, &holder, person, account, v)).await?,
            };
            if outcome.applied {
                return Ok((others, true));
            }
            tokio::time::sleep(Duration::from_millis(2 << attempt.min(6))).await;
        }
        Err(StoreError::Scylla("add_patient: too much contention on the person".into()))
    }

    /// Gives the account's row in the person's partition up if it still names `patient`. Best
    /// effort: a failure is logged, and the row keeps counting against the cap until deleted.
    async fn release_person(&self, person: &str, account: AccountId, patient: PatientId) {
        if let Err(e) = self.lwt(RELEASE_PERSON, (person, account.0, patient.0)).await {
            tracing::warn!(error = %e, %account, %patient, "releasing a person claim failed");
        }
    }

    async fn account_via(&self, table: &LookupTable, key: &str) -> Result<Option<Account>> {
        let Some((id,)) = self.row::<(Uuid,)>(table.get, (key,)).await? else { return Ok(None) };
        Ok(self.account_row(id).await?.filter(|a| holds(a, table, key)))
    }
}

#[async_trait]
impl AccountStore for ScyllaStore {
    async fn create_account(&self, account: &Account) -> Result<()> {
        let a = account;
        // Ids are fresh UUIDv7s from this process, so this check is for parity with the
        // embedded store rather than a race worth a Paxos round.
        if self.account_row(a.id.0).await?.is_some() {
            return Err(StoreError::Conflict(Conflict::Account));
        }
        let keys = lookups(a);
        self.claim_all(&keys, a.id.0).await?;
        if let Err(e) = self.exec(PUT_ACCOUNT, (a.id.0, encode(a))).await {
            for (t, k) in &keys {
                self.release(t, k, a.id.0).await;
            }
            return Err(e);
        }
        Ok(())
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>> {
        self.account_row(id.0).await
    }

    async fn account_by_phone(&self, phone: &Phone) -> Result<Option<Account>> {
        self.account_via(&BY_PHONE, phone.as_str()).await
    }

    async fn account_by_email(&self, email: &Email) -> Result<Option<Account>> {
        self.account_via(&BY_EMAIL, email.as_str()).await
    }

    async fn account_by_openid(&self, openid: &str) -> Result<Option<Account>> {
        self.account_via(&BY_OPENID, openid).await
    }

    async fn update_account(
        &self,
        account: &Account,
        events: &[crate::PendingEvent],
        fence: Option<&Fence>,
    ) -> Result<()> {
        let a = account;
        let fenced = self.check_account_fence(fence, a.id).await?;
        let old = self.account_row(a.id.0).await?.ok_or(StoreError::Conflict(Conflict::NoSuchAccount))?;
        let (old_keys, new_keys) = (lookups(&old), lookups(a));
        // Claim the new keys first, then write the row, then give the old keys up: at every
        // step each key belongs to at most one account.
        let added: Vec<_> = new_keys.iter().filter(|k| !old_keys.iter().any(|o| same_lookup(o, k))).cloned().collect();
        // At most three keys, one round each, claimed and released as one step: the deadline
        // checked once before them (a refusal in the middle would release a key it never sent).
        within_deadline(fence)?;
        self.claim_all(&added, a.id.0).await?;
        let mut w = Writes::default();
        w.push(self, PUT_ACCOUNT, vec![CqlValue::Uuid(a.id.0), text(encode(a))]);
        self.outbox_writes(&mut w, events);
        let written = match fenced {
            // At the timestamp taken before the fence was checked: a stale owner's late row loses.
            Some(at) => self.write_rest(vec![w], at).await,
            None => self.run_batch(w, BatchType::Logged).await,
        };
        if let Err(e) = written {
            for (t, k) in &added {
                self.release(t, k, a.id.0).await;
            }
            return Err(e);
        }
        for (t, k) in old_keys.iter().filter(|o| !new_keys.iter().any(|n| same_lookup(o, n))) {
            self.release(t, k, a.id.0).await;
        }
        Ok(())
    }

    async fn add_patient(
        &self,
        patient: &PatientRecord,
        caps: PatientCaps,
        fence: Option<&Fence>,
    ) -> Result<Vec<PersonHolder>> {
        let p = patient;
        self.check_account_fence(fence, p.account_id).await?;
        // The account's own refusals first (as the embedded store answers them), before the
        // person's partition is touched; put_new_patient checks them again under its CAS.
        self.patient_state(p, caps.per_account).await?;
        let (others, claimed) = self.claim_person(p, caps.accounts_per_person, fence).await?;
        if let Err(e) = self.put_new_patient(p, caps.per_account, fence).await {
            if claimed {
                self.release_person(&p.id_card_index, p.account_id, p.id).await;
            }
            return Err(e);
        }
        if !claimed {
            // The account's row was left by an add whose release failed: point it at this patient.
            let holder = encode(&PersonHolder::of(p));
            self.lwt(SET_HOLDER, (p.id.0, &holder, &p.id_card_index, p.account_id.0)).await?;
        }
        Ok(others)
    }

    async fn update_patient(&self, patient: &PatientRecord) -> Result<()> {
        let p = patient;
        let old = self.patient(p.account_id, p.id).await?.ok_or(StoreError::Conflict(Conflict::NoSuchPatient))?;
        if old.id_card_index != p.id_card_index {
            return Err(StoreError::Conflict(Conflict::PatientPerson));
        }
        let outcome = self.lwt(UPDATE_PATIENT, (&p.id_card_index, encode(p), p.account_id.0, p.id.0)).await?;
        if !outcome.applied {
            return Err(StoreError::Conflict(Conflict::NoSuchPatient));
        }
        let holder = encode(&PersonHolder::of(p));
        self.lwt(SET_HOLDER, (p.id.0, &holder, &p.id_card_index, p.account_id.0)).await?;
        Ok(())
    }

    async fn patients_of(&self, account: AccountId) -> Result<Vec<PatientRecord>> {
        // A partition whose patients were all removed still has its static row: one row, no body.
        let rows: Vec<(Option<String>,)> = self.rows(LIST_PATIENTS, (account.0,)).await?;
        let mut out: Vec<PatientRecord> =
            rows.into_iter().filter_map(|(b,)| b).map(|b| decode("patients_by_account", &b)).collect::<Result<_>>()?;
        // Clustering order is already id order; sort by the id bytes to match the embedded
        // store exactly (UUIDv7: creation order).
        out.sort_by_key(|p| p.id);
        Ok(out)
    }

    async fn patient(&self, account: AccountId, patient: PatientId) -> Result<Option<PatientRecord>> {
        match self.row::<(Option<String>,)>(GET_PATIENT, (account.0, patient.0)).await? {
            Some((Some(body),)) => Ok(Some(decode("patients_by_account", &body)?)),
            _ => Ok(None),
        }
    }

    async fn remove_patient(&self, account: AccountId, patient: PatientId, fence: Option<&Fence>) -> Result<bool> {
        self.check_account_fence(fence, account).await?;
        let Some(p) = self.patient(account, patient).await? else { return Ok(false) };
        let removed = self.lwt_within(fence, REMOVE_PATIENT, (account.0, patient.0)).await?.applied;
        if removed {
            self.release_person(&p.id_card_index, account, patient).await;
        }
        Ok(removed)
    }
}

#[async_trait]
impl StaffStore for ScyllaStore {
    async fn create_staff(&self, staff: &StaffMember) -> Result<()> {
        let s = staff;
        let claim = self.lwt(CLAIM_USERNAME, (&s.username, s.id.0)).await?;
        if !claim.applied && claim.uuid("staff_id") != Some(s.id.0) {
            return Err(StoreError::Conflict(Conflict::Username));
        }
        if let Err(e) = self.exec(PUT_STAFF, (s.id.0, encode(s))).await {
            if let Err(r) = self.lwt(RELEASE_USERNAME, (&s.username, s.id.0)).await {
                tracing::warn!(error = %r, "releasing a username failed");
            }
            return Err(e);
        }
        Ok(())
    }

    async fn staff(&self, id: StaffId) -> Result<Option<StaffMember>> {
        match self.row::<(String,)>(GET_STAFF, (id.0,)).await? {
            Some((body,)) => Ok(Some(decode("staff", &body)?)),
            None => Ok(None),
        }
    }

    async fn staff_by_username(&self, username: &str) -> Result<Option<StaffMember>> {
        let Some((id,)) = self.row::<(Uuid,)>(GET_USERNAME, (username,)).await? else { return Ok(None) };
        Ok(self.staff(StaffId(id)).await?.filter(|s| s.username == username))
    }
}
