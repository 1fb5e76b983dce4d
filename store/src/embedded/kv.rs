//! `EphemeralKv` on the embedded engine, for one machine without Redis: the `kv_entries` and
//! `kv_set_members` tables with per-row TTLs. Each operation is one closure in the writer, so
//! check-and-set operations are atomic exactly as Redis makes them.

use async_trait::async_trait;
use std::time::Duration;

use super::engine::{Reader, WriteCtx};
use super::keys::Key;
use super::tables::*;
use super::EmbeddedStore;
use crate::error::Result;
use crate::traits::{log_counter_key, log_id_key, log_value_key, EphemeralKv, LOG_COUNTER_TTL};

fn k(key: &str) -> Key {
    Key::new().str(key)
}

fn parse_number(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok().and_then(|s| s.parse::<u64>().ok())
}

/// A log's counter inside one write closure: read once, numbers handed out in order with their
/// values, written back once. Used by `log_append_all` and by a booking write that logs its own
/// events (`booking`), so both number one stream in the writer's one order.
pub(super) struct LogHead {
    key: Key,
    /// The stored counter's expiry (None: the stream has none).
    expires: Option<u64>,
    first: u64,
    n: u64,
}

impl LogHead {
    pub(super) fn read(ctx: &WriteCtx<'_>, stream: &str) -> Result<Self> {
        let key = k(&log_counter_key(stream));
        let stored = ctx.get_raw(KV_ENTRIES, key.bytes())?;
        let expires = stored.as_ref().map(|(e, _)| *e);
        let n = stored.and_then(|(_, v)| parse_number(&v)).unwrap_or(0);
        Ok(Self { key, expires, first: n, n })
    }

    /// Whether the stream had no counter.
    fn is_new(&self) -> bool {
        self.expires.is_none()
    }

    /// Writes `value` under the stream's next number, living `ttl`; returns the number.
    pub(super) fn push(&mut self, ctx: &mut WriteCtx<'_>, stream: &str, value: Vec<u8>, ttl: Duration) -> u64 {
        self.n += 1;
        ctx.put_raw(KV_ENTRIES, k(&log_value_key(stream, self.n)).into_bytes(), value, Some(ttl));
        self.n
    }

    /// Writes the counter back if it moved.
    pub(super) fn write(self, ctx: &mut WriteCtx<'_>) {
        if self.n != self.first {
            // Rewritten at every append: indexed for expiry once, not once an append.
            let value = self.n.to_string().into_bytes();
            ctx.put_raw_renewing(KV_ENTRIES, self.key.into_bytes(), value, LOG_COUNTER_TTL, self.expires);
        }
    }
}

