//! Alipay OpenAPI (`gateway.do`, version 1.0) signature rules with `sign_type=RSA2`: pure
//! functions shared by the client and the sandbox, so both sides come from one place.
//!
//! The rules, as Alipay's signing guide (docs.open.alipay.com/200/106120, 签名与验签) states them
//! and as the independent `python-alipay-sdk` 3.4.0 implements them (`sign_data`, `verify`,
//! `_get_string_to_be_signed`), which the cross-check test runs against this code:
//! - a request is signed over every parameter except `sign` (so `sign_type` is included), empty
//!   values left out, sorted by name in byte order, joined as `k=v` with `&`, values raw (not
//!   URL-encoded); RSA2 is SHA256withRSA (PKCS#1 v1.5), base64;
//! - an asynchronous notification is verified the same way over its (URL-decoded) parameters
//!   minus `sign` *and* `sign_type`;
//! - a synchronous answer `{"alipay_trade_query_response":{...},"sign":"..."}` is signed over
//!   the raw text of the `..._response` value exactly as it appears in the body, so it must be
//!   cut out of the received bytes, never re-serialised.
//!
//! The RSA primitives are WeChat Pay's (`wechatpay::sign`): one SHA256withRSA for the crate.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::{RsaPrivateKey, RsaPublicKey};

pub use crate::wechatpay::sign::SignError;
use crate::wechatpay::sign::{parse_private_key_pem, parse_public_key_pem, sign_sha256_rsa, verify_sha256_rsa};

/// The only signature type this code sends or accepts (RSA, i.e. SHA1withRSA, is legacy).
pub const SIGN_TYPE: &str = "RSA2";
pub const CHARSET: &str = "utf-8";
pub const VERSION: &str = "1.0";
pub const FORMAT: &str = "JSON";
/// `timestamp`, `notify_time`, `gmt_payment`...: Beijing time without a zone.
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// An app private key ("应用私钥") as PEM (PKCS#8 or PKCS#1), or as the bare base64 that
/// Alipay's key tool prints (no header lines).
pub fn parse_private_key(key: &str) -> Result<RsaPrivateKey, SignError> {
    let key = key.trim();
    if key.starts_with("-----BEGIN") {
        return parse_private_key_pem(key);
    }
    let der = bare_der(key)?;
    RsaPrivateKey::from_pkcs8_der(&der)
        .or_else(|_| RsaPrivateKey::from_pkcs1_der(&der))
        .map_err(|_| SignError::Key("not a PKCS#8 or PKCS#1 RSA private key".into()))
}

/// Alipay's public key ("支付宝公钥") as PEM or bare base64 (SubjectPublicKeyInfo or PKCS#1).
pub fn parse_public_key(key: &str) -> Result<RsaPublicKey, SignError> {
    let key = key.trim();
    if key.starts_with("-----BEGIN") {
        return parse_public_key_pem(key);
    }
    let der = bare_der(key)?;
    RsaPublicKey::from_public_key_der(&der)
        .or_else(|_| RsaPublicKey::from_pkcs1_der(&der))
        .map_err(|_| SignError::Key("not an RSA public key (SPKI or PKCS#1)".into()))
}

fn bare_der(key: &str) -> Result<Vec<u8>, SignError> {
    let compact: String = key.chars().filter(|c| !c.is_whitespace()).collect();
    BASE64.decode(compact).map_err(|_| SignError::Key("neither PEM nor base64".into()))
}

/// `k1=v1&k2=v2...` over the parameters not in `exclude`, empty values dropped, sorted by name.
/// A parameter given twice is refused: which of the two was signed would be a guess.
pub fn signing_string<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    exclude: &[&str],
) -> Result<String, SignError> {
    let mut pairs: Vec<(&str, &str)> =
        params.into_iter().filter(|(k, v)| !v.is_empty() && !exclude.contains(k)).collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    if pairs.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(SignError::Malformed("a parameter appears twice".into()));
    }
    Ok(pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"))
}

/// What a request signature covers (everything but `sign`).
pub fn request_signing_string<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<String, SignError> {
    signing_string(params, &["sign"])
}

/// What a notification signature covers (everything but `sign` and `sign_type`).
pub fn notification_signing_string<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String, SignError> {
    signing_string(params, &["sign", "sign_type"])
}

/// base64(SHA256withRSA(content)).
pub fn sign_rsa2(key: &RsaPrivateKey, content: &str) -> String {
    sign_sha256_rsa(key, content.as_bytes())
}

pub fn verify_rsa2(key: &RsaPublicKey, content: &str, signature: &str) -> Result<(), SignError> {
    verify_sha256_rsa(key, content.as_bytes(), signature)
}

/// Signs request parameters: returns the `sign` value to add.
pub fn sign_request<'a>(
    key: &RsaPrivateKey,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String, SignError> {
    Ok(sign_rsa2(key, &request_signing_string(params)?))
}

