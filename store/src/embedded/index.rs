//! Index entries that carry the key only. A secondary table (appointments by doctor, account or
//! person; orders by account) names its row by its key, whose last 16 bytes are the row's id,
//! and stores an empty payload: the reader looks the row up in its primary table. One ~1 KB copy
//! per row instead of four keeps the store's one writer thread (every hold of the node waits on
//! it) from splitting leaves and dirtying pages for copies.
//!
//! Data directories written before this kept a full copy in each index entry (always written in
//! the same transaction as the primary row, so never older than it): a non-empty payload is that
//! copy, and is read as it is. No migration step: the next write of a row replaces its copies by
//! keys.

use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::engine::{from_json, Reader, WriteCtx};
use super::keys::Key;
use super::tables::Def;
use crate::error::Result;

/// Writes an index entry that names its row by `key` (ending with the row's 16-byte id).
pub(super) fn put_key_only(ctx: &mut WriteCtx<'_>, index: Def, key: Key) {
    ctx.put_raw(index, key.into_bytes(), Vec::new(), None);
}

/// The rows an index partition names, in index-key order: each key-only entry looked up in
/// `primary` (by the id that ends its key; an entry whose row is gone is skipped), each old full
/// copy decoded as it is.
pub(super) fn resolve<T: DeserializeOwned>(r: &impl Reader, index: Def, prefix: &Key, primary: Def) -> Result<Vec<T>> {
    resolve_entries(r, index, r.scan_raw(index, prefix.bytes())?, primary)
}

/// `resolve` of index entries already read (a clustering range of a partition, say).
pub(super) fn resolve_entries<T: DeserializeOwned>(
    r: &impl Reader,
    index: Def,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    primary: Def,
) -> Result<Vec<T>> {
    let ids: Vec<Key> = entries.iter().filter(|(_, v)| v.is_empty()).filter_map(|(k, _)| row_id(k)).collect();
    let mut rows = r.get_many_raw(primary, &ids)?.into_iter();
    let mut out = Vec::with_capacity(entries.len());
    for (k, v) in &entries {
        if !v.is_empty() {
            out.push(from_json(index, v)?);
        } else if row_id(k).is_some() {
            if let Some(Some((_, row))) = rows.next() {
                out.push(from_json(primary, &row)?);
            }
        }
    }
    Ok(out)
}

/// The primary key of the row an index key names: its last 16 bytes, the row's id.
fn row_id(index_key: &[u8]) -> Option<Key> {
    let tail = index_key.get(index_key.len().checked_sub(16)?..)?;
    Some(Key::new().uuid(&Uuid::from_slice(tail).ok()?))
}
