//! `EphemeralKv` on ScyllaDB: the `kv_entries` and `kv_set_members` tables, every write with
//! `USING TTL`. CQL TTLs are whole seconds, so each row also carries `expires_at` (unix ms) and a
//! row past it reads as absent at once, as on Redis and the embedded store; ScyllaDB drops it
//! within the second.
//!
//! The operations that must be atomic are conditional statements (Paxos on the key's partition):
//! `put_if_absent` is `INSERT ... IF NOT EXISTS`, `take` is `DELETE ... IF EXISTS` (ScyllaDB
//! returns the old row with the outcome, so the one caller whose delete applied gets the value),
//! `incr` is a compare-and-set loop on `n`. `delete` is conditional too, so that it is ordered
//! with those by Paxos rather than by clocks. `put` and the set operations are plain writes.

use async_trait::async_trait;
use scylla::frame::types::Consistency;
use scylla::statement::unprepared::Statement;
use std::time::Duration;
use uuid::Uuid;

use super::{now_ms, ttl_secs, Lwt, ScyllaStore};
use crate::error::Result;
use crate::traits::{DataStore, EphemeralKv};
use crate::StoreError;

const GET: &str = "SELECT value, expires_at FROM {ks}.kv_entries WHERE key = ?";
const PUT: &str = "INSERT INTO {ks}.kv_entries (key, value, expires_at) VALUES (?, ?, ?) USING TTL ?";
const PUT_NX: &str = "INSERT INTO {ks}.kv_entries (key, value, expires_at) VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?";
/// Replaces a row that is past `expires_at` but not yet dropped by its (whole-second) TTL.
const REPLACE_EXPIRED: &str =
    "UPDATE {ks}.kv_entries USING TTL ? SET value = ?, expires_at = ? WHERE key = ? IF expires_at = ?";
const DELETE_IF_EXISTS: &str = "DELETE FROM {ks}.kv_entries WHERE key = ? IF EXISTS";
const TTL: &str = "SELECT expires_at, TTL(value) FROM {ks}.kv_entries WHERE key = ?";
const COUNTER: &str = "SELECT n, expires_at, cas_id FROM {ks}.kv_entries WHERE key = ?";
const COUNTER_CREATE: &str = "INSERT INTO {ks}.kv_entries (key, n, value, expires_at, cas_id) VALUES (?, 1, ?, ?, ?) \
     IF NOT EXISTS USING TTL ?";
const COUNTER_RESTART: &str = "UPDATE {ks}.kv_entries USING TTL ? SET n = 1, value = ?, expires_at = ?, cas_id = ? \
     WHERE key = ? IF expires_at = ?";
const COUNTER_STEP: &str = "UPDATE {ks}.kv_entries USING TTL ? SET n = ?, value = ?, cas_id = ? \
     WHERE key = ? IF n = ? AND expires_at = ?";
/// The placeholder an append claims a log id with until its number is written (never a number).
const LOG_CLAIM: &[u8] = b"claimed";
/// How long an append waits for another caller's claim of the same id to get its number.
const LOG_CLAIM_WAIT: Duration = Duration::from_secs(5);
/// How long a claim lives unless its number replaces it: a caller that died after claiming (a
/// `kill -9` mid-append) blocks the id no longer than this; shorter than `LOG_CLAIM_WAIT`, so a
/// waiter outlasts a dead claim and numbers the event itself.
const LOG_CLAIM_TTL: Duration = Duration::from_secs(3);
/// A log's number and its event, one row, taken only if the number is free.
const LOG_ROW: &str =
    "INSERT INTO {ks}.kv_log (stream, seq, event_id, value) VALUES (?, ?, ?, ?) IF NOT EXISTS USING TTL ?";
/// A log's newest rows (newest first): its head while they live, and the recent event ids.
const LOG_NEWEST: &str = "SELECT seq, event_id FROM {ks}.kv_log WHERE stream = ? LIMIT ?";
const LOG_RANGE: &str = "SELECT seq, value FROM {ks}.kv_log WHERE stream = ? AND seq >= ? AND seq <= ?";
/// How many of a log's newest rows an append checks for its own event (one a predecessor wrote
/// and died before naming its number).
const LOG_RECENT: i32 = 32;
/// A counter created at a given value (the log's head, moved forward to a number).
const COUNTER_CREATE_AT: &str =
    "INSERT INTO {ks}.kv_entries (key, n, value, expires_at, cas_id) VALUES (?, ?, ?, ?, ?) \
     IF NOT EXISTS USING TTL ?";
/// An expired counter restarted at a given value.
const COUNTER_RESTART_AT: &str = "UPDATE {ks}.kv_entries USING TTL ? SET n = ?, value = ?, expires_at = ?, cas_id = ? \
     WHERE key = ? IF expires_at = ?";
