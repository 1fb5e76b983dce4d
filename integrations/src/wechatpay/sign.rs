//! WeChat Pay API v3 protocol primitives: the `WECHATPAY2-SHA256-RSA2048` request signature and
//! its `Authorization` header, response/notification signature verification, the
//! `AEAD_AES_256_GCM` resource encryption, and the mini-program `paySign`. Pure functions shared
//! by the client and the sandbox, so both sides of the protocol come from one audited place.

use std::collections::HashMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rand::distributions::Alphanumeric;
use rand::Rng;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};

use super::RequestPaymentParams;

/// The only authentication scheme API v3 has.
pub const AUTH_SCHEMA: &str = "WECHATPAY2-SHA256-RSA2048";
/// WeChat Pay refuses requests, and SDKs refuse answers, whose timestamp is further than this
/// from the local clock: it bounds how long a captured message can be replayed.
pub const MAX_CLOCK_SKEW_SECS: i64 = 5 * 60;
/// The only resource encryption WeChat Pay uses.
pub const RESOURCE_ALGORITHM: &str = "AEAD_AES_256_GCM";

pub const HEADER_TIMESTAMP: &str = "Wechatpay-Timestamp";
pub const HEADER_NONCE: &str = "Wechatpay-Nonce";
pub const HEADER_SIGNATURE: &str = "Wechatpay-Signature";
pub const HEADER_SERIAL: &str = "Wechatpay-Serial";
/// Sent by WeChat Pay on answers and notifications; SDKs (e.g. `wechatpayv3`) refuse a
/// message without it.
pub const HEADER_SIGNATURE_TYPE: &str = "Wechatpay-Signature-Type";

/// Why a signature, key or ciphertext was refused. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("invalid key: {0}")]
    Key(String),
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("malformed {0}")]
    Malformed(String),
    #[error("unknown WeChat Pay platform key serial {0:?}")]
    UnknownSerial(String),
    #[error("timestamp {timestamp} is more than {MAX_CLOCK_SKEW_SECS}s away from now ({now})")]
    StaleTimestamp { timestamp: i64, now: i64 },
    #[error("signature does not verify")]
    BadSignature,
    #[error("resource decryption failed (wrong APIv3 key, nonce, associated data or tampered ciphertext)")]
    Decrypt,
}

/// A merchant or platform private key; PKCS#8 (`BEGIN PRIVATE KEY`, WeChat's `apiclient_key.pem`)
/// or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
pub fn parse_private_key_pem(pem: &str) -> Result<RsaPrivateKey, SignError> {
    let pem = pem.trim();
    RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
        // The parser's error never quotes the input, but say nothing specific anyway.
        .map_err(|_| SignError::Key("not a PKCS#8 or PKCS#1 RSA private key PEM".into()))
}

/// A public key as SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`, the form of WeChat Pay's
/// "微信支付公钥"; for a platform certificate run `openssl x509 -pubkey -noout`) or PKCS#1.
pub fn parse_public_key_pem(pem: &str) -> Result<RsaPublicKey, SignError> {
    let pem = pem.trim();
    RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
        .map_err(|_| SignError::Key("not an RSA public key PEM (SPKI or PKCS#1)".into()))
}

/// A fresh RSA-2048 keypair as `(PKCS#8 private PEM, SPKI public PEM)`, for setting up a
/// sandbox. Slow in debug builds (seconds): tests use the fixed keys in `test_keys` instead.
pub fn generate_keys() -> Result<(String, String), SignError> {
    let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).map_err(|e| SignError::Key(e.to_string()))?;
    let private_pem = private.to_pkcs8_pem(LineEnding::LF).map_err(|e| SignError::Key(e.to_string()))?.to_string();
    let public_pem =
        private.to_public_key().to_public_key_pem(LineEnding::LF).map_err(|e| SignError::Key(e.to_string()))?;
    Ok((private_pem, public_pem))
}

/// 32 random alphanumerics: the length WeChat's own examples use for `nonce_str`.
pub fn nonce() -> String {
    random_alphanumeric(32)
}

/// The AEAD nonce is exactly 12 characters (96 bits), used as bytes.
pub fn resource_nonce() -> String {
    random_alphanumeric(12)
}

