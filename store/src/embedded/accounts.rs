//! Accounts, patients and staff on the embedded engine. Uniqueness (one account per phone, per
//! e-mail, per openid; one staff per username) and the caps (patients per account, accounts per
//! person) are checked inside the writer's transaction, which is the same guarantee ScyllaDB
//! gives with `IF NOT EXISTS` and its compare-and-sets. A patient row and its row in
//! `accounts_by_person` are written and deleted in the same transaction.

use async_trait::async_trait;
use hospital_domain::{AccountId, Email, PatientId, Phone, StaffId};

use super::engine::{Reader, WriteCtx};
use super::keys::Key;
use super::tables::*;
use super::EmbeddedStore;
use crate::error::Conflict;
use crate::error::Result;
use crate::traits::{AccountStore, StaffStore};
use crate::{Account, PatientCaps, PatientRecord, PersonHolder, StaffMember, StoreError};

fn id_key(id: &uuid::Uuid) -> Key {
    Key::new().uuid(id)
}

/// A person's partition of `accounts_by_person`.
pub(super) fn person_key(person: &str) -> Key {
    Key::new().str(person)
}

/// The row of one account in a person's partition.
pub(super) fn holder_key(person: &str, account: AccountId) -> Key {
    person_key(person).uuid(&account.0)
}

/// The lookup rows an account owns: (table, key, what to call it in a conflict).
pub(super) fn lookups(a: &Account) -> Vec<(Def, Key, Conflict)> {
    let mut v = Vec::new();
    if let Some(p) = &a.phone {
        v.push((ACCOUNTS_BY_PHONE, Key::new().str(p.as_str()), Conflict::Phone));
    }
    if let Some(e) = &a.email {
        v.push((ACCOUNTS_BY_EMAIL, Key::new().str(e.as_str()), Conflict::Email));
    }
    if let Some(o) = &a.wechat_openid {
        v.push((ACCOUNTS_BY_OPENID, Key::new().str(o), Conflict::WechatAccount));
    }
    v
}

/// Fails with Conflict if any of `a`'s lookup keys belongs to another account.
fn check_lookups(ctx: &WriteCtx<'_>, a: &Account) -> Result<()> {
    for (table, key, what) in lookups(a) {
        if let Some(owner) = ctx.get::<AccountId>(table, &key)? {
            if owner != a.id {
                return Err(StoreError::Conflict(what));
            }
        }
    }
    Ok(())
}

impl EmbeddedStore {
    fn account_via(&self, table: Def, key: Key) -> Result<Option<Account>> {
        self.engine.read(|r| match r.get::<AccountId>(table, &key)? {
            Some(id) => r.get(ACCOUNTS, &id_key(&id.0)),
            None => Ok(None),
        })
    }
}

