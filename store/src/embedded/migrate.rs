//! Moving a data directory written by the earlier redb engine into the LSM engine, once, at open.

use fjall::{Keyspace, PartitionHandle, PersistMode};
use redb::TableDefinition;
use std::path::Path;

use super::tables::{self, engine_key, ttl_index_key};
use crate::StoreError;

/// The file the redb engine kept everything in.
pub const REDB_FILE: &str = "hospital.redb";
/// What it is renamed to once its rows are in the LSM: kept, not deleted, so an operator can
/// still go back to the previous release.
pub const MIGRATED_FILE: &str = "hospital.redb.migrated";
/// Rows per transaction while copying, so a large file does not build one huge transaction.
const CHUNK: usize = 20_000;

/// Copies every row of `dir`'s redb file (if there is one) into `rows` under the same table and
/// key, value bytes unchanged (both engines store the same 8-byte expiry header and payload),
/// syncs, and only then renames the file. A crash half-way leaves the file in place and the
/// copy is redone at the next open: puts of the same rows are idempotent.
pub fn from_redb(dir: &Path, keyspace: &Keyspace, rows: &PartitionHandle) -> Result<usize, StoreError> {
    let file = dir.join(REDB_FILE);
    if !file.exists() {
        return Ok(0);
    }
    let engine = |e: &dyn std::fmt::Display| StoreError::Engine(format!("migrating {}: {e}", file.display()));
    let db = redb::Database::open(&file).map_err(|e| engine(&e))?;
    let read = db.begin_read().map_err(|e| engine(&e))?;
    let mut copied = 0;
    let mut batch = keyspace.batch();
    for table in tables::ALL {
        let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(table.name());
        let t = match read.open_table(def) {
            Ok(t) => t,
            // A table added after the file was last written.
            Err(redb::TableError::TableDoesNotExist(_)) => continue,
            Err(e) => return Err(engine(&e)),
        };
        for row in t.range::<&[u8]>(..).map_err(|e| engine(&e))? {
            let (k, v) = row.map_err(|e| engine(&e))?;
            let key = if *table == tables::TTL_INDEX {
                // An entry naming a table this release no longer has has no row to expire.
                let Some(key) = ttl_entry(k.value()) else { continue };
                key
            } else {
                engine_key(*table, k.value())
            };
            batch.insert(rows, key, v.value());
            copied += 1;
            if copied % CHUNK == 0 {
                batch.commit()?;
                batch = keyspace.batch();
            }
        }
    }
    batch.commit()?;
    keyspace.persist(PersistMode::SyncAll)?;
    drop(read);
    drop(db);
    std::fs::rename(&file, dir.join(MIGRATED_FILE)).map_err(|e| engine(&e))?;
    tracing::info!(rows = copied, dir = %dir.display(), "data directory moved from redb to the LSM engine");
    Ok(copied)
}

/// A TTL index entry as redb's engine wrote it, `expiry(8) | table name (as keys::Key::str
/// writes it: terminated by 0x00 0x01) | row key`, in the LSM's layout (`tables::ttl_index_key`).
fn ttl_entry(redb_key: &[u8]) -> Option<fjall::Slice> {
    let expires = u64::from_be_bytes(redb_key.get(..8)?.try_into().ok()?);
    let (name, row_key) = super::keys::read_str(&redb_key[8..])?;
    let table = tables::ALL.iter().find(|t| t.name() == name)?;
    Some(ttl_index_key(expires, &engine_key(*table, row_key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::engine::{Engine, Reader};

    /// A row as the redb engine stored it: 8 bytes of expiry, then the payload.
    fn stored(expires_ms: u64, payload: &[u8]) -> Vec<u8> {
        [&expires_ms.to_be_bytes()[..], payload].concat()
    }

    #[tokio::test]
    async fn a_redb_directory_is_moved_into_the_lsm_once_with_its_expiries() {
        let dir = tempfile::tempdir().unwrap();
        let later = crate::embedded::engine::now_ms() + 3_600_000;
        {
            let db = redb::Database::create(dir.path().join(REDB_FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(TableDefinition::<&[u8], &[u8]>::new(tables::ACCOUNTS.name())).unwrap();
                t.insert(&b"alice"[..], stored(0, b"{\"a\":1}").as_slice()).unwrap();
                // Already expired: copied as stored, and unreadable as before.
                t.insert(&b"gone"[..], stored(1, b"{}").as_slice()).unwrap();
                let mut t = txn.open_table(TableDefinition::<&[u8], &[u8]>::new(tables::KV_ENTRIES.name())).unwrap();
                t.insert(&b"code"[..], stored(later, b"\"123456\"").as_slice()).unwrap();
                // The expired row's TTL index entry as redb's engine wrote it.
                let mut t = txn.open_table(TableDefinition::<&[u8], &[u8]>::new(tables::TTL_INDEX.name())).unwrap();
                let entry =
                    [&crate::embedded::keys::Key::new().u64(1).str(tables::ACCOUNTS.name()).into_bytes()[..], b"gone"]
                        .concat();
                t.insert(entry.as_slice(), &[][..]).unwrap();
            }
            txn.commit().unwrap();
        }
        let engine = Engine::open(dir.path()).unwrap();
        let (alice, gone, code) = engine
            .read(|r| {
                Ok((
                    r.get_raw(tables::ACCOUNTS, b"alice")?,
                    r.get_raw(tables::ACCOUNTS, b"gone")?,
                    r.get_raw(tables::KV_ENTRIES, b"code")?,
                ))
            })
            .unwrap();
        assert_eq!(alice, Some((0, b"{\"a\":1}".to_vec())));
        assert_eq!(gone, None);
        assert_eq!(code, Some((later, b"\"123456\"".to_vec())));
        assert!(!dir.path().join(REDB_FILE).exists(), "the old file is renamed");
        assert!(dir.path().join(MIGRATED_FILE).exists(), "and kept");
        drop(engine);
        // Reopened: the rows are the LSM's own now, nothing is copied again.
        let engine = Engine::open(dir.path()).unwrap();
        let alice = engine.read(|r| r.get_raw(tables::ACCOUNTS, b"alice")).unwrap();
        assert_eq!(alice, Some((0, b"{\"a\":1}".to_vec())));
        // Its TTL index came across in the LSM's layout: the sweeper finds and deletes the row.
        assert_eq!(engine.sweep_expired().await.unwrap(), 1);
        assert!(engine.read(|r| r.scan_stored(tables::ACCOUNTS, b"gone")).unwrap().is_empty(), "swept");
    }
}