fn random_alphanumeric(len: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// base64(SHA256withRSA PKCS#1 v1.5) of `message`: every signature in API v3.
pub fn sign_sha256_rsa(key: &RsaPrivateKey, message: &[u8]) -> String {
    let signing_key = SigningKey::<Sha256>::new(key.clone());
    BASE64.encode(signing_key.sign(message).to_bytes())
}

/// Checks a base64 SHA256withRSA signature of `message`.
pub fn verify_sha256_rsa(key: &RsaPublicKey, message: &[u8], signature_b64: &str) -> Result<(), SignError> {
    let raw = BASE64.decode(signature_b64.trim()).map_err(|_| SignError::Malformed("signature base64".into()))?;
    let signature = Signature::try_from(raw.as_slice()).map_err(|_| SignError::BadSignature)?;
    VerifyingKey::<Sha256>::new(key.clone()).verify(message, &signature).map_err(|_| SignError::BadSignature)
}

/// `METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nBODY\n`: what a request signature covers. The
/// path is exactly what goes on the wire (already percent-encoded), without scheme and host;
/// the body is empty for GET.
pub fn request_message(method: &str, path_with_query: &str, timestamp: i64, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = format!("{method}\n{path_with_query}\n{timestamp}\n{nonce}\n").into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    message
}

/// `TIMESTAMP\nNONCE\nBODY\n`: what a response or notification signature covers (an empty 204
/// body leaves the last line a bare `\n`).
pub fn response_message(timestamp: i64, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = format!("{timestamp}\n{nonce}\n").into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    message
}

/// The parts of an `Authorization: WECHATPAY2-SHA256-RSA2048 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub mchid: String,
    pub nonce_str: String,
    pub signature: String,
    pub timestamp: i64,
    pub serial_no: String,
}

impl Authorization {
    /// Signs a request as merchant `mchid` with the key whose certificate serial is `serial_no`.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        key: &RsaPrivateKey,
        mchid: &str,
        serial_no: &str,
        method: &str,
        path_with_query: &str,
        timestamp: i64,
        nonce_str: &str,
        body: &[u8],
    ) -> Self {
        let message = request_message(method, path_with_query, timestamp, nonce_str, body);
        Self {
            mchid: mchid.to_string(),
            nonce_str: nonce_str.to_string(),
            signature: sign_sha256_rsa(key, &message),
            timestamp,
            serial_no: serial_no.to_string(),
        }
    }

    /// The header value, fields in the order WeChat's documentation shows them.
    pub fn header_value(&self) -> String {
        format!(
            r#"{AUTH_SCHEMA} mchid="{}",nonce_str="{}",signature="{}",timestamp="{}",serial_no="{}""#,
            self.mchid, self.nonce_str, self.signature, self.timestamp, self.serial_no
        )
    }

    /// Parses a header value. Field order is free (WeChat says so) but each of the five must
    /// appear exactly once, quoted.
    pub fn parse(value: &str) -> Result<Self, SignError> {
        let malformed = |what: &str| SignError::Malformed(format!("Authorization header: {what}"));
        let rest = value
            .trim()
            .strip_prefix(AUTH_SCHEMA)
            .filter(|r| r.starts_with(' '))
            .ok_or_else(|| malformed("schema must be WECHATPAY2-SHA256-RSA2048"))?;
        let mut fields: HashMap<&str, &str> = HashMap::new();
        for part in rest.trim().split(',') {
            let (key, quoted) = part.trim().split_once('=').ok_or_else(|| malformed("expected key=\"value\""))?;
            let value = quoted
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| malformed("values must be quoted"))?;
            if fields.insert(key.trim(), value).is_some() {
                return Err(malformed("duplicate field"));
            }
        }
        let mut take = |name: &'static str| {
            fields.remove(name).filter(|v| !v.is_empty()).map(str::to_string).ok_or_else(|| malformed(name))
        };
        let parsed = Self {
            mchid: take("mchid")?,
            nonce_str: take("nonce_str")?,
            signature: take("signature")?,
            timestamp: take("timestamp")?.parse().map_err(|_| malformed("timestamp"))?,
            serial_no: take("serial_no")?,
        };
        if !fields.is_empty() {
            return Err(malformed("unknown field"));
        }
        Ok(parsed)
    }

    /// The server side: the timestamp is fresh and the signature over this request verifies
    /// with the merchant's public key. Which key belongs to `mchid`/`serial_no` is the
    /// caller's business.
    pub fn verify(
        &self,
        key: &RsaPublicKey,
        method: &str,
        path_with_query: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignError> {
        check_timestamp(self.timestamp, now)?;
        let message = request_message(method, path_with_query, self.timestamp, &self.nonce_str, body);
        verify_sha256_rsa(key, &message, &self.signature)
    }
}

