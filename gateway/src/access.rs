//! Permissions on staff routes (ADM-2) and the audit of every staff action, in one place.
//!
//! A staff route is registered as `.routes(permit(Permission::ScheduleWrite, routes!(handler)))`:
//! that one line writes `x-permission: schedule.write` on the route's operations in the OpenAPI
//! document and puts the `gate` in front of the handler. The gate authenticates the caller (a
//! staff session), resolves the permission through the role table (`Roles`, in memory, reloaded
//! on every node when a role changes), refuses with 403 (and an audit entry, outcome `denied`)
//! or runs the handler, then appends an audit entry of what happened (`success`, `denied` or
//! `failed`, from the answer's status) and answers only once that entry is durable. A handler
//! that records a finer entry itself (`StaffAudit::record`, e.g. a patient's record read with its
//! purpose) replaces the gate's.
//!
//! The OpenAPI test checks that every staff route names a permission, and the e2e walk
//! (`tests/e2e/permissions.rs`) calls every such route with every built-in role against the
//! table.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hospital_domain::access::Permission;
use hospital_domain::audit::{Action, Actor, AuditEvent, Outcome, Target};
use hospital_store::Subject;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa_axum::router::UtoipaMethodRouter;

use crate::error::ApiError;
use crate::extract::{Caller, StaffCaller};
use crate::ratelimit::client_ip_of;
use crate::state::AppState;

/// The OpenAPI extension naming a route's permission.
pub const EXTENSION: &str = "x-permission";

/// The OpenAPI extension marking a route registered with `permit_quiet` (value `refusals`).
pub const QUIET_EXTENSION: &str = "x-audit";

/// Registers a staff route that needs `p`: documents it (`x-permission`) and guards it (`gate`).
pub fn permit(p: Permission, r: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    let (schemas, paths, method_router) = document(p, r);
    (schemas, paths, method_router.layer(axum::middleware::from_fn_with_state(p, gate)))
}

/// Like `permit`, for the routine reads a console repeats all day (an agent's own desk, their
/// backlog counts, the canned replies of a conversation they already opened, moving their read
/// mark): the permission is checked the same way, and a refusal or a failure is audited as
/// always, but a success writes no entry, so a console polling its desk every few seconds does
/// not bury the log. Only for routes that show no patient's data beyond what an audited read
/// already showed (a conversation and its history are read through `permit` routes, each read
/// recorded with the patient it concerns). Marked `x-audit: refusals` in the OpenAPI document.
pub fn permit_quiet(p: Permission, r: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    let (schemas, mut paths, method_router) = document(p, r);
    for item in paths.paths.values_mut() {
        for op in operations(item) {
            op.extensions.get_or_insert_with(Default::default).insert(QUIET_EXTENSION.into(), "refusals".into());
        }
    }
    (schemas, paths, method_router.layer(axum::middleware::from_fn_with_state(p, gate_quiet)))
}

/// Writes the permission on the route's operations in the document.
fn document(p: Permission, r: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    let (schemas, mut paths, method_router) = r;
    for item in paths.paths.values_mut() {
        for op in operations(item) {
            op.extensions.get_or_insert_with(Default::default).insert(EXTENSION.into(), p.name().into());
            let note = format!("Needs the permission `{}` ({}).", p.name(), p.label());
            op.description = Some(match op.description.take() {
                Some(d) if !d.is_empty() => format!("{d}\n\n{note}"),
                _ => note,
            });
        }
    }
    (schemas, paths, method_router)
}

pub(crate) fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Set by `StaffAudit::record`: the handler wrote its own entry, so the gate writes none.
#[derive(Clone, Default)]
pub struct AuditMark(pub Arc<AtomicBool>);