/// `alipay.trade.query` -> `alipay_trade_query_response`: the key of the signed answer.
pub fn response_key(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
}

/// The raw text of the JSON object under `key` in `body`, exactly as received: what the answer's
/// `sign` covers. Strings (and braces or quotes inside them) are skipped properly, unlike a
/// brace count that ignores them.
pub fn response_sign_content<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    let quoted = format!("\"{key}\"");
    let mut search = 0;
    while let Some(found) = body[search..].find(&quoted) {
        let after_key = search + found + quoted.len();
        let rest = &body[after_key..];
        let colon = rest.len() - rest.trim_start().len();
        if rest[colon..].starts_with(':') {
            let value_from = after_key + colon + 1;
            let value = &body[value_from..];
            let start = value_from + (value.len() - value.trim_start().len());
            return object_end(&body[start..]).map(|len| &body[start..start + len]);
        }
        search = after_key;
    }
    None
}

/// Length of the JSON object at the start of `s` (which must start with `{`).
fn object_end(s: &str) -> Option<usize> {
    if !s.starts_with('{') {
        return None;
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alipay::test_keys;

    #[test]
    fn signing_string_sorts_drops_empty_and_excludes() {
        let params = [
            ("method", "alipay.trade.query"),
            ("app_id", "2014072300007148"),
            ("sign", "xxx"),
            ("sign_type", "RSA2"),
            ("notify_url", ""),
            ("biz_content", r#"{"out_trade_no":"A1"}"#),
            ("charset", "utf-8"),
        ];
        assert_eq!(
            request_signing_string(params).unwrap(),
            r#"app_id=2014072300007148&biz_content={"out_trade_no":"A1"}&charset=utf-8&method=alipay.trade.query&sign_type=RSA2"#
        );
        assert_eq!(
            notification_signing_string(params).unwrap(),
            r#"app_id=2014072300007148&biz_content={"out_trade_no":"A1"}&charset=utf-8&method=alipay.trade.query"#
        );
        // Byte order: upper case before lower case, `_` (0x5F) between them.
        assert_eq!(
            signing_string([("b", "1"), ("B", "2"), ("a_b", "3"), ("aB", "4")], &[]).unwrap(),
            "B=2&aB=4&a_b=3&b=1"
        );
        assert!(signing_string([("a", "1"), ("a", "2")], &[]).is_err());
    }

    #[test]
    fn response_content_is_cut_from_the_raw_body() {
        let body = r#"{"alipay_trade_query_response" : {"code":"10000","msg":"Success","subject":"a}\"{b","list":[{"x":1}]},"sign":"abc"}"#;
        assert_eq!(
            response_sign_content(body, "alipay_trade_query_response"),
            Some(r#"{"code":"10000","msg":"Success","subject":"a}\"{b","list":[{"x":1}]}"#)
        );
        // A key that only appears inside a string value is not the response.
        let tricky =
            r#"{"x":"\"alipay_trade_query_response\"","alipay_trade_query_response":{"code":"10000"},"sign":"s"}"#;
        assert_eq!(response_sign_content(tricky, "alipay_trade_query_response"), Some(r#"{"code":"10000"}"#));
        assert_eq!(response_sign_content(r#"{"other":{}}"#, "alipay_trade_query_response"), None);
        assert_eq!(
            response_sign_content(r#"{"alipay_trade_query_response":{"a":1"#, "alipay_trade_query_response"),
            None
        );
        assert_eq!(
            response_key("alipay.data.dataservice.bill.downloadurl.query"),
            "alipay_data_dataservice_bill_downloadurl_query_response"
        );
    }

    #[test]
    fn keys_parse_as_pem_or_bare_base64_and_signatures_verify() {
        let private = parse_private_key(test_keys::APP_PRIVATE_KEY_PEM).unwrap();
        let public = parse_public_key(test_keys::APP_PUBLIC_KEY_PEM).unwrap();
        let bare = |pem: &str| pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>();
        assert_eq!(parse_private_key(&bare(test_keys::APP_PRIVATE_KEY_PEM)).unwrap(), private);
        assert_eq!(parse_public_key(&bare(test_keys::APP_PUBLIC_KEY_PEM)).unwrap(), public);
        assert!(parse_private_key("not a key").is_err());
        assert!(parse_public_key(&bare(test_keys::APP_PRIVATE_KEY_PEM)).is_err());

        let sig = sign_request(&private, [("a", "1"), ("sign", "ignored"), ("b", "")]).unwrap();
        verify_rsa2(&public, "a=1", &sig).unwrap();
        assert!(verify_rsa2(&public, "a=2", &sig).is_err());
        let alipay = parse_public_key(test_keys::ALIPAY_PUBLIC_KEY_PEM).unwrap();
        assert!(verify_rsa2(&alipay, "a=1", &sig).is_err());
    }
}
