//! Aliyun RPC signature version 1.0 (HMAC-SHA1): percent-encoding, canonicalised query,
//! string-to-sign and signature. Pure functions, shared by every Aliyun RPC client (SMS,
//! cloudauth) and their sandboxes, so both sides of the protocol are computed by one audited
//! piece of code.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// Everything but RFC 3986 unreserved characters is escaped. Aliyun is explicit that space is
/// `%20` (not `+`), `*` is `%2A` and `~` stays, which is exactly this set.
const ALIYUN_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes one key or value of the UTF-8 string per Aliyun's rules (upper-case hex).
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, ALIYUN_ESCAPE).to_string()
}

/// `k1=v1&k2=v2...` sorted by parameter name, every name and value encoded; the `Signature`
/// parameter itself is never part of what is signed.
pub fn canonicalized_query(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .filter(|(k, _)| k.as_str() != "Signature")
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET&%2F&` + the encoded canonical query: the HTTP method and the encoded path `/` are
/// signed too, so a captured GET cannot be replayed as another method or path.
pub fn string_to_sign(method: &str, canonicalized: &str) -> String {
    format!("{method}&{}&{}", percent_encode("/"), percent_encode(canonicalized))
}

fn mac(access_key_secret: &str, string_to_sign: &str) -> HmacSha1 {
    // Aliyun keys the HMAC with the secret plus a literal '&'.
    let mut mac =
        HmacSha1::new_from_slice(format!("{access_key_secret}&").as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    mac
}

/// The `Signature` value (base64, not yet percent-encoded) for a request with `params` sent
/// with HTTP `method` (`GET`: parameters in the query; `POST`: in a form body).
pub fn sign(method: &str, params: &BTreeMap<String, String>, access_key_secret: &str) -> String {
    let sts = string_to_sign(method, &canonicalized_query(params));
    BASE64.encode(mac(access_key_secret, &sts).finalize().into_bytes())
}

/// Checks a received `Signature` in constant time (the server side of `sign`).
pub fn verify(method: &str, params: &BTreeMap<String, String>, access_key_secret: &str, signature: &str) -> bool {
    let Ok(raw) = BASE64.decode(signature) else { return false };
    let sts = string_to_sign(method, &canonicalized_query(params));
    mac(access_key_secret, &sts).verify_slice(&raw).is_ok()
}

/// `Signature=<encoded>&<canonical query>`: the whole signed parameter list, ready to be a
/// query string or an `application/x-www-form-urlencoded` body. It holds only unreserved
/// characters and `%XX` escapes.
pub fn signed_query(method: &str, params: &BTreeMap<String, String>, access_key_secret: &str) -> String {
    let signature = sign(method, params, access_key_secret);
    format!("Signature={}&{}", percent_encode(&signature), canonicalized_query(params))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SendSms worked example from Aliyun's "HTTP协议及签名" SMS documentation, reproduced
    /// verbatim in several public SDK test suites (AccessKeyId `testId`, secret `testSecret`).
    fn doc_example() -> BTreeMap<String, String> {
        [
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", r#"{"customer":"test"}"#),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn percent_encoding_follows_aliyun_rules() {
        assert_eq!(percent_encode("a b"), "a%20b");
        assert_eq!(percent_encode("*"), "%2A");
        assert_eq!(percent_encode("~-_.AZaz09"), "~-_.AZaz09");
        assert_eq!(percent_encode("/=&+:"), "%2F%3D%26%2B%3A");
        assert_eq!(percent_encode("阿"), "%E9%98%BF");
    }

    #[test]
    fn documented_string_to_sign() {
        let expected = "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123\
%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C\
%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594\
%25A8%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466\
%26SignatureVersion%3D1.0%26TemplateCode%3DSMS_71390007%26TemplateParam%3D%257B%2522customer\
%2522%253A%2522test%2522%257D%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25";
        assert_eq!(string_to_sign("GET", &canonicalized_query(&doc_example())), expected);
    }

    #[test]
    fn documented_signature() {
        let params = doc_example();
        assert_eq!(sign("GET", &params, "testSecret"), "zJDF+Lrzhj/ThnlvIToysFRq6t4=");
        // The Signature parameter, if present, is excluded from what is signed.
        let mut with_sig = params.clone();
        with_sig.insert("Signature".into(), "whatever".into());
        assert_eq!(sign("GET", &with_sig, "testSecret"), "zJDF+Lrzhj/ThnlvIToysFRq6t4=");
        // The method is signed: the same parameters POSTed sign differently.
        assert_ne!(sign("POST", &params, "testSecret"), "zJDF+Lrzhj/ThnlvIToysFRq6t4=");
        let q = signed_query("GET", &params, "testSecret");
        assert!(q.starts_with("Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D&AccessKeyId=testId&"), "{q}");
    }

    #[test]
    fn verify_accepts_only_the_right_secret_and_params() {
        let params = doc_example();
        assert!(verify("GET", &params, "testSecret", "zJDF+Lrzhj/ThnlvIToysFRq6t4="));
        assert!(!verify("POST", &params, "testSecret", "zJDF+Lrzhj/ThnlvIToysFRq6t4="));
        assert!(!verify("GET", &params, "testsecret", "zJDF+Lrzhj/ThnlvIToysFRq6t4="));
        assert!(!verify("GET", &params, "testSecret", "not base64!"));
        let mut tampered = params;
        tampered.insert("PhoneNumbers".into(), "15300000002".into());
        assert!(!verify("GET", &tampered, "testSecret", "zJDF+Lrzhj/ThnlvIToysFRq6t4="));
    }
}