const SET_ADD: &str = "INSERT INTO {ks}.kv_set_members (key, member, expires_at) VALUES (?, ?, ?) USING TTL ?";
const SET_REMOVE: &str = "DELETE FROM {ks}.kv_set_members WHERE key = ? AND member = ?";
const SET_MEMBERS: &str = "SELECT member, expires_at FROM {ks}.kv_set_members WHERE key = ?";

/// Compare-and-set rounds `incr` tries before giving up (each lost round means another caller's
/// increment went in, so this bounds the contention it waits through, not the time).
const INCR_ATTEMPTS: u32 = 200;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2).max(1)
}

fn live(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_none_or(|e| e > now)
}

/// A random pause of up to `2^attempt` ms (capped at 16 ms), so that contenders spread out.
async fn backoff(attempt: u32) {
    let cap = 1u64 << attempt.min(4);
    let pause = 1 + rand::random::<u64>() % cap;
    tokio::time::sleep(Duration::from_millis(pause)).await;
}

/// What `incr` knows of a counter row: (n, expires_at); None if there is no row.
type CounterState = Option<(Option<i64>, Option<i64>)>;

fn counter_state(n: Option<i64>, expires_at: Option<i64>) -> CounterState {
    (n.is_some() || expires_at.is_some()).then_some((n, expires_at))
}

impl ScyllaStore {
    /// Moves the counter `key` forward to `to` if it is behind (created with `ttl` if absent or
    /// expired), by compare-and-set: a log's head never goes back. `known` is the counter as the
    /// caller just read it (the first attempt's guess; a stale one only fails its compare).
    async fn advance_counter(&self, key: &str, to: i64, ttl: Duration, known: CounterState) -> Result<()> {
        let op = Uuid::new_v4();
        let value = to.to_string().into_bytes();
        let mut known = Some(known);
        for attempt in 0..INCR_ATTEMPTS {
            let now = now_ms();
            let state = match known.take() {
                Some(state) => state,
                None => self.counter_row(key, false).await?.0,
            };
            let outcome = match state {
                Some((Some(n), Some(exp))) if n >= to && exp > now => return Ok(()),
                None => self.lwt(COUNTER_CREATE_AT, (key, to, &value[..], now + ms(ttl), op, ttl_secs(ttl))).await?,
                Some((_, Some(exp))) if exp <= now => {
                    self.lwt(COUNTER_RESTART_AT, (ttl_secs(ttl), to, &value[..], now + ms(ttl), op, key, exp)).await?
                }
                Some((n, exp)) => {
                    let left = exp.map_or(ttl, |e| Duration::from_millis((e - now).max(1) as u64));
                    self.lwt(COUNTER_STEP, (ttl_secs(left), to, &value[..], op, key, n, exp)).await?
                }
            };
            if outcome.applied {
                return Ok(());
            }
            backoff(attempt).await;
        }
        Err(StoreError::Scylla(format!("moving {key} forward: too much contention")))
    }

    /// A log's `limit` newest rows, newest first: (number, event id).
    async fn log_newest(&self, stream: &str, limit: i32) -> Result<Vec<(i64, String)>> {
        self.rows::<(i64, String)>(LOG_NEWEST, (stream, limit)).await
    }

    /// The head from the counter and the newest rows (the larger: the counter may lag a row an
    /// appender wrote just before dying, and it outlives the rows), and the counter as read.
    async fn log_head_with(&self, stream: &str, newest: &[(i64, String)]) -> Result<(u64, CounterState)> {
        let (counter, _) = self.counter_row(&crate::traits::log_counter_key(stream), false).await?;
        let live = match counter {
            Some((Some(n), exp)) if live(exp, now_ms()) => n.max(0) as u64,
            _ => 0,
        };
        Ok((live.max(newest.first().map_or(0, |(n, _)| *n as u64)), counter))
    }

    async fn counter_row(&self, key: &str, serial: bool) -> Result<(CounterState, Option<Uuid>)> {
        let mut stmt = Statement::new(self.cql(COUNTER));
        if serial {
            // A Paxos read: sees an increment whose round is still in flight.
            stmt.set_consistency(Consistency::LocalSerial);
        }
        let res = self.exec_stmt(stmt, (key,)).await?.into_rows_result()?;
        Ok(match res.maybe_first_row::<(Option<i64>, Option<i64>, Option<Uuid>)>()? {
            Some((n, exp, cas_id)) => (counter_state(n, exp), cas_id),
            None => (None, None),
        })
    }

