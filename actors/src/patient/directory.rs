//! The accounts' patients as their running actors last wrote them (`PatientDirectory`), read by a
//! booking without an idempotency key on the caller's own task (`ActorSystem::book`): the
//! account's actor is then not asked, which saved a hold about one actor round trip (a few per
//! cent of a storm's CPU, docs/benchmarks.md). A booking needs from the account only which
//! patients it has; the rules that make bookings wait for each other are the person's, and the
//! person's turn (`real_name`) serialises them wherever they run.
//!
//! Only an account's actor writes its entry: when it has loaded the list, after each change it
//! made to it in the store, and (its `Published` dropped with its state, even after a panic) when
//! it stops. A booking reading the entry during a change sees the list before or after it, as if
//! it had come before or after the change; an account without an entry (its actor is not
//! running) books through its actor, which starts and publishes.

use hospital_domain::AccountId;
use hospital_store::PatientRecord;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Per account with a running actor, its patients (oldest first).
#[derive(Default)]
pub struct PatientDirectory {
    by_account: Mutex<HashMap<AccountId, Arc<[PatientRecord]>>>,
}

impl PatientDirectory {
    /// The account's patients, if its actor is running.
    pub(crate) fn get(&self, account: AccountId) -> Option<Arc<[PatientRecord]>> {
        self.lock().get(&account).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, Arc<[PatientRecord]>>> {
        self.by_account.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An actor's entry in the directory: published again after each change, removed when dropped
/// (unless a successor's replaced it meanwhile).
pub(crate) struct Published {
    directory: Weak<PatientDirectory>,
    account: AccountId,
    current: Arc<[PatientRecord]>,
}

impl Published {
    pub(crate) fn new(directory: &Arc<PatientDirectory>, account: AccountId, patients: &[PatientRecord]) -> Self {
        let mut p = Self { directory: Arc::downgrade(directory), account, current: Arc::from(Vec::new()) };
        p.update(patients);
        p
    }

    /// Publishes `patients`, the list as now in the store.
    pub(crate) fn update(&mut self, patients: &[PatientRecord]) {
        self.current = Arc::from(patients);
        if let Some(d) = self.directory.upgrade() {
            d.lock().insert(self.account, self.current.clone());
        }
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        let Some(d) = self.directory.upgrade() else { return };
        let mut map = d.lock();
        // A successor that started before this state was dropped published its own: keep it.
        if map.get(&self.account).is_some_and(|e| Arc::ptr_eq(e, &self.current)) {
            map.remove(&self.account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, Utc};
    use hospital_domain::account::Relation;
    use hospital_domain::{Gender, PatientId};
    use hospital_store::Sealed;

    fn record(account: AccountId, n: u8) -> PatientRecord {
        PatientRecord {
            id: PatientId::new(),
            account_id: account,
            name: format!("patient {n}"),
            relation: Relation::Child,
            gender: Gender::Female,
            birth_date: NaiveDate::from_ymd_opt(2015, 1, 1).unwrap(),
            id_card_sealed: Sealed(format!("k1:sealed-{n}")),
            id_card_masked: "1101**********0011".into(),
            id_card_index: format!("index-{n}"),
            phone_sealed: None,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn an_entry_follows_its_actor_and_a_successor_s_survives_its_predecessor() {
        let dir = Arc::new(PatientDirectory::default());
        let account = AccountId::new();
        assert!(dir.get(account).is_none(), "no actor, no entry");
        let mut first = Published::new(&dir, account, &[record(account, 1)]);
        assert_eq!(dir.get(account).unwrap().len(), 1);
        first.update(&[record(account, 1), record(account, 2)]);
        assert_eq!(dir.get(account).unwrap().len(), 2, "a change is published");
        drop(first);
        assert!(dir.get(account).is_none(), "a stopped actor's entry goes");

        let old = Published::new(&dir, account, &[record(account, 1)]);
        let successor = Published::new(&dir, account, &[record(account, 1), record(account, 3)]);
        drop(old);
        let kept = dir.get(account).expect("the successor's entry stays");
        assert_eq!(kept[1].name, "patient 3");
        drop(successor);
        assert!(dir.get(account).is_none());
    }
}
