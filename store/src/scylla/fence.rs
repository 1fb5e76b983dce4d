//! The fence of an owned actor on ScyllaDB (several nodes, ARCHITECTURE.md): where each kind keeps
//! its token, the conditional batches that check and claim it, and the timestamped rest.
//!
//! Each kind of owned actor keeps its fencing token in the row (or partition) it loads its state
//! from when it starts, its truth: a doctor's schedule in the doctor's book (a static column of
//! `appointments_by_doctor`), an order's payment in the order's row, a session's queue in the
//! queue's row, a conversation in the conversation's row, a ticket, an exam, a visit and an
//! account each in its own row. A fenced write moves its truth only in a
//! conditional batch `IF fence = <token>` (an older token, or none, found there is a new owner's
//! claim, taken by compare-and-set from the value found; a newer one refuses the write,
//! `Conflict::StaleFence`). Its other rows follow in logged batches written at one timestamp taken
//! before the fence was checked (`write_rest`), so a stale owner's late copies lose to a newer
//! owner's by ScyllaDB's rule for every cell, the later timestamp wins; and a write whose timestamp
//! falls past its lease's deadline is refused before anything is sent (`start_fenced`), so a third
//! of the lease separates one owner's last timestamp from the next owner's first
//! (ARCHITECTURE.md, "Several nodes", says why that margin is what clock skew may eat).

use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::BatchType;
use scylla::value::CqlValue;

use super::booking::{pack, BATCH_BYTES, BATCH_STATEMENTS};
use super::{Lwt, ScyllaStore, Writes};
use crate::error::Result;
use crate::{Conflict, Fence, Owned, StoreError};

/// How often a claim retries its compare-and-set when the fence moved under it.
const FENCE_TRIES: usize = 4;
/// How often a fenced write's other rows are tried (`write_rest`).
const REST_TRIES: u32 = 3;

/// The fence of a doctor's book moves to the writer's token if it still holds `?` (the writer's
/// own token, or for a claim the older one it found there); `_FIRST`: the claim of a partition
/// never fenced. The same pair for each kind's truth.
const FENCE_DOCTOR: &str = "UPDATE {ks}.appointments_by_doctor SET fence = ? WHERE doctor_id = ? IF fence = ?";
const FENCE_DOCTOR_FIRST: &str = "UPDATE {ks}.appointments_by_doctor SET fence = ? WHERE doctor_id = ? IF fence = null";
const FENCE_ORDER: &str = "UPDATE {ks}.orders SET fence = ? WHERE order_id = ? IF fence = ?";
const FENCE_ORDER_FIRST: &str = "UPDATE {ks}.orders SET fence = ? WHERE order_id = ? IF fence = null";
const FENCE_QUEUE: &str = "UPDATE {ks}.queues SET fence = ? WHERE session_id = ? IF fence = ?";
const FENCE_QUEUE_FIRST: &str = "UPDATE {ks}.queues SET fence = ? WHERE session_id = ? IF fence = null";
const FENCE_CONVERSATION: &str = "UPDATE {ks}.conversations SET fence = ? WHERE conversation_id = ? IF fence = ?";
const FENCE_CONVERSATION_FIRST: &str =
    "UPDATE {ks}.conversations SET fence = ? WHERE conversation_id = ? IF fence = null";
const FENCE_TICKET: &str = "UPDATE {ks}.chat_tickets SET fence = ? WHERE ticket_id = ? IF fence = ?";
const FENCE_TICKET_FIRST: &str = "UPDATE {ks}.chat_tickets SET fence = ? WHERE ticket_id = ? IF fence = null";
const FENCE_EXAM: &str = "UPDATE {ks}.exams SET fence = ? WHERE exam_id = ? IF fence = ?";
const FENCE_EXAM_FIRST: &str = "UPDATE {ks}.exams SET fence = ? WHERE exam_id = ? IF fence = null";
const FENCE_VISIT: &str = "UPDATE {ks}.visits SET fence = ? WHERE visit_id = ? IF fence = ?";
const FENCE_VISIT_FIRST: &str = "UPDATE {ks}.visits SET fence = ? WHERE visit_id = ? IF fence = null";
const FENCE_ACCOUNT: &str = "UPDATE {ks}.accounts SET fence = ? WHERE account_id = ? IF fence = ?";
const FENCE_ACCOUNT_FIRST: &str = "UPDATE {ks}.accounts SET fence = ? WHERE account_id = ? IF fence = null";

