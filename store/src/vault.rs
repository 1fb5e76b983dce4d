//! Per-person encryption of medical data (REC-5) and crypto-erasure (SET-3).
//!
//! Every 就诊人 (patient) gets a data key of their own: 32 random bytes, AES-256-GCM. Record
//! contents, diagnoses, prescriptions, exam results, report titles and report files are sealed
//! with it before they reach a table or a bucket, so no row or object ever holds them in clear.
//! The data key is stored only wrapped: sealed by the master key ring (`FieldCipher`: its active
//! key, named by its key id), in a `KeyVault` kept apart from the data (its own directory or
//! keyspace, with its own backup policy). Rotating the master key re-wraps the data keys
//! (`PersonCipher::rewrap`), a few hundred bytes per person, and never touches the data.
//!
//! Deleting a person destroys their data key in the vault. Every copy of their data (the live
//! store, object storage, a backup of the data directory taken before) is then ciphertext that
//! nothing can open: crypto-erasure. (A backup of the vault itself would undo that; the vault is
//! small, so it is kept without long-lived backups, or in a KMS.)
//!
//! A sealed value: `b"hpk1"`, a 12-byte nonce, then the AES-GCM ciphertext and tag, with the
//! patient id and a context (what the value is: `visit:<id>`, `report:<key>`) as associated data,
//! so a value moved to another person or another row does not open.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hospital_domain::PatientId;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::error::Result;
use crate::{FieldCipher, Sealed, StoreError};

/// The format tag in front of every sealed value.
const TAG: &[u8; 4] = b"hpk1";

/// A data key as the vault keeps it: wrapped by the master key named in `wrapped` (`k1:...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub patient_id: PatientId,
    /// The base64 of the 32 key bytes, sealed by the master key ring.
    pub wrapped: Sealed,
    pub created_at: DateTime<Utc>,
}

impl WrappedKey {
    /// The id of the master key that wrapped it.
    pub fn master_key_id(&self) -> &str {
        self.wrapped.0.split_once(':').map_or("", |(kid, _)| kid)
    }
}

/// Where wrapped data keys live: one row per patient (`data_keys` in `schema.cql`). The platform
/// opens a vault apart from its data store (another directory, another keyspace).
#[async_trait]
pub trait KeyVault: Send + Sync {
    async fn wrapped_key(&self, patient: PatientId) -> Result<Option<WrappedKey>>;
    /// Stores `key` unless the patient has one; returns the one stored (so of two racing
    /// creators, both end up with the same key).
    async fn put_wrapped_key_if_absent(&self, key: &WrappedKey) -> Result<WrappedKey>;
    /// Replaces a patient's wrapped key (a re-wrap under a new master key: the same data key).
    async fn replace_wrapped_key(&self, key: &WrappedKey) -> Result<()>;
    /// Destroys a patient's key; false if there was none.
    async fn destroy_wrapped_key(&self, patient: PatientId) -> Result<bool>;
    /// Every wrapped key (for re-wrapping; an administrative walk).
    async fn wrapped_keys(&self) -> Result<Vec<WrappedKey>>;
}

/// Data keys: made on first use, unwrapped on each use, destroyed on erasure.
#[derive(Clone)]
pub struct PersonCipher {
    vault: Arc<dyn KeyVault>,
    master: FieldCipher,
}

impl std::fmt::Debug for PersonCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonCipher").field("master", &self.master).finish_non_exhaustive()
    }
}

/// One patient's data key, unwrapped: seals and opens that patient's values.
pub struct PersonKey {
    patient: PatientId,
    aead: Aes256Gcm,
}

impl std::fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("PersonKey").field("patient", &self.patient).finish_non_exhaustive()
    }
}

impl PersonCipher {
    pub fn new(vault: Arc<dyn KeyVault>, master: FieldCipher) -> Self {
        Self { vault, master }
    }

