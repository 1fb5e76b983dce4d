//! Extractors that turn every rejection into the project's error shape (`ApiJson`, `ApiQuery`,
//! `ApiPath`), and the authentication extractors: `Caller` (any live session), `AccountCaller`
//! (a patient's account) and `StaffCaller` (staff, with a role check in the handler).

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hospital_domain::{AccountId, Role, StaffId};
use hospital_store::{LoginSession, Subject};

use crate::auth::tokens::hash_token;
use crate::error::ApiError;
use crate::state::AppState;

/// `axum::Json` with our rejection.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query` with our rejection.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path` with our rejection.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(v) = parts.headers.get(axum::http::header::AUTHORIZATION) else { return Ok(None) };
    let v = v.to_str().map_err(|_| ApiError::InvalidToken)?;
    match v.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::InvalidToken),
    }
}

/// Any authenticated caller, with its live session.
#[derive(Debug, Clone)]
pub struct Caller {
    pub session: LoginSession,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let token = bearer(parts)?.ok_or(ApiError::Unauthenticated)?;
        let now = Utc::now();
        let session = state.sessions.get(&hash_token(token), now).await?.ok_or(ApiError::InvalidToken)?;
        // Record activity at most every `touch_every`: the idle timeout is coarse by that much,
        // and a busy client does not cost a write per request.
        let session = if now - session.last_seen_at >= state.config.auth.touch_every() {
            state.sessions.touch(&session, now).await?
        } else {
            session
        };
        let caller = Caller { session };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// A patient-side caller: the account behind the token.
#[derive(Debug, Clone)]
pub struct AccountCaller {
    pub account_id: AccountId,
    pub session: LoginSession,
}

impl FromRequestParts<AppState> for AccountCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let c = Caller::from_request_parts(parts, state).await?;
        match c.session.subject {
            Subject::Account { id } => Ok(AccountCaller { account_id: id, session: c.session }),
            Subject::Staff { .. } => Err(ApiError::Forbidden("this endpoint is for patient accounts".into())),
        }
    }
}

/// A staff caller and its roles.
#[derive(Debug, Clone)]
pub struct StaffCaller {
    pub staff_id: StaffId,
    pub roles: Vec<Role>,
    pub session: LoginSession,
}

impl StaffCaller {
    /// 403 unless the caller holds one of `roles` (admins hold every role).
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.roles.contains(&Role::Admin) || self.roles.iter().any(|r| roles.contains(r)) {
            Ok(())
        } else {
            let names: Vec<String> = roles.iter().map(Role::to_string).collect();
            Err(ApiError::Forbidden(format!("this needs one of the roles: {}", names.join(", "))))
        }
    }
}

impl FromRequestParts<AppState> for StaffCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let c = Caller::from_request_parts(parts, state).await?;
        match c.session.subject.clone() {
            Subject::Staff { id, roles } => Ok(StaffCaller { staff_id: id, roles, session: c.session }),
            Subject::Account { .. } => Err(ApiError::Forbidden("this endpoint is for staff".into())),
        }
    }
}