    /// One event of `log_append_all`.
    /// The id is claimed first (`put_if_absent` of a placeholder, a conditional insert), so of
    /// two callers appending one id at once only one numbers it; the other waits for that
    /// number. A claim whose caller died (a `kill -9` mid-append) lapses after
    /// `LOG_CLAIM_TTL`, within the wait, and the waiter then numbers the event itself. The
    /// number and the event are one `kv_log` row taken `IF NOT EXISTS` (schema.cql), so a crash
    /// leaves no number without its event; an event whose row a dead caller wrote is found
    /// among the log's newest rows and keeps its number. (A claimant slower than the claim's
    /// life could see its id numbered twice: the price of not blocking an event for a day.)
    async fn append_one(&self, stream: &str, event_id: &str, value: &[u8], ttl: Duration) -> Result<(u64, bool)> {
        use crate::traits::{log_counter_key, log_id_key, LOG_COUNTER_TTL};
        let id_key = log_id_key(event_id);
        let deadline = std::time::Instant::now() + LOG_CLAIM_WAIT;
        let mut attempt = 0;
        loop {
            if std::time::Instant::now() >= deadline {
                return Err(StoreError::Scylla(format!(
                    "log id {event_id}: claimed by an append that has not finished"
                )));
            }
            attempt += 1;
            match self.get(&id_key).await? {
                Some(v) if v == LOG_CLAIM => {
                    backoff(attempt).await;
                    continue;
                }
                Some(v) => {
                    let n = String::from_utf8(v).ok().and_then(|s| s.parse().ok());
                    return n.map(|n| (n, false)).ok_or_else(|| {
                        StoreError::Scylla(format!("log id {event_id}: the stored number does not parse"))
                    });
                }
                None => {}
            }
            if self.put_if_absent(&id_key, LOG_CLAIM, LOG_CLAIM_TTL.min(ttl)).await? {
                break;
            }
        }
        let head_key = log_counter_key(stream);
        let mut newest = self.log_newest(stream, LOG_RECENT).await?;
        for attempt in 0..INCR_ATTEMPTS {
            let (head, counter) = self.log_head_with(stream, &newest).await?;
            // Written by a caller that died before naming its number: it keeps that number.
            let written = newest.iter().find(|(_, id)| id == event_id).map(|(n, _)| *n);
            let n = written.unwrap_or(head as i64 + 1);
            let ours =
                written.is_some() || self.lwt(LOG_ROW, (stream, n, event_id, value, ttl_secs(ttl))).await?.applied;
            // The head moves past the number either way (another appender's, if not ours).
            self.advance_counter(&head_key, n, LOG_COUNTER_TTL, counter).await?;
            if ours {
                self.put(&id_key, n.to_string().as_bytes(), ttl).await?;
                return Ok((n as u64, true));
            }
            backoff(attempt).await;
            newest = self.log_newest(stream, LOG_RECENT).await?;
        }
        Err(StoreError::Scylla(format!("log {stream}: too much contention")))
    }
}

