//! Object storage for files people upload (chat images, medical reports): one seam over the
//! `object_store` crate, a local directory by default and any S3-compatible service in
//! production (AWS S3, Aliyun OSS, Tencent COS, MinIO). Uploads are checked by their content,
//! not their name (`content`), capped in size per use (`Policy`), and stored under generated,
//! write-once keys that carry the checked type. Downloads go through the gateway by short-lived
//! HMAC-signed links (`link`), served with byte ranges (`range`); an `Outbound` hook lets a
//! feature transform bytes on the way out (decrypting a report stored encrypted, say).
//!
//! A crate of its own rather than a module of `hospital-store`: blobs are not rows (no tables,
//! no conformance suite, no transactions), and the S3 client brings its own dependency tree
//! that the store, the actors and their tests need not build.

pub mod config;
pub mod content;
pub mod link;
pub mod range;
mod store;

pub use config::{Backend, ObjectsConfig, S3Config};
pub use content::{ContentType, Policy, Sniffed};
pub use link::{LinkError, LinkSigner};
pub use store::{Download, ObjectInfo, Objects, Outbound, StoredObject};

/// What can go wrong with an object. `TooLarge` and the content refusals are the caller's fault
/// (the gateway answers 413 and 415); `NotFound` is 404; `Backend` is the store's.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("the file is larger than the {max} bytes allowed here")]
    TooLarge { max: u64 },
    #[error("the file is empty")]
    Empty,
    #[error("executables are refused (this looks like {0})")]
    Executable(&'static str),
    #[error("this kind of file is not accepted here; accepted: {accepted}")]
    Unsupported { accepted: String },
    #[error("the file was declared as {declared} but its content is {actual}")]
    Mismatch { declared: String, actual: &'static str },
    #[error("no such object")]
    NotFound,
    #[error("invalid object key {0:?}")]
    BadKey(String),
    #[error("object store: {0}")]
    Backend(String),
}

impl From<object_store::Error> for ObjectError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => ObjectError::NotFound,
            other => ObjectError::Backend(other.to_string()),
        }
    }
}

/// A key we would store under: `/`-separated segments of ASCII letters, digits, `.`, `_` and
/// `-`, no empty, `.` or `..` segment, at most 512 bytes. Keys come from our own code (and back
/// through signed links), so anything else is refused rather than escaped.
pub fn check_key(key: &str) -> Result<(), ObjectError> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(ObjectError::BadKey(key.chars().take(80).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::check_key;

    #[test]
    fn keys_are_plain_paths() {
        for good in ["chat/2026/a.png", "reports/0190-aa_b.pdf", "x"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in ["", "/a", "a/", "a//b", "../etc/passwd", "a/./b", "a b", "a\\b", "报告.pdf", "a?b", "a%2Fb"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_key(&"a".repeat(513)).is_err());
    }
}