impl AuditMark {
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The outcome an answer's status means for the audit log.
fn outcome_of(status: axum::http::StatusCode) -> Outcome {
    if status.is_success() || status.is_redirection() {
        Outcome::Success
    } else if status == axum::http::StatusCode::FORBIDDEN {
        Outcome::Denied
    } else {
        Outcome::Failed
    }
}

/// The gate in front of every staff route (see the module's description).
async fn gate(State(p): State<Permission>, req: Request, next: Next) -> Response {
    guard(p, false, req, next).await
}

/// The gate of `permit_quiet` routes: no entry for a success.
async fn gate_quiet(State(p): State<Permission>, req: Request, next: Next) -> Response {
    guard(p, true, req, next).await
}

async fn guard(p: Permission, quiet: bool, req: Request, next: Next) -> Response {
    let Some(state) = req.extensions().get::<AppState>().cloned() else {
        return ApiError::Internal("the gate needs the app state in the request (router)".into()).into_response();
    };
    let (mut parts, body) = req.into_parts();
    let caller =
        match <Caller as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, &state).await {
            Ok(c) => c,
            Err(e) => return e.into_response(),
        };
    let Subject::Staff { id, roles } = caller.session.subject.clone() else {
        return ApiError::Forbidden("this endpoint is for staff".into()).into_response();
    };
    let ip = client_ip_of(&parts.headers, &parts.extensions, state.config.trust_forwarded_for);
    let route = parts.extensions.get::<MatchedPath>().map(|m| m.as_str().to_string());
    let target = format!("{} {}", parts.method, parts.uri.path());
    let target = Target::new("route", target.chars().take(128).collect::<String>())
        .unwrap_or_else(|_| Target::new("route", route.as_deref().unwrap_or("?")).expect("a route is a valid id"));
    let actor = Actor::Staff { id, roles: roles.clone() };
    let event = |outcome| {
        AuditEvent::new(actor.clone(), Action::parse(p.name()).expect("permission names are actions"), target.clone())
            .from_ip(ip)
            .outcome(outcome)
    };

    if !state.roles.table().allows(&roles, p) {
        if let Err(e) = state.audit.record(event(Outcome::Denied)).await {
            return ApiError::from(e).into_response();
        }
        let why = format!("this needs the permission {} ({})", p.name(), p.label());
        return ApiError::Forbidden(why).into_response();
    }

    let mark = AuditMark::default();
    parts.extensions.insert(StaffCaller { staff_id: id, roles, session: caller.session, permission: Some(p) });
    parts.extensions.insert(mark.clone());
    let response = next.run(Request::from_parts(parts, body)).await;
    if mark.is_set() || (quiet && response.status().is_success()) {
        return response;
    }
    // The action is audited before anyone hears it was done; if the log cannot take it, the
    // caller gets 503 (and the operator a log line), never a silent success.
    match state.audit.record(event(outcome_of(response.status()))).await {
        Ok(_) => response,
        Err(e) => {
            tracing::error!(error = %e, route = ?route, "a staff action could not be audited");
            ApiError::from(e).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every staff route (under `/api/v1/admin/` or `/api/v1/staff/`) names one known permission
    /// in the OpenAPI document, and only authenticated routes name one.
    #[test]
    fn every_staff_route_names_its_permission() {
        let (_, mut doc) = crate::api(true);
        let mut missing = Vec::new();
        let mut named = 0;
        for (path, item) in doc.paths.paths.iter_mut() {
            let staff = path.starts_with("/api/v1/admin/") || path.starts_with("/api/v1/staff/");
            for op in operations(item) {
                let p = op.extensions.as_ref().and_then(|e| e.get(EXTENSION)).and_then(|v| v.as_str());
                match p {
                    Some(p) => {
                        assert!(Permission::parse(p).is_some(), "{path}: unknown permission {p}");
                        assert!(op.security.is_some(), "{path} names {p} but documents no bearer security");
                        named += 1;
                    }
                    None if staff => missing.push(path.clone()),
                    None => {}
                }
            }
        }
        assert!(
            missing.is_empty(),
            "staff routes without a permission (register them with access::permit): {missing:?}"
        );
        assert!(named >= 20, "only {named} routes name a permission");
    }
}
