//! `RpcGate`: the server side of an Aliyun RPC request, as every Aliyun API gateway checks it
//! before the product sees the request, shared by the sandboxes (SMS, cloudauth). It reads the
//! parameters (query string and form body), checks the common ones (Action, Version,
//! AccessKeyId, signature method and version), the signature, the timestamp window and nonce
//! reuse, and refuses in Aliyun's vocabulary (`SignatureDoesNotMatch`, `MissingTimestamp`, ...).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Mutex;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::sign;

/// Aliyun accepts a Timestamp at most 15 minutes away from its own clock.
pub const MAX_CLOCK_SKEW_MINUTES: i64 = 15;
/// A nonce must be remembered as long as a request carrying it could still pass the timestamp
/// check: its timestamp may be 15 minutes ahead of first use and accepted until 15 after.
const NONCE_MEMORY_MINUTES: i64 = 2 * MAX_CLOCK_SKEW_MINUTES;

/// Why a request was refused: the HTTP status, Aliyun's error code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl Refusal {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: message.into() }
    }

    /// Aliyun's error body (`Code`, `Message`, `RequestId`, `HostId`) under the refusal's status.
    pub fn into_response(self, request_id: &str, host_id: &str) -> Response {
        tracing::info!(code = %self.code, message = %self.message, host_id, "sandbox refused an Aliyun request");
        let body = json!({"Code": self.code, "Message": self.message, "RequestId": request_id, "HostId": host_id});
        (self.status, Json(body)).into_response()
    }
}

/// A fresh request id in Aliyun's format (an upper-case UUID).
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// The parameters of a request, from each `application/x-www-form-urlencoded` source in turn
/// (the query string, then a POST's body). A parameter given twice is refused: it would be
/// ambiguous which value was signed.
pub fn parse_params(sources: &[&str]) -> Result<BTreeMap<String, String>, Refusal> {
    let mut params = BTreeMap::new();
    for source in sources {
        for (k, v) in url::form_urlencoded::parse(source.as_bytes()) {
            if params.insert(k.to_string(), v.to_string()).is_some() {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    format!("Parameter {k} is repeated."),
                ));
            }
        }
    }
    Ok(params)
}

/// A parameter that must be present and non-empty; Aliyun names the error `Missing<Name>`.
pub fn required<'a>(params: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, Refusal> {
    params.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| {
        Refusal::new(StatusCode::BAD_REQUEST, format!("Missing{name}"), format!("{name} is mandatory for this action."))
    })
}

/// The checks an Aliyun API gateway makes for one product version and one AccessKey pair.
#[derive(Debug)]
pub struct RpcGate {
    version: &'static str,
    access_key_id: String,
    access_key_secret: SecretString,
    nonces: Mutex<Nonces>,
}

/// The nonces seen within `NONCE_MEMORY_MINUTES`, and the order they came in, so forgetting the
/// old ones looks only at those (it scanned every nonce on every request: quadratic in a burst of
/// logins, 10,000 SMS codes in a storm's set-up).
#[derive(Debug, Default)]
struct Nonces {
    seen: HashSet<String>,
    /// When each of `seen` came, oldest first.
    order: VecDeque<(DateTime<Utc>, String)>,
}

impl Nonces {
    /// Forgets the nonces first seen `NONCE_MEMORY_MINUTES` or more before `now`. Requests come
    /// in about the order of their `now`; one a little out of order is remembered a little
    /// longer, never less.
    fn forget_old(&mut self, now: DateTime<Utc>) {
        while let Some((seen, _)) = self.order.front() {
            if (now - *seen).num_minutes() < NONCE_MEMORY_MINUTES {
                break;
            }
            if let Some((_, nonce)) = self.order.pop_front() {
                self.seen.remove(&nonce);
            }
        }
    }

    /// Records `nonce` at `now`; false if it was seen already (and is still remembered).
    fn first_use(&mut self, nonce: &str, now: DateTime<Utc>) -> bool {
        self.forget_old(now);
        if !self.seen.insert(nonce.to_string()) {
            return false;
        }
        self.order.push_back((now, nonce.to_string()));
        true
    }
}

