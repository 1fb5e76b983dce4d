//! The key vault on ScyllaDB: wrapped data keys in `data_keys`, in a keyspace of its own (the
//! platform connects a second `ScyllaStore` to `vault_keyspace`), claimed `IF NOT EXISTS`.

use async_trait::async_trait;
use hospital_domain::PatientId;
use scylla::value::CqlValue;

use super::{decode, encode, ScyllaStore};
use crate::error::Result;
use crate::vault::{KeyVault, WrappedKey};
use crate::StoreError;

const GET_KEY: &str = "SELECT body FROM {ks}.data_keys WHERE patient_id = ?";
const INSERT_KEY: &str = "INSERT INTO {ks}.data_keys (patient_id, body) VALUES (?, ?) IF NOT EXISTS";
const PUT_KEY: &str = "INSERT INTO {ks}.data_keys (patient_id, body) VALUES (?, ?)";
const DELETE_KEY: &str = "DELETE FROM {ks}.data_keys WHERE patient_id = ? IF EXISTS";
const ALL_KEYS: &str = "SELECT body FROM {ks}.data_keys";

#[async_trait]
impl KeyVault for ScyllaStore {
    async fn wrapped_key(&self, patient: PatientId) -> Result<Option<WrappedKey>> {
        match self.row::<(String,)>(GET_KEY, (patient.0,)).await? {
            Some((body,)) => Ok(Some(decode("data_keys", &body)?)),
            None => Ok(None),
        }
    }

    async fn put_wrapped_key_if_absent(&self, k: &WrappedKey) -> Result<WrappedKey> {
        let lwt = self.lwt(INSERT_KEY, (k.patient_id.0, encode(k))).await?;
        if lwt.applied {
            return Ok(k.clone());
        }
        match lwt.value("body") {
            Some(CqlValue::Text(body)) => decode("data_keys", body),
            _ => Err(StoreError::Scylla("a data key claim returned no row".into())),
        }
    }

    async fn replace_wrapped_key(&self, k: &WrappedKey) -> Result<()> {
        self.exec(PUT_KEY, (k.patient_id.0, encode(k))).await?;
        Ok(())
    }

    async fn destroy_wrapped_key(&self, patient: PatientId) -> Result<bool> {
        Ok(self.lwt(DELETE_KEY, (patient.0,)).await?.applied)
    }

    async fn wrapped_keys(&self) -> Result<Vec<WrappedKey>> {
        self.bodies("data_keys", ALL_KEYS, ()).await
    }
}
