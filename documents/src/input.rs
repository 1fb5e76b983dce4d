//! The plain inputs documents are made from, mapped by the caller from the stores: the
//! hospital's header and the person. Visits come as `hospital_domain::visit::Visit`; the FHIR
//! export's own inputs (appointments, exams, report files) are in `fhir`.

use chrono::NaiveDate;
use hospital_domain::catalog::Hospital;
use hospital_domain::{Gender, PatientId};
use serde::{Deserialize, Serialize};

/// The hospital as printed at the top of every page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HospitalHeader {
    pub name: String,
    pub address: String,
    pub phone: Option<String>,
}

impl From<&Hospital> for HospitalHeader {
    fn from(h: &Hospital) -> Self {
        let phone = Some(h.phone.trim().to_string()).filter(|p| !p.is_empty());
        Self { name: h.name.clone(), address: h.address.clone(), phone }
    }
}

/// The person a document is about (a 就诊人), decrypted by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientInfo {
    pub id: PatientId,
    pub name: String,
    pub gender: Gender,
    pub birth_date: Option<NaiveDate>,
    /// The phone in clear, if the export is to carry it.
    pub phone: Option<String>,
}

impl PatientInfo {
    /// Whole years of age on `on`.
    pub fn age_on(&self, on: NaiveDate) -> Option<u32> {
        self.birth_date.and_then(|b| on.years_since(b))
    }
}

/// 男 / 女 / 未知.
pub(crate) fn gender_label(g: Gender) -> &'static str {
    match g {
        Gender::Male => "男",
        Gender::Female => "女",
        Gender::Unknown => "未知",
    }
}
