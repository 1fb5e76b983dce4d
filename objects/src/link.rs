//! Short-lived download links: `/api/v1/files/{key}?exp=<unix s>&sig=<base64url>` (and
//! `&name=<file name>` when the download should carry one). `sig` is HMAC-SHA256 under the
//! link secret over the key, the expiry and the name, so none of them can be changed; it is
//! checked in constant time, and before the expiry, so a tampered link is `BadSignature` and a
//! genuine old one `Expired`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

/// Where the gateway serves links.
pub const ROUTE: &str = "/api/v1/files/";

/// Query-string encoding: everything but unreserved characters.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this download link has expired; ask for a new one")]
    Expired,
    #[error("this download link is not valid (altered or not ours)")]
    BadSignature,
}

impl LinkError {
    /// The stable error code the gateway answers with.
    pub fn code(self) -> &'static str {
        match self {
            LinkError::Expired => "link_expired",
            LinkError::BadSignature => "bad_signature",
        }
    }
}

#[derive(Clone)]
pub struct LinkSigner {
    secret: SecretSlice<u8>,
}

impl LinkSigner {
    pub fn new(secret: &[u8]) -> Self {
        LinkSigner { secret: secret.to_vec().into() }
    }

    fn mac(&self, key: &str, expires: i64, name: Option<&str>) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.expose_secret()).expect("HMAC takes any key length");
        // Length-prefixed fields: no two (key, expiry, name) sign the same bytes.
        for field in [key, &expires.to_string(), name.unwrap_or("")] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        mac
    }

    /// The signature of a link.
    pub fn sign(&self, key: &str, expires: i64, name: Option<&str>) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(key, expires, name).finalize().into_bytes())
    }

    /// The link's path and query, for a client to GET (relative to the gateway's base URL).
    pub fn url(&self, key: &str, expires: i64, name: Option<&str>) -> String {
        let sig = self.sign(key, expires, name);
        let mut url = format!("{ROUTE}{key}?exp={expires}&sig={sig}");
        if let Some(n) = name {
            url.push_str("&name=");
            url.extend(utf8_percent_encode(n, QUERY));
        }
        url
    }

    /// Checks a link's signature (constant time), then its expiry against `now` (unix s).
    pub fn verify(&self, key: &str, expires: i64, name: Option<&str>, sig: &str, now: i64) -> Result<(), LinkError> {
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| LinkError::BadSignature)?;
        self.mac(key, expires, name).verify_slice(&sig).map_err(|_| LinkError::BadSignature)?;
        if now > expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_verify_until_they_expire() {
        let s = LinkSigner::new(b"0123456789abcdef0123456789abcdef");
        let sig = s.sign("chat/a.png", 1000, None);
        assert_eq!(s.verify("chat/a.png", 1000, None, &sig, 1000), Ok(()));
        assert_eq!(s.verify("chat/a.png", 1000, None, &sig, 1001), Err(LinkError::Expired));
        assert_eq!(s.verify("chat/b.png", 1000, None, &sig, 10), Err(LinkError::BadSignature), "another key");
        assert_eq!(s.verify("chat/a.png", 2000, None, &sig, 10), Err(LinkError::BadSignature), "a later expiry");
        assert_eq!(s.verify("chat/a.png", 1000, Some("x.png"), &sig, 10), Err(LinkError::BadSignature), "a name");
        assert_eq!(s.verify("chat/a.png", 1000, None, "not base64!", 10), Err(LinkError::BadSignature));
        let other = LinkSigner::new(b"another secret entirely, 32 bytes");
        assert_eq!(other.verify("chat/a.png", 1000, None, &sig, 10), Err(LinkError::BadSignature));
    }

    #[test]
    fn urls_carry_what_is_signed() {
        let s = LinkSigner::new(b"k");
        let url = s.url("r/x.pdf", 42, Some("检查报告 1.pdf"));
        assert!(url.starts_with("/api/v1/files/r/x.pdf?exp=42&sig="), "{url}");
        assert!(url.ends_with("&name=%E6%A3%80%E6%9F%A5%E6%8A%A5%E5%91%8A%201.pdf"), "{url}");
    }
}
