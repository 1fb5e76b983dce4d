//! The catalogue and schedules on the embedded engine. Doctors and sessions are written twice,
//! by id and under the partition a listing reads (department; doctor + date), as in schema.cql.

use async_trait::async_trait;
use chrono::NaiveDate;
use hospital_domain::catalog::{Department, Doctor, Hospital};
use hospital_domain::schedule::{ClinicSession, Period};
use hospital_domain::{DepartmentId, DoctorId, SessionId};

use super::engine::{Reader, WriteCtx};
use super::keys::Key;
use super::tables::*;
use super::EmbeddedStore;
use crate::error::Result;
use crate::traits::{CatalogStore, ScheduleStore};

/// The hospital row's key: one hospital per deployment for now, keyed so more can follow.
fn hospital_key() -> Key {
    Key::new().str("main")
}

fn period_ord(p: Period) -> u8 {
    match p {
        Period::Morning => 0,
        Period::Afternoon => 1,
        Period::Evening => 2,
    }
}

fn by_doctor_key(s: &ClinicSession) -> Key {
    Key::new().uuid(&s.doctor_id.0).date(s.date).u8(period_ord(s.period)).uuid(&s.id.0)
}

#[async_trait]
impl CatalogStore for EmbeddedStore {
    async fn put_hospital(&self, hospital: &Hospital) -> Result<()> {
        let h = hospital.clone();
        self.engine
            .write(move |ctx| {
                ctx.put(HOSPITAL, &hospital_key(), &h);
                Ok(())
            })
            .await
    }

    async fn hospital(&self) -> Result<Option<Hospital>> {
        self.engine.read(|r| r.get(HOSPITAL, &hospital_key()))
    }

    async fn put_departments(&self, departments: &[Department]) -> Result<()> {
        let ds = departments.to_vec();
        self.engine
            .write(move |ctx| {
                for d in &ds {
                    ctx.put(DEPARTMENTS, &hospital_key().uuid(&d.id.0), d);
                }
                Ok(())
            })
            .await
    }

    async fn departments(&self) -> Result<Vec<Department>> {
        let mut v: Vec<Department> = self.engine.read(|r| r.scan(DEPARTMENTS, &hospital_key()))?;
        v.sort_by(|a, b| a.sort.cmp(&b.sort).then_with(|| a.name.cmp(&b.name)));
        Ok(v)
    }

    async fn put_doctors(&self, doctors: &[Doctor]) -> Result<()> {
        let ds = doctors.to_vec();
        self.engine
            .write(move |ctx| {
                for d in &ds {
                    // A doctor moved to another department leaves the old listing.
                    if let Some(old) = ctx.get::<Doctor>(DOCTORS, &Key::new().uuid(&d.id.0))? {
                        if old.department_id != d.department_id {
                            ctx.delete(DOCTORS_BY_DEPARTMENT, &Key::new().uuid(&old.department_id.0).uuid(&d.id.0));
                        }
                    }
                    ctx.put(DOCTORS, &Key::new().uuid(&d.id.0), d);
                    ctx.put(DOCTORS_BY_DEPARTMENT, &Key::new().uuid(&d.department_id.0).uuid(&d.id.0), d);
                }
                Ok(())
            })
            .await
    }

    async fn doctors(&self) -> Result<Vec<Doctor>> {
        self.engine.read(|r| r.scan(DOCTORS, &Key::new()))
    }

    async fn doctor(&self, id: DoctorId) -> Result<Option<Doctor>> {
        self.engine.read(|r| r.get(DOCTORS, &Key::new().uuid(&id.0)))
    }

    async fn doctors_in_department(&self, department: DepartmentId) -> Result<Vec<Doctor>> {
        self.engine.read(|r| r.scan(DOCTORS_BY_DEPARTMENT, &Key::new().uuid(&department.0)))
    }
}

/// Writes a session under both its keys, dropping the old listing row if its date moved.
pub(super) fn put_session(ctx: &mut WriteCtx<'_>, s: &ClinicSession) -> Result<()> {
    if let Some(old) = ctx.get::<ClinicSession>(CLINIC_SESSIONS, &Key::new().uuid(&s.id.0))? {
        let (ok, nk) = (by_doctor_key(&old), by_doctor_key(s));
        if ok != nk {
            ctx.delete(CLINIC_SESSIONS_BY_DOCTOR, &ok);
        }
    }
    ctx.put(CLINIC_SESSIONS, &Key::new().uuid(&s.id.0), s);
    ctx.put(CLINIC_SESSIONS_BY_DOCTOR, &by_doctor_key(s), s);
    Ok(())
}

#[async_trait]
impl ScheduleStore for EmbeddedStore {
    async fn put_sessions(&self, sessions: &[ClinicSession]) -> Result<()> {
        let ss = sessions.to_vec();
        self.engine
            .write(move |ctx| {
                for s in &ss {
                    put_session(ctx, s)?;
                }
                Ok(())
            })
            .await
    }

    async fn session(&self, id: SessionId) -> Result<Option<ClinicSession>> {
        self.engine.read(|r| r.get(CLINIC_SESSIONS, &Key::new().uuid(&id.0)))
    }

    async fn sessions_of_doctor(&self, doctor: DoctorId, from: NaiveDate, to: NaiveDate) -> Result<Vec<ClinicSession>> {
        // One partition (the doctor), a clustering range on date: a prefix scan filtered on the
        // date, which the key orders, so rows come back sorted by date then period.
        let all: Vec<ClinicSession> =
            self.engine.read(|r| r.scan(CLINIC_SESSIONS_BY_DOCTOR, &Key::new().uuid(&doctor.0)))?;
        Ok(all.into_iter().filter(|s| s.date >= from && s.date <= to).collect())
    }
}
