//! Object storage as the gateway's features use it (`FileService`, in `AppState.files`): `put`
//! (a checked upload), `link` (a signed download URL, served by `http::files`), and `read_capped`
//! (an upload's body up to a policy's cap).

use axum::body::{Body, Bytes};
use chrono::Utc;
use hospital_objects::{LinkSigner, Objects, ObjectsConfig, Outbound, Policy, StoredObject};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{ApiError, ApiResult};

/// Object storage as the gateway's features use it.
#[derive(Clone)]
pub struct FileService {
    pub objects: Objects,
    pub(crate) links: LinkSigner,
    pub(crate) link_ttl: Duration,
    pub(crate) cache_max_age: u64,
    pub image_policy: Policy,
    pub report_policy: Policy,
    outbound: Arc<Vec<(String, Arc<dyn Outbound>)>>,
}

impl FileService {
    pub fn new(objects: Objects, links: LinkSigner, cfg: &ObjectsConfig) -> Self {
        FileService {
            objects,
            links,
            link_ttl: Duration::from_secs(cfg.link_ttl_secs.max(1)),
            cache_max_age: cfg.cache_max_age_secs,
            image_policy: Policy::images(cfg.max_image_bytes),
            report_policy: Policy::reports(cfg.max_report_bytes),
            outbound: Arc::new(Vec::new()),
        }
    }

    /// Routes downloads of keys under `prefix` through `transform` (decryption, say).
    pub fn with_outbound(mut self, prefix: &str, transform: Arc<dyn Outbound>) -> Self {
        Arc::make_mut(&mut self.outbound).push((prefix.trim_end_matches('/').to_string() + "/", transform));
        self
    }

    pub(crate) fn outbound_for(&self, key: &str) -> Option<&Arc<dyn Outbound>> {
        self.outbound.iter().find(|(p, _)| key.starts_with(p.as_str())).map(|(_, t)| t)
    }

    /// Checks and stores an upload (see `Objects::put`).
    pub async fn put(
        &self,
        prefix: &str,
        bytes: Bytes,
        declared: Option<&str>,
        policy: &Policy,
    ) -> ApiResult<StoredObject> {
        Ok(self.objects.put(prefix, bytes, declared, policy).await?)
    }

    /// A stored file's bytes as a client gets them (through its prefix's `Outbound`: a report
    /// decrypted), whole: for an export that packs files rather than linking them.
    pub async fn read(&self, key: &str) -> ApiResult<Bytes> {
        let stored = self.objects.get(key, None).await?.bytes().await?;
        Ok(match self.outbound_for(key) {
            Some(t) => t.reveal(key, stored).await?,
            None => stored,
        })
    }

    /// A signed download link (path and query) valid for `ttl` (the configured lifetime when
    /// None), and its expiry (unix seconds). `name` is the file name the download carries.
    pub fn link(&self, key: &str, ttl: Option<Duration>, name: Option<&str>) -> (String, i64) {
        let ttl = ttl.unwrap_or(self.link_ttl).as_secs().max(1) as i64;
        let expires = Utc::now().timestamp() + ttl;
        (self.links.url(key, expires, name), expires)
    }
}

/// Reads a request body of at most `max` bytes; 413 `payload_too_large` beyond (without
/// reading further). Upload routes disable the router's small default limit and call this with
/// their policy's cap.
pub async fn read_capped(body: Body, max: u64) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, usize::try_from(max).unwrap_or(usize::MAX))
        .await
        .map_err(|_| ApiError::TooLarge(format!("the file is larger than the {max} bytes allowed here")))
}
