//! The catalogue and schedules on ScyllaDB. Doctors and sessions are written twice, by id and
//! under the partition a listing reads (department; doctor), in one logged batch so that the two
//! copies never disagree for long; a row that moved is deleted from its old listing in the same
//! batch. Listings come back in clustering order; the final sort by id only makes ties match the
//! embedded store byte for byte.

use async_trait::async_trait;
use chrono::NaiveDate;
use hospital_domain::catalog::{Department, Doctor, Hospital};
use hospital_domain::schedule::{ClinicSession, Period};
use hospital_domain::{DepartmentId, DoctorId, SessionId};
use scylla::statement::batch::BatchType;
use scylla::value::{CqlDate, CqlValue};
use uuid::Uuid;

use super::{cql_date, decode, encode, text, ScyllaStore, Writes};
use crate::error::Result;
use crate::traits::{CatalogStore, ScheduleStore};

/// The hospital partition: one hospital per deployment for now, keyed so more can follow.
const HOSPITAL: &str = "main";
/// Most items (doctors or sessions) in one logged batch, to stay well under the batch size
/// limits (each item is a few hundred bytes to a few kB of JSON, written twice).
const BATCH_ITEMS: usize = 64;

const PUT_HOSPITAL: &str = "INSERT INTO {ks}.hospital (hospital, body) VALUES (?, ?)";
const GET_HOSPITAL: &str = "SELECT body FROM {ks}.hospital WHERE hospital = ?";
const PUT_DEPARTMENT: &str = "INSERT INTO {ks}.departments (hospital, department_id, body) VALUES (?, ?, ?)";
const LIST_DEPARTMENTS: &str = "SELECT body FROM {ks}.departments WHERE hospital = ?";
const DOCTOR_DEPARTMENT: &str = "SELECT department_id FROM {ks}.doctors WHERE doctor_id = ?";
const PUT_DOCTOR: &str = "INSERT INTO {ks}.doctors (doctor_id, department_id, body) VALUES (?, ?, ?)";
const PUT_DOCTOR_IN_DEPARTMENT: &str =
    "INSERT INTO {ks}.doctors_by_department (department_id, doctor_id, body) VALUES (?, ?, ?)";
const DELETE_DOCTOR_IN_DEPARTMENT: &str =
    "DELETE FROM {ks}.doctors_by_department WHERE department_id = ? AND doctor_id = ?";
const ALL_DOCTORS: &str = "SELECT body FROM {ks}.doctors";
const GET_DOCTOR: &str = "SELECT body FROM {ks}.doctors WHERE doctor_id = ?";
const LIST_DOCTORS_IN_DEPARTMENT: &str = "SELECT body FROM {ks}.doctors_by_department WHERE department_id = ?";
const SESSION_KEY: &str = "SELECT doctor_id, date, period FROM {ks}.clinic_sessions WHERE session_id = ?";
const PUT_SESSION: &str =
    "INSERT INTO {ks}.clinic_sessions (session_id, doctor_id, date, period, body) VALUES (?, ?, ?, ?, ?)";
const PUT_SESSION_BY_DOCTOR: &str =
    "INSERT INTO {ks}.clinic_sessions_by_doctor (doctor_id, date, period, session_id, body) VALUES (?, ?, ?, ?, ?)";
const DELETE_SESSION_BY_DOCTOR: &str =
    "DELETE FROM {ks}.clinic_sessions_by_doctor WHERE doctor_id = ? AND date = ? AND period = ? AND session_id = ?";
const GET_SESSION: &str = "SELECT body FROM {ks}.clinic_sessions WHERE session_id = ?";
const SESSIONS_OF_DOCTOR: &str =
    "SELECT body FROM {ks}.clinic_sessions_by_doctor WHERE doctor_id = ? AND date >= ? AND date <= ?";

/// Period as stored: its ordinal, so that clustering order is the order of the day.
fn period_ord(p: Period) -> i8 {
    match p {
        Period::Morning => 0,
        Period::Afternoon => 1,
        Period::Evening => 2,
    }
}

/// Where a session is listed: (doctor, date, period, session).
type ByDoctorKey = (Uuid, CqlDate, i8, Uuid);

fn by_doctor_key(s: &ClinicSession) -> ByDoctorKey {
    (s.doctor_id.0, cql_date(s.date), period_ord(s.period), s.id.0)
}

impl ScyllaStore {
    /// Adds the statements that write a session under both its keys to `w`: the same ones for
    /// `put_sessions` and `apply_booking`. Reads the session's current listing key first, so
    /// that a session whose date or period moved leaves its old listing row (deleted in `w`).
    pub(super) async fn session_writes(&self, w: &mut Writes, s: &ClinicSession) -> Result<()> {
        let new = by_doctor_key(s);
        let old = self.row::<(Option<Uuid>, Option<CqlDate>, Option<i8>)>(SESSION_KEY, (s.id.0,)).await?;
        if let Some((Some(doctor), Some(date), Some(period))) = old {
            let old = (doctor, date, period, s.id.0);
            if old != new {
                w.push(
                    self,
                    DELETE_SESSION_BY_DOCTOR,
                    vec![CqlValue::Uuid(old.0), CqlValue::Date(old.1), CqlValue::TinyInt(old.2), CqlValue::Uuid(old.3)],
                );
            }
        }
        let body = encode(s);
        w.push(
            self,
            PUT_SESSION,
            vec![
                CqlValue::Uuid(s.id.0),
                CqlValue::Uuid(new.0),
                CqlValue::Date(new.1),
                CqlValue::TinyInt(new.2),
                text(body.clone()),
            ],
        );
        w.push(
            self,
            PUT_SESSION_BY_DOCTOR,
            vec![
                CqlValue::Uuid(new.0),
                CqlValue::Date(new.1),
                CqlValue::TinyInt(new.2),
                CqlValue::Uuid(new.3),
                text(body),
            ],
        );
        Ok(())
    }
}

