//! Extractors that turn every rejection into the project's error shape (`ApiJson`, `RawBody`,
//! `ApiQuery`, `ApiPath`), and the authentication extractors: `Caller` (any live session),
//! `AccountCaller` (a patient's account that has accepted the latest privacy texts;
//! `ConsentingCaller` before that) and `StaffCaller` (staff; the permission gate of
//! `access::permit` checks the route's permission).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hospital_domain::{AccountId, Permission, Role, RoleName, StaffId};
use hospital_store::{LoginSession, Subject};
use serde::de::DeserializeOwned;
use std::sync::Arc;

use crate::auth::tokens::hash_token;
use crate::error::ApiError;
use crate::state::AppState;
use crate::{guard, validate};

/// A JSON request body, read with the API's rules: `Content-Type: application/json` (415
/// otherwise), at most the body limit (413), within the body read timeout (408), a JSON object
/// at the top level (serde would otherwise take an array as a struct's fields in order), and
/// every number in its range (422 `invalid_field` naming the field's path).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        crate::error::json_response(&self.0)
    }
}

/// `application/json` or `application/<something>+json`, parameters aside.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(v) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a request body that must be a JSON object into `T` (also used by the routes that
/// verify a signature over the raw bytes first).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => ApiError::InvalidBody("the body must be a JSON object".into()),
            Err(e) => ApiError::MalformedJson(format!("the body is not valid JSON: {e}")),
        });
    }
    // A plain parse first: tracking the path keeps a copy of every key it passes, worth paying
    // only to say where an error is (the same bytes are parsed again to say it).
    let mut de = serde_json::Deserializer::from_slice(bytes);
    if let Ok(value) = T::deserialize(&mut de) {
        if de.end().is_ok() {
            return Ok(value);
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => validate::range_error(&path, &inner.to_string())
                .unwrap_or_else(|| ApiError::InvalidBody(format!("the JSON does not fit: {}", at(&path, &inner)))),
            _ => ApiError::MalformedJson(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    de.end().map_err(|e| ApiError::MalformedJson(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// `path: message`, or the message alone for an error at the top level.
fn at(path: &str, e: &dyn std::fmt::Display) -> String {
    if path == "." || path.is_empty() {
        e.to_string()
    } else {
        format!("{path}: {e}")
    }
}

/// The raw bytes of a request body, with the API's errors: 413 over the body limit, 408 when
/// the body does not arrive within the body read timeout.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state).await.map(RawBody).map_err(|e| body_error(&e))
    }
}

/// Why a body could not be read, as the API answers it.
pub fn body_error(e: &BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<guard::BodyTimeout>() {
            return ApiError::RequestTimeout;
        }
        cause = c.source();
    }
    ApiError::BadRequest(format!("could not read the body: {e}"))
}

/// A query string, read with the API's rules: unknown or malformed parameters are 400, numbers
/// out of range 422 `invalid_field` naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(ApiQuery).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            validate::range_error(&path, &inner.to_string())
                .unwrap_or_else(|| ApiError::BadRequest(format!("bad query string: {}", at(&path, &inner))))
        })
    }
}

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

/// Any authenticated caller, with its live session (shared with the login cache: a request
/// that finds it there copies a pointer, not the session).
#[derive(Debug, Clone)]
pub struct Caller {
    pub session: Arc<LoginSession>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let token = bearer(parts)?.ok_or(ApiError::Unauthenticated)?;
        let now = Utc::now();
        let hash = hash_token(token);
        let logins = &state.realtime.hub.logins;
        let session = match logins.get(&hash, now) {
            Some(s) => {
                hospital_actors::count!("auth_session_cache_hits_total");
                s
            }
            None => {
                let generation = logins.generation();
                let s = Arc::new(state.sessions.get(&hash, now).await?.ok_or(ApiError::InvalidToken)?);
                logins.insert(&s, generation);
                s
            }
        };
        // Record activity at most every `touch_every`: the idle timeout is coarse by that much,
        // and a busy client does not cost a write per request.
        let session = if now - session.last_seen_at >= state.config.auth.touch_every() {
            let generation = logins.generation();
            let touched = Arc::new(state.sessions.touch(&session, now).await?);
            logins.insert(&touched, generation);
            touched
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
    pub session: Arc<LoginSession>,
}

impl FromRequestParts<AppState> for AccountCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let c = ConsentingCaller::from_request_parts(parts, state).await?;
        // SET-2: until the patient accepts the latest privacy texts, 403 `consent_required`.
        state.consent.check(state.stores.data.as_ref(), c.account_id).await?;
        Ok(AccountCaller { account_id: c.account_id, session: c.session })
    }
}

/// A patient-side caller who may not have accepted the latest privacy texts yet: only the
/// consent routes (`http::consent`) take it; every other patient route takes `AccountCaller`.
#[derive(Debug, Clone)]
pub struct ConsentingCaller {
    pub account_id: AccountId,
    pub session: Arc<LoginSession>,
}

impl FromRequestParts<AppState> for ConsentingCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let c = Caller::from_request_parts(parts, state).await?;
        match c.session.subject {
            Subject::Account { id } => Ok(ConsentingCaller { account_id: id, session: c.session }),
            Subject::Staff { .. } => Err(ApiError::Forbidden("this endpoint is for patient accounts".into())),
        }
    }
}

/// A staff caller: who, the role names the session carries, and the permission the route
/// needed (already checked by the gate of `access::permit`).
///
/// On a route registered without `permit` (older code, or code written before the permission
/// layer) the extractor still authenticates the staff session, with `permission: None`, and the
/// handler must narrow with `require`; the OpenAPI test lists such routes until they name their
/// permission.
#[derive(Debug, Clone)]
pub struct StaffCaller {
    pub staff_id: StaffId,
    pub roles: Vec<RoleName>,
    pub session: Arc<LoginSession>,
    /// The permission the route names (`x-permission`); None on a route without `permit`.
    pub permission: Option<Permission>,
}

impl StaffCaller {
    /// A check by built-in role name (admins pass). Routes are guarded by their permission
    /// (`access::permit`); this remains for routes not yet converted and for handlers that must
    /// narrow further by role.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.roles.iter().any(RoleName::is_admin) || self.roles.iter().any(|r| roles.iter().any(|x| r == x)) {
            Ok(())
        } else {
            let names: Vec<String> = roles.iter().map(Role::to_string).collect();
            Err(ApiError::Forbidden(format!("this needs one of the roles: {}", names.join(", "))))
        }
    }

    /// Whether the caller holds the built-in role (admins hold every one).
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.iter().any(|r| r.is_admin() || *r == role)
    }

    /// A further check of a permission other than the route's, through the role table (a
    /// handler that does more for some callers, e.g. an unmasked phone for `patients.write`).
    pub fn holds(&self, state: &AppState, p: Permission) -> bool {
        state.roles.table().allows(&self.roles, p)
    }
}

impl FromRequestParts<AppState> for StaffCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(c) = parts.extensions.get::<StaffCaller>() {
            return Ok(c.clone());
        }
        let c = Caller::from_request_parts(parts, state).await?;
        match c.session.subject.clone() {
            Subject::Staff { id, roles } => {
                Ok(StaffCaller { staff_id: id, roles, session: c.session, permission: None })
            }
            Subject::Account { .. } => Err(ApiError::Forbidden("this endpoint is for staff".into())),
        }
    }
}