    /// The patient's key, made (and stored wrapped) if they have none yet: for writes.
    pub async fn key(&self, patient: PatientId) -> Result<PersonKey> {
        if let Some(k) = self.existing_key(patient).await? {
            return Ok(k);
        }
        let raw = Aes256Gcm::generate_key(OsRng);
        let fresh = WrappedKey {
            patient_id: patient,
            wrapped: self.master.seal(&STANDARD.encode(raw)),
            created_at: Utc::now(),
        };
        let stored = self.vault.put_wrapped_key_if_absent(&fresh).await?;
        self.unwrap(&stored)
    }

    /// The patient's key if it exists: for reads. None means the patient never had sealed data,
    /// or it was erased.
    pub async fn existing_key(&self, patient: PatientId) -> Result<Option<PersonKey>> {
        match self.vault.wrapped_key(patient).await? {
            Some(w) => Ok(Some(self.unwrap(&w)?)),
            None => Ok(None),
        }
    }

    /// Destroys the patient's key (crypto-erasure); true if there was one.
    pub async fn destroy(&self, patient: PatientId) -> Result<bool> {
        self.vault.destroy_wrapped_key(patient).await
    }

    /// Re-wraps every data key not wrapped by the active master key; how many changed. The data
    /// keys themselves, and so every sealed value, stay as they are.
    pub async fn rewrap(&self) -> Result<usize> {
        let mut n = 0;
        for w in self.vault.wrapped_keys().await? {
            if w.master_key_id() == self.master.active_key_id() {
                continue;
            }
            let raw = self.master.open(&w.wrapped)?;
            let again = WrappedKey { wrapped: self.master.seal(&raw), ..w };
            self.vault.replace_wrapped_key(&again).await?;
            n += 1;
        }
        Ok(n)
    }

    fn unwrap(&self, w: &WrappedKey) -> Result<PersonKey> {
        let b64 = self.master.open(&w.wrapped)?;
        let raw = STANDARD.decode(b64).map_err(|_| StoreError::Cipher("a wrapped data key is not base64".into()))?;
        if raw.len() != 32 {
            return Err(StoreError::Cipher("a data key is not 32 bytes".into()));
        }
        Ok(PersonKey { patient: w.patient_id, aead: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&raw)) })
    }
}

impl PersonKey {
    pub fn patient(&self) -> PatientId {
        self.patient
    }

    fn aad(&self, context: &str) -> Vec<u8> {
        let mut aad = self.patient.0.as_bytes().to_vec();
        aad.extend_from_slice(context.as_bytes());
        aad
    }

