//! Sandbox-mode endpoints for development and tests (never mounted in production): the SMS
//! outbox (`GET /sandbox/sms?phone=`), a stand-in for the mini-program's `wx.login()` that
//! mints a login code in the WeChat sandbox, the persons the real-name sandbox knows
//! (`/sandbox/real-name/persons`), an upload into object storage that answers with a signed
//! download link (`PUT /sandbox/files`, until the chat and report features bring their own
//! uploads), and a staff action recorded in the audit log (`POST /sandbox/audit`, the
//! `StaffAudit` helper end to end). The sandboxes' protocol endpoints themselves
//! (Aliyun's RPC API, WeChat's `jscode2session`) are nested under `/sandbox/aliyun-sms` and
//! `/sandbox/wechat` by `crate::router`.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use hospital_domain::audit::{AuditEntry, Target};
use hospital_domain::AccountId;
use hospital_domain::{IdCardNo, Phone};
use hospital_integrations::{SandboxPerson, SandboxSms};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::http::files::{read_capped, FileService};
use crate::state::{AppState, Sandboxes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sms_outbox))
        .routes(routes!(wechat_login_code))
        .routes(routes!(real_name_person, register_real_name_person))
        .routes(permit(hospital_domain::Permission::StaffSelf, routes!(audit_action)))
        .routes(routes!(plant_bill_difference))
        .routes(routes!(pay_without_notice))
        // Uploads are capped by their policy (`read_capped`), not the router's small JSON limit.
        .merge(OpenApiRouter::new().routes(routes!(upload_file)).layer(DefaultBodyLimit::disable()))
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
#[into_params(parameter_in = Query)]
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// `image` (PNG, JPEG, GIF, WebP) or `report` (PDF, images, DICOM): which policy applies.
    pub kind: String,
    /// How long the returned link lives (default: `objects.link_ttl_secs`).
    pub ttl_secs: Option<u64>,
    /// The file name the download carries.
    pub name: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    pub key: String,
    pub content_type: &'static str,
    pub size: u64,
    /// The signed download link (path and query).
    pub url: String,
    /// When the link expires, unix seconds.
    pub expires: i64,
}

