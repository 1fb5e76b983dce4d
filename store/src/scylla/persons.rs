//! Persons across accounts on ScyllaDB: `accounts_by_person` (written by add_patient and
//! remove_patient, see `accounts`) read as one partition, and `real_name_checks` with a TTL.

use async_trait::async_trait;
use std::time::Duration;

use super::accounts::PERSON_STATE;
use super::{decode, encode, ttl_secs, ScyllaStore};
use crate::error::Result;
use crate::persons::{PersonHolder, PersonStore, RealNameCheck};

const GET_CHECK: &str = "SELECT body FROM {ks}.real_name_checks WHERE person = ? AND name_hash = ?";
const PUT_CHECK: &str = "INSERT INTO {ks}.real_name_checks (person, name_hash, body) VALUES (?, ?, ?) USING TTL ?";

#[async_trait]
impl PersonStore for ScyllaStore {
    async fn holders_of_person(&self, person: &str) -> Result<Vec<PersonHolder>> {
        // A partition whose holders were all released still has its static row: no body.
        let rows: Vec<(Option<i64>, Option<String>)> = self.rows(PERSON_STATE, (person,)).await?;
        rows.into_iter().filter_map(|(_, b)| b).map(|b| decode("accounts_by_person", &b)).collect()
    }

    async fn real_name_check(&self, person: &str, name_hash: &str) -> Result<Option<RealNameCheck>> {
        match self.row::<(String,)>(GET_CHECK, (person, name_hash)).await? {
            Some((body,)) => Ok(Some(decode("real_name_checks", &body)?)),
            None => Ok(None),
        }
    }

    async fn put_real_name_check(&self, check: &RealNameCheck, ttl: Duration) -> Result<()> {
        self.exec(PUT_CHECK, (&check.person, &check.name_hash, encode(check), ttl_secs(ttl))).await?;
        Ok(())
    }
}
