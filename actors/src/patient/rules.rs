//! The account's own rules for adding a person, from memory (the store checks them again
//! atomically when it writes).

use hospital_domain::AccountId;
use hospital_store::{PatientRecord, PersonHolder};

use super::msg::*;

/// The account's own rules for adding `person` (an ID-number index), given the patients it
/// holds: the rules `AddPatient` enforces from memory (the store checks them again atomically).
pub fn check_account(patients: &[PatientRecord], person: &str, cap: usize) -> Result<(), PatientError> {
    if patients.iter().any(|p| p.id_card_index == person) {
        return Err(PatientError::DuplicatePatient);
    }
    if patients.len() >= cap {
        return Err(PatientError::PatientCap { cap });
    }
    Ok(())
}

/// The accounts-per-person cap for `account` adding a person held by `holders`.
pub fn check_person(holders: &[PersonHolder], account: AccountId, cap: usize) -> Result<(), PatientError> {
    if holders.iter().filter(|h| h.account_id != account).count() >= cap {
        return Err(PatientError::PersonAccountCap { cap });
    }
    Ok(())
}
