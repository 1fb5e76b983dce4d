//! The key vault on the embedded engine: a store opened in its own directory (`vault_dir`, apart
//! from the data directory and its backups) keeps wrapped data keys in its `data_keys` table.

use async_trait::async_trait;
use hospital_domain::PatientId;

use super::engine::Reader;
use super::keys::Key;
use super::tables::DATA_KEYS;
use super::EmbeddedStore;
use crate::error::Result;
use crate::vault::{KeyVault, WrappedKey};

fn key(p: PatientId) -> Key {
    Key::new().uuid(&p.0)
}

#[async_trait]
impl KeyVault for EmbeddedStore {
    async fn wrapped_key(&self, patient: PatientId) -> Result<Option<WrappedKey>> {
        self.engine.read(|r| r.get(DATA_KEYS, &key(patient)))
    }

    async fn put_wrapped_key_if_absent(&self, k: &WrappedKey) -> Result<WrappedKey> {
        let k = k.clone();
        self.engine
            .write(move |ctx| {
                if let Some(existing) = ctx.get::<WrappedKey>(DATA_KEYS, &key(k.patient_id))? {
                    return Ok(existing);
                }
                ctx.put(DATA_KEYS, &key(k.patient_id), &k);
                Ok(k)
            })
            .await
    }

    async fn replace_wrapped_key(&self, k: &WrappedKey) -> Result<()> {
        let k = k.clone();
        self.engine
            .write(move |ctx| {
                ctx.put(DATA_KEYS, &key(k.patient_id), &k);
                Ok(())
            })
            .await
    }

    async fn destroy_wrapped_key(&self, patient: PatientId) -> Result<bool> {
        self.engine
            .write(move |ctx| {
                let had = ctx.get_raw(DATA_KEYS, key(patient).bytes())?.is_some();
                ctx.delete(DATA_KEYS, &key(patient));
                Ok(had)
            })
            .await
    }

    async fn wrapped_keys(&self) -> Result<Vec<WrappedKey>> {
        self.engine.read(|r| r.scan(DATA_KEYS, &Key::new()))
    }
}
