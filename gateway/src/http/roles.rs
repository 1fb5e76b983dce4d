//! Roles and permissions as data (ADM-2): the permission list, the role table, and custom roles
//! created, changed and deleted by administrators. A change is stored with a compare-and-set
//! (two editors never both win), reloaded on every node at once (`backoffice::changed`), and so
//! applies to every session holding the role on its next request.

use axum::extract::State;
use axum::http::StatusCode;
use hospital_domain::access::{Permission, RoleDef, RoleName};
use hospital_domain::audit::Target;
use hospital_store::Docs;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::roles::{ROLES_CHANGED, ROLE_DOCS};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(permit(Permission::RolesRead, routes!(list_permissions)))
        .routes(permit(Permission::RolesRead, routes!(list_roles)))
        .routes(permit(Permission::RolesWrite, routes!(put_role, delete_role)))
}

/// One permission as the console lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PermissionView {
    /// `area.verb`
    pub name: &'static str,
    pub label: &'static str,
}

/// Every permission a route can need, in a fixed order.
#[utoipa::path(get, path = "/api/v1/admin/permissions", tag = "roles", security(("bearer" = [])),
    responses((status = 200, body = [PermissionView]), (status = 403, body = ErrorBody)))]
async fn list_permissions() -> ApiJson<Vec<PermissionView>> {
    ApiJson(Permission::ALL.iter().map(|p| PermissionView { name: p.name(), label: p.label() }).collect())
}

/// The role table: built-in roles first, then custom ones by name.
#[utoipa::path(get, path = "/api/v1/admin/roles", tag = "roles", security(("bearer" = [])),
    responses((status = 200, body = [RoleDef]), (status = 403, body = ErrorBody)))]
async fn list_roles(State(state): State<AppState>) -> ApiJson<Vec<RoleDef>> {
    ApiJson(state.roles.table().list().into_iter().cloned().collect())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRole {
    /// What staff read (`退款专员`).
    pub label: String,
    /// Permission names (`payments.refund`); an unknown name is refused.
    pub permissions: Vec<String>,
}

/// Creates a custom role or changes a role's label and permissions (admin's permissions are
/// fixed: it holds every one).
#[utoipa::path(put, path = "/api/v1/admin/roles/{name}", tag = "roles", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = PutRole,
    responses((status = 200, body = RoleDef), (status = 201, body = RoleDef), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_role(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<PutRole>,
) -> ApiResult<(StatusCode, ApiJson<RoleDef>)> {
    let name = RoleName::parse(&name)?;
    let mut permissions = Vec::new();
    for p in &req.permissions {
        let p = Permission::parse(p)
            .ok_or_else(|| hospital_domain::ValidationError::new("permissions", format!("no such permission: {p}")))?;
        permissions.push(p);
    }
    let mut role = RoleDef::new(name.clone(), &req.label, permissions)?;
    let docs: Docs<'_, RoleDef> = Docs::new(state.stores.data.as_ref(), ROLE_DOCS);
    let stored = docs.get(name.as_str()).await?;
    let expected = stored.as_ref().map_or(0, |s| s.version);
    if let Some(s) = &stored {
        role.builtin = s.value.builtin;
        if role.builtin {
            role.note_withheld();
        }
        if name.is_admin() && role.permissions != s.value.permissions {
            return Err(ApiError::Conflict {
                code: "admin_role_fixed",
                message: "the admin role holds every permission; only its label can change".into(),
            });
        }
    }
    if !docs.put(name.as_str(), &role, expected).await? {
        return Err(ApiError::Conflict { code: "edit_conflict", message: "the role changed meanwhile; reload".into() });
    }
    let action = if stored.is_some() { "role.update" } else { "role.create" };
    audit.record(audit.event(action, Target::new("role", &name)?)?).await?;
    crate::backoffice::changed(&state, ROLES_CHANGED).await?;
    let status = if stored.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, ApiJson(role)))
}

/// Deletes a custom role; sessions holding it lose what it granted on their next request.
/// Built-in roles cannot be deleted.
#[utoipa::path(delete, path = "/api/v1/admin/roles/{name}", tag = "roles", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn delete_role(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let name = RoleName::parse(&name)?;
    let docs: Docs<'_, RoleDef> = Docs::new(state.stores.data.as_ref(), ROLE_DOCS);
    let stored = docs.get(name.as_str()).await?.ok_or_else(|| ApiError::not_found("role"))?;
    if stored.value.builtin {
        return Err(ApiError::Conflict { code: "builtin_role", message: "a built-in role cannot be deleted".into() });
    }
    docs.delete(name.as_str()).await?;
    audit.record(audit.event("role.delete", Target::new("role", &name)?)?).await?;
    crate::backoffice::changed(&state, ROLES_CHANGED).await?;
    Ok(StatusCode::NO_CONTENT)
}
