//! What every Aliyun RPC-style API shares: signature version 1.0 (`sign`), the common
//! parameters a client sends (`common_params`), and the gateway checks a sandbox makes (`gate`).

#[cfg(feature = "sandbox")]
pub mod gate;
pub mod sign;

use std::collections::BTreeMap;

/// The common parameters of an RPC request (without `Signature`): `Action`, `Version`, the
/// AccessKeyId, JSON answers, HMAC-SHA1 signature version 1.0, a nonce and a UTC timestamp
/// (`%Y-%m-%dT%H:%M:%SZ`). The caller adds the action's own parameters, then signs.
pub fn common_params(
    action: &str,
    version: &str,
    access_key_id: &str,
    nonce: &str,
    timestamp: &str,
) -> BTreeMap<String, String> {
    [
        ("AccessKeyId", access_key_id),
        ("Action", action),
        ("Format", "JSON"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", nonce),
        ("SignatureVersion", "1.0"),
        ("Timestamp", timestamp),
        ("Version", version),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A fresh nonce and the current timestamp, as Aliyun wants them.
pub fn nonce_and_timestamp() -> (String, String) {
    (uuid::Uuid::new_v4().to_string(), chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string())
}