/// The owned actor and token of a fence; a resource that names none is refused by name rather
/// than written unfenced.
fn fence_of(fence: &Fence) -> Result<(Owned, i64)> {
    let owned = fence
        .owned()
        .ok_or_else(|| StoreError::Scylla(format!("no owned actor is fenced as {:?} on ScyllaDB", fence.resource)))?;
    let token = i64::try_from(fence.token)
        .map_err(|_| StoreError::Scylla(format!("fencing token {} is out of range", fence.token)))?;
    Ok((owned, token))
}

/// The refusal of a `kind` write whose fence is another actor's: each store fences its own.
pub(super) fn wrong_fence(kind: &str, owned: Owned) -> StoreError {
    StoreError::Scylla(format!("a {kind} write cannot be fenced by {owned}"))
}

/// Refuses to go on with a fenced write past its lease's deadline: for a step no fence reaches
/// (a payment's own claims, lightweight transactions in other partitions), checked just before it
/// is sent, so only a stall of a third of the lease between this check and its arrival could let
/// a stale owner's step through.
pub(super) fn within_deadline(fence: Option<&Fence>) -> Result<()> {
    match fence {
        Some(f) if f.lapsed_at(crate::lease::now_us()) => Err(Conflict::StaleFence.into()),
        _ => Ok(()),
    }
}

impl ScyllaStore {
    /// Where a fenced write starts: what its fence is for, its token, and its write timestamp. A
    /// write begun past the lease's deadline could carry a timestamp later than a next owner's
    /// (it may have claimed already): refused before anything is sent.
    pub(super) fn start_fenced(&self, fence: &Fence) -> Result<(Owned, i64, i64)> {
        let (owned, token) = fence_of(fence)?;
        let at = self.write_timestamp();
        if fence.lapsed_at(at) {
            return Err(Conflict::StaleFence.into());
        }
        Ok((owned, token, at))
    }

    /// `start_fenced` for a write that must be `expect`'s (`kind` names it in the refusal of
    /// another actor's fence); None for a write with no fence (one node).
    pub(super) fn start_fenced_as(
        &self,
        fence: Option<&Fence>,
        kind: &str,
        expect: Owned,
    ) -> Result<Option<(Owned, i64, i64)>> {
        let Some(f) = fence else { return Ok(None) };
        let started = self.start_fenced(f)?;
        if started.0 != expect {
            return Err(wrong_fence(kind, started.0));
        }
        Ok(Some(started))
    }

    /// A lightweight transaction of a fenced write outside the fenced partition (an account's
    /// patient and person claims): sent only within the lease's deadline, checked just before each
    /// send, a retry's too (`within_deadline`).
    pub(super) async fn lwt_within(
        &self,
        fence: Option<&Fence>,
        template: &str,
        values: impl SerializeRow,
    ) -> Result<Lwt> {
        within_deadline(fence)?;
        self.lwt(template, values).await
    }

    /// A claim alone (a new owner, before it loads anything): the fence moves to `fence`'s token
    /// unless a newer one is there.
    pub(super) async fn claim(&self, fence: &Fence) -> Result<()> {
        let (owned, token, _) = self.start_fenced(fence)?;
        self.fenced_batch(owned, token, Writes::default(), true).await
    }

    /// A fenced write of a queue, a conversation, a ticket, an exam or a visit: `own` (its truth's row) in one conditional
    /// batch that may claim, then `rest` at the write's timestamp.
    pub(super) async fn apply_owned(&self, started: (Owned, i64, i64), own: Writes, rest: Vec<Writes>) -> Result<()> {
        let (owned, token, at) = started;
        self.fenced_batch(owned, token, own, true).await?;
        self.write_rest(rest, at).await
    }

    /// An owned actor's row (`own`) and its other rows (`rest`): with a fence (several nodes,
    /// `start_fenced_as`'s answer), `apply_owned`; without, all of them in one logged batch.
    pub(super) async fn write_owned(
        &self,
        fenced: Option<(Owned, i64, i64)>,
        mut own: Writes,
        rest: Writes,
    ) -> Result<()> {
        match fenced {
            Some(started) => self.apply_owned(started, own, vec![rest]).await,
            None => {
                own.append(rest);
                self.run_batch(own, BatchType::Logged).await
            }
        }
    }

