//! Extractors that turn every rejection into the project's error shape (`ApiJson`, `RawBody`,
//! `ApiQuery`, `ApiPath`), and the authentication extractors: `Caller` (any live session),
//! `AccountCaller` (a patient's account that has accepted the latest privacy texts;
//! `ConsentingCaller` before that) and `StaffCaller` (staff; the permission gate of
//! `access::permit` checks the route's permission).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use chrono::Utc;
use hospital_domain::{AccountId, Permission, Role, RoleName, StaffId};
use hospital_store::{LoginSession, Subject};
use serde::de::DeserializeOwned;
use std::sync::Arc;

use crate::auth::tokens::TokenHash;
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

/// `application/json` or `application/<something>+json`, parameters aside. (The request guard
/// asks the same to choose a body's limit and to tell an error already in the JSON shape, so
/// nothing in the gateway disagrees on what JSON is.)
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let Some(v) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    // Compared without a lower-cased copy: this runs on every request with a JSON body.
    let essence = v.split(';').next().unwrap_or_default().trim();
    let is = |part: Option<&str>, want: &str| part.is_some_and(|p| p.eq_ignore_ascii_case(want));
    essence.eq_ignore_ascii_case("application/json")
        || is(essence.get(..12), "application/") && is(essence.get(essence.len().saturating_sub(5)..), "+json")
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

    /// The body within the route's limit (axum's `DefaultBodyLimit`, as axum's `Bytes` reads
    /// it), frame by frame. axum's `Bytes` collects every body into a list of frames first; a
    /// JSON body nearly always arrives as one frame, which is taken as it is (880 fewer of a
    /// refused booking's ~55,000 instructions: docs/benchmarks.md, stop 51), and any later
    /// frames are appended to a copy. Trailers are dropped, as `Bytes` drops them.
    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        use http_body::Body as _;
        let mut body = axum::RequestExt::into_limited_body(req);
        // The first frame as it came; a copy only once a second one arrives.
        let (mut got, mut more): (Bytes, Option<BytesMut>) = (Bytes::new(), None);
        while !body.is_end_stream() {
            let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await else {
                break;
            };
            let Ok(data) = frame.map_err(|e| read_error(&e))?.into_data() else { continue };
            match &mut more {
                Some(all) => all.extend_from_slice(&data),
                None if got.is_empty() => got = data,
                None => {
                    let mut all = BytesMut::from(&got[..]);
                    all.extend_from_slice(&data);
                    more = Some(all);
                }
            }
        }
        Ok(RawBody(more.map_or(got, BytesMut::freeze)))
    }
}

/// Why a body could not be read, from the error and its causes: over the limit (413), not in
/// time (408), or anything else (400).
fn read_error(e: &(dyn std::error::Error + 'static)) -> ApiError {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return ApiError::PayloadTooLarge;
        }
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
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim();
            if token.is_empty() {
                Err(ApiError::InvalidToken)
            } else {
                Ok(Some(token))
            }
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
        let hash = TokenHash::of(token);
        let hash = hash.as_str();
        let logins = &state.realtime.hub.logins;
        let session = match logins.get(hash, now) {
            Some(s) => {
                hospital_actors::count!("auth_session_cache_hits_total");
                s
            }
            None => {
                let generation = logins.generation();
                let s = Arc::new(state.sessions.get(hash, now).await?.ok_or(ApiError::InvalidToken)?);
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::DefaultBodyLimit;
    use tower::{Layer, ServiceExt};

    /// `RawBody` of a body that comes in `chunks` (no length announced), under a body limit of
    /// `limit` bytes set as the router sets it (`DefaultBodyLimit`).
    async fn read(chunks: Vec<Result<&'static [u8], std::io::Error>>, limit: usize) -> Result<Bytes, ApiError> {
        let frames = futures::stream::iter(chunks.into_iter().map(|c| c.map(Bytes::from_static)));
        let read = tower::service_fn(|req: Request| async move {
            Ok::<_, std::convert::Infallible>(RawBody::from_request(req, &()).await.map(|b| b.0))
        });
        let svc = DefaultBodyLimit::max(limit).layer(read);
        svc.oneshot(Request::new(Body::from_stream(frames))).await.unwrap()
    }

    #[tokio::test]
    async fn a_body_in_several_frames_is_read_whole_and_in_one_frame_as_it_came() {
        assert_eq!(&read(vec![Ok(b"{\"a\":"), Ok(b"1"), Ok(b"}")], 1 << 20).await.unwrap()[..], b"{\"a\":1}");
        assert_eq!(&read(vec![Ok(b"{\"b\":2}")], 1 << 20).await.unwrap()[..], b"{\"b\":2}");
        assert!(read(vec![], 1 << 20).await.unwrap().is_empty());
        assert!(read(vec![Ok(b"")], 1 << 20).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413_and_a_failed_read_400() {
        let over = read(vec![Ok(b"0123456789"), Ok(b"0123456789")], 15).await.unwrap_err();
        assert_eq!(over.code(), "payload_too_large", "{over}");
        assert!(read(vec![Ok(b"0123456789"), Ok(b"01234")], 15).await.is_ok(), "exactly the limit");
        let broken = read(vec![Ok(b"{"), Err(std::io::Error::other("reset"))], 1 << 20).await.unwrap_err();
        assert_eq!(broken.code(), "bad_request", "{broken}");
    }

    #[test]
    fn json_is_application_json_or_a_json_suffix_in_any_case() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, axum::http::HeaderValue::from_static(v));
            is_json(&h)
        };
        for yes in
            ["application/json", "Application/JSON; charset=utf-8", " application/json ", "application/problem+json"]
        {
            assert!(with(yes), "{yes}");
        }
        for no in ["text/json", "application/jsonx", "application", "application/x-www-form-urlencoded", "json"] {
            assert!(!with(no), "{no}");
        }
        assert!(!is_json(&HeaderMap::new()), "no Content-Type");
    }

    #[tokio::test]
    async fn a_body_late_past_its_deadline_is_408() {
        let never = futures::stream::pending::<Result<Bytes, std::io::Error>>();
        let body = Body::new(guard::DeadlineBody::new(Body::from_stream(never), std::time::Duration::from_millis(20)));
        let err = RawBody::from_request(Request::new(body), &()).await.err().expect("a timeout");
        assert_eq!(err.code(), "request_timeout", "{err}");
    }
}
