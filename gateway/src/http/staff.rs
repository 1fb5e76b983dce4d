//! The back office's staff accounts (AUTH-4, ADM-1): who am I (with what I may do), and staff
//! listed, created, edited, deactivated and their passwords reset. Deactivating a member, or
//! changing their roles or password, ends all their sessions at once (the roles a session holds
//! are the ones it logged in with). Each change is audited with the member it concerns.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use hospital_domain::access::RoleDef;
use hospital_domain::account::{check_password_policy, parse_name};
use hospital_domain::audit::Target;
use hospital_domain::{Permission, RoleName, StaffId, ValidationError};
use hospital_store::{Docs, StaffMember, StoreError, Subject};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::auth::password;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, StaffCaller};
use crate::http::views::StaffView;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(permit(Permission::StaffSelf, routes!(staff_me)))
        .routes(permit(Permission::StaffRead, routes!(list_staff)))
        .routes(permit(Permission::StaffWrite, routes!(create_staff)))
        .routes(permit(Permission::StaffRead, routes!(get_staff)))
        .routes(permit(Permission::StaffWrite, routes!(update_staff)))
        .routes(permit(Permission::StaffWrite, routes!(reset_password)))
}

/// The logged-in staff member and what their roles let them do.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaffMe {
    #[serde(flatten)]
    pub staff: StaffView,
    /// Permission names (`area.verb`), for the console to show only what the caller may use.
    pub permissions: Vec<Permission>,
}

/// The logged-in staff member.
#[utoipa::path(get, path = "/api/v1/staff/me", tag = "staff", security(("bearer" = [])),
    responses((status = 200, body = StaffMe), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn staff_me(State(state): State<AppState>, caller: StaffCaller) -> ApiResult<ApiJson<StaffMe>> {
    let s = state.stores.data.staff(caller.staff_id).await?.ok_or(ApiError::InvalidToken)?;
    let permissions = state.roles.table().permissions_of(&caller.roles);
    Ok(ApiJson(StaffMe { staff: StaffView::from(&s), permissions }))
}

/// Every staff member, by username.
#[utoipa::path(get, path = "/api/v1/admin/staff", tag = "staff", security(("bearer" = [])),
    responses((status = 200, body = [StaffView]), (status = 403, body = ErrorBody)))]
async fn list_staff(State(state): State<AppState>) -> ApiResult<ApiJson<Vec<StaffView>>> {
    let all = state.stores.data.all_staff().await?;
    Ok(ApiJson(all.iter().map(StaffView::from).collect()))
}

