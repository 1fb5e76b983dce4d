//! The accounts' patients as their running actors last wrote them (`PatientDirectory`), read by a
//! booking without an idempotency key on the caller's own task (`ActorSystem::book`): the
//! account's actor is then not asked, which took about a tenth off a durable hold's server CPU
//! (docs/benchmarks.md, stop 47). A booking needs from the account only which
//! patients it has; the rules that make bookings wait for each other are the person's, and the
//! person's turn (`real_name`) serialises them wherever they run.
//!
//! Only an account's actor writes its entry, through the list it keeps (`Published`): when it has
//! loaded the list, after each change it made to it in the store, and (dropped with its state,
//! even after a panic) when it stops. A booking reading the entry during a change sees the list before or after it, as if
//! it had come before or after the change; an account without an entry (its actor is not
//! running) books through its actor, which starts and publishes.

use hospital_domain::AccountId;
use hospital_store::PatientRecord;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

/// An actor's list of its account's patients (oldest first), as the store holds them after its
/// last successful write: the actor reads it here and replaces it through `set`, which publishes
/// it; dropped with the actor's state, it leaves the directory (unless a successor's list has
/// replaced it meanwhile).
pub(crate) struct Published {
    directory: Arc<PatientDirectory>,
    account: AccountId,
    current: Arc<[PatientRecord]>,
}

impl Published {
    pub(crate) fn new(directory: &Arc<PatientDirectory>, account: AccountId, patients: Vec<PatientRecord>) -> Self {
        let mut p = Self { directory: directory.clone(), account, current: Arc::from(Vec::new()) };
        p.set(patients);
        p
    }

    /// The account's patients.
    pub(crate) fn list(&self) -> &[PatientRecord] {
        &self.current
    }

    /// Replaces the list (now in the store) and publishes it.
    pub(crate) fn set(&mut self, patients: Vec<PatientRecord>) {
        self.current = Arc::from(patients);
        self.directory.lock().insert(self.account, self.current.clone());
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        let mut map = self.directory.lock();
        // A successor that started before this state was dropped published its own: keep it.
        if map.get(&self.account).is_some_and(|e| Arc::ptr_eq(e, &self.current)) {
            map.remove(&self.account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hospital_store::conformance::sample_patient;
    use hospital_store::FieldCipher;

    fn record(account: AccountId, n: u8) -> PatientRecord {
        let cipher = FieldCipher::new("k1", &[("k1".into(), [7; 32])]).unwrap();
        PatientRecord { name: format!("patient {n}"), ..sample_patient(&cipher, account, "11010519491231002X") }
    }

    #[test]
    fn an_entry_follows_its_actor_and_a_successor_s_survives_its_predecessor() {
        let dir = Arc::new(PatientDirectory::default());
        let account = AccountId::new();
        assert!(dir.get(account).is_none(), "no actor, no entry");
        let mut first = Published::new(&dir, account, vec![record(account, 1)]);
        assert_eq!(dir.get(account).unwrap().len(), 1);
        first.set(vec![record(account, 1), record(account, 2)]);
        assert_eq!(dir.get(account).unwrap().len(), 2, "a change is published");
        drop(first);
        assert!(dir.get(account).is_none(), "a stopped actor's entry goes");

        let old = Published::new(&dir, account, vec![record(account, 1)]);
        let successor = Published::new(&dir, account, vec![record(account, 1), record(account, 3)]);
        drop(old);
        let kept = dir.get(account).expect("the successor's entry stays");
        assert_eq!(kept[1].name, "patient 3");
        drop(successor);
        assert!(dir.get(account).is_none());
    }
}
