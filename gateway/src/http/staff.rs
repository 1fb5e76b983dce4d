//! The back office's account endpoints (AUTH-4, ADM-1): who am I, and creating staff (admins
//! only). Role checks are on every handler: a patient's token gets 403.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use hospital_domain::account::{check_password_policy, parse_name};
use hospital_domain::{Permission, RoleName, StaffId, ValidationError};
use hospital_domain::access::RoleDef;
use hospital_store::{Docs, StaffMember, StoreError};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::password;
use crate::access::permit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, StaffCaller};
use crate::http::views::StaffView;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(permit(Permission::StaffSelf, routes!(staff_me)))
        .routes(permit(Permission::StaffWrite, routes!(create_staff)))
}

/// The logged-in staff member.
#[utoipa::path(get, path = "/api/v1/staff/me", tag = "staff", security(("bearer" = [])),
    responses((status = 200, body = StaffView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn staff_me(State(state): State<AppState>, caller: StaffCaller) -> ApiResult<ApiJson<StaffView>> {
    let s = state.stores.data.staff(caller.staff_id).await?.ok_or(ApiError::InvalidToken)?;
    Ok(ApiJson(StaffView::from(&s)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStaff {
    pub username: String,
    pub name: String,
    pub password: String,
    pub roles: Vec<RoleName>,
}

/// Validates and stores a new staff member; shared with the `hospital create-staff` command.
pub async fn create(state_data: &dyn hospital_store::DataStore, req: CreateStaff) -> ApiResult<StaffMember> {
    let username = req.username.trim().to_lowercase();
    if username.len() < 3
        || username.len() > 32
        || !username.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return Err(ValidationError::new("username", "3 to 32 letters, digits, '_' or '.'").into());
    }
    let name = parse_name("name", &req.name)?;
    check_password_policy(&req.password)?;
    check_roles(state_data, &req.roles).await?;
    let s = StaffMember {
        id: StaffId::new(),
        username,
        name,
        password_hash: password::hash(req.password).await?,
        roles: req.roles,
        active: true,
        created_at: Utc::now(),
    };
    match state_data.create_staff(&s).await {
        Ok(()) => Ok(s),
        Err(StoreError::Conflict(_)) => {
            Err(ApiError::Conflict { code: "username_taken", message: "this username is taken".into() })
        }
        Err(e) => Err(e.into()),
    }
}

/// At least one role, each one in the role table.
pub async fn check_roles(data: &dyn hospital_store::DataStore, roles: &[RoleName]) -> ApiResult<()> {
    if roles.is_empty() {
        return Err(ValidationError::new("roles", "give at least one role").into());
    }
    let known: Docs<'_, RoleDef> = Docs::new(data, crate::access::ROLE_DOCS);
    for r in roles {
        if known.get(r.as_str()).await?.is_none() {
            return Err(ValidationError::new("roles", format!("no such role: {r}")).into());
        }
    }
    Ok(())
}

/// Creates a staff account (administrators only).
#[utoipa::path(post, path = "/api/v1/admin/staff", tag = "staff", security(("bearer" = [])), request_body = CreateStaff,
    responses((status = 201, body = StaffView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_staff(
    State(state): State<AppState>,
    caller: StaffCaller,
    ApiJson(req): ApiJson<CreateStaff>,
) -> ApiResult<(StatusCode, ApiJson<StaffView>)> {
    let s = create(state.stores.data.as_ref(), req).await?;
    tracing::info!(by = %caller.staff_id, staff = %s.id, username = %s.username, "staff account created");
    Ok((StatusCode::CREATED, ApiJson(StaffView::from(&s))))
}
