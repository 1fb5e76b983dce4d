//! SET-2: the privacy policy (隐私政策) and the user agreement (用户协议) as numbered versions,
//! published by staff with `content.write`, readable by anyone (no login), accepted by the
//! patient (a consent per version, with its time).
//!
//! Once a version is published, a patient who has not accepted the latest version of each kind
//! may do nothing but read the texts, accept them, see what is pending and log in/out: every
//! other patient route (`AccountCaller`) answers 403 `consent_required`, naming what to accept.
//! Nothing is published by default, so nothing is asked until the hospital publishes.
//!
//! The check is cheap (`consent_gate::ConsentGate`): the latest versions are kept in memory and
//! an account known to have accepted them is remembered.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use hospital_domain::access::Permission;
use hospital_domain::audit::Target;
use hospital_domain::privacy::{pending, Consent, PolicyKind, PolicyVersion};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ConsentingCaller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(current_policies))
        .routes(routes!(policy_version))
        .routes(permit(Permission::ContentWrite, routes!(publish)))
        .routes(routes!(my_consents, accept))
}

/// The current texts: the latest version of each kind (an empty list when none is published).
#[utoipa::path(get, path = "/api/v1/policies", tag = "consent",
    responses((status = 200, body = [PolicyVersion])))]
async fn current_policies(State(state): State<AppState>) -> ApiResult<ApiJson<Vec<PolicyVersion>>> {
    Ok(ApiJson(state.consent.latest(state.stores.data.as_ref()).await?.to_vec()))
}

/// One published version (older ones too), by kind and number.
#[utoipa::path(get, path = "/api/v1/policies/{kind}/{version}", tag = "consent",
    params(("kind" = PolicyKind, Path), ("version" = u32, Path, minimum = 1)),
    responses((status = 200, body = PolicyVersion), (status = 404, body = ErrorBody)))]
async fn policy_version(
    State(state): State<AppState>,
    ApiPath((kind, version)): ApiPath<(PolicyKind, u32)>,
) -> ApiResult<ApiJson<PolicyVersion>> {
    let v = state.stores.data.policy(kind, version).await?.ok_or_else(|| ApiError::not_found("policy version"))?;
    Ok(ApiJson(v))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishPolicy {
    pub kind: PolicyKind,
    /// 1 to 100 characters.
    pub title: String,
    /// The text, 1 to 100000 characters, shown as published.
    pub body: String,
}

/// Publishes the next version of a text (staff with `content.write`): from now on every patient
/// must accept it before using the API.
#[utoipa::path(post, path = "/api/v1/admin/policies", tag = "consent", security(("bearer" = [])),
    request_body = PublishPolicy,
    responses((status = 201, body = PolicyVersion), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn publish(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiJson(req): ApiJson<PublishPolicy>,
) -> ApiResult<(StatusCode, ApiJson<PolicyVersion>)> {
    let all = state.stores.data.policies().await?;
    let previous = all.iter().filter(|v| v.kind == req.kind).map(|v| v.version).max();
    let v = PolicyVersion::next(req.kind, previous, &req.title, &req.body, Utc::now())?;
    // Two publishing at once: one gets the number, the other a 409 (store: policy version).
    state.stores.data.put_policy(&v).await?;
    state.consent.reload(state.stores.data.as_ref()).await?;
    audit.record(audit.event("policy.publish", Target::new("policy", format!("{}:{}", v.kind, v.version))?)?).await?;
    tracing::info!(kind = %v.kind, version = v.version, "policy published");
    Ok((StatusCode::CREATED, ApiJson(v)))
}

/// What the patient has accepted and what is left to accept.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentStatus {
    /// The latest versions not yet accepted: while any is left, the API answers 403
    /// `consent_required` to all but these routes.
    pub pending: Vec<PolicyVersion>,
    /// Every acceptance, with its time.
    pub accepted: Vec<Consent>,
}

/// The caller's consents and what is pending (allowed before consenting).
#[utoipa::path(get, path = "/api/v1/me/consents", tag = "consent", security(("bearer" = [])),
    responses((status = 200, body = ConsentStatus)))]
async fn my_consents(State(state): State<AppState>, caller: ConsentingCaller) -> ApiResult<ApiJson<ConsentStatus>> {
    let latest = state.consent.latest(state.stores.data.as_ref()).await?;
    let mut accepted = state.stores.data.consents_of(caller.account_id).await?;
    accepted.sort_by_key(|c| (c.kind, c.version));
    let pending = pending(&latest, &accepted).into_iter().cloned().collect();
    Ok(ApiJson(ConsentStatus { pending, accepted }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptPolicy {
    pub kind: PolicyKind,
    /// The latest version of that kind (an older one is 409 `policy_outdated`).
    #[schema(minimum = 1)]
    pub version: u32,
}

/// Accepts the latest version of a text (allowed before consenting). Accepting again keeps the
/// first time.
#[utoipa::path(post, path = "/api/v1/me/consents", tag = "consent", security(("bearer" = [])),
    request_body = AcceptPolicy,
    responses((status = 201, body = Consent), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn accept(
    State(state): State<AppState>,
    caller: ConsentingCaller,
    ApiJson(req): ApiJson<AcceptPolicy>,
) -> ApiResult<(StatusCode, ApiJson<Consent>)> {
    let v =
        state.stores.data.policy(req.kind, req.version).await?.ok_or_else(|| ApiError::not_found("policy version"))?;
    // Freshly read: a version just published on another node is the one to accept.
    let latest = state.consent.reload(state.stores.data.as_ref()).await?;
    if latest.iter().any(|l| l.kind == v.kind && l.version > v.version) {
        return Err(ApiError::Conflict {
            code: "policy_outdated",
            message: format!(
                "{} 第{}版 is not the current version: read GET /api/v1/policies",
                v.kind.label(),
                v.version
            ),
        });
    }
    let consent = Consent { account_id: caller.account_id, kind: v.kind, version: v.version, accepted_at: Utc::now() };
    state.stores.data.put_consent(&consent).await?;
    tracing::info!(account = %caller.account_id, kind = %v.kind, version = v.version, "policy accepted");
    let stored = state
        .stores
        .data
        .consents_of(caller.account_id)
        .await?
        .into_iter()
        .find(|c| c.kind == v.kind && c.version == v.version)
        .unwrap_or(consent);
    Ok((StatusCode::CREATED, ApiJson(stored)))
}
