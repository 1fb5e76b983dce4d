//! One booking decision at a time per person on this node. The real-name rules (BOOK-6) are the
//! person's (the ID number's), and a person may be a patient of several accounts (a family's
//! phones, each booking the grandmother during a release): each account has its own actor, so
//! the accounts' actors alone let two attempts for one person read the same history and both
//! pass. An account's actor takes its person's turn here from the rules' read until the doctor's
//! actor has answered the hold (durable), so the next attempt reads a history that holds it.
//!
//! A lock, not an actor: the turn is taken inside the account's actor, which is already the
//! serial owner of the attempt, and a further actor hop would cost every hold of a storm about
//! what the account's own hop costs. Across nodes the turn is not shared (see ARCHITECTURE.md,
//! "Several nodes sharing ScyllaDB").

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::{Mutex as Turn, OwnedMutexGuard};

/// The persons with a booking decision in progress on this node, by ID-number index.
#[derive(Default)]
pub struct PersonLocks {
    inner: Mutex<Locks>,
}

#[derive(Default)]
struct Locks {
    /// Weak: an entry lives while some attempt holds or waits for it; dead ones are swept.
    by_person: HashMap<String, Weak<Turn<()>>>,
    /// The map's size at which dead entries are swept next (twice the live ones after a sweep),
    /// so a sweep's cost is spread over as many inserts as it visits.
    sweep_at: usize,
}

impl PersonLocks {
    /// Waits for `person`'s turn; the turn ends when the guard is dropped.
    pub async fn turn(&self, person: &str) -> OwnedMutexGuard<()> {
        let turn = {
            let mut locks = self.inner.lock().expect("person locks");
            match locks.by_person.get(person).and_then(Weak::upgrade) {
                Some(t) => t,
                None => {
                    let t = Arc::new(Turn::new(()));
                    locks.by_person.insert(person.to_string(), Arc::downgrade(&t));
                    if locks.by_person.len() >= locks.sweep_at {
                        locks.by_person.retain(|_, w| w.strong_count() > 0);
                        locks.sweep_at = (2 * locks.by_person.len()).max(1024);
                    }
                    t
                }
            }
        };
        turn.lock_owned().await
    }

    #[cfg(test)]
    fn entries(&self) -> usize {
        self.inner.lock().expect("person locks").by_person.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_turn_per_person_and_none_across_persons() {
        let locks = Arc::new(PersonLocks::default());
        let first = locks.turn("person-a").await;
        // Another person's turn is free while a's is held.
        let other = tokio::time::timeout(Duration::from_millis(200), locks.turn("person-b")).await;
        assert!(other.is_ok(), "person b waited for person a");
        // A second attempt for a waits until the first turn ends.
        let waiter = tokio::spawn({
            let locks = locks.clone();
            async move {
                let _t = locks.turn("person-a").await;
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "two turns of one person at once");
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("the turn passed on").expect("task");
    }

    #[tokio::test]
    async fn finished_turns_are_swept() {
        let locks = PersonLocks::default();
        for i in 0..5000 {
            drop(locks.turn(&format!("person-{i}")).await);
        }
        // Every turn ended: a sweep leaves none, and the map never grew past a sweep's bound.
        assert!(locks.entries() < 1024, "{} entries kept", locks.entries());
        let held = locks.turn("kept").await;
        for i in 0..2000 {
            drop(locks.turn(&format!("more-{i}")).await);
        }
        assert!(locks.inner.lock().unwrap().by_person.contains_key("kept"), "a held turn was swept");
        drop(held);
    }
}