#[async_trait]
impl AccountStore for EmbeddedStore {
    async fn create_account(&self, account: &Account) -> Result<()> {
        let a = account.clone();
        self.engine
            .write(move |ctx| {
                if ctx.get::<Account>(ACCOUNTS, &id_key(&a.id.0))?.is_some() {
                    return Err(StoreError::Conflict(Conflict::Account));
                }
                check_lookups(ctx, &a)?;
                for (table, key, _) in lookups(&a) {
                    ctx.put(table, &key, &a.id);
                }
                ctx.put(ACCOUNTS, &id_key(&a.id.0), &a);
                Ok(())
            })
            .await
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>> {
        self.engine.read(|r| r.get(ACCOUNTS, &id_key(&id.0)))
    }

    async fn account_by_phone(&self, phone: &Phone) -> Result<Option<Account>> {
        self.account_via(ACCOUNTS_BY_PHONE, Key::new().str(phone.as_str()))
    }

    async fn account_by_email(&self, email: &Email) -> Result<Option<Account>> {
        self.account_via(ACCOUNTS_BY_EMAIL, Key::new().str(email.as_str()))
    }

    async fn account_by_openid(&self, openid: &str) -> Result<Option<Account>> {
        self.account_via(ACCOUNTS_BY_OPENID, Key::new().str(openid))
    }

    async fn update_account(
        &self,
        account: &Account,
        events: &[crate::PendingEvent],
        fence: Option<&crate::Fence>,
    ) -> Result<()> {
        let (a, events, fence) = (account.clone(), events.to_vec(), fence.cloned());
        self.engine
            .write(move |ctx| {
                super::booking::check_fence(ctx, fence.as_ref())?;
                let old: Account =
                    ctx.get(ACCOUNTS, &id_key(&a.id.0))?.ok_or(StoreError::Conflict(Conflict::NoSuchAccount))?;
                check_lookups(ctx, &a)?;
                let new_keys = lookups(&a);
                for (table, key, _) in lookups(&old) {
                    if !new_keys.iter().any(|(t, k, _)| t.name() == table.name() && *k == key) {
                        ctx.delete(table, &key);
                    }
                }
                for (table, key, _) in new_keys {
                    ctx.put(table, &key, &a.id);
                }
                ctx.put(ACCOUNTS, &id_key(&a.id.0), &a);
                super::outbox::put_events(ctx, &events);
                Ok(())
            })
            .await
    }

    async fn add_patient(
        &self,
        patient: &PatientRecord,
        caps: PatientCaps,
        fence: Option<&crate::Fence>,
    ) -> Result<Vec<PersonHolder>> {
        let (p, fence) = (patient.clone(), fence.cloned());
        self.engine
            .write(move |ctx| {
                super::booking::check_fence(ctx, fence.as_ref())?;
                let existing: Vec<PatientRecord> = ctx.scan(PATIENTS_BY_ACCOUNT, &id_key(&p.account_id.0))?;
                if existing.iter().any(|e| e.id_card_index == p.id_card_index) {
                    return Err(StoreError::Conflict(Conflict::Patient));
                }
                if existing.len() >= caps.per_account {
                    return Err(StoreError::Conflict(Conflict::PatientCap));
                }
                let holders: Vec<PersonHolder> = ctx.scan(ACCOUNTS_BY_PERSON, &person_key(&p.id_card_index))?;
                let others: Vec<PersonHolder> = holders.into_iter().filter(|h| h.account_id != p.account_id).collect();
                if others.len() >= caps.accounts_per_person {
                    return Err(StoreError::Conflict(Conflict::PersonCap));
                }
                ctx.put(PATIENTS_BY_ACCOUNT, &id_key(&p.account_id.0).uuid(&p.id.0), &p);
                ctx.put(ACCOUNTS_BY_PERSON, &holder_key(&p.id_card_index, p.account_id), &PersonHolder::of(&p));
                Ok(others)
            })
            .await
    }

    async fn update_patient(&self, patient: &PatientRecord) -> Result<()> {
        let p = patient.clone();
        self.engine
            .write(move |ctx| {
                let key = id_key(&p.account_id.0).uuid(&p.id.0);
                let Some(old) = ctx.get::<PatientRecord>(PATIENTS_BY_ACCOUNT, &key)? else {
                    return Err(StoreError::Conflict(Conflict::NoSuchPatient));
                };
                if old.id_card_index != p.id_card_index {
                    return Err(StoreError::Conflict(Conflict::PatientPerson));
                }
                ctx.put(PATIENTS_BY_ACCOUNT, &key, &p);
                let hkey = holder_key(&p.id_card_index, p.account_id);
                if let Some(mut h) = ctx.get::<PersonHolder>(ACCOUNTS_BY_PERSON, &hkey)? {
                    h.relation = p.relation;
                    ctx.put(ACCOUNTS_BY_PERSON, &hkey, &h);
                }
                Ok(())
            })
            .await
    }

    async fn patients_of(&self, account: AccountId) -> Result<Vec<PatientRecord>> {
        // Patient ids are UUIDv7, so key order is creation order.
        self.engine.read(|r| r.scan(PATIENTS_BY_ACCOUNT, &id_key(&account.0)))
    }

    async fn patient(&self, account: AccountId, patient: PatientId) -> Result<Option<PatientRecord>> {
        self.engine.read(|r| r.get(PATIENTS_BY_ACCOUNT, &id_key(&account.0).uuid(&patient.0)))
    }

    async fn remove_patient(
        &self,
        account: AccountId,
        patient: PatientId,
        fence: Option<&crate::Fence>,
    ) -> Result<bool> {
        let fence = fence.cloned();
        self.engine
            .write(move |ctx| {
                super::booking::check_fence(ctx, fence.as_ref())?;
                let key = id_key(&account.0).uuid(&patient.0);
                let Some(p) = ctx.get::<PatientRecord>(PATIENTS_BY_ACCOUNT, &key)? else { return Ok(false) };
                ctx.delete(PATIENTS_BY_ACCOUNT, &key);
                let hkey = holder_key(&p.id_card_index, account);
                if ctx.get::<PersonHolder>(ACCOUNTS_BY_PERSON, &hkey)?.is_some_and(|h| h.patient_id == patient) {
                    ctx.delete(ACCOUNTS_BY_PERSON, &hkey);
                }
                Ok(true)
            })
            .await
    }
}

#[async_trait]
impl StaffStore for EmbeddedStore {
    async fn create_staff(&self, staff: &StaffMember) -> Result<()> {
        let s = staff.clone();
        self.engine
            .write(move |ctx| {
                let ukey = Key::new().str(&s.username);
                if ctx.get::<StaffId>(STAFF_BY_USERNAME, &ukey)?.is_some() {
                    return Err(StoreError::Conflict(Conflict::Username));
                }
                ctx.put(STAFF_BY_USERNAME, &ukey, &s.id);
                ctx.put(STAFF, &id_key(&s.id.0), &s);
                Ok(())
            })
            .await
    }

    async fn staff(&self, id: StaffId) -> Result<Option<StaffMember>> {
        self.engine.read(|r| r.get(STAFF, &id_key(&id.0)))
    }

    async fn staff_by_username(&self, username: &str) -> Result<Option<StaffMember>> {
        self.engine.read(|r| match r.get::<StaffId>(STAFF_BY_USERNAME, &Key::new().str(username))? {
            Some(id) => r.get(STAFF, &id_key(&id.0)),
            None => Ok(None),
        })
    }
}