/// Stores the body (checked by its content: a renamed executable is 415, an oversize file 413)
/// and answers with a signed download link (sandbox mode only).
#[utoipa::path(put, path = "/sandbox/files", tag = "sandbox", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file; Content-Type is its declared type"),
    responses((status = 201, body = Uploaded), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn upload_file(
    State(state): State<AppState>,
    State(files): State<FileService>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, ApiJson<Uploaded>)> {
    sandboxes(&state)?;
    let (policy, prefix) = match q.kind.as_str() {
        "image" => (&files.image_policy, "sandbox/images"),
        "report" => (&files.report_policy, "sandbox/reports"),
        _ => return Err(ApiError::BadRequest("kind must be image or report".into())),
    };
    let bytes = read_capped(body, policy.max_bytes).await?;
    let declared = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let stored = files.put(prefix, bytes, declared, policy).await?;
    let ttl = q.ttl_secs.map(std::time::Duration::from_secs);
    let (url, expires) = files.link(&stored.key, ttl, q.name.as_deref());
    Ok((
        StatusCode::CREATED,
        ApiJson(Uploaded {
            key: stored.key,
            content_type: stored.content_type.mime(),
            size: stored.size,
            url,
            expires,
        }),
    ))
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditAction {
    /// A dotted action name, `record.read`.
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    /// The patient account the action concerns.
    pub account_id: Option<AccountId>,
    pub purpose: Option<String>,
}

/// Records a staff action in the audit log as the caller (staff id, roles, IP), durably, and
/// answers with the sealed entry (sandbox mode only).
#[utoipa::path(post, path = "/sandbox/audit", tag = "sandbox", security(("bearer" = [])), request_body = AuditAction,
    responses((status = 201, body = AuditEntry), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn audit_action(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiJson(req): ApiJson<AuditAction>,
) -> ApiResult<(StatusCode, ApiJson<AuditEntry>)> {
    sandboxes(&state)?;
    let mut event = audit.event(&req.action, Target::new(&req.target_kind, &req.target_id)?)?;
    if let Some(account) = req.account_id {
        event = event.concerning(account, None);
    }
    if let Some(p) = &req.purpose {
        event = event.purpose(p)?;
    }
    Ok((StatusCode::CREATED, ApiJson(audit.record(event).await?)))
}

/// A difference to plant in a sandbox provider's bills (reconciliation tests, PAY-4).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillPlantRequest {
    /// `wechat_pay` or `alipay`.
    pub provider: String,
    /// `missing` (the order's lines left out of the bill), `amount` (its payment line shows
    /// `amount`) or `unknown` (a paid trade we never placed, on `date`, default today).
    pub kind: String,
    pub out_trade_no: String,
    /// Fen, for `amount` and `unknown`.
    #[serde(default)]
    pub amount: Option<u64>,
    #[serde(default)]
    pub date: Option<chrono::NaiveDate>,
}

/// Plants a difference in the bills the WeChat Pay or Alipay sandbox serves from now on: the
/// same download path and wire format as real bills, with one line changed (sandbox mode only).
#[utoipa::path(post, path = "/sandbox/bills/plant", tag = "sandbox", request_body = BillPlantRequest,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn plant_bill_difference(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<BillPlantRequest>,
) -> ApiResult<StatusCode> {
    use hospital_integrations::BillPlant;
    let sb = sandboxes(&state)?;
    let amount = || {
        req.amount
            .map(hospital_domain::Fen::new)
            .ok_or_else(|| ApiError::OutOfRange { field: "amount".into(), message: "fen, needed for this kind".into() })
    };
    let plant = match req.kind.as_str() {
        "missing" => BillPlant::Missing { out_trade_no: req.out_trade_no.clone() },
        "amount" => BillPlant::Amount { out_trade_no: req.out_trade_no.clone(), amount: amount()? },
        "unknown" => BillPlant::Unknown {
            date: req.date.unwrap_or_else(|| state.zone.local_date(chrono::Utc::now())),
            out_trade_no: req.out_trade_no.clone(),
            amount: amount()?,
        },
        _ => return Err(ApiError::OutOfRange { field: "kind".into(), message: "missing, amount or unknown".into() }),
    };
    match req.provider.as_str() {
        "wechat_pay" => sb.wechat_pay.plant(plant),
        "alipay" => sb.alipay.plant(plant),
        _ => return Err(ApiError::OutOfRange { field: "provider".into(), message: "wechat_pay or alipay".into() }),
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LostNoticeRequest {
    /// `wechat_pay` or `alipay`.
    pub provider: String,
    pub out_trade_no: String,
}

/// The payer pays an open trade and the provider's notification never arrives: paid at the
/// provider (queries, bills), unknown to us until something asks (sandbox mode only).
#[utoipa::path(post, path = "/sandbox/payments/lost-notice", tag = "sandbox", request_body = LostNoticeRequest,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn pay_without_notice(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LostNoticeRequest>,
) -> ApiResult<StatusCode> {
    let sb = sandboxes(&state)?;
    let refused = |e: String| ApiError::Conflict { code: "not_payable", message: e };
    match req.provider.as_str() {
        "wechat_pay" => {
            sb.wechat_pay.pay_without_notice(&req.out_trade_no).map(|_| ()).map_err(|e| refused(e.to_string()))?
        }
        "alipay" => sb.alipay.pay_without_notice(&req.out_trade_no).map(|_| ()).map_err(|e| refused(e.to_string()))?,
        _ => return Err(ApiError::OutOfRange { field: "provider".into(), message: "wechat_pay or alipay".into() }),
    }
    Ok(StatusCode::NO_CONTENT)
}
