//! `RealNameSandbox`: a local stand-in for Aliyun cloudauth's `Id2MetaVerify`. It checks what
//! an Aliyun gateway checks (signature, access key, timestamp window, nonce reuse; see
//! `aliyun::gate`), then answers from a table of persons it holds, in cloudauth's JSON shape.
//!
//! The table: an ID number maps to a name (`BizCode` 1 when the name is the same, 2 when it is
//! not) or to "no record" (`BizCode` 3). An ID number the table does not hold is, by default,
//! learned: the first name asked with it becomes its name (so a demo or a test can add any
//! made-up person, and a later, different name is then inconsistent). `strict` sandboxes answer
//! 3 for it instead. `register` sets a person explicitly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hospital_domain::IdCardNo;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;

use super::Verdict;
use crate::aliyun::gate::{self, Refusal, RpcGate};

const API_VERSION: &str = "2019-03-07";
const HOST_ID: &str = "cloudauth.aliyuncs.com";
/// Most persons a learning sandbox remembers; a load test adds many thousands.
const MAX_PERSONS: usize = 1_000_000;
/// cloudauth refuses longer names as malformed.
const MAX_NAME_CHARS: usize = 64;

/// One person as the sandbox knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxPerson {
    /// The name on record; `None`: the authoritative source has no record of the number.
    pub name: Option<String>,
    /// Checks answered for this ID number (with a `BizCode`, i.e. the ones cloudauth bills or
    /// reports) since it was registered or learned.
    pub checks: u64,
}

/// The sandbox's shared state; clones share one table.
#[derive(Debug, Clone)]
pub struct RealNameSandbox {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    gate: RpcGate,
    learn_unknown: bool,
    persons: Mutex<HashMap<String, SandboxPerson>>,
}

/// A business refusal: HTTP 200 with cloudauth's own `Code` (not `200`).
fn refuse(code: &'static str, message: &str) -> Refusal {
    Refusal::new(StatusCode::OK, code, message)
}

impl RealNameSandbox {
    /// A sandbox that accepts requests signed with this AccessKey pair and learns unknown ID
    /// numbers (the first name asked with one becomes its name).
    pub fn new(access_key_id: impl Into<String>, access_key_secret: SecretString) -> Self {
        Self::build(access_key_id.into(), access_key_secret, true)
    }

    /// A sandbox that answers "no record" for every ID number not registered.
    pub fn strict(access_key_id: impl Into<String>, access_key_secret: SecretString) -> Self {
        Self::build(access_key_id.into(), access_key_secret, false)
    }

    fn build(access_key_id: String, access_key_secret: SecretString, learn_unknown: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                gate: RpcGate::new(API_VERSION, access_key_id, access_key_secret),
                learn_unknown,
                persons: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn access_key_id(&self) -> &str {
        self.inner.gate.access_key_id()
    }

    /// Sets (or replaces) what the source knows of `id_card`: its holder's name, or `None` for
    /// "no record". Its check count starts again at 0.
    pub fn register(&self, id_card: &IdCardNo, name: Option<&str>) {
        let person = SandboxPerson { name: name.map(str::to_string), checks: 0 };
        self.persons().insert(id_card.expose().to_string(), person);
    }

    /// What the sandbox knows of `id_card`, if anything.
    pub fn person(&self, id_card: &IdCardNo) -> Option<SandboxPerson> {
        self.persons().get(id_card.expose()).cloned()
    }

    fn persons(&self) -> MutexGuard<'_, HashMap<String, SandboxPerson>> {
        // A panic while holding the lock cannot leave the table half-written in a way that
        // matters for a sandbox, so poisoning is ignored rather than cascading.
        self.inner.persons.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Handles one request (`method`, its query string and form body) at time `now`.
    fn handle(&self, method: &Method, query: &str, body: &str, now: DateTime<Utc>) -> Result<Verdict, Refusal> {
        let params = gate::parse_params(&[query, body])?;
        self.inner.gate.authenticate(method.as_str(), &params, &["Id2MetaVerify"], now)?;
        let get = |name: &str| params.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let (Some(param_type), Some(number), Some(name)) = (get("ParamType"), get("IdentifyNum"), get("UserName"))
        else {
            return Err(refuse("400", "参数不能为空"));
        };
        // Two-factor checks take clear values only: the data source cannot match digests.
        if param_type != "normal" {
            return Err(refuse("401", "参数非法(paramType)"));
        }
        let id_card = IdCardNo::parse(number).map_err(|_| refuse("401", "参数非法(identifyNum)"))?;
        if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) || name.trim() != name {
            return Err(refuse("401", "参数非法(userName)"));
        }
        let mut persons = self.persons();
        if !persons.contains_key(id_card.expose()) {
            let learned = (self.inner.learn_unknown && persons.len() < MAX_PERSONS).then(|| name.to_string());
            persons.insert(id_card.expose().to_string(), SandboxPerson { name: learned, checks: 0 });
        }
        let person = persons.get_mut(id_card.expose()).expect("inserted above");
        person.checks += 1;
        let verdict = match &person.name {
            None => Verdict::NoRecord,
            Some(n) if n == name => Verdict::Consistent,
            Some(_) => Verdict::Inconsistent,
        };
        tracing::debug!(%id_card, ?verdict, "sandbox real-name check");
        Ok(verdict)
    }
}

/// The cloudauth RPC endpoint (GET with a query, or POST with a form body): mount at the root
/// (endpoint `http://host:port`) or nest it (endpoint `http://host:port/prefix`).
pub fn sandbox_router(sandbox: RealNameSandbox) -> Router {
    Router::new().route("/", get(rpc).post(rpc)).with_state(sandbox)
}

async fn rpc(
    State(sandbox): State<RealNameSandbox>,
    method: Method,
    RawQuery(query): RawQuery,
    body: String,
) -> Response {
    let request_id = gate::request_id();
    match sandbox.handle(&method, query.as_deref().unwrap_or(""), &body, Utc::now()) {
        Ok(verdict) => Json(json!({
            "RequestId": request_id,
            "Code": "200",
            "Message": "success",
            "ResultObject": {"BizCode": verdict.biz_code()},
        }))
        .into_response(),
        Err(r) => r.into_response(&request_id, HOST_ID),
    }
}
