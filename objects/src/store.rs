//! `Objects`: the one handle on object storage. Puts check the content first and store under a
//! generated key (`<prefix>/<uuid v7>.<ext>`): unguessable, never reused (so a key's bytes never
//! change and its ETag can be cached), and carrying the checked type, since not every backend
//! keeps a content type (the local one does not).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use secrecy::ExposeSecret;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use crate::config::{Backend, ObjectsConfig, S3Config};
use crate::content::{ContentType, Policy};
use crate::{check_key, ObjectError};

/// What a put stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub key: String,
    pub content_type: ContentType,
    pub size: u64,
}

/// What a head tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// The backend's version tag, without quotes; None if it keeps none.
    pub etag: Option<String>,
    pub last_modified: DateTime<Utc>,
}

/// A get: the object's info, the byte range served, and the bytes as a stream.
pub struct Download {
    pub info: ObjectInfo,
    pub range: Range<u64>,
    pub body: BoxStream<'static, Result<Bytes, ObjectError>>,
}

impl Download {
    /// Reads the whole body into memory.
    pub async fn bytes(self) -> Result<Bytes, ObjectError> {
        let parts: Vec<Bytes> = self.body.try_collect().await?;
        Ok(parts.concat().into())
    }
}

/// Turns stored bytes into the bytes a client gets (decrypting, say). Registered per key prefix
/// on the download route; it sees the whole object, so ranges are cut from its output. Async,
/// since what opens a file may have to be fetched first (a person's data key from the vault).
#[async_trait::async_trait]
pub trait Outbound: Send + Sync {
    async fn reveal(&self, key: &str, stored: Bytes) -> Result<Bytes, ObjectError>;
}

#[derive(Clone)]
pub struct Objects {
    inner: Arc<dyn ObjectStore>,
    describe: Arc<str>,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

impl Objects {
    /// The backend the config names; the local one under `<data_dir>/objects` by default.
    pub fn from_config(cfg: &ObjectsConfig, data_dir: &Path) -> Result<Self, ObjectError> {
        match cfg.backend {
            Backend::Local => Self::local(&cfg.local_dir.clone().unwrap_or_else(|| data_dir.join("objects"))),
            Backend::S3 => {
                let s3 = cfg.s3.as_ref().ok_or_else(|| {
                    ObjectError::Backend("objects.backend = \"s3\" needs an [objects.s3] section".into())
                })?;
                Self::s3(s3)
            }
        }
    }

    /// Files in `dir` (created if missing).
    pub fn local(dir: &Path) -> Result<Self, ObjectError> {
        std::fs::create_dir_all(dir).map_err(|e| ObjectError::Backend(format!("create {}: {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(dir)?;
        Ok(Objects { inner: Arc::new(fs), describe: format!("local directory {}", dir.display()).into() })
    }

    /// An S3-compatible service.
    pub fn s3(cfg: &S3Config) -> Result<Self, ObjectError> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_access_key_id(&cfg.access_key_id)
            .with_secret_access_key(cfg.secret_access_key.expose_secret())
            .with_virtual_hosted_style_request(!cfg.path_style);
        if let Some(endpoint) = &cfg.endpoint {
            b = b.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        let describe = format!("s3 bucket {} at {}", cfg.bucket, cfg.endpoint.as_deref().unwrap_or("AWS"));
        Ok(Objects { inner: Arc::new(b.build()?), describe: describe.into() })
    }

    /// Checks `bytes` against `policy` and the declared type, then stores them under a new key
    /// below `prefix` (a valid key itself, like `chat/2026-05`). Durable when it returns.
    pub async fn put(
        &self,
        prefix: &str,
        bytes: Bytes,
        declared: Option<&str>,
        policy: &Policy,
    ) -> Result<StoredObject, ObjectError> {
        self.put_sealed(prefix, bytes, declared, policy, |_, b| Ok(b)).await
    }

    /// `put`, with the checked bytes passed through `seal` (given the new key) before they are
    /// stored: a feature that keeps files encrypted checks the plaintext and stores the
    /// ciphertext, and registers the matching `Outbound` for downloads. `size` is the checked
    /// (plaintext) size.
    pub async fn put_sealed(
        &self,
        prefix: &str,
        bytes: Bytes,
        declared: Option<&str>,
        policy: &Policy,
        seal: impl FnOnce(&str, Bytes) -> Result<Bytes, ObjectError>,
    ) -> Result<StoredObject, ObjectError> {
        check_key(prefix)?;
        let content_type = policy.check(&bytes[..bytes.len().min(1024)], bytes.len() as u64, declared)?;
        let key = format!("{prefix}/{}.{}", uuid::Uuid::now_v7().simple(), content_type.extension());
        let size = bytes.len() as u64;
        let stored = seal(&key, bytes)?;
        self.inner.put(&StorePath::from(key.as_str()), PutPayload::from_bytes(stored)).await?;
        tracing::debug!(%key, size, store = %self.describe, "object stored");
        Ok(StoredObject { key, content_type, size })
    }

    pub async fn head(&self, key: &str) -> Result<ObjectInfo, ObjectError> {
        check_key(key)?;
        let meta = self.inner.head(&StorePath::from(key)).await?;
        Ok(info(&meta))
    }

    /// The object, or the bytes of `range` of it (which must lie within it: see `range::resolve`).
    pub async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Download, ObjectError> {
        check_key(key)?;
        let opts = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        let res = self.inner.get_opts(&StorePath::from(key), opts).await?;
        let info = info(&res.meta);
        let range = res.range.clone();
        let body = res.into_stream().map(|r| r.map_err(ObjectError::from)).boxed();
        Ok(Download { info, range, body })
    }

    /// Deletes the object; deleting a missing one is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        check_key(key)?;
        match self.inner.delete(&StorePath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn info(meta: &object_store::ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        size: meta.size,
        etag: meta.e_tag.as_deref().map(|t| t.trim_matches('"').to_string()).filter(|t| !t.is_empty()),
        last_modified: meta.last_modified,
    }
}