#[async_trait]
impl CatalogStore for ScyllaStore {
    async fn put_hospital(&self, hospital: &Hospital) -> Result<()> {
        self.exec(PUT_HOSPITAL, (HOSPITAL, encode(hospital))).await?;
        Ok(())
    }

    async fn hospital(&self) -> Result<Option<Hospital>> {
        match self.row::<(String,)>(GET_HOSPITAL, (HOSPITAL,)).await? {
            Some((body,)) => Ok(Some(decode("hospital", &body)?)),
            None => Ok(None),
        }
    }

    async fn put_departments(&self, departments: &[Department]) -> Result<()> {
        // One partition: an unlogged batch is atomic and isolated there.
        for chunk in departments.chunks(BATCH_ITEMS) {
            let mut w = Writes::default();
            for d in chunk {
                w.push(self, PUT_DEPARTMENT, vec![text(HOSPITAL), CqlValue::Uuid(d.id.0), text(encode(d))]);
            }
            self.run_batch(w, BatchType::Unlogged).await?;
        }
        Ok(())
    }

    async fn departments(&self) -> Result<Vec<Department>> {
        let rows: Vec<(String,)> = self.rows(LIST_DEPARTMENTS, (HOSPITAL,)).await?;
        let mut v: Vec<Department> = rows.iter().map(|(b,)| decode("departments", b)).collect::<Result<_>>()?;
        v.sort_by(|a, b| a.sort.cmp(&b.sort).then_with(|| a.name.cmp(&b.name)));
        Ok(v)
    }

    async fn put_doctors(&self, doctors: &[Doctor]) -> Result<()> {
        for chunk in doctors.chunks(BATCH_ITEMS) {
            let mut w = Writes::default();
            for d in chunk {
                // A doctor moved to another department leaves the old listing.
                if let Some((Some(old),)) = self.row::<(Option<Uuid>,)>(DOCTOR_DEPARTMENT, (d.id.0,)).await? {
                    if old != d.department_id.0 {
                        w.push(self, DELETE_DOCTOR_IN_DEPARTMENT, vec![CqlValue::Uuid(old), CqlValue::Uuid(d.id.0)]);
                    }
                }
                let body = encode(d);
                w.push(
                    self,
                    PUT_DOCTOR,
                    vec![CqlValue::Uuid(d.id.0), CqlValue::Uuid(d.department_id.0), text(body.clone())],
                );
                w.push(
                    self,
                    PUT_DOCTOR_IN_DEPARTMENT,
                    vec![CqlValue::Uuid(d.department_id.0), CqlValue::Uuid(d.id.0), text(body)],
                );
            }
            self.run_batch(w, BatchType::Logged).await?;
        }
        Ok(())
    }

    async fn doctors(&self) -> Result<Vec<Doctor>> {
        // The one read without a partition key: a paged scan of a small table, made at start-up
        // and after staff edit the catalogue (as in the embedded store), never per request.
        let mut v: Vec<Doctor> = self.bodies("doctors", ALL_DOCTORS, ()).await?;
        v.sort_by_key(|d| d.id);
        Ok(v)
    }

    async fn doctor(&self, id: DoctorId) -> Result<Option<Doctor>> {
        match self.row::<(String,)>(GET_DOCTOR, (id.0,)).await? {
            Some((body,)) => Ok(Some(decode("doctors", &body)?)),
            None => Ok(None),
        }
    }

    async fn doctors_in_department(&self, department: DepartmentId) -> Result<Vec<Doctor>> {
        let rows: Vec<(String,)> = self.rows(LIST_DOCTORS_IN_DEPARTMENT, (department.0,)).await?;
        let mut v: Vec<Doctor> = rows.iter().map(|(b,)| decode("doctors_by_department", b)).collect::<Result<_>>()?;
        v.sort_by_key(|d| d.id);
        Ok(v)
    }
}

#[async_trait]
impl ScheduleStore for ScyllaStore {
    async fn put_sessions(&self, sessions: &[ClinicSession]) -> Result<()> {
        // One logged batch per chunk: a session's two rows (and the removal of its old listing)
        // are always written together; a very large schedule is split into several batches.
        for chunk in sessions.chunks(BATCH_ITEMS) {
            let mut w = Writes::default();
            for s in chunk {
                self.session_writes(&mut w, s).await?;
            }
            self.run_batch(w, BatchType::Logged).await?;
        }
        Ok(())
    }

    async fn session(&self, id: SessionId) -> Result<Option<ClinicSession>> {
        match self.row::<(String,)>(GET_SESSION, (id.0,)).await? {
            Some((body,)) => Ok(Some(decode("clinic_sessions", &body)?)),
            None => Ok(None),
        }
    }

    async fn sessions_of_doctor(&self, doctor: DoctorId, from: NaiveDate, to: NaiveDate) -> Result<Vec<ClinicSession>> {
        // One partition (the doctor), a clustering range on date: rows come back ordered by
        // date, then period, then session id.
        let rows: Vec<(String,)> = self.rows(SESSIONS_OF_DOCTOR, (doctor.0, cql_date(from), cql_date(to))).await?;
        let mut v: Vec<ClinicSession> =
            rows.iter().map(|(b,)| decode("clinic_sessions_by_doctor", b)).collect::<Result<_>>()?;
        v.sort_by_key(|s| (s.date, period_ord(s.period), s.id));
        Ok(v)
    }
}
