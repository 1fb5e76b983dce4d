//! Which partitions of a few tables hold any row, kept in memory so that reading a partition that
//! holds none costs no read of the tree.
//!
//! Why: before every hold the account's actor reads the person's appointments for the real-name
//! rules (`APPOINTMENTS_BY_PERSON`), and in a release storm most people have none in the store:
//! a prefix scan that finds nothing still opens a snapshot and an iterator over every memtable and
//! segment, about 7 µs of a hold's 140 on this machine (docs/benchmarks.md, "Nobody's history").
//! The set answers that read from memory. The same goes for the event logs' counters
//! (`KV_ENTRIES`, keys `log:<stream>:head`, when the embedded store is the kv): a booking write
//! reads its account's counter to number the hold's events, and a stream new to the log has none,
//! a point read through every memtable and segment for nothing (about 5 µs of a hold's writer time
//! in the profile of docs/benchmarks.md, stop 41). Only the counters are kept, not the kv's other
//! keys (sessions, codes, events): one entry a stream.
//!
//! The set only ever says "none" when the tree holds none: a partition is added on the writer
//! thread when a closure's put is moved into the batch, before the batch is committed and so
//! before any reader can see the row, and it is never taken out (a partition whose rows were all
//! deleted is scanned, and finds nothing, as before; so is a counter the sweeper deleted at its
//! expiry). It holds a 64-bit hash of each partition's key, not the key (a collision only means a
//! read): about 16 bytes a person or stream, 16 MB for a million.
//!
//! It is filled from the tree after the engine opens, on a thread of its own (`fill`): about 0.6 µs
//! an index row (62 ms for 104,000 in the bench person_history), seconds for a store of ten million
//! appointments, which the server's start should not wait for. Until the fill is done every scan
//! reads the tree, as before. The fill reads a snapshot; what is committed after the snapshot's
//! instant the writer noted before committing it, so once the snapshot is read the set holds every
//! partition with a row.

use fjall::{Keyspace, PartitionHandle};
use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use super::keys::str_end;
use super::tables::{Def, APPOINTMENTS_BY_PERSON, KV_ENTRIES, TABLE_PREFIX};

/// The tables whose partitions are kept, each with the start and end a kept partition's key has
/// (as `Key::str` writes it, terminator included): each has a partition key of one string. Of the
/// kv, only the event logs' counters (`traits::log_counter_key`).
pub const KEPT: &[(Def, &[u8], &[u8])] = &[(APPOINTMENTS_BY_PERSON, b"", b""), (KV_ENTRIES, b"log:", b":head\x00\x01")];

/// The kept tables' partitions that hold (or held) a row, as hashes of the table's id and the
/// partition key.
#[derive(Default)]
pub struct Presence {
    seen: RwLock<HashSet<u64, BuildHasherDefault<Passthrough>>>,
    /// The fill from the tree is done: until then the set may miss a partition.
    ready: AtomicBool,
    /// Set when the engine closes: the fill stops where it is.
    stop: AtomicBool,
}

impl Presence {
    /// Notes the row under `key` (a row key, without the table's id) of `table`, if the table is
    /// kept.
    pub fn note(&self, table: Def, key: &[u8]) {
        if let Some(h) = partition_hash(table, key) {
            self.seen.write().unwrap_or_else(|p| p.into_inner()).insert(h);
        }
    }

    /// Whether a scan of `prefix` (or a read of the row key `prefix`) in `table` may find a row:
    /// false only where `prefix` starts with a whole partition key of a kept table and that
    /// partition never held one.
    pub fn may_hold(&self, table: Def, prefix: &[u8]) -> bool {
        if !self.is_ready() {
            return true;
        }
        match partition_hash(table, prefix) {
            Some(h) => self.seen.read().unwrap_or_else(|p| p.into_inner()).contains(&h),
            None => true,
        }
    }