/// One staff member.
#[utoipa::path(get, path = "/api/v1/admin/staff/{id}", tag = "staff", security(("bearer" = [])),
    params(("id" = StaffId, Path)),
    responses((status = 200, body = StaffView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_staff(State(state): State<AppState>, ApiPath(id): ApiPath<StaffId>) -> ApiResult<ApiJson<StaffView>> {
    let s = state.stores.data.staff(id).await?.ok_or_else(|| ApiError::not_found("staff member"))?;
    Ok(ApiJson(StaffView::from(&s)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStaff {
    pub name: Option<String>,
    pub roles: Option<Vec<RoleName>>,
    /// false deactivates: the member can no longer log in and their sessions end at once.
    pub active: Option<bool>,
}

/// Edits a staff member: name, roles, active. A change of roles or a deactivation ends the
/// member's sessions at once.
#[utoipa::path(patch, path = "/api/v1/admin/staff/{id}", tag = "staff", security(("bearer" = [])),
    params(("id" = StaffId, Path)), request_body = UpdateStaff,
    responses((status = 200, body = StaffView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_staff(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<StaffId>,
    ApiJson(req): ApiJson<UpdateStaff>,
) -> ApiResult<ApiJson<StaffView>> {
    let data = state.stores.data.as_ref();
    let mut s = data.staff(id).await?.ok_or_else(|| ApiError::not_found("staff member"))?;
    let mut end_sessions = false;
    let mut changed = Vec::new();
    if let Some(name) = &req.name {
        s.name = parse_name("name", name)?;
        changed.push("name");
    }
    if let Some(roles) = req.roles {
        check_roles(data, &roles).await?;
        end_sessions |= roles != s.roles;
        s.roles = roles;
        changed.push("roles");
    }
    if let Some(active) = req.active {
        if !active && id == audit.caller.staff_id {
            return Err(ApiError::Conflict {
                code: "self_deactivation",
                message: "you cannot deactivate yourself".into(),
            });
        }
        end_sessions |= !active;
        s.active = active;
        changed.push(if active { "active" } else { "deactivated" });
    }
    if changed.is_empty() {
        return Err(ValidationError::new("body", "give name, roles or active").into());
    }
    if !data.update_staff(&s).await? {
        return Err(ApiError::not_found("staff member"));
    }
    let action = if req.active == Some(false) { "staff.deactivate" } else { "staff.update" };
    let event = audit.event(action, Target::new("staff", id)?)?.purpose(&changed.join(","))?;
    audit.record(event).await?;
    if end_sessions {
        end_all_sessions(&state, &s).await?;
    }
    tracing::info!(by = %audit.caller.staff_id, staff = %id, ?changed, "staff member changed");
    Ok(ApiJson(StaffView::from(&s)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    pub password: String,
}

/// Sets a staff member's password (they forgot it, or it leaked) and ends their sessions.
#[utoipa::path(post, path = "/api/v1/admin/staff/{id}/password", tag = "staff", security(("bearer" = [])),
    params(("id" = StaffId, Path)), request_body = ResetPassword,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn reset_password(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<StaffId>,
    ApiJson(req): ApiJson<ResetPassword>,
) -> ApiResult<StatusCode> {
    let data = state.stores.data.as_ref();
    let mut s = data.staff(id).await?.ok_or_else(|| ApiError::not_found("staff member"))?;
    check_password_policy(&req.password)?;
    s.password_hash = password::hash(req.password).await?;
    if !data.update_staff(&s).await? {
        return Err(ApiError::not_found("staff member"));
    }
    audit.record(audit.event("staff.password_reset", Target::new("staff", id)?)?).await?;
    end_all_sessions(&state, &s).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of a staff member (their next request gets 401).
async fn end_all_sessions(state: &AppState, s: &StaffMember) -> ApiResult<()> {
    let subject = Subject::Staff { id: s.id, roles: s.roles.clone() };
    let ended = state.sessions.delete_all(&subject, Utc::now()).await?;
    tracing::info!(staff = %s.id, ended, "staff sessions ended");
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStaff {
    pub username: String,
    pub name: String,
    pub password: String,
    pub roles: Vec<RoleName>,
    /// The doctor (catalogue id) this account is, for a doctor's workstation.
    #[serde(default)]
    pub doctor_id: Option<hospital_domain::DoctorId>,
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
        doctor_id: req.doctor_id,
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

/// At least one role, each one built in or in the role table (the built-in ones count before
/// they are first stored: the demo staff are seeded before the role table is loaded).
pub async fn check_roles(data: &dyn hospital_store::DataStore, roles: &[RoleName]) -> ApiResult<()> {
    if roles.is_empty() {
        return Err(ValidationError::new("roles", "give at least one role").into());
    }
    let known: Docs<'_, RoleDef> = Docs::new(data, crate::roles::ROLE_DOCS);
    let builtin = hospital_domain::access::builtin_roles();
    for r in roles {
        if !builtin.iter().any(|b| b.name == *r) && known.get(r.as_str()).await?.is_none() {
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
    audit: StaffAudit,
    ApiJson(req): ApiJson<CreateStaff>,
) -> ApiResult<(StatusCode, ApiJson<StaffView>)> {
    let s = create(state.stores.data.as_ref(), req).await?;
    audit.record(audit.event("staff.create", Target::new("staff", s.id)?)?).await?;
    tracing::info!(by = %audit.caller.staff_id, staff = %s.id, username = %s.username, "staff account created");
    Ok((StatusCode::CREATED, ApiJson(StaffView::from(&s))))
}