fn check_timestamp(timestamp: i64, now: i64) -> Result<(), SignError> {
    if (now - timestamp).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(SignError::StaleTimestamp { timestamp, now });
    }
    Ok(())
}

/// WeChat Pay's public keys by serial (`Wechatpay-Serial`): several can be valid at once while
/// WeChat rotates them, and a serial we do not know is refused rather than guessed.
#[derive(Clone, Default)]
pub struct PlatformKeys {
    keys: HashMap<String, RsaPublicKey>,
}

impl fmt::Debug for PlatformKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformKeys").field("serials", &self.keys.keys().collect::<Vec<_>>()).finish()
    }
}

impl PlatformKeys {
    /// From `(serial, public key PEM)` pairs.
    pub fn from_pems<S: AsRef<str>, P: AsRef<str>>(pairs: &[(S, P)]) -> Result<Self, SignError> {
        let mut keys = HashMap::new();
        for (serial, pem) in pairs {
            let serial = serial.as_ref().trim();
            if serial.is_empty() {
                return Err(SignError::Key("empty platform key serial".into()));
            }
            let key = parse_public_key_pem(pem.as_ref())
                .map_err(|e| SignError::Key(format!("platform key {serial}: {e}")))?;
            keys.insert(serial.to_string(), key);
        }
        Ok(Self { keys })
    }

    pub fn insert(&mut self, serial: impl Into<String>, key: RsaPublicKey) {
        self.keys.insert(serial.into(), key);
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn get(&self, serial: &str) -> Result<&RsaPublicKey, SignError> {
        self.keys.get(serial).ok_or_else(|| SignError::UnknownSerial(serial.to_string()))
    }
}

/// The four `Wechatpay-*` headers of a signed response or notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WechatpaySignature {
    pub timestamp: i64,
    pub nonce: String,
    pub signature: String,
    pub serial: String,
}

impl WechatpaySignature {
    /// The platform side: signs `body` with the platform key known as `serial`.
    pub fn sign(key: &RsaPrivateKey, serial: &str, timestamp: i64, nonce: &str, body: &[u8]) -> Self {
        Self {
            timestamp,
            nonce: nonce.to_string(),
            signature: sign_sha256_rsa(key, &response_message(timestamp, nonce, body)),
            serial: serial.to_string(),
        }
    }

    /// `(name, value)` pairs to put on the response or notification request.
    pub fn headers(&self) -> [(&'static str, String); 5] {
        [
            (HEADER_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_NONCE, self.nonce.clone()),
            (HEADER_SIGNATURE, self.signature.clone()),
            (HEADER_SERIAL, self.serial.clone()),
            (HEADER_SIGNATURE_TYPE, AUTH_SCHEMA.to_string()),
        ]
    }

    /// Whether the message carries any of the signature headers (an answer with none is
    /// unsigned, not badly signed).
    pub fn present_in(headers: &http::HeaderMap) -> bool {
        [HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE, HEADER_SERIAL].iter().any(|h| headers.contains_key(*h))
    }

    /// Reads the four headers; any of them missing means the message is unsigned. A
    /// `Wechatpay-Signature-Type` other than ours is refused (older messages may lack it).
    pub fn from_headers(headers: &http::HeaderMap) -> Result<Self, SignError> {
        if let Some(kind) = headers.get(HEADER_SIGNATURE_TYPE) {
            if kind.to_str().map(str::trim).ok() != Some(AUTH_SCHEMA) {
                return Err(SignError::Malformed(HEADER_SIGNATURE_TYPE.to_string()));
            }
        }
        let get = |name: &'static str| {
            headers
                .get(name)
                .ok_or(SignError::MissingHeader(name))?
                .to_str()
                .map(|v| v.trim().to_string())
                .map_err(|_| SignError::Malformed(name.to_string()))
        };
        Ok(Self {
            timestamp: get(HEADER_TIMESTAMP)?.parse().map_err(|_| SignError::Malformed(HEADER_TIMESTAMP.into()))?,
            nonce: get(HEADER_NONCE)?,
            signature: get(HEADER_SIGNATURE)?,
            serial: get(HEADER_SERIAL)?,
        })
    }

