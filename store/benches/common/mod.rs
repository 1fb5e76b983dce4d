//! What the store's benchmarks share: a held appointment as a hold writes it.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use hospital_domain::appointment::{Appointment, AppointmentStatus};
use hospital_domain::schedule::{Period, SlotId};
use hospital_domain::*;

/// A new held appointment (place 1 of a morning session's first segment, 50 yuan) for a new
/// account and person, made at `created`.
pub fn held(
    doctor: DoctorId,
    department: DepartmentId,
    session: SessionId,
    date: NaiveDate,
    created: DateTime<Utc>,
) -> Appointment {
    Appointment {
        id: AppointmentId::new(),
        slot: SlotId { session_id: session, segment: 0 },
        place: 1,
        doctor_id: doctor,
        department_id: department,
        date,
        period: Period::Morning,
        account_id: AccountId::new(),
        patient_id: PatientId::new(),
        person: format!("{:064x}", uuid::Uuid::new_v4().as_u128()),
        patient_name: "张三".into(),
        fee: Fen::new(5000),
        status: AppointmentStatus::Held,
        order_id: OrderId::new(),
        created_at: created,
        hold_expires_at: created + Duration::minutes(15),
        confirmed_at: None,
        slip_no: None,
        cancelled_at: None,
        cancel_reason: None,
        idempotency_key: None,
        from_waitlist: false,
        rescheduled_from: None,
        rescheduled_to: None,
    }
}
