//! Async locks by name on this node (`KeyedLocks`): a write pipeline's owner (`pipeline`), a
//! person's booking decision (`real_name`). An entry exists only while someone holds or waits
//! for its lock, so a node that has seen a million names keeps none of them for nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Async locks by name, made on first use and forgotten once nobody holds or waits for them.
#[derive(Default)]
pub struct KeyedLocks {
    inner: Mutex<Locks>,
}

#[derive(Default)]
struct Locks {
    /// Weak: an entry lives while someone holds or waits for it; dead ones are swept.
    by_key: HashMap<String, Weak<AsyncMutex<()>>>,
    /// The map's size at which dead entries are swept next (twice the live ones after a sweep),
    /// so a sweep's cost is spread over as many inserts as it visits.
    sweep_at: usize,
}

impl KeyedLocks {
    /// Waits for `key`'s lock; it is released when the guard is dropped.
    pub async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        self.entry(key).lock_owned().await
    }

    /// `key`'s lock if nobody holds it now, without waiting: for a caller that must not wait
    /// on a holder who may be waiting on it (a doctor's actor offering a place).
    pub fn try_lock(&self, key: &str) -> Option<OwnedMutexGuard<()>> {
        self.entry(key).try_lock_owned().ok()
    }

    /// `key`'s lock, made if nobody holds or waits for it.
    fn entry(&self, key: &str) -> Arc<AsyncMutex<()>> {
        let mut locks = self.inner.lock().expect("keyed locks");
        match locks.by_key.get(key).and_then(Weak::upgrade) {
            Some(t) => t,
            None => {
                let t = Arc::new(AsyncMutex::new(()));
                locks.by_key.insert(key.to_string(), Arc::downgrade(&t));
                if locks.by_key.len() >= locks.sweep_at {
                    locks.by_key.retain(|_, w| w.strong_count() > 0);
                    locks.sweep_at = (2 * locks.by_key.len()).max(1024);
                }
                t
            }
        }
    }

    #[cfg(test)]
    fn entries(&self) -> usize {
        self.inner.lock().expect("keyed locks").by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_holder_per_key_and_none_across_keys() {
        let locks = Arc::new(KeyedLocks::default());
        let first = locks.lock("person-a").await;
        // Another key's lock is free while a's is held.
        let other = tokio::time::timeout(Duration::from_millis(200), locks.lock("person-b")).await;
        assert!(other.is_ok(), "key b waited for key a");
        // A second holder of a waits until the first lets go.
        let waiter = tokio::spawn({
            let locks = locks.clone();
            async move {
                let _t = locks.lock("person-a").await;
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "two holders of one key at once");
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("the lock passed on").expect("task");
    }

    #[tokio::test]
    async fn try_lock_never_waits() {
        let locks = KeyedLocks::default();
        let held = locks.try_lock("person-a").expect("a free lock is taken");
        assert!(locks.try_lock("person-a").is_none(), "a held lock taken twice");
        assert!(locks.try_lock("person-b").is_some(), "another key's lock refused");
        drop(held);
        assert!(locks.try_lock("person-a").is_some(), "a released lock refused");
    }

    #[tokio::test]
    async fn released_locks_are_swept() {
        let locks = KeyedLocks::default();
        for i in 0..5000 {
            drop(locks.lock(&format!("person-{i}")).await);
        }
        // Every lock was released: a sweep leaves none, and the map never grew past a sweep's bound.
        assert!(locks.entries() < 1024, "{} entries kept", locks.entries());
        let held = locks.lock("kept").await;
        for i in 0..2000 {
            drop(locks.lock(&format!("more-{i}")).await);
        }
        assert!(locks.inner.lock().unwrap().by_key.contains_key("kept"), "a held lock was swept");
        drop(held);
    }
}
