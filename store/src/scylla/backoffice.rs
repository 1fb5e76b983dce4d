//! The back office's store on ScyllaDB: staff edits, documents (lightweight transactions on
//! their version: `INSERT ... IF NOT EXISTS` for a new one, `UPDATE ... IF version = ?` after),
//! analytics counters (a counter table) and paging through accounts by token.
//!
//! Counters differ from the embedded store in one way: they cannot join the logged batch of the
//! booking change they count (ScyllaDB keeps counter and regular writes in separate batches), so
//! `apply_booking` and `put_queue` add them right after their batch. A crash between the two
//! loses those increments, and a counter write retried after a timeout may count twice: the
//! figures are then approximate by that much, which analytics tolerates and the booking engine
//! never reads.

use async_trait::async_trait;
use chrono::NaiveDate;
use hospital_domain::analytics::{merge, RollupDelta, RollupRow};
use hospital_domain::appointment::Appointment;
use hospital_domain::booking::WaitEntry;
use hospital_domain::order::Order;
use hospital_domain::schedule::ClinicSession;
use hospital_domain::{AccountId, SessionId};
use scylla::statement::batch::BatchType;
use scylla::value::{CqlDate, CqlValue};
use uuid::Uuid;

use super::{cql_date, decode, encode, ScyllaStore, Writes};
use crate::backoffice::{BackOfficeStore, Doc};
use crate::error::Result;
use crate::traits::BookingWrite;
use crate::StaffMember;

const ALL_STAFF: &str = "SELECT body FROM {ks}.staff";
const GET_STAFF: &str = "SELECT body FROM {ks}.staff WHERE staff_id = ?";
const PUT_STAFF: &str = "INSERT INTO {ks}.staff (staff_id, body) VALUES (?, ?)";
const GET_DOC: &str = "SELECT version, body FROM {ks}.backoffice_documents WHERE kind = ? AND id = ?";
const LIST_DOCS: &str = "SELECT id, version, body FROM {ks}.backoffice_documents WHERE kind = ?";
const INSERT_DOC: &str =
    "INSERT INTO {ks}.backoffice_documents (kind, id, version, body) VALUES (?, ?, 1, ?) IF NOT EXISTS";
const UPDATE_DOC: &str =
    "UPDATE {ks}.backoffice_documents SET version = ?, body = ? WHERE kind = ? AND id = ? IF version = ?";
const DELETE_DOC: &str = "DELETE FROM {ks}.backoffice_documents WHERE kind = ? AND id = ? IF EXISTS";
const ADD_COUNTER: &str = "UPDATE {ks}.analytics_daily SET n = n + ? WHERE metric = ? AND day = ? AND dim = ?";
const READ_COUNTERS: &str = "SELECT dim, n FROM {ks}.analytics_daily WHERE metric = ? AND day = ?";
const FIRST_ACCOUNTS: &str = "SELECT account_id FROM {ks}.accounts LIMIT ?";
const NEXT_ACCOUNTS: &str = "SELECT account_id FROM {ks}.accounts WHERE token(account_id) > token(?) LIMIT ?";
const GET_APPOINTMENT: &str = "SELECT body FROM {ks}.appointments WHERE appointment_id = ?";
const GET_ORDER: &str = "SELECT body FROM {ks}.orders WHERE order_id = ?";
const GET_SESSION: &str = "SELECT body FROM {ks}.clinic_sessions WHERE session_id = ?";
const GET_WAITLIST: &str = "SELECT body FROM {ks}.waitlists_by_doctor WHERE doctor_id = ? AND session_id = ?";
/// Counter updates per (unlogged) counter batch.
const COUNTER_BATCH: usize = 64;

impl ScyllaStore {
    async fn body_of<T: serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
        q: &str,
        v: impl scylla::serialize::row::SerializeRow,
    ) -> Result<Option<T>> {
        match self.row::<(String,)>(q, v).await? {
            Some((b,)) => Ok(Some(decode(table, &b)?)),
            None => Ok(None),
        }
    }

    /// Revenue and refunds by channel that writing `orders` adds (the booking and payment
    /// writes), from the orders as stored before (read first).
    /// `created`: orders this write makes (none stored yet: not read).
    pub(super) async fn order_deltas(
        &self,
        orders: &[Order],
        created: &std::collections::HashSet<uuid::Uuid>,
    ) -> Result<Vec<RollupDelta>> {
        let mut out = Vec::new();
        if !self.rollups {
            return Ok(out);
        }
        for o in orders {
            let old: Option<Order> =
                if created.contains(&o.id.0) { None } else { self.body_of("orders", GET_ORDER, (o.id.0,)).await? };
            out.extend(hospital_domain::analytics::order_deltas(old.as_ref(), o, self.zone));
        }
        Ok(out)
    }

    /// The counters a booking write adds, from the rows as stored before it (read first).
    pub(super) async fn booking_deltas(&self, w: &BookingWrite) -> Result<Vec<RollupDelta>> {
        if !self.rollups {
            return Ok(Vec::new());
        }
        let zone = self.zone;
        let mut out = Vec::new();
        for a in &w.appointments {
            let old: Option<Appointment> = if w.created.contains(&a.id.0) {
                None
            } else {
                self.body_of("appointments", GET_APPOINTMENT, (a.id.0,)).await?
            };
            let start = if old.is_none() {
                let session = match w.sessions.iter().find(|s| s.id == a.slot.session_id) {
                    Some(s) => Some(s.clone()),
                    None => {
                        self.body_of::<ClinicSession>("clinic_sessions", GET_SESSION, (a.slot.session_id.0,)).await?
                    }
                };
                session.and_then(|s| s.segments.get(a.slot.segment as usize).map(|g| g.start))
            } else {
                None
            };
            out.extend(hospital_domain::analytics::appointment_deltas(old.as_ref(), a, start, zone));
        }
        out.extend(self.order_deltas(&w.orders, &w.created).await?);
        for (doctor, session, list) in &w.waitlists {
            let old: Option<(SessionId, Vec<WaitEntry>)> =
                self.body_of("waitlists_by_doctor", GET_WAITLIST, (doctor.0, session.0)).await?;
            out.extend(hospital_domain::analytics::waitlist_deltas(
                old.map(|o| o.1).as_deref().unwrap_or(&[]),
                list,
                zone,
            ));
        }
        Ok(out)
    }
}

