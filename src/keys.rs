//! Field-encryption keys: from the config, or (one machine, no keys configured) generated once
//! into `<data_dir>/keys/field-<id>.key` with mode 0600, so a restart can still read what it
//! sealed. Losing that file loses the sealed fields: back it up with the data directory.

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hospital_store::FieldCipher;
use secrecy::ExposeSecret;
use std::path::Path;

use crate::config::EncryptionConfig;

fn decode(id: &str, b64: &str) -> anyhow::Result<(String, [u8; 32])> {
    let raw = STANDARD.decode(b64.trim()).with_context(|| format!("encryption key {id:?} is not base64"))?;
    let key: [u8; 32] = raw.try_into().map_err(|_| anyhow::anyhow!("encryption key {id:?} must be 32 bytes"))?;
    Ok((id.to_string(), key))
}

pub fn field_cipher(cfg: &EncryptionConfig, data_dir: &Path) -> anyhow::Result<FieldCipher> {
    let keys: Vec<(String, [u8; 32])> = if cfg.keys.is_empty() {
        vec![decode(&cfg.active, &local_key(&cfg.active, data_dir)?)?]
    } else {
        cfg.keys.iter().map(|(id, k)| decode(id, k.expose_secret())).collect::<anyhow::Result<_>>()?
    };
    if !keys.iter().any(|(id, _)| *id == cfg.active) {
        bail!("encryption.active = {:?} is not among encryption.keys", cfg.active);
    }
    Ok(FieldCipher::new(&cfg.active, &keys)?)
}

/// The download links' HMAC key: from the config, or generated once into
/// `<data_dir>/keys/file-links.key` (one machine; a cluster configures one for every node).
pub fn link_signer(
    cfg: &hospital_objects::ObjectsConfig,
    data_dir: &Path,
) -> anyhow::Result<hospital_objects::LinkSigner> {
    let secret = match &cfg.link_secret {
        Some(s) => s.expose_secret().to_string(),
        None => local_secret("file-links.key", data_dir)?,
    };
    if secret.trim().len() < 16 {
        bail!("objects.link_secret must be at least 16 characters");
    }
    Ok(hospital_objects::LinkSigner::new(secret.trim().as_bytes()))
}

fn local_key(id: &str, data_dir: &Path) -> anyhow::Result<String> {
    local_secret(&format!("field-{id}.key"), data_dir)
}

/// A random key kept in `<data_dir>/keys/<file>` (mode 0600), generated on first use.
fn local_secret(file: &str, data_dir: &Path) -> anyhow::Result<String> {
    let dir = data_dir.join("keys");
    let path = dir.join(file);
    if let Ok(k) = std::fs::read_to_string(&path) {
        return Ok(k);
    }
    std::fs::create_dir_all(&dir)?;
    let key = FieldCipher::generate_key_b64();
    write_private(&path, &key).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::warn!(path = %path.display(), "generated a key; back it up with the data directory");
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    std::fs::write(path, content)
}
