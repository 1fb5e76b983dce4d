//! Persons across accounts on the embedded engine: a person's holders are one prefix scan of
//! `accounts_by_person` (written with the patient rows, see `accounts`), and positive real-name
//! checks are rows of `real_name_checks` with a TTL.

use async_trait::async_trait;
use std::time::Duration;

use super::accounts::person_key;
use super::engine::Reader;
use super::tables::{ACCOUNTS_BY_PERSON, REAL_NAME_CHECKS};
use super::EmbeddedStore;
use crate::error::Result;
use crate::persons::{PersonHolder, PersonStore, RealNameCheck};

#[async_trait]
impl PersonStore for EmbeddedStore {
    async fn holders_of_person(&self, person: &str) -> Result<Vec<PersonHolder>> {
        self.engine.read(|r| r.scan(ACCOUNTS_BY_PERSON, &person_key(person)))
    }

    async fn real_name_check(&self, person: &str, name_hash: &str) -> Result<Option<RealNameCheck>> {
        self.engine.read(|r| r.get(REAL_NAME_CHECKS, &person_key(person).str(name_hash)))
    }

    async fn put_real_name_check(&self, check: &RealNameCheck, ttl: Duration) -> Result<()> {
        let c = check.clone();
        self.engine
            .write(move |ctx| {
                ctx.put_ttl(REAL_NAME_CHECKS, &person_key(&c.person).str(&c.name_hash), &c, ttl);
                Ok(())
            })
            .await
    }
}