    /// Seals `plaintext`, bound to this patient and `context`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = self.aad(context);
        let ct = self
            .aead
            .encrypt(&nonce, Payload { msg: plaintext, aad: &aad })
            .expect("AES-GCM encryption does not fail below 64 GiB");
        let mut out = Vec::with_capacity(TAG.len() + nonce.len() + ct.len());
        out.extend_from_slice(TAG);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a value sealed by `seal` with the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        let body = sealed
            .strip_prefix(TAG.as_slice())
            .filter(|b| b.len() >= 12 + 16)
            .ok_or_else(|| StoreError::Cipher("not a sealed value".into()))?;
        let (nonce, ct) = body.split_at(12);
        let aad = self.aad(context);
        self.aead
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| StoreError::Cipher("authentication failed: another person's key, or tampered".into()))
    }

    /// `seal` of text, as base64 (for JSON rows).
    pub fn seal_text(&self, context: &str, plaintext: &str) -> String {
        STANDARD.encode(self.seal(context, plaintext.as_bytes()))
    }

    pub fn open_text(&self, context: &str, sealed: &str) -> Result<String> {
        let raw = STANDARD.decode(sealed).map_err(|_| StoreError::Cipher("sealed text is not base64".into()))?;
        String::from_utf8(self.open(context, &raw)?).map_err(|_| StoreError::Cipher("plaintext is not UTF-8".into()))
    }

    /// `seal` of a value as JSON.
    pub fn seal_json<T: Serialize>(&self, context: &str, value: &T) -> String {
        self.seal_text(context, &serde_json::to_string(value).expect("values serialise"))
    }

    pub fn open_json<T: serde::de::DeserializeOwned>(&self, context: &str, sealed: &str) -> Result<T> {
        let text = self.open_text(context, sealed)?;
        serde_json::from_str(&text).map_err(|e| StoreError::Cipher(format!("sealed value does not decode: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A vault in memory, for the cipher's own tests (the stores' vaults run the conformance suite).
    #[derive(Default)]
    struct MemVault(Mutex<HashMap<PatientId, WrappedKey>>);

    #[async_trait]
    impl KeyVault for MemVault {
        async fn wrapped_key(&self, p: PatientId) -> Result<Option<WrappedKey>> {
            Ok(self.0.lock().unwrap().get(&p).cloned())
        }
        async fn put_wrapped_key_if_absent(&self, k: &WrappedKey) -> Result<WrappedKey> {
            Ok(self.0.lock().unwrap().entry(k.patient_id).or_insert_with(|| k.clone()).clone())
        }
        async fn replace_wrapped_key(&self, k: &WrappedKey) -> Result<()> {
            self.0.lock().unwrap().insert(k.patient_id, k.clone());
            Ok(())
        }
        async fn destroy_wrapped_key(&self, p: PatientId) -> Result<bool> {
            Ok(self.0.lock().unwrap().remove(&p).is_some())
        }
        async fn wrapped_keys(&self) -> Result<Vec<WrappedKey>> {
            Ok(self.0.lock().unwrap().values().cloned().collect())
        }
    }

    fn ring(active: &str) -> FieldCipher {
        FieldCipher::new(active, &[("k1".into(), [1; 32]), ("k2".into(), [2; 32])]).unwrap()
    }

    #[tokio::test]
    async fn seals_per_person_and_erases() {
        let vault = Arc::new(MemVault::default());
        let cipher = PersonCipher::new(vault.clone(), ring("k1"));
        let (a, b) = (PatientId::new(), PatientId::new());
        assert!(cipher.existing_key(a).await.unwrap().is_none());
        let ka = cipher.key(a).await.unwrap();
        let sealed = ka.seal("visit:1", "社区获得性肺炎".as_bytes());
        assert!(!sealed.windows(6).any(|w| w == &"肺炎".as_bytes()[..6]), "ciphertext only");
        assert_eq!(ka.open("visit:1", &sealed).unwrap(), "社区获得性肺炎".as_bytes());
        assert!(ka.open("visit:2", &sealed).is_err(), "bound to its context");
        let kb = cipher.key(b).await.unwrap();
        assert!(kb.open("visit:1", &sealed).is_err(), "another person's key does not open it");
        // The same key on every use.
        assert_eq!(cipher.key(a).await.unwrap().open("visit:1", &sealed).unwrap(), "社区获得性肺炎".as_bytes());
        let text = ka.seal_text("t", "诊断");
        assert_eq!(cipher.existing_key(a).await.unwrap().unwrap().open_text("t", &text).unwrap(), "诊断");
        // Erased: the key is gone and nothing opens the value any more, not even a new key.
        assert!(cipher.destroy(a).await.unwrap());
        assert!(cipher.existing_key(a).await.unwrap().is_none());
        assert!(cipher.key(a).await.unwrap().open("visit:1", &sealed).is_err());
    }

    #[tokio::test]
    async fn rotation_rewraps_keys_not_data() {
        let vault = Arc::new(MemVault::default());
        let old = PersonCipher::new(vault.clone(), ring("k1"));
        let p = PatientId::new();
        let sealed = old.key(p).await.unwrap().seal("c", b"data");
        assert_eq!(vault.wrapped_key(p).await.unwrap().unwrap().master_key_id(), "k1");
        let new = PersonCipher::new(vault.clone(), ring("k2"));
        assert_eq!(new.rewrap().await.unwrap(), 1);
        assert_eq!(new.rewrap().await.unwrap(), 0, "done once");
        assert_eq!(vault.wrapped_key(p).await.unwrap().unwrap().master_key_id(), "k2");
        assert_eq!(new.key(p).await.unwrap().open("c", &sealed).unwrap(), b"data", "old data opens");
        // Once k1 is retired the key still unwraps (it is under k2 now).
        let only_k2 = FieldCipher::new("k2", &[("k2".into(), [2; 32])]).unwrap();
        assert!(PersonCipher::new(vault, only_k2).key(p).await.is_ok());
    }
}
