//! Patient accounts in the back office (ADM-1): searched by phone or account id (the phone shown
//! masked), viewed (every view is audited with the account it concerns and the purpose given),
//! disabled (the account's sessions end at once and no login succeeds), enabled again, and
//! unlocked (the wrong-password lockout of its phone and e-mail cleared).
//!
//! A disabled account is a back-office document (`account_disabled`, by account id) rather than a
//! field of the account row, so the accounts' store and its callers stay as they are; every login
//! goes through `auth::session::issue`, which asks `is_disabled`.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use hospital_domain::audit::Target;
use hospital_domain::{AccountId, Permission, Phone, ValidationError};
use hospital_store::{Docs, Subject};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::auth::codes;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::views::{AccountView, PatientView};
use crate::state::AppState;

/// The document kind of disabled accounts.
const DISABLED: &str = "account_disabled";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(permit(Permission::PatientsRead, routes!(search_patients)))
        .routes(permit(Permission::PatientsRead, routes!(view_patient)))
        .routes(permit(Permission::PatientsWrite, routes!(disable_patient)))
        .routes(permit(Permission::PatientsWrite, routes!(enable_patient)))
        .routes(permit(Permission::PatientsWrite, routes!(unlock_patient)))
}

/// Why an account was disabled, by whom, when.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Disabled {
    pub reason: String,
    pub by: hospital_domain::StaffId,
    pub at: DateTime<Utc>,
}

/// Whether staff disabled the account (logins refuse it).
pub async fn is_disabled(state: &AppState, id: AccountId) -> ApiResult<bool> {
    let docs: Docs<'_, Disabled> = Docs::new(state.stores.data.as_ref(), DISABLED);
    Ok(docs.get(&id.to_string()).await?.is_some())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PatientSearch {
    /// The account's phone, exactly.
    pub phone: Option<String>,
    pub account: Option<AccountId>,
}

/// One account as the back office lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PatientAccountSummary {
    #[serde(flatten)]
    pub account: AccountView,
    pub disabled: bool,
}

/// Finds accounts by phone or id; the phone is shown masked.
#[utoipa::path(get, path = "/api/v1/admin/patients", tag = "patients", security(("bearer" = [])), params(PatientSearch),
    responses((status = 200, body = [PatientAccountSummary]), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn search_patients(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PatientSearch>,
) -> ApiResult<ApiJson<Vec<PatientAccountSummary>>> {
    let data = state.stores.data.as_ref();
    let found = match (&q.phone, q.account) {
        (Some(p), None) => data.account_by_phone(&Phone::parse(p)?).await?,
        (None, Some(id)) => data.account(id).await?,
        _ => return Err(ValidationError::new("phone", "give phone or account").into()),
    };
    let mut out = Vec::new();
    if let Some(a) = found {
        out.push(PatientAccountSummary { disabled: is_disabled(&state, a.id).await?, account: AccountView::from(&a) });
    }
    Ok(ApiJson(out))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ViewQuery {
    /// Why the account is looked at (written to the audit log): `complaint`, `support call 123`.
    /// Required: a view without one is refused (422, field `purpose`).
    pub purpose: Option<String>,
}

/// One account in full for the back office: its 就诊人 (ID numbers masked), disabled or not.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PatientAccountDetail {
    pub account: AccountView,
    pub patients: Vec<PatientView>,
    pub appointments: usize,
    pub disabled: Option<Disabled>,
}

/// Views an account; audited (`patient.view`) with the purpose given.
#[utoipa::path(get, path = "/api/v1/admin/patients/{id}", tag = "patients", security(("bearer" = [])),
    params(("id" = AccountId, Path), ViewQuery),
    responses((status = 200, body = PatientAccountDetail), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn view_patient(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<AccountId>,
    ApiQuery(q): ApiQuery<ViewQuery>,
) -> ApiResult<ApiJson<PatientAccountDetail>> {
    let data = state.stores.data.as_ref();
    let purpose =
        q.purpose.as_deref().ok_or_else(|| ValidationError::new("purpose", "say why the account is viewed"))?;
    let event = audit.event("patient.view", Target::new("account", id)?)?.purpose(purpose)?.concerning(id, None);
    let a = data.account(id).await?.ok_or_else(|| ApiError::not_found("account"))?;
    let patients = data.patients_of(id).await?;
    let appointments = data.appointments_of_account(id).await?.len();
    let docs: Docs<'_, Disabled> = Docs::new(data, DISABLED);
    let disabled = docs.get(&id.to_string()).await?.map(|d| d.value);
    // Recorded before anything is shown.
    audit.record(event).await?;
    Ok(ApiJson(PatientAccountDetail {
        account: AccountView::from(&a),
        patients: patients.iter().map(PatientView::from).collect(),
        appointments,
        disabled,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    /// 1 to 200 characters, kept with the account and in the audit log.
    pub reason: String,
}

/// Disables an account: its sessions end at once (sockets close) and logins are refused.
#[utoipa::path(post, path = "/api/v1/admin/patients/{id}/disable", tag = "patients", security(("bearer" = [])),
    params(("id" = AccountId, Path)), request_body = DisableRequest,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn disable_patient(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<AccountId>,
    ApiJson(req): ApiJson<DisableRequest>,
) -> ApiResult<StatusCode> {
    let reason = req.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(ValidationError::new("reason", "1 to 200 characters").into());
    }
    let data = state.stores.data.as_ref();
    data.account(id).await?.ok_or_else(|| ApiError::not_found("account"))?;
    let docs: Docs<'_, Disabled> = Docs::new(data, DISABLED);
    let key = id.to_string();
    let expected = docs.get(&key).await?.map_or(0, |d| d.version);
    let d = Disabled { reason: reason.to_string(), by: audit.caller.staff_id, at: Utc::now() };
    if !docs.put(&key, &d, expected).await? {
        return Err(ApiError::Conflict { code: "edit_conflict", message: "changed meanwhile; retry".into() });
    }
    let event = audit.event("patient.disable", Target::new("account", id)?)?.purpose(reason)?.concerning(id, None);
    audit.record(event).await?;
    let subject = Subject::Account { id };
    state.sessions.delete_all(&subject, Utc::now()).await?;
    state.realtime.revoke(&subject, None).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Enables a disabled account again.
#[utoipa::path(post, path = "/api/v1/admin/patients/{id}/enable", tag = "patients", security(("bearer" = [])),
    params(("id" = AccountId, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn enable_patient(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<AccountId>,
) -> ApiResult<StatusCode> {
    let docs: Docs<'_, Disabled> = Docs::new(state.stores.data.as_ref(), DISABLED);
    if !docs.delete(&id.to_string()).await? {
        return Err(ApiError::not_found("disabled account"));
    }
    audit.record(audit.event("patient.enable", Target::new("account", id)?)?.concerning(id, None)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clears the wrong-password lockout of the account's phone and e-mail.
#[utoipa::path(post, path = "/api/v1/admin/patients/{id}/unlock", tag = "patients", security(("bearer" = [])),
    params(("id" = AccountId, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn unlock_patient(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<AccountId>,
) -> ApiResult<StatusCode> {
    let a = state.stores.data.account(id).await?.ok_or_else(|| ApiError::not_found("account"))?;
    for login in a.phone.iter().map(|p| p.as_str().to_string()).chain(a.email.iter().map(|e| e.as_str().to_string())) {
        codes::clear_wrong_passwords(&state, &login).await?;
    }
    audit.record(audit.event("patient.unlock", Target::new("account", id)?)?.concerning(id, None)).await?;
    Ok(StatusCode::NO_CONTENT)
}
