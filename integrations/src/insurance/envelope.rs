//! The mobile-payment envelope of the national medical security platform (国家医保 移动支付):
//! every request and answer is `{appId, encType:"SM4", signType:"SM2", timestamp, version,
//! encData, signData, ...}`, the business `data` SM4-encrypted into `encData` and the whole
//! message signed with SM3withSM2 into `signData`. Client and sandbox both seal and open with
//! this one implementation; the gmssl cross-check in the tests holds it to an independent one.
//!
//! The rules, and where each comes from, are in the module doc of [`super`] ("The envelope").

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value};
use sm2::dsa::signature::{Signer, Verifier};
use sm2::dsa::{Signature, SigningKey, VerifyingKey};
use sm4::cipher::generic_array::GenericArray;
use sm4::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use sm4::Sm4;

pub const ENC_TYPE: &str = "SM4";
pub const SIGN_TYPE: &str = "SM2";
/// The envelope version the national specification's examples carry.
pub const VERSION: &str = "2.0.1";
/// GM/T 0009's default SM2 distinguishing identifier, used unless configured otherwise.
pub const STANDARD_USER_ID: &str = "1234567812345678";
/// Fields that never take part in the signature (spec §2.3.1.2.1: 剔除 signData、encData、extra).
const UNSIGNED_FIELDS: [&str; 3] = ["signData", "encData", "extra"];
const BLOCK: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("invalid key: {0}")]
    Key(String),
    #[error("malformed envelope: {0}")]
    Malformed(String),
    #[error("signData does not verify")]
    Signature,
    #[error("encData does not decrypt: {0}")]
    Decrypt(String),
    #[error("timestamp {0:?} is missing, malformed or outside the allowed window")]
    Timestamp(String),
}

/// Beijing time: the platform's timestamps are local time without an offset.
pub fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

/// `yyyyMMddHHmmss` in Beijing time, the form of the specification's examples.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.with_timezone(&beijing()).format("%Y%m%d%H%M%S").to_string()
}

/// Reads a `timestamp`: `yyyyMMddHHmmss` Beijing time, or milliseconds since the epoch (some
/// vendors' SDKs send that).
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match text.len() {
        14 => {
            let naive = NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%S").ok()?;
            beijing().from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc))
        }
        13 => DateTime::from_timestamp_millis(text.parse().ok()?),
        _ => None,
    }
}

/// Refuses a timestamp further than `window` from `now` either way (replayed or badly clocked).
pub fn check_timestamp(text: &str, now: DateTime<Utc>, window: chrono::Duration) -> Result<(), EnvelopeError> {
    match parse_timestamp(text) {
        Some(t) if (t - now).abs() <= window => Ok(()),
        _ => Err(EnvelopeError::Timestamp(text.to_string())),
    }
}

/// The SM4 message key, derived from the channel's appId and appSecret (spec §2.3.2.2 as the
/// platform's SDK implements it): SM4-ECB/PKCS#7 encrypt the appSecret under the first 16
/// bytes of the appId, hex-encode upper case, and take the first 16 characters' ASCII bytes.
#[derive(Clone)]
pub struct Sm4Key([u8; BLOCK]);

impl std::fmt::Debug for Sm4Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sm4Key([REDACTED])")
    }
}

impl Sm4Key {
    pub fn derive(app_id: &str, app_secret: &str) -> Result<Self, EnvelopeError> {
        let seed: [u8; BLOCK] = app_id
            .as_bytes()
            .get(..BLOCK)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| EnvelopeError::Key("appId must be at least 16 bytes".into()))?;
        if app_secret.is_empty() {
            return Err(EnvelopeError::Key("appSecret is empty".into()));
        }
        let encrypted = hex::encode_upper(sm4_ecb_encrypt(&seed, app_secret.as_bytes()));
        let key: [u8; BLOCK] = encrypted.as_bytes()[..BLOCK].try_into().expect("a block of hex is 32 characters");
        Ok(Self(key))
    }

    pub fn from_bytes(key: [u8; BLOCK]) -> Self {
        Self(key)
    }

    pub fn bytes(&self) -> &[u8; BLOCK] {
        &self.0
    }

    /// SM4-ECB with PKCS#7 padding, hex upper case.
    pub fn encrypt_hex(&self, plain: &[u8]) -> String {
        hex::encode_upper(sm4_ecb_encrypt(&self.0, plain))
    }

    /// Accepts upper or lower case hex.
    pub fn decrypt_hex(&self, text: &str) -> Result<Vec<u8>, EnvelopeError> {
        let cipher = hex::decode(text.trim()).map_err(|e| EnvelopeError::Decrypt(format!("not hex: {e}")))?;
        sm4_ecb_decrypt(&self.0, &cipher)
    }
}

