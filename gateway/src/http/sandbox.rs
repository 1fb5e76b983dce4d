//! Sandbox-mode endpoints for development and tests (never mounted in production): the SMS
//! outbox (`GET /sandbox/sms?phone=`), a stand-in for the mini-program's `wx.login()` that
//! mints a login code in the WeChat sandbox, and the persons the real-name sandbox knows
//! (`/sandbox/real-name/persons`). The sandboxes' protocol endpoints themselves
//! (Aliyun's RPC API, WeChat's `jscode2session`) are nested under `/sandbox/aliyun-sms` and
//! `/sandbox/wechat` by `crate::router`.

use axum::extract::State;
use hospital_domain::{IdCardNo, Phone};
use hospital_integrations::{SandboxPerson, SandboxSms};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::state::{AppState, Sandboxes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sms_outbox))
        .routes(routes!(wechat_login_code))
        .routes(routes!(real_name_person, register_real_name_person))
}

fn sandboxes(state: &AppState) -> ApiResult<&Sandboxes> {
    state.sandbox.as_ref().ok_or_else(|| ApiError::NotFound("sandbox mode is off".into()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    pub phone: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutboxMessage {
    pub template_code: String,
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// The text as the phone would show it.
    pub text: String,
    pub sent_at: chrono::DateTime<chrono::Utc>,
}

/// Messages the SMS sandbox received for a phone, oldest first (sandbox mode only).
#[utoipa::path(get, path = "/sandbox/sms", tag = "sandbox", params(OutboxQuery),
    responses((status = 200, body = [OutboxMessage]), (status = 404, body = ErrorBody)))]
async fn sms_outbox(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<OutboxQuery>,
) -> ApiResult<ApiJson<Vec<OutboxMessage>>> {
    let phone = Phone::parse(&q.phone)?;
    let list = sandboxes(&state)?.sms.messages_for(&phone);
    Ok(ApiJson(
        list.into_iter()
            .map(|m: SandboxSms| OutboxMessage {
                template_code: m.template_code,
                params: m.params,
                text: m.text,
                sent_at: m.sent_at,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginCodeRequest {
    /// Any name for a pretend WeChat user; the same name is the same openid.
    pub user: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginCode {
    pub code: String,
}

/// Plays `wx.login()`: a one-time code for `POST /api/v1/auth/wechat/login` (sandbox mode only).
#[utoipa::path(post, path = "/sandbox/wechat/login-code", tag = "sandbox", request_body = LoginCodeRequest,
    responses((status = 200, body = LoginCode), (status = 404, body = ErrorBody)))]
async fn wechat_login_code(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginCodeRequest>,
) -> ApiResult<ApiJson<LoginCode>> {
    let user = req.user.trim();
    if user.is_empty() || user.chars().count() > 64 {
        return Err(hospital_domain::ValidationError::new("user", "1 to 64 characters").into());
    }
    Ok(ApiJson(LoginCode { code: sandboxes(&state)?.wechat.mint_code(user) }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PersonQuery {
    pub id_card_no: String,
}

/// What the real-name sandbox knows of an ID number.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RealNamePerson {
    /// The name on record; null: the registry has no record of the number.
    pub name: Option<String>,
    /// Checks the sandbox answered for the number since it was registered or learned.
    pub checks: u64,
}

impl From<SandboxPerson> for RealNamePerson {
    fn from(p: SandboxPerson) -> Self {
        Self { name: p.name, checks: p.checks }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterPerson {
    #[schema(example = "11010519491231002X")]
    pub id_card_no: String,
    /// The holder's name; null makes the registry answer "no record" for the number.
    pub name: Option<String>,
}

/// The person the real-name sandbox knows under an ID number (sandbox mode only). The sandbox
/// learns a number the first time it is asked about it: that first name becomes its name.
#[utoipa::path(get, path = "/sandbox/real-name/persons", tag = "sandbox", params(PersonQuery),
    responses((status = 200, body = RealNamePerson), (status = 404, body = ErrorBody)))]
async fn real_name_person(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PersonQuery>,
) -> ApiResult<ApiJson<RealNamePerson>> {
    let card = IdCardNo::parse(&q.id_card_no)?;
    let person = sandboxes(&state)?.real_name.person(&card).ok_or_else(|| ApiError::not_found("person"))?;
    Ok(ApiJson(person.into()))
}

/// Sets what the real-name sandbox knows of an ID number: its holder's name, or no record
/// (sandbox mode only).
#[utoipa::path(post, path = "/sandbox/real-name/persons", tag = "sandbox", request_body = RegisterPerson,
    responses((status = 200, body = RealNamePerson), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn register_real_name_person(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegisterPerson>,
) -> ApiResult<ApiJson<RealNamePerson>> {
    let card = IdCardNo::parse(&req.id_card_no)?;
    let name = req.name.as_deref().map(|n| hospital_domain::account::parse_name("name", n)).transpose()?;
    let sandbox = &sandboxes(&state)?.real_name;
    sandbox.register(&card, name.as_deref());
    Ok(ApiJson(sandbox.person(&card).expect("just registered").into()))
}