impl RpcGate {
    /// A gate for the API `version` (e.g. `2017-05-25`) that accepts this AccessKey pair.
    pub fn new(version: &'static str, access_key_id: impl Into<String>, access_key_secret: SecretString) -> Self {
        Self { version, access_key_id: access_key_id.into(), access_key_secret, nonces: Mutex::default() }
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// Checks a request sent with HTTP `method` at time `now` and returns its action, one of
    /// `actions`. Only an authentic request consumes its nonce: a forged one must not be able to
    /// burn someone else's.
    pub fn authenticate<'p>(
        &self,
        method: &str,
        params: &'p BTreeMap<String, String>,
        actions: &[&str],
        now: DateTime<Utc>,
    ) -> Result<&'p str, Refusal> {
        let action = required(params, "Action")?;
        if !actions.contains(&action) {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
            ));
        }
        if required(params, "Version")? != self.version {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "InvalidVersion",
                "Specified parameter Version is not valid.",
            ));
        }
        if required(params, "AccessKeyId")? != self.access_key_id {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
            ));
        }
        if required(params, "SignatureMethod")? != "HMAC-SHA1" {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "InvalidSignatureMethod",
                "Specified signature method is not supported.",
            ));
        }
        if required(params, "SignatureVersion")? != "1.0" {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "InvalidSignatureVersion",
                "Specified signature version is not supported.",
            ));
        }
        let signature = required(params, "Signature")?;
        let nonce = required(params, "SignatureNonce")?;
        let timestamp = required(params, "Timestamp")?;
        if !sign::verify(method, params, self.access_key_secret.expose_secret(), signature) {
            // Like Aliyun, echo the server's string-to-sign: it is how a developer debugs an
            // encoding mismatch, and it contains no secret.
            let sts = sign::string_to_sign(method, &sign::canonicalized_query(params));
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "SignatureDoesNotMatch",
                format!("Specified signature is not matched with our calculation. server string to sign is:{sts}"),
            ));
        }
        let sent =
            NaiveDateTime::parse_from_str(timestamp, "%Y-%m-%dT%H:%M:%SZ").map(|t| t.and_utc()).map_err(|_| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidTimeStamp.Format",
                    "Specified time stamp or date value is not well formatted.",
                )
            })?;
        if (now - sent).num_seconds().abs() > MAX_CLOCK_SKEW_MINUTES * 60 {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "InvalidTimeStamp.Expired",
                "Specified time stamp or date value is expired.",
            ));
        }
        // A poisoned lock only means another request panicked; the map itself stays usable.
        if !self.nonces.lock().unwrap_or_else(|e| e.into_inner()).first_use(nonce, now) {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "SignatureNonceUsed",
                "Specified signature nonce was used already.",
            ));
        }
        Ok(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(method: &str, secret: &str, extra: &[(&str, &str)], nonce: &str) -> BTreeMap<String, String> {
        let mut p: BTreeMap<String, String> = [
            ("AccessKeyId", "id"),
            ("Action", "Do"),
            ("Format", "JSON"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", nonce),
            ("SignatureVersion", "1.0"),
            ("Version", "2020-01-01"),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        p.entry("Timestamp".into()).or_insert_with(|| Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
        let q = sign::signed_query(method, &p, secret);
        parse_params(&[&q]).unwrap()
    }

    fn gate() -> RpcGate {
        RpcGate::new("2020-01-01", "id", SecretString::from("s"))
    }

    #[test]
    fn accepts_a_signed_request_once() {
        let g = gate();
        let p = signed("POST", "s", &[], "n1");
        assert_eq!(g.authenticate("POST", &p, &["Do"], Utc::now()), Ok("Do"));
        assert_eq!(g.authenticate("POST", &p, &["Do"], Utc::now()).unwrap_err().code, "SignatureNonceUsed");
    }

    #[test]
    fn a_nonce_is_remembered_for_its_time_and_then_forgotten() {
        let mut n = Nonces::default();
        let t0 = Utc::now();
        let later = |m| t0 + chrono::Duration::minutes(m);
        assert!(n.first_use("a", t0));
        assert!(n.first_use("b", later(10)));
        assert!(!n.first_use("a", later(NONCE_MEMORY_MINUTES - 1)), "still remembered");
        // Past its memory "a" is forgotten (and may come again), "b" is not yet.
        assert!(n.first_use("a", later(NONCE_MEMORY_MINUTES)));
        assert!(!n.first_use("b", later(NONCE_MEMORY_MINUTES)));
        assert_eq!((n.seen.len(), n.order.len()), (2, 2), "nothing kept twice, nothing old kept");
        assert!(n.first_use("c", later(10 + NONCE_MEMORY_MINUTES)));
        let mut kept: Vec<&str> = n.seen.iter().map(String::as_str).collect();
        kept.sort();
        assert_eq!(kept, ["a", "c"], "b forgotten in its turn");
    }

    #[test]
    fn refuses_what_an_aliyun_gateway_refuses() {
        let g = gate();
        let code = |p: &BTreeMap<String, String>, method: &str| {
            g.authenticate(method, p, &["Do"], Utc::now()).unwrap_err().code
        };
        assert_eq!(code(&signed("GET", "s", &[], "a"), "POST"), "SignatureDoesNotMatch", "the method is signed");
        assert_eq!(code(&signed("POST", "wrong", &[], "b"), "POST"), "SignatureDoesNotMatch");
        assert_eq!(code(&signed("POST", "s", &[("Action", "Other")], "c"), "POST"), "InvalidAction.NotFound");
        let mut p = signed("POST", "s", &[], "d");
        p.remove("Timestamp");
        assert_eq!(code(&p, "POST"), "MissingTimestamp");
        let old = (Utc::now() - chrono::Duration::minutes(16)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
        assert_eq!(code(&signed("POST", "s", &[("Timestamp", &old)], "e"), "POST"), "InvalidTimeStamp.Expired");
        assert_eq!(code(&signed("POST", "s", &[("Timestamp", "yesterday")], "f"), "POST"), "InvalidTimeStamp.Format");
        // A forged request does not burn the nonce: the genuine one still goes through.
        assert_eq!(code(&signed("POST", "wrong", &[], "g"), "POST"), "SignatureDoesNotMatch");
        assert!(g.authenticate("POST", &signed("POST", "s", &[], "g"), &["Do"], Utc::now()).is_ok());
        assert_eq!(parse_params(&["a=1", "a=2"]).unwrap_err().code, "InvalidParameter");
    }
}
