//! Encryption of sensitive fields at rest (PLAT-8, REC-5): AES-256-GCM with a random 96-bit nonce
//! per value and a key id in front of each ciphertext, so keys can be rotated: new values are
//! sealed with the active key, old ones still open with the key they name. A keyed hash (HMAC-
//! SHA256, the "blind index") lets the store find equal values without decrypting them.

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Arc;

use crate::model::Sealed;
use crate::StoreError;

/// The key ring: every known key by id, and which one seals new values.
#[derive(Clone)]
pub struct FieldCipher {
    inner: Arc<Inner>,
}

struct Inner {
    active: String,
    keys: HashMap<String, Aes256Gcm>,
    index_key: SecretSlice<u8>,
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key ids only: the keys never print.
        let mut ids: Vec<_> = self.inner.keys.keys().collect();
        ids.sort();
        f.debug_struct("FieldCipher").field("active", &self.inner.active).field("keys", &ids).finish()
    }
}

impl FieldCipher {
    /// `keys` are (id, 32 raw bytes); `active` must be one of them. The blind-index key is
    /// derived from the first key listed so that it stays stable across rotations of the active key.
    pub fn new(active: &str, keys: &[(String, [u8; 32])]) -> Result<Self, StoreError> {
        if keys.iter().any(|(id, _)| id.is_empty() || id.contains(':')) {
            return Err(StoreError::Cipher("key ids must be non-empty and contain no ':'".into()));
        }
        let map: HashMap<String, Aes256Gcm> =
            keys.iter().map(|(id, k)| (id.clone(), Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(k)))).collect();
        if !map.contains_key(active) {
            return Err(StoreError::Cipher(format!("active key {active:?} is not in the key ring")));
        }
        let first = &keys[0].1;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(first).expect("any key length");
        mac.update(b"hospital blind index v1");
        let index_key: Vec<u8> = mac.finalize().into_bytes().to_vec();
        Ok(Self { inner: Arc::new(Inner { active: active.to_string(), keys: map, index_key: index_key.into() }) })
    }

    /// A fresh random key, as base64, for `hospital keygen` and first start-up in demo mode.
    pub fn generate_key_b64() -> String {
        STANDARD.encode(Aes256Gcm::generate_key(OsRng))
    }

    /// The id of the key that seals new values.
    pub fn active_key_id(&self) -> &str {
        &self.inner.active
    }

    pub fn seal(&self, plaintext: &str) -> Sealed {
        let cipher = &self.inner.keys[&self.inner.active];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct =
            cipher.encrypt(&nonce, plaintext.as_bytes()).expect("AES-GCM encryption does not fail for small inputs");
        let mut buf = nonce.to_vec();
        buf.extend_from_slice(&ct);
        Sealed(format!("{}:{}", self.inner.active, STANDARD.encode(buf)))
    }

    pub fn open(&self, sealed: &Sealed) -> Result<String, StoreError> {
        let (kid, b64) =
            sealed.0.split_once(':').ok_or_else(|| StoreError::Cipher("sealed value has no key id".into()))?;
        let cipher = self.inner.keys.get(kid).ok_or_else(|| StoreError::Cipher(format!("unknown key id {kid:?}")))?;
        let buf = STANDARD.decode(b64).map_err(|_| StoreError::Cipher("sealed value is not base64".into()))?;
        if buf.len() < 12 + 16 {
            return Err(StoreError::Cipher("sealed value is too short".into()));
        }
        let (nonce, ct) = buf.split_at(12);
        let pt = cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| StoreError::Cipher("authentication failed: wrong key or tampered value".into()))?;
        String::from_utf8(pt).map_err(|_| StoreError::Cipher("plaintext is not UTF-8".into()))
    }

    /// The blind index of a value: equal inputs give equal outputs, and without the key nothing
    /// about the input can be learned or brute-forced offline.
    pub fn blind_index(&self, value: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(self.inner.index_key.expose_secret()).expect("any key length");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> FieldCipher {
        FieldCipher::new("k2", &[("k1".into(), [1u8; 32]), ("k2".into(), [2u8; 32])]).unwrap()
    }

    #[test]
    fn seals_opens_and_rotates() {
        let c = ring();
        let s = c.seal("11010519491231002X");
        assert!(s.0.starts_with("k2:"));
        assert!(!s.0.contains("1949"));
        assert_eq!(c.open(&s).unwrap(), "11010519491231002X");
        assert_ne!(c.seal("x").0, c.seal("x").0, "a fresh nonce each time");
        // A value sealed under the old key still opens after rotation.
        let old = FieldCipher::new("k1", &[("k1".into(), [1u8; 32])]).unwrap().seal("old");
        assert_eq!(c.open(&old).unwrap(), "old");
        assert_eq!(c.blind_index("a"), ring().blind_index("a"));
        assert_ne!(c.blind_index("a"), c.blind_index("b"));
    }

    #[test]
    fn rejects_tampering_and_unknown_keys() {
        let c = ring();
        let s = c.seal("secret");
        let mut bytes = STANDARD.decode(s.0.split_once(':').unwrap().1).unwrap();
        bytes[20] ^= 1;
        assert!(c.open(&Sealed(format!("k2:{}", STANDARD.encode(&bytes)))).is_err());
        assert!(c.open(&Sealed(s.0.replacen("k2:", "k9:", 1))).is_err());
        assert!(FieldCipher::new("nope", &[("k1".into(), [0; 32])]).is_err());
        assert!(!format!("{c:?}").contains("[2"), "Debug shows no key bytes");
    }
}