    /// The merchant side: fresh timestamp, known serial, signature valid over `body`.
    pub fn verify(&self, keys: &PlatformKeys, body: &[u8], now: i64) -> Result<(), SignError> {
        check_timestamp(self.timestamp, now)?;
        let key = keys.get(&self.serial)?;
        verify_sha256_rsa(key, &response_message(self.timestamp, &self.nonce, body), &self.signature)
    }
}

/// Verifies a response or notification from its headers and raw body (the body exactly as
/// received: re-serialised JSON would not match the signature).
pub fn verify_response(headers: &http::HeaderMap, body: &[u8], keys: &PlatformKeys, now: i64) -> Result<(), SignError> {
    WechatpaySignature::from_headers(headers)?.verify(keys, body, now)
}

fn resource_cipher(apiv3_key: &[u8], nonce: &str) -> Result<Aes256Gcm, SignError> {
    if apiv3_key.len() != 32 {
        return Err(SignError::Key("the APIv3 key must be 32 bytes".into()));
    }
    if nonce.len() != 12 {
        return Err(SignError::Malformed("resource nonce must be 12 bytes".into()));
    }
    Aes256Gcm::new_from_slice(apiv3_key).map_err(|_| SignError::Key("the APIv3 key must be 32 bytes".into()))
}

/// Decrypts a notification `resource`: AES-256-GCM keyed by the APIv3 key (its 32 characters as
/// bytes), the 12-character `nonce` as IV, `associated_data` as AAD, and `ciphertext` the base64
/// of ciphertext followed by the 16-byte tag.
pub fn decrypt_resource(
    apiv3_key: &[u8],
    nonce: &str,
    associated_data: &str,
    ciphertext_b64: &str,
) -> Result<Vec<u8>, SignError> {
    let cipher = resource_cipher(apiv3_key, nonce)?;
    let ciphertext = BASE64.decode(ciphertext_b64).map_err(|_| SignError::Malformed("resource ciphertext".into()))?;
    cipher
        .decrypt(Nonce::from_slice(nonce.as_bytes()), Payload { msg: &ciphertext, aad: associated_data.as_bytes() })
        .map_err(|_| SignError::Decrypt)
}

/// The platform side of [`decrypt_resource`]: base64(ciphertext || tag).
pub fn encrypt_resource(
    apiv3_key: &[u8],
    nonce: &str,
    associated_data: &str,
    plaintext: &[u8],
) -> Result<String, SignError> {
    let cipher = resource_cipher(apiv3_key, nonce)?;
    let sealed = cipher
        .encrypt(Nonce::from_slice(nonce.as_bytes()), Payload { msg: plaintext, aad: associated_data.as_bytes() })
        .map_err(|_| SignError::Decrypt)?;
    Ok(BASE64.encode(sealed))
}

/// `appId\ntimeStamp\nnonceStr\npackage\n`: what `paySign` covers.
pub fn pay_sign_message(app_id: &str, time_stamp: &str, nonce_str: &str, package: &str) -> String {
    format!("{app_id}\n{time_stamp}\n{nonce_str}\n{package}\n")
}

/// The object the mini-program passes to `wx.requestPayment`, signed with the merchant key.
pub fn request_payment_params(
    key: &RsaPrivateKey,
    app_id: &str,
    prepay_id: &str,
    timestamp: i64,
    nonce_str: &str,
) -> RequestPaymentParams {
    let time_stamp = timestamp.to_string();
    let package = format!("prepay_id={prepay_id}");
    let pay_sign = sign_sha256_rsa(key, pay_sign_message(app_id, &time_stamp, nonce_str, &package).as_bytes());
    RequestPaymentParams {
        app_id: app_id.to_string(),
        time_stamp,
        nonce_str: nonce_str.to_string(),
        package,
        sign_type: "RSA".to_string(),
        pay_sign,
    }
}