#[async_trait]
impl BackOfficeStore for ScyllaStore {
    async fn all_staff(&self) -> Result<Vec<StaffMember>> {
        // A full read of a small table (hundreds of rows), paged.
        let mut v: Vec<StaffMember> = self.bodies("staff", ALL_STAFF, ()).await?;
        v.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(v)
    }

    async fn update_staff(&self, staff: &StaffMember) -> Result<bool> {
        let Some(old) = self.body_of::<StaffMember>("staff", GET_STAFF, (staff.id.0,)).await? else {
            return Ok(false);
        };
        let s = StaffMember { username: old.username, ..staff.clone() };
        self.exec(PUT_STAFF, (s.id.0, encode(&s))).await?;
        Ok(true)
    }

    async fn doc(&self, kind: &str, id: &str) -> Result<Option<Doc>> {
        let r = self.row::<(i64, String)>(GET_DOC, (kind, id)).await?;
        Ok(r.map(|(version, body)| Doc { kind: kind.into(), id: id.into(), version: version as u64, body }))
    }

    async fn docs(&self, kind: &str) -> Result<Vec<Doc>> {
        let rows = self.rows::<(String, i64, String)>(LIST_DOCS, (kind,)).await?;
        Ok(rows
            .into_iter()
            .map(|(id, version, body)| Doc { kind: kind.into(), id, version: version as u64, body })
            .collect())
    }

    async fn put_doc(&self, kind: &str, id: &str, body: &str, expected: u64) -> Result<bool> {
        let r = if expected == 0 {
            self.lwt(INSERT_DOC, (kind, id, body)).await?
        } else {
            self.lwt(UPDATE_DOC, (expected as i64 + 1, body, kind, id, expected as i64)).await?
        };
        Ok(r.applied)
    }

    async fn delete_doc(&self, kind: &str, id: &str) -> Result<bool> {
        Ok(self.lwt(DELETE_DOC, (kind, id)).await?.applied)
    }

    async fn add_rollups(&self, deltas: &[RollupDelta]) -> Result<()> {
        let merged = merge(deltas.to_vec());
        for chunk in merged.chunks(COUNTER_BATCH) {
            let mut w = Writes::default();
            for d in chunk {
                w.push(
                    self,
                    ADD_COUNTER,
                    vec![
                        CqlValue::Counter(scylla::value::Counter(d.n)),
                        CqlValue::Text(d.metric.to_string()),
                        CqlValue::Date(cql_date(d.day)),
                        CqlValue::Text(d.dim.clone()),
                    ],
                );
            }
            self.run_batch(w, BatchType::Counter).await?;
        }
        Ok(())
    }

    async fn rollups(&self, metric: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<RollupRow>> {
        // One partition per day of the range (the partition key is (metric, day)).
        let mut out = Vec::new();
        for day in from.iter_days().take_while(|d| *d <= to) {
            let date: CqlDate = cql_date(day);
            for (dim, n) in self.rows::<(String, scylla::value::Counter)>(READ_COUNTERS, (metric, date)).await? {
                out.push(RollupRow { day, dim, n: n.0 });
            }
        }
        Ok(out)
    }

    async fn account_ids(&self, after: Option<AccountId>, limit: usize) -> Result<Vec<AccountId>> {
        // Token order: every account once, page after page, without a secondary index.
        let limit = limit.min(i32::MAX as usize) as i32;
        let rows: Vec<(Uuid,)> = match after {
            None => self.rows(FIRST_ACCOUNTS, (limit,)).await?,
            Some(a) => self.rows(NEXT_ACCOUNTS, (a.0, limit)).await?,
        };
        Ok(rows.into_iter().map(|(u,)| AccountId(u)).collect())
    }
}