    /// The rows outside the fenced partition, in logged batches at write timestamp `at`. Once
    /// the fenced batch applied, the owner's truth shows the change, so a batch that fails here
    /// is tried again (a few times, briefly) rather than leave, say, a booking in the book
    /// without its order or its copies: at its fixed timestamp a batch is idempotent, and
    /// written late it still loses to a newer owner's rows.
    pub(super) async fn write_rest(&self, rest: Vec<Writes>, at: i64) -> Result<()> {
        for batch in pack(rest, BATCH_STATEMENTS, BATCH_BYTES) {
            let mut attempt = 0;
            while let Err(e) = self.run_batch_at(&batch, BatchType::Logged, Some(at)).await {
                attempt += 1;
                if attempt == REST_TRIES {
                    return Err(e);
                }
                tracing::warn!(error = %e, attempt, "a fenced write's other rows failed; trying again");
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
        }
        Ok(())
    }

    /// One conditional batch: `rows` (all in `owned`'s partition) applied only if the fence is
    /// the writer's `token`. With `claim`, an older token (or none) found there is replaced by
    /// compare-and-set; a newer one refuses the write.
    pub(super) async fn fenced_batch(&self, owned: Owned, token: i64, rows: Writes, claim: bool) -> Result<()> {
        let (same, first, key) = match owned {
            Owned::Schedule(d) => (FENCE_DOCTOR, FENCE_DOCTOR_FIRST, d.0),
            Owned::Payment(o) => (FENCE_ORDER, FENCE_ORDER_FIRST, o.0),
            Owned::Queue(s) => (FENCE_QUEUE, FENCE_QUEUE_FIRST, s.0),
            Owned::Conversation(c) => (FENCE_CONVERSATION, FENCE_CONVERSATION_FIRST, c.0),
            Owned::Ticket(t) => (FENCE_TICKET, FENCE_TICKET_FIRST, t.0),
            Owned::Exam(e) => (FENCE_EXAM, FENCE_EXAM_FIRST, e.0),
            Owned::Visit(v) => (FENCE_VISIT, FENCE_VISIT_FIRST, v.0),
            Owned::Account(a) => (FENCE_ACCOUNT, FENCE_ACCOUNT_FIRST, a.0),
        };
        // The fence's statement leads the batch, expecting `expect` there (None: no fence yet).
        let fence = |expect: Option<i64>| match expect {
            Some(e) => (same, vec![CqlValue::BigInt(token), CqlValue::Uuid(key), CqlValue::BigInt(e)]),
            None => (first, vec![CqlValue::BigInt(token), CqlValue::Uuid(key)]),
        };
        let mut batch = Writes::default();
        let (template, values) = fence(Some(token));
        batch.push(self, template, values);
        batch.append(rows);
        for _ in 0..FENCE_TRIES {
            let answer = self.run_batch_at(&batch, BatchType::Unlogged, None).await?;
            let outcome = Lwt::from_result(answer.ok_or_else(|| StoreError::Scylla("an empty fenced batch".into()))?)?;
            if outcome.applied {
                return Ok(());
            }
            let found = outcome.bigint("fence");
            // A newer owner took over (or, past the claim, the fence moved at all).
            if !claim || found.is_some_and(|f| f > token) {
                return Err(Conflict::StaleFence.into());
            }
            // A claim: compare-and-set from what was found; only the fence's statement changes.
            let (template, values) = fence(found);
            batch.statements[0] = self.cql(template);
            batch.values[0] = values;
        }
        Err(StoreError::Scylla(format!("the fence of {owned} kept changing during a claim")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_past_the_leases_deadline_is_refused() {
        let order = hospital_domain::OrderId::new();
        let at = |by_us: i64| Fence { until_us: Some(crate::lease::now_us() + by_us), ..Fence::payment(order, 1) };
        assert!(matches!(within_deadline(Some(&at(-1_000))), Err(StoreError::Conflict(Conflict::StaleFence))));
        assert!(within_deadline(Some(&at(60_000_000))).is_ok());
        assert!(within_deadline(Some(&Fence::payment(order, 1))).is_ok(), "a fence with no deadline");
        assert!(within_deadline(None).is_ok(), "one node: no fence");
    }
}
