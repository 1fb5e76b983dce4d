//! What the API shows of stored rows: sensitive fields masked, internal fields left out. Handlers
//! never serialise a store row directly.

use chrono::{DateTime, NaiveDate, Utc};
use hospital_domain::account::Relation;
use hospital_domain::{AccountId, Gender, PatientId, Profile, RoleName, StaffId};
use hospital_store::{Account, PatientRecord, StaffMember};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: AccountId,
    /// Masked: `138****8000`.
    pub phone: Option<String>,
    pub email: Option<String>,
    pub wechat_bound: bool,
    pub has_password: bool,
    pub profile: Profile,
    pub created_at: DateTime<Utc>,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        // The same fields the live `profile` event carries.
        let p = hospital_actors::patient::profile_update(a);
        Self {
            id: p.id,
            phone: p.phone,
            email: p.email,
            wechat_bound: p.wechat_bound,
            has_password: p.has_password,
            profile: p.profile,
            created_at: p.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PatientView {
    pub id: PatientId,
    pub name: String,
    pub relation: Relation,
    pub gender: Gender,
    #[schema(value_type = String, format = Date)]
    pub birth_date: NaiveDate,
    /// Masked: `1101**********002X`. The full number is never sent back.
    pub id_card_no: String,
    pub created_at: DateTime<Utc>,
}

impl From<&PatientRecord> for PatientView {
    fn from(p: &PatientRecord) -> Self {
        Self {
            id: p.id,
            name: p.name.clone(),
            relation: p.relation,
            gender: p.gender,
            birth_date: p.birth_date,
            id_card_no: p.id_card_masked.clone(),
            created_at: p.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaffView {
    pub id: StaffId,
    pub username: String,
    pub name: String,
    pub roles: Vec<RoleName>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    /// The doctor this account is (doctor's workstation), if any.
    pub doctor_id: Option<hospital_domain::DoctorId>,
}

impl From<&StaffMember> for StaffView {
    fn from(s: &StaffMember) -> Self {
        Self {
            id: s.id,
            username: s.username.clone(),
            name: s.name.clone(),
            roles: s.roles.clone(),
            doctor_id: s.doctor_id,
            active: s.active,
            created_at: s.created_at,
        }
    }
}