    /// How many partitions are noted.
    pub fn len(&self) -> usize {
        self.seen.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether the fill from the tree is done (before it, `may_hold` always says yes).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Stops a fill in progress (the engine is closing); it is not marked ready.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Rows the fill hashes between taking the set's lock (and looking for a stop).
const FILL_CHUNK: usize = 4096;

/// Fills `presence` with the kept tables' partitions as of now, then marks it ready; the writer
/// must already be noting its puts (`WriteCtx::apply`), so nothing committed from here on is
/// missed. A read error leaves it unready: every scan then reads the tree, as without it.
pub fn fill(keyspace: &Keyspace, rows: &PartitionHandle, presence: &Presence) {
    let started = Instant::now();
    let snapshot = rows.snapshot_at(keyspace.instant());
    // Hashed in chunks and added under one lock a chunk, not one a row: readers and the writer
    // take the same lock meanwhile.
    let mut chunk = Vec::with_capacity(FILL_CHUNK);
    let add = |chunk: &mut Vec<u64>| presence.seen.write().unwrap_or_else(|p| p.into_inner()).extend(chunk.drain(..));
    for &(table, start, _) in KEPT {
        let mut prefix = vec![table.id()];
        prefix.extend_from_slice(start);
        for row in snapshot.prefix(prefix) {
            match row {
                Ok((key, _)) => chunk.extend(partition_hash(table, &key[TABLE_PREFIX..])),
                Err(e) => {
                    tracing::warn!(error = %e, "kept partitions could not be read; every scan reads the store");
                    return;
                }
            }
            if chunk.len() == FILL_CHUNK {
                add(&mut chunk);
                if presence.stop.load(Ordering::Relaxed) {
                    return;
                }
            }
        }
    }
    add(&mut chunk);
    presence.ready.store(true, Ordering::Release);
    let ms = started.elapsed().as_millis() as u64;
    tracing::info!(partitions = presence.len(), ms, "kept partitions read from the store");
}

/// Starts `fill` on a thread of its own.
pub fn start_fill(
    keyspace: Keyspace,
    rows: PartitionHandle,
    presence: Arc<Presence>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("store-presence".into()).spawn(move || fill(&keyspace, &rows, &presence))
}

/// The hash of `key`'s partition in `table`, if the table is kept and `key` starts with a whole
/// partition key of a kept shape.
fn partition_hash(table: Def, key: &[u8]) -> Option<u64> {
    let &(_, start, end) = KEPT.iter().find(|k| k.0 == table)?;
    let partition = &key[..str_end(key)?];
    if !(partition.starts_with(start) && partition.ends_with(end)) {
        return None;
    }
    // A fixed hasher: the same key hashes alike in every process (not that it matters here: the
    // set is rebuilt at each open). foldhash, not SipHash: two of these per hold cost 1,800
    // instructions with SipHash (docs/benchmarks.md, stop 49).
    Some(foldhash::fast::FixedState::with_seed(0).hash_one((table.id(), partition)))
}

/// The set's keys are hashes already: hashing them again would only cost time.
#[derive(Default)]
struct Passthrough(u64);

impl std::hash::Hasher for Passthrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the set's keys are u64); folded in case of anything else.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::keys::Key;
    use crate::embedded::tables::APPOINTMENTS_BY_ACCOUNT;

    /// A set whose fill is done.
    fn ready() -> Presence {
        let p = Presence::default();
        p.ready.store(true, Ordering::Release);
        p
    }

    #[test]
    fn before_its_fill_every_partition_may_hold_rows() {
        let p = Presence::default();
        assert!(p.may_hold(APPOINTMENTS_BY_PERSON, Key::new().str("anyone").bytes()));
        p.ready.store(true, Ordering::Release);
        assert!(!p.may_hold(APPOINTMENTS_BY_PERSON, Key::new().str("anyone").bytes()));
    }

    #[test]
    fn a_partition_is_present_once_a_row_of_it_is_noted_and_others_are_not() {
        let p = ready();
        let row = Key::new().str("person-a").u64(7).u64(9);
        assert!(!p.may_hold(APPOINTMENTS_BY_PERSON, Key::new().str("person-a").bytes()));
        p.note(APPOINTMENTS_BY_PERSON, row.bytes());
        assert!(p.may_hold(APPOINTMENTS_BY_PERSON, Key::new().str("person-a").bytes()));
        // A longer prefix of the same partition, too.
        assert!(p.may_hold(APPOINTMENTS_BY_PERSON, Key::new().str("person-a").u64(7).bytes()));
        // "person-" is not a partition of its own, nor a prefix of "person-a" as a component.
        assert!(!p.may_hold(APPOINTMENTS_BY_PERSON, Key::new().str("person-").bytes()));
        assert!(!p.may_hold(APPOINTMENTS_BY_PERSON, Key::new().str("person-b").bytes()));
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn what_it_cannot_tell_it_leaves_to_the_scan() {
        let p = ready();
        // A table not kept, and a prefix shorter than a whole partition key.
        assert!(p.may_hold(APPOINTMENTS_BY_ACCOUNT, Key::new().str("x").bytes()));
        assert!(p.may_hold(APPOINTMENTS_BY_PERSON, b"pers"));
        assert!(p.may_hold(APPOINTMENTS_BY_PERSON, &[]));
        p.note(APPOINTMENTS_BY_ACCOUNT, Key::new().str("x").bytes());
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn of_the_kv_only_the_event_logs_counters_are_kept() {
        let p = ready();
        let counter = Key::new().str(&crate::traits::log_counter_key("acct:a"));
        let value = Key::new().str(&crate::traits::log_value_key("acct:a", 1));
        let session = Key::new().str("session:abc");
        assert!(!p.may_hold(KV_ENTRIES, counter.bytes()), "a counter never written");
        // Other kv keys are not kept: always read.
        p.note(KV_ENTRIES, value.bytes());
        p.note(KV_ENTRIES, session.bytes());
        assert_eq!(p.len(), 0);
        assert!(p.may_hold(KV_ENTRIES, value.bytes()) && p.may_hold(KV_ENTRIES, session.bytes()));
        p.note(KV_ENTRIES, counter.bytes());
        assert!(p.may_hold(KV_ENTRIES, counter.bytes()));
        assert!(!p.may_hold(KV_ENTRIES, Key::new().str(&crate::traits::log_counter_key("acct:b")).bytes()));
        assert_eq!(p.len(), 1);
    }
}