/// What WeChat's client does with [`RequestPaymentParams`] before charging: check `paySign`.
pub fn verify_request_payment_params(key: &RsaPublicKey, params: &RequestPaymentParams) -> Result<(), SignError> {
    if params.sign_type != "RSA" {
        return Err(SignError::Malformed("signType must be RSA".into()));
    }
    let message = pay_sign_message(&params.app_id, &params.time_stamp, &params.nonce_str, &params.package);
    verify_sha256_rsa(key, message.as_bytes(), &params.pay_sign)
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::wechatpay::test_keys;

    fn merchant() -> &'static (RsaPrivateKey, RsaPublicKey) {
        static KEYS: OnceLock<(RsaPrivateKey, RsaPublicKey)> = OnceLock::new();
        KEYS.get_or_init(|| {
            (
                parse_private_key_pem(test_keys::MERCHANT_PRIVATE_KEY_PEM).unwrap(),
                parse_public_key_pem(test_keys::MERCHANT_PUBLIC_KEY_PEM).unwrap(),
            )
        })
    }

    fn platform() -> &'static (RsaPrivateKey, RsaPublicKey) {
        static KEYS: OnceLock<(RsaPrivateKey, RsaPublicKey)> = OnceLock::new();
        KEYS.get_or_init(|| {
            (
                parse_private_key_pem(test_keys::PLATFORM_PRIVATE_KEY_PEM).unwrap(),
                parse_public_key_pem(test_keys::PLATFORM_PUBLIC_KEY_PEM).unwrap(),
            )
        })
    }

    #[test]
    fn messages_have_the_documented_shape() {
        assert_eq!(
            request_message("GET", "/v3/certificates", 1554208460, "593BEC0C930BF1AFEB40B4A08C8FB242", b""),
            b"GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n".to_vec()
        );
        assert_eq!(
            request_message("POST", "/v3/pay/transactions/jsapi", 1, "n", br#"{"a":1}"#),
            b"POST\n/v3/pay/transactions/jsapi\n1\nn\n{\"a\":1}\n".to_vec()
        );
        assert_eq!(response_message(1554209980, "c5ac7061", b""), b"1554209980\nc5ac7061\n\n".to_vec());
        assert_eq!(
            pay_sign_message("wx8888888888888888", "1414561699", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", "prepay_id=123"),
            "wx8888888888888888\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nprepay_id=123\n"
        );
    }

    #[test]
    fn keys_parse_in_both_encodings_and_garbage_is_refused() {
        let (private, public) = merchant();
        assert_eq!(&private.to_public_key(), public);
        let pkcs1 = rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_pem(private, LineEnding::LF).unwrap();
        assert_eq!(&parse_private_key_pem(&pkcs1).unwrap(), private);
        let pkcs1_pub = rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_pem(public, LineEnding::LF).unwrap();
        assert_eq!(&parse_public_key_pem(&pkcs1_pub).unwrap(), public);
        let err = parse_private_key_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").unwrap_err();
        assert!(matches!(err, SignError::Key(_)));
        assert!(parse_public_key_pem(test_keys::MERCHANT_PRIVATE_KEY_PEM).is_err());
    }

    #[test]
    fn signatures_verify_only_with_the_matching_key_and_message() {
        let (private, public) = merchant();
        let sig = sign_sha256_rsa(private, b"hello\n");
        // PKCS#1 v1.5 is deterministic, and a 2048-bit signature is 256 bytes.
        assert_eq!(sig, sign_sha256_rsa(private, b"hello\n"));
        assert_eq!(BASE64.decode(&sig).unwrap().len(), 256);
        verify_sha256_rsa(public, b"hello\n", &sig).unwrap();
        assert_eq!(verify_sha256_rsa(public, b"hello", &sig), Err(SignError::BadSignature));
        assert_eq!(verify_sha256_rsa(&platform().1, b"hello\n", &sig), Err(SignError::BadSignature));
        assert!(matches!(verify_sha256_rsa(public, b"hello\n", "%%%"), Err(SignError::Malformed(_))));
        assert_eq!(verify_sha256_rsa(public, b"hello\n", "AAAA"), Err(SignError::BadSignature));
    }

    #[test]
    fn authorization_header_round_trips_and_verifies() {
        let (private, public) = merchant();
        let body = br#"{"mchid":"1900009191"}"#;
        let auth = Authorization::sign(private, "1900009191", "SERIAL1", "POST", "/v3/x?y=1", 1000, "NONCE", body);
        let value = auth.header_value();
        assert!(value.starts_with("WECHATPAY2-SHA256-RSA2048 mchid=\"1900009191\",nonce_str=\"NONCE\",signature=\""));
        assert!(value.ends_with(",timestamp=\"1000\",serial_no=\"SERIAL1\""));
        let parsed = Authorization::parse(&value).unwrap();
        assert_eq!(parsed, auth);
        parsed.verify(public, "POST", "/v3/x?y=1", body, 1000 + MAX_CLOCK_SKEW_SECS).unwrap();
        assert_eq!(parsed.verify(public, "GET", "/v3/x?y=1", body, 1000), Err(SignError::BadSignature));
        assert_eq!(parsed.verify(public, "POST", "/v3/x?y=2", body, 1000), Err(SignError::BadSignature));
        assert_eq!(parsed.verify(public, "POST", "/v3/x?y=1", b"{}", 1000), Err(SignError::BadSignature));
        assert_eq!(parsed.verify(&platform().1, "POST", "/v3/x?y=1", body, 1000), Err(SignError::BadSignature));
        assert!(matches!(
            parsed.verify(public, "POST", "/v3/x?y=1", body, 1000 + MAX_CLOCK_SKEW_SECS + 1),
            Err(SignError::StaleTimestamp { .. })
        ));
    }

    #[test]
    fn authorization_parse_accepts_any_order_and_rejects_junk() {
        // The documented example header, fields reordered.
        let doc = r#"WECHATPAY2-SHA256-RSA2048 serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",mchid="1900009191",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",timestamp="1554208460",signature="uOVRnA4qG/MNnYzdQxJanN+zU+lTgIcnU9BxGw5dKjK+VdEUz2FeIoC+D5sB/LN+nGzX3hfZg6r5wT1pl2ZobmIc6p0ldN7J6yDgUzbX8Uk3sD4a4eZVPTBvqNDoUqcYMlZ9uuDdCvNv4TM3c1WzsXUrExwVkI1XO5jCNbgDJ25nkT/c1gIFvqoogl7MdSFGc4W4xZsqCItnqbypR3RuGIlR9h9vlRsy7zJR9PBI83X8alLDIfR1ukt1P7tMnmogZ0cuDY8cZsd8ZlCgLadmvej58SLsIkVxFJ8XyUgx9FmutKSYTmYtWBZ0+tNvfGmbXU7cob8H/4nLBiCwIUFluw==""#;
        let parsed = Authorization::parse(doc).unwrap();
        assert_eq!(parsed.mchid, "1900009191");
        assert_eq!(parsed.timestamp, 1554208460);
        assert_eq!(parsed.serial_no, "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C");
        assert!(parsed.signature.ends_with("IUFluw=="));
        for bad in [
            "",
            "Bearer abc",
            r#"WECHATPAY2-SHA256-RSA2048mchid="1""#,
            r#"WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",signature="s",timestamp="1""#,
            r#"WECHATPAY2-SHA256-RSA2048 mchid=1,nonce_str="n",signature="s",timestamp="1",serial_no="x""#,
            r#"WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",signature="s",timestamp="x",serial_no="x""#,
            r#"WECHATPAY2-SHA256-RSA2048 mchid="1",mchid="2",nonce_str="n",signature="s",timestamp="1",serial_no="x""#,
            r#"WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",signature="s",timestamp="1",serial_no="x",extra="y""#,
        ] {
            assert!(matches!(Authorization::parse(bad), Err(SignError::Malformed(_))), "{bad}");
        }
    }

    fn header_map(sig: &WechatpaySignature) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for (name, value) in sig.headers() {
            headers.insert(name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn response_signatures_check_serial_key_timestamp_and_body() {
        let keys = PlatformKeys::from_pems(&[("PUB_KEY_ID_1", test_keys::PLATFORM_PUBLIC_KEY_PEM)]).unwrap();
        let body = br#"{"prepay_id":"wx1"}"#;
        let sig = WechatpaySignature::sign(&platform().0, "PUB_KEY_ID_1", 5000, "abc", body);
        let headers = header_map(&sig);
        assert_eq!(WechatpaySignature::from_headers(&headers).unwrap(), sig);
        verify_response(&headers, body, &keys, 5000 - MAX_CLOCK_SKEW_SECS).unwrap();
        assert_eq!(verify_response(&headers, br#"{"prepay_id":"wx2"}"#, &keys, 5000), Err(SignError::BadSignature));
        assert!(matches!(verify_response(&headers, body, &keys, 5400), Err(SignError::StaleTimestamp { .. })));

        let unknown = WechatpaySignature { serial: "PUB_KEY_ID_2".into(), ..sig.clone() };
        assert_eq!(unknown.verify(&keys, body, 5000), Err(SignError::UnknownSerial("PUB_KEY_ID_2".into())));
        // Signed by someone else (the merchant key) under the platform's serial.
        let forged = WechatpaySignature::sign(&merchant().0, "PUB_KEY_ID_1", 5000, "abc", body);
        assert_eq!(forged.verify(&keys, body, 5000), Err(SignError::BadSignature));

        let mut missing = headers.clone();
        missing.remove(HEADER_SIGNATURE);
        assert_eq!(verify_response(&missing, body, &keys, 5000), Err(SignError::MissingHeader(HEADER_SIGNATURE)));
        assert!(format!("{keys:?}").contains("PUB_KEY_ID_1"));
    }

    #[test]
    fn resource_encryption_round_trips_and_detects_tampering() {
        let key = test_keys::APIV3_KEY.as_bytes();
        let sealed = encrypt_resource(key, "0123456789ab", "transaction", b"{\"x\":1}").unwrap();
        // Ciphertext plus the 16-byte GCM tag.
        assert_eq!(BASE64.decode(&sealed).unwrap().len(), 7 + 16);
        assert_eq!(decrypt_resource(key, "0123456789ab", "transaction", &sealed).unwrap(), b"{\"x\":1}");
        assert_eq!(decrypt_resource(key, "0123456789ab", "refund", &sealed), Err(SignError::Decrypt));
        assert_eq!(decrypt_resource(key, "0123456789ac", "transaction", &sealed), Err(SignError::Decrypt));
        assert_eq!(
            decrypt_resource(b"ffffffffffffffffffffffffffffffff", "0123456789ab", "transaction", &sealed),
            Err(SignError::Decrypt)
        );
        let mut raw = BASE64.decode(&sealed).unwrap();
        raw[0] ^= 1;
        assert_eq!(decrypt_resource(key, "0123456789ab", "transaction", &BASE64.encode(raw)), Err(SignError::Decrypt));
        assert!(matches!(decrypt_resource(b"short", "0123456789ab", "", &sealed), Err(SignError::Key(_))));
        assert!(matches!(decrypt_resource(key, "short", "", &sealed), Err(SignError::Malformed(_))));
    }

    /// NIST GCM test case 14 (AES-256, 96-bit IV, zero key/IV/plaintext), as a known answer that
    /// does not come from our own encrypt function. Its IV is not 12 *printable* characters,
    /// so it goes through the same AEAD our resource functions wrap.
    #[test]
    fn aes_256_gcm_known_answer() {
        let cipher = Aes256Gcm::new_from_slice(&[0u8; 32]).unwrap();
        let sealed = cipher.encrypt(Nonce::from_slice(&[0u8; 12]), [0u8; 16].as_slice()).unwrap();
        let hex: String = sealed.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
    }

    #[test]
    fn pay_params_are_signed_over_the_four_lines() {
        let params = request_payment_params(
            &merchant().0,
            "wx8888888888888888",
            "wx201410272009395522657a690389285100",
            1414561699,
            "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
        );
        assert_eq!(params.package, "prepay_id=wx201410272009395522657a690389285100");
        assert_eq!(params.sign_type, "RSA");
        assert_eq!(params.time_stamp, "1414561699");
        verify_request_payment_params(&merchant().1, &params).unwrap();
        let message = pay_sign_message(&params.app_id, &params.time_stamp, &params.nonce_str, &params.package);
        assert_eq!(params.pay_sign, sign_sha256_rsa(&merchant().0, message.as_bytes()));
        let tampered = RequestPaymentParams { package: "prepay_id=other".into(), ..params.clone() };
        assert_eq!(verify_request_payment_params(&merchant().1, &tampered), Err(SignError::BadSignature));
        // wx.requestPayment wants camelCase keys.
        let json = serde_json::to_value(&params).unwrap();
        for key in ["appId", "timeStamp", "nonceStr", "package", "signType", "paySign"] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
    }

    #[test]
    fn nonces_have_the_right_lengths() {
        assert_eq!(nonce().len(), 32);
        assert_eq!(resource_nonce().len(), 12);
        assert_ne!(nonce(), nonce());
    }
}
