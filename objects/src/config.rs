//! Object storage settings (`[objects]` in the config file, `HOSPITAL_OBJECTS__*` in the
//! environment): which backend, where, the download links' secret and lifetime, and the size
//! caps per use. The defaults need nothing: a directory under the data directory.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Files under `local_dir` (one machine).
    Local,
    /// An S3-compatible service (`s3`).
    S3,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectsConfig {
    pub backend: Backend,
    /// The local backend's directory; `<data_dir>/objects` when absent.
    pub local_dir: Option<PathBuf>,
    pub s3: Option<S3Config>,
    /// The HMAC-SHA256 key of download links (any length, 32 random bytes or more). When absent
    /// one is generated into `<data_dir>/keys/`; several nodes must share one.
    #[serde(skip_serializing)]
    pub link_secret: Option<SecretString>,
    /// How long a download link is valid.
    pub link_ttl_secs: u64,
    /// The longest a browser may cache a download (never past the link's expiry).
    pub cache_max_age_secs: u64,
    /// Size caps: chat images, and report files (PDF, images, DICOM).
    pub max_image_bytes: u64,
    pub max_report_bytes: u64,
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Local,
            local_dir: None,
            s3: None,
            link_secret: None,
            link_ttl_secs: 300,
            cache_max_age_secs: 3600,
            max_image_bytes: 10 << 20,
            max_report_bytes: 100 << 20,
        }
    }
}

/// An S3-compatible service. Aliyun OSS: `endpoint = "https://oss-cn-hangzhou.aliyuncs.com"`,
/// `region = "cn-hangzhou"`; Tencent COS: `endpoint = "https://cos.ap-shanghai.myqcloud.com"`,
/// `region = "ap-shanghai"`; MinIO and other servers on a path: `path_style = true`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The service's base URL; AWS's regional endpoint when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    #[serde(skip_serializing)]
    pub secret_access_key: SecretString,
    /// Address the bucket as a path (`endpoint/bucket/key`) instead of a host name
    /// (`bucket.endpoint/key`).
    #[serde(default)]
    pub path_style: bool,
}