#[async_trait]
impl EphemeralKv for ScyllaStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let row = self.row::<(Option<Vec<u8>>, Option<i64>)>(GET, (key,)).await?;
        Ok(row.filter(|(_, exp)| live(*exp, now_ms())).and_then(|(v, _)| v))
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        self.exec(PUT, (key, value, now_ms() + ms(ttl), ttl_secs(ttl))).await?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        let now = now_ms();
        let expires_at = now + ms(ttl);
        let first = self.lwt(PUT_NX, (key, value, expires_at, ttl_secs(ttl))).await?;
        if first.applied {
            return Ok(true);
        }
        // The key is there, but it may be past `expires_at` and waiting for its TTL: then it is
        // absent as far as callers know, and is replaced only if nobody else replaced it first.
        match first.bigint("expires_at") {
            Some(old) if old <= now => {
                let again = self.lwt(REPLACE_EXPIRED, (ttl_secs(ttl), value, expires_at, key, old)).await?;
                Ok(again.applied)
            }
            _ => Ok(false),
        }
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let outcome: Lwt = self.lwt(DELETE_IF_EXISTS, (key,)).await?;
        if !outcome.applied {
            return Ok(None);
        }
        if !outcome.has("value") {
            // Apache Cassandra answers an applied conditional delete with `[applied]` alone.
            return Err(StoreError::Scylla(
                "DELETE ... IF EXISTS did not return the old row: take needs ScyllaDB's LWT results".into(),
            ));
        }
        Ok(outcome.blob("value").filter(|_| live(outcome.bigint("expires_at"), now_ms())))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.lwt(DELETE_IF_EXISTS, (key,)).await?;
        Ok(())
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        let Some((expires_at, cql_ttl)) = self.row::<(Option<i64>, Option<i32>)>(TTL, (key,)).await? else {
            return Ok(None);
        };
        let now = now_ms();
        Ok(match (expires_at, cql_ttl) {
            (Some(e), _) if e <= now => None,
            (Some(e), _) => Some(Duration::from_millis((e - now) as u64)),
            (None, Some(t)) => Some(Duration::from_secs(t.max(0) as u64)),
            (None, None) => Some(Duration::MAX),
        })
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<i64> {
        // Every attempt writes `cas_id = op`: if an attempt fails with an unknown outcome (a
        // timeout), a Paxos read tells whether it went in (cas_id is still ours), so it is not
        // counted twice. (If another increment already overwrote it, this one retries and may
        // count twice: acceptable for rate-limit counters, and only after a timeout.)
        let op = Uuid::new_v4();
        let (mut state, _) = self.counter_row(key, false).await?;
        let mut last_err = None;
        for attempt in 0..INCR_ATTEMPTS {
            let now = now_ms();
            let (outcome, wrote) = match state {
                None => {
                    let exp = now + ms(ttl);
                    (self.lwt(COUNTER_CREATE, (key, &b"1"[..], exp, op, ttl_secs(ttl))).await, 1)
                }
                Some((_, Some(old_exp))) if old_exp <= now => {
                    // An expired counter restarts at 1 with a fresh window, like a missing one.
                    let exp = now + ms(ttl);
                    (self.lwt(COUNTER_RESTART, (ttl_secs(ttl), &b"1"[..], exp, op, key, old_exp)).await, 1)
                }
                Some((n, exp)) => {
                    // The window was fixed when the counter was created: rewrite n with the time
                    // it has left (expires_at itself is not rewritten and keeps its own TTL).
                    let next = n.unwrap_or(0) + 1;
                    let left = exp.map_or(ttl, |e| Duration::from_millis((e - now).max(1) as u64));
                    let value = next.to_string().into_bytes();
                    (self.lwt(COUNTER_STEP, (ttl_secs(left), next, value, op, key, n, exp)).await, next)
                }
            };
            match outcome {
                Ok(l) if l.applied => return Ok(wrote),
                Ok(l) if l.has("n") && l.has("expires_at") => {
                    // Lost the round: the result carries the row that won it.
                    state = counter_state(l.bigint("n"), l.bigint("expires_at"));
                }
                Ok(_) => state = self.counter_row(key, false).await?.0,
                Err(e) => {
                    let (now_state, cas_id) = self.counter_row(key, true).await?;
                    if cas_id == Some(op) {
                        if let Some((Some(n), _)) = now_state {
                            return Ok(n);
                        }
                    }
                    state = now_state;
                    last_err = Some(e);
                }
            }
            backoff(attempt).await;
        }
        Err(last_err.unwrap_or_else(|| StoreError::Scylla(format!("incr {key}: too much contention"))))
    }

    /// One by one (`append_one`): several ids cannot be claimed and numbered in one
    /// conditional write here, as they are in one transaction or script elsewhere.
    async fn log_append_all(&self, stream: &str, items: &[(&str, &[u8])], ttl: Duration) -> Result<Vec<(u64, bool)>> {
        let mut out = Vec::with_capacity(items.len());
        for (event_id, value) in items {
            out.push(self.append_one(stream, event_id, value, ttl).await?);
        }
        Ok(out)
    }

    async fn log_head(&self, stream: &str) -> Result<u64> {
        let newest = self.log_newest(stream, 1).await?;
        Ok(self.log_head_with(stream, &newest).await?.0)
    }

    async fn log_range(&self, stream: &str, from: u64, to: u64) -> Result<Vec<Option<Vec<u8>>>> {
        let rows: Vec<(i64, Option<Vec<u8>>)> = self.rows(LOG_RANGE, (stream, from as i64, to as i64)).await?;
        let by_number: std::collections::HashMap<i64, Vec<u8>> =
            rows.into_iter().filter_map(|(n, v)| Some((n, v?))).collect();
        Ok((from..=to).map(|n| by_number.get(&(n as i64)).cloned()).collect())
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<()> {
        self.exec(SET_ADD, (key, member, now_ms() + ms(ttl), ttl_secs(ttl))).await?;
        Ok(())
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<()> {
        self.exec(SET_REMOVE, (key, member)).await?;
        Ok(())
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>> {
        let now = now_ms();
        let rows: Vec<(String, Option<i64>)> = self.rows(SET_MEMBERS, (key,)).await?;
        Ok(rows.into_iter().filter(|(_, exp)| live(*exp, now)).map(|(m, _)| m).collect())
    }

    async fn ping(&self) -> Result<()> {
        DataStore::ping(self).await
    }
}
