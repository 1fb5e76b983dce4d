//! The one error shape of the API: `{"error":{"code":"...","message":"..."}}`, with a stable
//! machine-readable code and a message a person can read. Every failure (bad JSON, a wrong type,
//! a missing token, an unknown route, a store outage) becomes an `ApiError`; internal causes are
//! logged, never sent.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hospital_domain::ValidationError;
use hospital_integrations::insurance::{code, InsuranceError};
use hospital_store::StoreError;
use serde::Serialize;
use std::time::Duration;

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: clients switch on it.
    pub code: &'static str,
    /// For people; may change wording.
    pub message: String,
    /// The request field at fault, for validation errors: a name (`phone`), or a path into the
    /// body for nested fields (`weekly[0].segment_minutes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Which rule said no, for `rule_violation` (e.g. `weekly_cap`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON at all.
    #[error("{0}")]
    MalformedJson(String),
    /// 422: JSON of the wrong shape (wrong types, unknown or missing fields).
    #[error("{0}")]
    InvalidBody(String),
    /// 422: a field failed validation (phone, ID number, ...).
    #[error("{0}")]
    Validation(#[from] ValidationError),
    /// 422 `invalid_field`: a number or date outside its documented range, at a path into the
    /// request (`weekly[0].quota`, `limit`).
    #[error("{field}: {message}")]
    OutOfRange { field: String, message: String },
    /// 422 with a specific code: well-formed input an outside authority refused
    /// (`real_name_mismatch`, `real_name_no_record`).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// 400: a query string or path parameter is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// 408: the request's body did not arrive within the body read timeout.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// 414
    #[error("the request URI is longer than this server accepts")]
    UriTooLong,
    /// 431
    #[error("the request's header fields are larger than this server accepts")]
    HeadersTooLarge,
    /// 415
    #[error("send the body as JSON with Content-Type: application/json")]
    UnsupportedMediaType,
    /// 413
    #[error("the request body is larger than this endpoint accepts")]
    PayloadTooLarge,
    /// 413 `payload_too_large`, saying what the limit is (an uploaded file).
    #[error("{0}")]
    TooLarge(String),
    /// 415 `unsupported_media_type`, saying what was wrong with an uploaded file's content.
    #[error("{0}")]
    UnsupportedContent(String),
    /// 416: a byte range outside the file; `size` goes into `Content-Range: bytes */size`.
    #[error("the requested range is outside the file ({size} bytes)")]
    RangeNotSatisfiable { size: u64 },
    /// 401: no credentials at all.
    #[error("this endpoint needs a bearer token: log in first")]
    Unauthenticated,
    /// 401: a token that is unknown, expired, idle too long or revoked.
    #[error("the token is invalid, expired or revoked: log in again")]
    InvalidToken,
    /// 401: wrong password or code; the code says which.
    #[error("{message}")]
    BadCredentials { code: &'static str, message: String },
    /// 403
    #[error("{0}")]
    Forbidden(String),
    /// 403 with a specific code: `link_expired`, `bad_signature`.
    #[error("{message}")]
    Denied { code: &'static str, message: String },
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 405
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    /// 409 with a specific code: `phone_taken`, `patient_cap`, `sold_out`, ...
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 409 `rule_violation`: a booking rule (BOOK-6) said no; `reason` says which.
    #[error("{message}")]
    RuleViolation { reason: &'static str, message: String },
    /// 429: this address already holds as many connections as it may.
    #[error("too many open connections from this address; close some and retry")]
    TooManyConnections,
    /// 429 with Retry-After.
    #[error("{message}")]
    RateLimited { code: &'static str, message: String, retry_after: Duration },
    /// 502: an external system (SMS, WeChat) failed.
    #[error("{0}")]
    Upstream(String),
    /// 503: a dependency is down or the server is overloaded.
    #[error("{0}")]
    Unavailable(String),
    /// 500: logged with its cause, answered without it.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            MalformedJson(_) | BadRequest(_) => StatusCode::BAD_REQUEST,
            InvalidBody(_) | Validation(_) | OutOfRange { .. } | Unprocessable { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            UriTooLong => StatusCode::URI_TOO_LONG,
            HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            TooManyConnections => StatusCode::TOO_MANY_REQUESTS,
            UnsupportedMediaType | UnsupportedContent(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PayloadTooLarge | TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Unauthenticated | InvalidToken | BadCredentials { .. } => StatusCode::UNAUTHORIZED,
            Forbidden(_) | Denied { .. } => StatusCode::FORBIDDEN,
            NotFound(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Conflict { .. } | RuleViolation { .. } => StatusCode::CONFLICT,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Upstream(_) => StatusCode::BAD_GATEWAY,
            Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            MalformedJson(_) => "malformed_json",
            InvalidBody(_) => "invalid_body",
            Validation(_) | OutOfRange { .. } => "invalid_field",
            BadRequest(_) => "bad_request",
            RequestTimeout => "request_timeout",
            UriTooLong => "uri_too_long",
            HeadersTooLarge => "headers_too_large",
            TooManyConnections => "too_many_connections",
            UnsupportedMediaType | UnsupportedContent(_) => "unsupported_media_type",
            PayloadTooLarge | TooLarge(_) => "payload_too_large",
            RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Unauthenticated => "unauthenticated",
            InvalidToken => "invalid_token",
            BadCredentials { code, .. }
            | Conflict { code, .. }
            | RateLimited { code, .. }
            | Unprocessable { code, .. }
            | Denied { code, .. } => code,
            RuleViolation { .. } => "rule_violation",
            Forbidden(_) => "forbidden",
            NotFound(_) => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Upstream(_) => "upstream_error",
            Unavailable(_) => "unavailable",
            Internal(_) => "internal",
        }
    }
}

/// A JSON answer: `Content-Type: application/json` and the value's bytes, presized (axum's
/// `Json` starts at 128 bytes and doubles, and a booking's answer, an appointment and its
/// order, is just over 1 KiB: a reallocation and copy at each doubling, one even from 1 KiB).
/// `extract::ApiJson` answers through it too.
pub(crate) fn json_response<T: Serialize>(v: &T) -> Response {
    let mut buf = Vec::with_capacity(2048);
    match serde_json::to_writer(&mut buf, v) {
        Ok(()) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], buf).into_response(),
        Err(e) => ApiError::Internal(format!("serialising an answer: {e}")).into_response(),
    }
}

/// What the insurance platform's failures mean to the caller.
impl From<InsuranceError> for ApiError {
    fn from(e: InsuranceError) -> Self {
        match e.api_code() {
            Some(code::AUTH_INVALID) => ApiError::Conflict {
                code: "insurance_auth_invalid",
                message: "the insurance authorisation is invalid, used or expired: authorise again".into(),
            },
            Some(code::NOT_COVERED) => ApiError::Conflict {
                code: "insurance_not_covered",
                message: "no insurance policy covers this person here".into(),
            },
            Some(_) if !e.is_retryable() => {
                tracing::warn!(error = %e, "the insurance platform refused");
                ApiError::Conflict { code: "insurance_refused", message: e.to_string() }
            }
            _ => {
                tracing::warn!(error = %e, "the insurance platform is unavailable");
                ApiError::Upstream("the insurance platform is unavailable; try again".into())
            }
        }
    }
}

impl ApiError {
    /// The error's text (its `Display`), taken out of it: a variant whose text is one of its
    /// strings gives that string up instead of formatting a copy (every refusal of a release
    /// storm answers with one of these).
    fn into_message(self) -> String {
        use ApiError::*;
        match self {
            MalformedJson(m)
            | InvalidBody(m)
            | BadRequest(m)
            | TooLarge(m)
            | UnsupportedContent(m)
            | Forbidden(m)
            | NotFound(m)
            | Upstream(m)
            | Unavailable(m) => m,
            Unprocessable { message, .. }
            | BadCredentials { message, .. }
            | Denied { message, .. }
            | Conflict { message, .. }
            | RuleViolation { message, .. }
            | RateLimited { message, .. } => message,
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let field = match &self {
            ApiError::Validation(v) => Some(v.field.to_string()),
            ApiError::OutOfRange { field, .. } => Some(field.clone()),
            _ => None,
        };
        let reason = match &self {
            ApiError::RuleViolation { reason, .. } => Some(*reason),
            _ => None,
        };
        // The header some errors add, decided before the error gives up its text.
        let extra: Option<(header::HeaderName, HeaderValue)> = match &self {
            // The rest of the body was not read: the connection cannot carry another request.
            ApiError::RequestTimeout | ApiError::PayloadTooLarge => {
                Some((header::CONNECTION, HeaderValue::from_static("close")))
            }
            ApiError::RateLimited { retry_after, .. } => {
                // Whole seconds, rounded up: a client that waits this long will be let in.
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                Some((header::RETRY_AFTER, HeaderValue::from(secs.max(1))))
            }
            ApiError::RangeNotSatisfiable { size } => {
                HeaderValue::from_str(&format!("bytes */{size}")).ok().map(|v| (header::CONTENT_RANGE, v))
            }
            _ => None,
        };
        let code = self.code();
        let body = ErrorBody { error: ErrorDetail { code, message: self.into_message(), field, reason } };
        let mut resp = (status, json_response(&body)).into_response();
        if let Some((name, value)) = extra {
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Redis(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                tracing::error!(error = %e, "redis unavailable");
                ApiError::Unavailable("a backing service is unavailable; try again shortly".into())
            }
            StoreError::Closed => ApiError::Unavailable("the server is shutting down".into()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<hospital_objects::ObjectError> for ApiError {
    fn from(e: hospital_objects::ObjectError) -> Self {
        use hospital_objects::ObjectError as O;
        match e {
            O::TooLarge { .. } => ApiError::TooLarge(e.to_string()),
            O::Executable(_) | O::Unsupported { .. } | O::Mismatch { .. } => {
                ApiError::UnsupportedContent(e.to_string())
            }
            O::Empty => ApiError::BadRequest(e.to_string()),
            O::NotFound | O::BadKey(_) => ApiError::not_found("file"),
            O::Backend(cause) => {
                tracing::error!(%cause, "object store failed");
                ApiError::Unavailable("file storage is unavailable; try again shortly".into())
            }
        }
    }
}

impl From<hospital_objects::LinkError> for ApiError {
    fn from(e: hospital_objects::LinkError) -> Self {
        ApiError::Denied { code: e.code(), message: e.to_string() }
    }
}

impl From<hospital_store::audit::AuditError> for ApiError {
    fn from(e: hospital_store::audit::AuditError) -> Self {
        tracing::error!(error = %e, "audit log write failed");
        ApiError::Unavailable("the action could not be recorded in the audit log, so it was not done; try again".into())
    }
}

impl From<hospital_actors::ActorError> for ApiError {
    fn from(e: hospital_actors::ActorError) -> Self {
        use hospital_actors::ActorError as A;
        match e {
            A::Store(s) => s.into(),
            other => {
                tracing::warn!(error = %other, "actor unavailable");
                ApiError::Unavailable("the service is busy; try again shortly".into())
            }
        }
    }
}

impl From<hospital_actors::AccountError> for ApiError {
    fn from(e: hospital_actors::AccountError) -> Self {
        use hospital_actors::AccountError as A;
        match e {
            // A token outliving its account (deleted) is as good as revoked.
            A::NoSuchAccount => ApiError::InvalidToken,
            A::PhoneTaken => ApiError::Conflict {
                code: "phone_taken",
                message: "this phone belongs to another account: log in with it instead".into(),
            },
            A::NoPhone => ApiError::Conflict { code: "no_phone", message: e.to_string() },
            A::LastSignInMethod => ApiError::Conflict {
                code: "last_sign_in_method",
                message:
                    "the phone is the account's only way to sign in: bind WeChat or set an e-mail and password first"
                        .into(),
            },
            A::PasswordChanged => ApiError::Conflict {
                code: "password_changed",
                message: "the password was changed on another device meanwhile: try again".into(),
            },
            A::Unavailable(cause) => cause.into(),
        }
    }
}

impl From<hospital_actors::PatientError> for ApiError {
    fn from(e: hospital_actors::PatientError) -> Self {
        use hospital_actors::PatientError as P;
        match e {
            P::PatientCap { .. } => ApiError::Conflict { code: "patient_cap", message: e.to_string() },
            P::DuplicatePatient => ApiError::Conflict { code: "patient_exists", message: e.to_string() },
            P::PersonAccountCap { .. } => ApiError::Conflict { code: "person_account_cap", message: e.to_string() },
            P::WrongAccount => ApiError::Internal(e.to_string()),
            P::Unavailable(a) => a.into(),
        }
    }
}

impl From<hospital_actors::ExamFailure> for ApiError {
    fn from(e: hospital_actors::ExamFailure) -> Self {
        use hospital_actors::ExamFailure as F;
        use hospital_domain::exam::ExamError;
        match e {
            F::NotFound => ApiError::not_found("exam"),
            F::Exists => ApiError::Conflict { code: "exam_exists", message: e.to_string() },
            F::Rejected(ExamError::InvalidTransition { .. }) => {
                ApiError::Conflict { code: "invalid_exam_transition", message: e.to_string() }
            }
            F::Rejected(ExamError::Invalid(v)) => ApiError::Validation(v),
            F::Unavailable(a) => a.into(),
        }
    }
}

impl From<hospital_actors::BookingError> for ApiError {
    fn from(e: hospital_actors::BookingError) -> Self {
        use hospital_actors::BookingError as B;
        use hospital_domain::booking::BookError as K;
        let conflict =
            |code: &'static str, e: &dyn std::fmt::Display| ApiError::Conflict { code, message: e.to_string() };
        match e {
            B::Book(K::SoldOut) => ApiError::Conflict {
                code: "sold_out",
                message: "no places left in this slot; join the waitlist or pick another".into(),
            },
            // Handlers that know the hospital's zone reword this (`http::booking::booking_error`).
            B::Book(K::NotReleased { release_at }) => ApiError::Conflict {
                code: "not_released",
                message: format!("slots are released at {}", release_at.to_rfc3339()),
            },
            B::Book(K::SessionStopped) => conflict("session_stopped", &e),
            B::Book(K::AlreadyInSession) => ApiError::RuleViolation {
                reason: "already_in_session",
                message: "this person already has a place in this session".into(),
            },
            B::Book(K::BookingClosed) => conflict("booking_closed", &e),
            B::Book(K::QuotaBelowBooked { .. }) => conflict("quota_below_booked", &e),
            B::Book(K::AlreadyWaiting) => conflict("already_waiting", &e),
            B::Book(K::NotSoldOut) => conflict("not_sold_out", &e),
            B::Book(K::Transition(_)) => conflict("invalid_state", &e),
            B::Book(K::NoSuchSlot) => ApiError::not_found("slot"),
            B::Book(K::NoSuchAppointment) | B::NoSuchAppointment => ApiError::not_found("appointment"),
            B::NoSuchPatient => ApiError::not_found("patient"),
            B::Rule { reason, message } => ApiError::RuleViolation { reason, message },
            B::PastCutoff { .. } => conflict("cancel_cutoff_passed", &e),
            B::OtherDoctor => conflict("reschedule_other_doctor", &e),
            B::Unavailable(cause) => {
                tracing::warn!(error = %cause, "booking unavailable");
                ApiError::Unavailable("booking is busy; try again shortly".into())
            }
        }
    }
}

impl From<hospital_actors::PaymentError> for ApiError {
    fn from(e: hospital_actors::PaymentError) -> Self {
        use hospital_actors::PaymentError as P;
        match e {
            P::Order(o) => ApiError::Conflict { code: "invalid_order_state", message: o.to_string() },
            P::Expired => ApiError::Conflict { code: "order_expired", message: e.to_string() },
            P::Mismatch(m) => ApiError::BadRequest(format!("notification does not match the order: {m}")),
            P::NotConfigured => ApiError::Unavailable(e.to_string()),
            P::Provider(cause) => {
                tracing::warn!(error = %cause, "payment provider unavailable");
                ApiError::Upstream("the payment provider is unavailable; try again".into())
            }
            P::Alipay(cause) => {
                tracing::warn!(error = %cause, "Alipay unavailable or refused");
                ApiError::Upstream("Alipay is unavailable; try again".into())
            }
            P::FeeItems(m) => ApiError::Conflict { code: "fee_items_unavailable", message: m },
            P::NotInsured(m) => ApiError::Conflict { code: "insurance_unavailable", message: m },
            P::InsufficientBalance => ApiError::Conflict {
                code: "insufficient_balance",
                message: "the balance is less than the order: top up or pay online".into(),
            },
            P::Insurance(cause) => cause.into(),
            P::Unavailable(cause) => cause.into(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(format!("bad query string: {}", r.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::NotFound(format!("no such resource: {}", r.body_text()))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant, as a handler could make it.
    fn every_error() -> Vec<ApiError> {
        let s = || "a text with \"quotes\" and 中文".to_string();
        vec![
            ApiError::MalformedJson(s()),
            ApiError::InvalidBody(s()),
            ApiError::Validation(ValidationError::new("phone", "eleven digits")),
            ApiError::OutOfRange { field: "weekly[0].quota".into(), message: s() },
            ApiError::Unprocessable { code: "real_name_mismatch", message: s() },
            ApiError::BadRequest(s()),
            ApiError::RequestTimeout,
            ApiError::UriTooLong,
            ApiError::HeadersTooLarge,
            ApiError::UnsupportedMediaType,
            ApiError::PayloadTooLarge,
            ApiError::TooLarge(s()),
            ApiError::UnsupportedContent(s()),
            ApiError::RangeNotSatisfiable { size: 7 },
            ApiError::Unauthenticated,
            ApiError::InvalidToken,
            ApiError::BadCredentials { code: "wrong_password", message: s() },
            ApiError::Forbidden(s()),
            ApiError::Denied { code: "link_expired", message: s() },
            ApiError::NotFound(s()),
            ApiError::MethodNotAllowed,
            ApiError::Conflict { code: "sold_out", message: s() },
            ApiError::RuleViolation { reason: "weekly_cap", message: s() },
            ApiError::TooManyConnections,
            ApiError::RateLimited { code: "rate_limited", message: s(), retry_after: Duration::from_millis(1500) },
            ApiError::Upstream(s()),
            ApiError::Unavailable(s()),
            ApiError::Internal("the cause, never shown".into()),
        ]
    }

    #[test]
    fn an_answer_carries_the_errors_own_text() {
        for e in every_error() {
            let shown = e.to_string();
            let code = e.code();
            assert_eq!(e.into_message(), shown, "{code}: the text taken out is the text shown");
        }
    }

    #[tokio::test]
    async fn an_answer_is_the_one_json_shape_with_its_headers() {
        for e in every_error() {
            let (status, code, shown) = (e.status(), e.code(), e.to_string());
            let unread_body = matches!(e, ApiError::RequestTimeout | ApiError::PayloadTooLarge);
            let resp = e.into_response();
            assert_eq!(resp.status(), status);
            let closes = resp.headers().get(header::CONNECTION).is_some_and(|v| v == "close");
            assert_eq!(closes, unread_body, "{code}: the connection closes after an unread body only");
            if code == "rate_limited" {
                assert_eq!(resp.headers().get(header::RETRY_AFTER).unwrap(), "2", "1.5 s rounds up");
            }
            if code == "range_not_satisfiable" {
                assert_eq!(resp.headers().get(header::CONTENT_RANGE).unwrap(), "bytes */7");
            }
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(v["error"]["code"], code);
            assert_eq!(v["error"]["message"], shown.as_str());
        }
    }
}