fn sm4_ecb_encrypt(key: &[u8; BLOCK], plain: &[u8]) -> Vec<u8> {
    let cipher = Sm4::new(GenericArray::from_slice(key));
    // PKCS#7: always pad, a whole block when the input is already aligned.
    let pad = BLOCK - plain.len() % BLOCK;
    let mut out = Vec::with_capacity(plain.len() + pad);
    out.extend_from_slice(plain);
    out.extend(std::iter::repeat_n(pad as u8, pad));
    for block in out.chunks_exact_mut(BLOCK) {
        cipher.encrypt_block(GenericArray::from_mut_slice(block));
    }
    out
}

fn sm4_ecb_decrypt(key: &[u8; BLOCK], cipher_text: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    if cipher_text.is_empty() || !cipher_text.len().is_multiple_of(BLOCK) {
        return Err(EnvelopeError::Decrypt("length is not a positive multiple of 16".into()));
    }
    let cipher = Sm4::new(GenericArray::from_slice(key));
    let mut out = cipher_text.to_vec();
    for block in out.chunks_exact_mut(BLOCK) {
        cipher.decrypt_block(GenericArray::from_mut_slice(block));
    }
    let pad = usize::from(*out.last().expect("not empty"));
    let valid = (1..=BLOCK).contains(&pad) && out[out.len() - pad..].iter().all(|&b| usize::from(b) == pad);
    if !valid {
        // A wrong key almost always lands here.
        return Err(EnvelopeError::Decrypt("bad PKCS#7 padding (wrong key?)".into()));
    }
    out.truncate(out.len() - pad);
    Ok(out)
}

/// Drops null, empty strings, and objects or arrays left empty, at every depth: empty values
/// take no part in the signature (spec: 空值不参与签名). `None` when nothing is left.
pub fn clean(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::Array(items) => {
            let kept: Vec<Value> = items.iter().filter_map(clean).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        Value::Object(map) => {
            let kept: Map<String, Value> = map.iter().filter_map(|(k, v)| clean(v).map(|v| (k.clone(), v))).collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        other => Some(other.clone()),
    }
}

/// Compact JSON with object keys in ascending byte order at every depth and non-ASCII text
/// left as it is: the form `data` takes in the signature string and in `encData`. The same
/// bytes as Python's `json.dumps(v, ensure_ascii=False, sort_keys=True, separators=(",", ":"))`.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The string that is signed (spec §2.3.1.2): every top-level field but signData, encData and
/// extra, empty ones left out, in ascending key order as `key=value` joined by `&`, objects
/// and arrays as [`canonical_json`], then `&key=` and the appSecret.
pub fn sign_string(fields: &Map<String, Value>, app_secret: &str) -> String {
    let mut keys: Vec<&String> = fields.keys().filter(|k| !UNSIGNED_FIELDS.contains(&k.as_str())).collect();
    keys.sort();
    let mut parts = Vec::with_capacity(keys.len() + 1);
    for key in keys {
        let Some(value) = clean(&fields[key]) else { continue };
        let text = match value {
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            other => canonical_json(&other),
        };
        parts.push(format!("{key}={text}"));
    }
    parts.push(format!("key={app_secret}"));
    parts.join("&")
}

fn decode_key_text(text: &str, what: &str) -> Result<Vec<u8>, EnvelopeError> {
    let text = text.trim();
    let is_hex = matches!(text.len(), 64 | 128 | 130) && text.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex {
        hex::decode(text).map_err(|e| EnvelopeError::Key(format!("{what}: {e}")))
    } else {
        BASE64.decode(text).map_err(|e| EnvelopeError::Key(format!("{what}: neither hex nor base64: {e}")))
    }
}

/// An SM2 private key as the platform issues it: the 32-byte scalar in base64 (or 64 hex
/// characters). `user_id` is the SM2 distinguishing identifier signed with.
pub fn parse_private_key(text: &str, user_id: &str) -> Result<SigningKey, EnvelopeError> {
    let bytes = decode_key_text(text, "private key")?;
    if bytes.len() != 32 {
        return Err(EnvelopeError::Key(format!("private key is {} bytes, not 32", bytes.len())));
    }
    SigningKey::from_slice(user_id, &bytes)
        .map_err(|_| EnvelopeError::Key("private key is not a valid SM2 scalar".into()))
}

/// An SM2 public key: the uncompressed point `04‖X‖Y` or bare `X‖Y`, in base64 or hex.
pub fn parse_public_key(text: &str, user_id: &str) -> Result<VerifyingKey, EnvelopeError> {
    let mut bytes = decode_key_text(text, "public key")?;
    if bytes.len() == 64 {
        bytes.insert(0, 0x04);
    }
    if bytes.len() != 65 || bytes[0] != 0x04 {
        return Err(EnvelopeError::Key("public key must be 04‖X‖Y (65 bytes) or X‖Y (64 bytes)".into()));
    }
    VerifyingKey::from_sec1_bytes(user_id, &bytes)
        .map_err(|_| EnvelopeError::Key("public key is not a point on the SM2 curve".into()))
}

/// The public half of a private key, as base64 of `04‖X‖Y`.
pub fn public_key_base64(key: &SigningKey) -> String {
    BASE64.encode(key.verifying_key().to_sec1_bytes())
}

/// A fresh key pair `(private base64, public base64)`, e.g. for a new sandbox.
pub fn generate_key_pair() -> (String, String) {
    let secret = sm2::SecretKey::random(&mut rand::rngs::OsRng);
    let signing = SigningKey::new(STANDARD_USER_ID, &secret).expect("a random scalar is a valid key");
    (BASE64.encode(secret.to_bytes()), public_key_base64(&signing))
}

/// `r‖s`, 64 bytes, base64: the form of `signData`.
pub fn sign(key: &SigningKey, message: &str) -> String {
    let signature: Signature = key.sign(message.as_bytes());
    BASE64.encode(signature.to_bytes())
}

pub fn verify(key: &VerifyingKey, message: &str, sign_data: &str) -> Result<(), EnvelopeError> {
    let raw = BASE64.decode(sign_data.trim()).map_err(|_| EnvelopeError::Signature)?;
    let raw: [u8; 64] = raw.as_slice().try_into().map_err(|_| EnvelopeError::Signature)?;
    let signature = Signature::from_bytes(&raw).map_err(|_| EnvelopeError::Signature)?;
    key.verify(message.as_bytes(), &signature).map_err(|_| EnvelopeError::Signature)
}

/// One side of the conversation: seals with its own key, opens what the other side signed.
/// The hospital's client holds the channel key and the platform's public key; the sandbox the
/// reverse. Both share the appId, the appSecret and so the SM4 key.
pub struct Sealer {
    app_id: String,
    app_secret: String,
    sm4: Sm4Key,
    own: SigningKey,
    peer: VerifyingKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("app_id", &self.app_id).finish_non_exhaustive()
    }
}