#[async_trait]
impl EphemeralKv for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.engine.read(|r| r.get_raw(KV_ENTRIES, k(key).bytes()))?.map(|(_, v)| v))
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        let (key, value) = (k(key), value.to_vec());
        self.engine
            .write(move |ctx| {
                ctx.put_raw(KV_ENTRIES, key.into_bytes(), value, Some(ttl));
                Ok(())
            })
            .await
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        let (key, value) = (k(key), value.to_vec());
        self.engine
            .write(move |ctx| {
                if ctx.get_raw(KV_ENTRIES, key.bytes())?.is_some() {
                    return Ok(false);
                }
                ctx.put_raw(KV_ENTRIES, key.into_bytes(), value, Some(ttl));
                Ok(true)
            })
            .await
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = k(key);
        self.engine
            .write(move |ctx| {
                let v = ctx.get_raw(KV_ENTRIES, key.bytes())?.map(|(_, v)| v);
                if v.is_some() {
                    ctx.delete(KV_ENTRIES, &key);
                }
                Ok(v)
            })
            .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let key = k(key);
        self.engine
            .write(move |ctx| {
                ctx.delete(KV_ENTRIES, &key);
                Ok(())
            })
            .await
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        let now = super::engine::now_ms();
        Ok(self.engine.read(|r| r.get_raw(KV_ENTRIES, k(key).bytes()))?.map(|(exp, _)| {
            if exp == 0 {
                Duration::MAX
            } else {
                Duration::from_millis(exp.saturating_sub(now))
            }
        }))
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<i64> {
        let key = k(key);
        self.engine
            .write(move |ctx| {
                let (n, exp) = match ctx.get_raw(KV_ENTRIES, key.bytes())? {
                    Some((exp, v)) => {
                        (std::str::from_utf8(&v).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0), exp)
                    }
                    None => (0, 0),
                };
                let n = n + 1;
                // Like Redis INCR + EXPIRE on creation: an existing counter keeps its expiry.
                if exp == 0 {
                    ctx.put_raw(KV_ENTRIES, key.into_bytes(), n.to_string().into_bytes(), Some(ttl));
                } else {
                    ctx.put_raw_until(KV_ENTRIES, key.into_bytes(), n.to_string().into_bytes(), exp);
                }
                Ok(n)
            })
            .await
    }

    async fn log_append_all(&self, stream: &str, items: &[(&str, &[u8])], ttl: Duration) -> Result<Vec<(u64, bool)>> {
        let items: Vec<(Key, Vec<u8>)> = items.iter().map(|(id, v)| (k(&log_id_key(id)), v.to_vec())).collect();
        let stream = stream.to_string();
        // One closure: every number, its value and its id marker commit together or not at all.
        self.engine
            .write(move |ctx| {
                let mut head = LogHead::read(ctx, &stream)?;
                // A stream without a counter has logged nothing for longer than an id marker
                // lives (the counter outlives them: LOG_COUNTER_TTL against `ttl`), so none of
                // these ids can be a repeat from the store, only from earlier in this list: an
                // account's first events cost no read of a marker that is not there.
                let new_stream = head.is_new() && ttl <= LOG_COUNTER_TTL;
                let mut out = Vec::with_capacity(items.len());
                for (id, value) in items {
                    // An id seen before (in the store, or earlier in this list: the closure reads
                    // its own writes) keeps its first number.
                    let marker = if new_stream {
                        ctx.own_write(KV_ENTRIES, id.bytes()).flatten()
                    } else {
                        ctx.get_raw(KV_ENTRIES, id.bytes())?
                    };
                    if let Some(seen) = marker.and_then(|(_, v)| parse_number(&v)) {
                        out.push((seen, false));
                        continue;
                    }
                    let n = head.push(ctx, &stream, value, ttl);
                    ctx.put_raw(KV_ENTRIES, id.into_bytes(), n.to_string().into_bytes(), Some(ttl));
                    out.push((n, true));
                }
                head.write(ctx);
                Ok(out)
            })
            .await
    }

    async fn log_range(&self, stream: &str, from: u64, to: u64) -> Result<Vec<Option<Vec<u8>>>> {
        // One snapshot for the whole range.
        self.engine.read(|r| {
            (from..=to)
                .map(|n| Ok(r.get_raw(KV_ENTRIES, k(&log_value_key(stream, n)).bytes())?.map(|(_, v)| v)))
                .collect()
        })
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<()> {
        let row = k(key).str(member);
        self.engine
            .write(move |ctx| {
                ctx.put_raw(KV_SET_MEMBERS, row.into_bytes(), Vec::new(), Some(ttl));
                Ok(())
            })
            .await
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<()> {
        let row = k(key).str(member);
        self.engine
            .write(move |ctx| {
                ctx.delete(KV_SET_MEMBERS, &row);
                Ok(())
            })
            .await
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>> {
        let prefix = k(key);
        let rows = self.engine.read(|r| r.scan_raw(KV_SET_MEMBERS, prefix.bytes()))?;
        Ok(rows
            .into_iter()
            .filter_map(|(row, _)| {
                // The member is the second string component: strip the prefix and its terminator.
                let rest = &row[prefix.bytes().len()..];
                let end = rest.len().checked_sub(2)?;
                String::from_utf8(rest[..end].to_vec()).ok()
            })
            .collect())
    }

    async fn ping(&self) -> Result<()> {
        self.engine.read(|_| Ok(()))
    }
}
