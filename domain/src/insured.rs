//! A 就诊人's bound medical insurance identity (PAY-2): what the 医保电子凭证 authorisation gave
//! (`payAuthNo`, the person number, the insured type and region), kept per patient of an account
//! until unbound. The authorisation number and the ID number are sealed at rest (the store's
//! field cipher); this type carries them sealed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{AccountId, PatientId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsuranceBinding {
    pub account_id: AccountId,
    pub patient_id: PatientId,
    /// 人员编号.
    pub psn_no: String,
    /// The payment authorisation number, sealed.
    pub pay_auth_no: String,
    pub name: String,
    /// 证件类型 (01 = 居民身份证).
    pub id_type: String,
    /// The ID number, sealed.
    pub id_no: String,
    /// `employee` (职工, 310) or `resident` (居民, 390).
    pub insured_type: String,
    /// 参保地医保区划.
    pub region: String,
    pub bound_at: DateTime<Utc>,
    /// The authorisation lapses then: the patient authorises again.
    pub expires_at: DateTime<Utc>,
}

impl InsuranceBinding {
    pub fn insured_type_label(&self) -> &'static str {
        match self.insured_type.as_str() {
            "employee" => "职工基本医疗保险",
            "resident" => "城乡居民基本医疗保险",
            _ => "医疗保险",
        }
    }

    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}
