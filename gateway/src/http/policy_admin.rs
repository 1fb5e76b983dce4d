//! The policy texts' history for staff (SET-2, `content.write`): every published version of the
//! privacy policy and the user agreement, with when each was published, for the console's page.
//! Publishing is `POST /api/v1/admin/policies` (`http::consent`, which also runs the consent
//! gate that then asks every patient to accept the new version).

use axum::extract::State;
use hospital_domain::access::Permission;
use hospital_domain::privacy::PolicyVersion;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(permit(Permission::ContentWrite, routes!(versions)))
}

/// Every published version of each text, newest first (by kind, then version).
#[utoipa::path(get, path = "/api/v1/admin/policies/versions", tag = "consent", security(("bearer" = [])),
    responses((status = 200, body = [PolicyVersion]), (status = 403, body = ErrorBody)))]
async fn versions(State(state): State<AppState>) -> ApiResult<ApiJson<Vec<PolicyVersion>>> {
    let mut all = state.stores.data.policies().await?;
    all.sort_by(|a, b| a.kind.cmp(&b.kind).then(b.version.cmp(&a.version)));
    Ok(ApiJson(all))
}