/// An envelope whose signature verified: its plain top-level fields and the decrypted data.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// Every top-level field but encData and signData (appId, timestamp, code, message, ...).
    pub fields: Map<String, Value>,
    /// The decrypted business data; `None` when the envelope carried no encData (refusals).
    pub data: Option<Value>,
}

impl Opened {
    pub fn field_str(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }
}

impl Sealer {
    pub fn new(
        app_id: &str,
        app_secret: &str,
        own_private_key: &str,
        peer_public_key: &str,
        user_id: &str,
    ) -> Result<Self, EnvelopeError> {
        if app_id.trim().is_empty() {
            return Err(EnvelopeError::Key("appId is empty".into()));
        }
        Ok(Self {
            app_id: app_id.to_string(),
            app_secret: app_secret.to_string(),
            sm4: Sm4Key::derive(app_id, app_secret)?,
            own: parse_private_key(own_private_key, user_id)?,
            peer: parse_public_key(peer_public_key, user_id)?,
        })
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Signs `data` together with the envelope fields and `extra_fields` (an answer's code,
    /// message, success), then replaces `data` by its encryption. `data: None` seals an answer
    /// with no business data (a refusal): signed, nothing encrypted.
    pub fn seal(&self, data: Option<&Value>, extra_fields: Map<String, Value>, timestamp: &str) -> Value {
        let mut fields = extra_fields;
        fields.insert("appId".into(), Value::String(self.app_id.clone()));
        fields.insert("encType".into(), ENC_TYPE.into());
        fields.insert("signType".into(), SIGN_TYPE.into());
        fields.insert("timestamp".into(), Value::String(timestamp.to_string()));
        fields.insert("version".into(), VERSION.into());
        let cleaned = data.and_then(clean);
        if let Some(cleaned) = &cleaned {
            fields.insert("data".into(), cleaned.clone());
        }
        let sign_data = sign(&self.own, &sign_string(&fields, &self.app_secret));
        fields.remove("data");
        if let Some(cleaned) = &cleaned {
            fields.insert("encData".into(), Value::String(self.sm4.encrypt_hex(canonical_json(cleaned).as_bytes())));
        }
        fields.insert("signData".into(), Value::String(sign_data));
        Value::Object(fields)
    }

    /// Checks appId, encType and signType, decrypts encData and verifies signData over the
    /// decrypted data and every other signed field. The timestamp window is the caller's.
    pub fn open(&self, envelope: &Value) -> Result<Opened, EnvelopeError> {
        let Value::Object(map) = envelope else {
            return Err(EnvelopeError::Malformed("not a JSON object".into()));
        };
        let text = |name: &str| map.get(name).and_then(Value::as_str);
        match text("appId") {
            Some(id) if id == self.app_id => {}
            Some(other) => return Err(EnvelopeError::Malformed(format!("appId {other:?} is not ours"))),
            None => return Err(EnvelopeError::Malformed("appId is missing".into())),
        }
        if text("encType") != Some(ENC_TYPE) || text("signType") != Some(SIGN_TYPE) {
            return Err(EnvelopeError::Malformed("encType must be SM4 and signType SM2".into()));
        }
        if map.contains_key("data") {
            // Business data travels encrypted only; a plaintext copy beside it could differ.
            return Err(EnvelopeError::Malformed("plaintext data beside encData".into()));
        }
        let sign_data = text("signData")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| EnvelopeError::Malformed("signData is missing".into()))?;
        let data = match text("encData").filter(|s| !s.trim().is_empty()) {
            Some(enc) => {
                let plain = self.sm4.decrypt_hex(enc)?;
                let value: Value = serde_json::from_slice(&plain)
                    .map_err(|e| EnvelopeError::Decrypt(format!("decrypted data is not JSON: {e}")))?;
                Some(value)
            }
            None => None,
        };
        let mut fields: Map<String, Value> = map
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "encData" | "signData"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut signed = fields.clone();
        if let Some(data) = &data {
            signed.insert("data".into(), data.clone());
        }
        verify(&self.peer, &sign_string(&signed, &self.app_secret), sign_data)?;
        fields.remove("data");
        Ok(Opened { fields, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// GB/T 32907-2016 Appendix A.1: the standard's own SM4 example, one block.
    #[test]
    fn sm4_matches_the_standard_example() {
        let key: [u8; 16] = hex::decode("0123456789abcdeffedcba9876543210").unwrap().try_into().unwrap();
        let cipher = Sm4::new(GenericArray::from_slice(&key));
        let mut block = GenericArray::clone_from_slice(&key);
        cipher.encrypt_block(&mut block);
        assert_eq!(hex::encode(block), "681edf34d206965e86b3e94f536e4246");
        // With PKCS#7 a whole block of padding follows an aligned input.
        assert_eq!(sm4_ecb_encrypt(&key, &key).len(), 32);
        assert_eq!(sm4_ecb_decrypt(&key, &sm4_ecb_encrypt(&key, b"abc")).unwrap(), b"abc");
        assert!(sm4_ecb_decrypt(&key, &[0u8; 15]).is_err());
    }

    #[test]
    fn canonical_json_sorts_drops_empties_and_keeps_chinese() {
        let v = json!({"b": 1, "a": {"z": "", "y": null, "x": "甲类"}, "c": [], "d": [{"q": ""}, "t\"\n"], "e": true});
        let cleaned = clean(&v).unwrap();
        assert_eq!(canonical_json(&cleaned), r#"{"a":{"x":"甲类"},"b":1,"d":["t\"\n"],"e":true}"#);
        assert_eq!(clean(&json!({"a": {"b": ""}})), None);
    }

    #[test]
    fn sign_string_follows_the_specification_example() {
        // The layout of the specification's example (§2.3.1.2): appId, data, encType, signType,
        // timestamp, version, then the appSecret; signData and encData left out.
        let fields = json!({
            "appId": "43AF047BBA47FC8A1AE8EFB2XXXXXXXX",
            "data": {"appId": "43AF047BBA47FC8A1AE8EFB2XXXXXXXX", "appUserId": "o8z4C5avQXqC0aWFPf1Mzu6D7WCQ_bd",
                     "idNo": "350181199011193519", "idType": "01", "phoneNumber": "13763873033", "userName": "测试"},
            "encType": "SM4",
            "signData": "ignored",
            "encData": "ignored",
            "extra": {"ignored": true},
            "signType": "SM2",
            "timestamp": "20200207175759",
            "version": "2.0.1",
            "empty": ""
        });
        assert_eq!(
            sign_string(fields.as_object().unwrap(), "SECRET"),
            "appId=43AF047BBA47FC8A1AE8EFB2XXXXXXXX&data={\"appId\":\"43AF047BBA47FC8A1AE8EFB2XXXXXXXX\",\
             \"appUserId\":\"o8z4C5avQXqC0aWFPf1Mzu6D7WCQ_bd\",\"idNo\":\"350181199011193519\",\"idType\":\"01\",\
             \"phoneNumber\":\"13763873033\",\"userName\":\"测试\"}&encType=SM4&signType=SM2&timestamp=20200207175759\
             &version=2.0.1&key=SECRET"
        );
    }

    #[test]
    fn timestamps_in_both_forms_and_the_window() {
        let t = parse_timestamp("20200207175759").unwrap();
        assert_eq!(t.to_rfc3339(), "2020-02-07T09:57:59+00:00");
        assert_eq!(parse_timestamp("1581069479000"), Some(t));
        assert_eq!(timestamp(t), "20200207175759");
        assert!(parse_timestamp("2020-02-07").is_none());
        assert!(
            check_timestamp("20200207175759", t + chrono::Duration::minutes(4), chrono::Duration::minutes(5)).is_ok()
        );
        assert!(
            check_timestamp("20200207175759", t + chrono::Duration::minutes(6), chrono::Duration::minutes(5)).is_err()
        );
    }

    #[test]
    fn seal_then_open_and_tampering_is_caught() {
        let (hospital_private, hospital_public) = generate_key_pair();
        let (platform_private, platform_public) = generate_key_pair();
        let app_id = "1HOSPSANDBOX0APP0000000000000001";
        let hospital = Sealer::new(app_id, "S3CRET", &hospital_private, &platform_public, STANDARD_USER_ID).unwrap();
        let platform = Sealer::new(app_id, "S3CRET", &platform_private, &hospital_public, STANDARD_USER_ID).unwrap();
        let data = json!({"payOrdId": "ORD1", "feeSumamt": "350.00", "note": ""});
        let sealed = hospital.seal(Some(&data), Map::new(), "20240101120000");
        assert!(sealed.get("data").is_none(), "data travels encrypted only");
        let opened = platform.open(&sealed).unwrap();
        assert_eq!(opened.data, Some(json!({"payOrdId": "ORD1", "feeSumamt": "350.00"})));
        assert_eq!(opened.field_str("timestamp"), Some("20240101120000"));

        // The sender cannot open its own envelope with the receiver's expectations reversed.
        assert_eq!(hospital.open(&sealed), Err(EnvelopeError::Signature));
        let mut changed = sealed.clone();
        changed["timestamp"] = "20240101120001".into();
        assert_eq!(platform.open(&changed), Err(EnvelopeError::Signature));
        let mut other_data = sealed.clone();
        other_data["encData"] = hospital.sm4.encrypt_hex(br#"{"payOrdId":"ORD2"}"#).into();
        assert_eq!(platform.open(&other_data), Err(EnvelopeError::Signature));
        let wrong_key = Sealer::new(app_id, "OTHER", &platform_private, &hospital_public, STANDARD_USER_ID).unwrap();
        assert!(matches!(wrong_key.open(&sealed), Err(EnvelopeError::Decrypt(_))));
        // A different SM2 user id is a different signature.
        let other_uid = Sealer::new(app_id, "S3CRET", &platform_private, &hospital_public, "S3CRET").unwrap();
        assert_eq!(other_uid.open(&sealed), Err(EnvelopeError::Signature));

        // A refusal: signed, no data.
        let mut extra = Map::new();
        extra.insert("code".into(), 10003.into());
        extra.insert("message".into(), "验签失败".into());
        let refusal = platform.seal(None, extra, "20240101120000");
        assert!(refusal.get("encData").is_none());
        let opened = hospital.open(&refusal).unwrap();
        assert_eq!((opened.data, opened.fields["code"].as_i64()), (None, Some(10003)));
    }

    #[test]
    fn keys_parse_in_base64_and_hex() {
        let (private, public) = generate_key_pair();
        let signing = parse_private_key(&private, STANDARD_USER_ID).unwrap();
        assert_eq!(public_key_base64(&signing), public);
        let raw = BASE64.decode(&public).unwrap();
        assert!(parse_public_key(&hex::encode(&raw), STANDARD_USER_ID).is_ok());
        assert!(parse_public_key(&BASE64.encode(&raw[1..]), STANDARD_USER_ID).is_ok());
        let raw_private = BASE64.decode(&private).unwrap();
        assert!(parse_private_key(&hex::encode(raw_private), STANDARD_USER_ID).is_ok());
        assert!(parse_private_key("AAAA", STANDARD_USER_ID).is_err());
        assert!(parse_public_key(&BASE64.encode([4u8; 65]), STANDARD_USER_ID).is_err());
    }
}
