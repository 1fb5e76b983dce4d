//! Booking for patients (BOOK-3..7): hold a slot, list and read one's appointments, cancel,
//! reschedule, join and leave a waitlist. The work happens in the actors: the account's actor
//! applies the real-name rules, the doctor's actor owns the places.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, StatusCode};
use chrono::{DateTime, NaiveDate, Utc};
use hospital_actors::BookingError;
use hospital_domain::appointment::{Appointment, AppointmentStatus, CancelReason};
use hospital_domain::booking::BookError;
use hospital_domain::order::{Order, OrderStatus};
use hospital_domain::schedule::{Period, SlotId};
use hospital_domain::{AppointmentId, DepartmentId, DoctorId, Fen, OrderId, PatientId, SessionId, ValidationError};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AccountCaller, ApiJson, ApiPath};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(book, list))
        .routes(routes!(get_one))
        .routes(routes!(cancel))
        .routes(routes!(reschedule))
        .routes(routes!(join_waitlist))
        .routes(routes!(leave_waitlist))
}

/// Maps a booking refusal to the API error, showing times in the hospital's zone.
pub fn booking_error(state: &AppState, e: BookingError) -> ApiError {
    match e {
        BookingError::Book(BookError::NotReleased { release_at }) => ApiError::Conflict {
            code: "not_released",
            message: format!("slots are released at {}", state.zone.show(release_at)),
        },
        other => other.into(),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppointmentView {
    pub id: AppointmentId,
    pub slot_id: SlotId,
    /// 就诊序号 within the slot.
    pub place: u32,
    pub doctor_id: DoctorId,
    pub doctor_name: String,
    pub department_id: DepartmentId,
    pub department_name: String,
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "hospital_domain::timestamp::date")]
    pub date: NaiveDate,
    pub period: Period,
    pub patient_id: PatientId,
    pub patient_name: String,
    pub fee: Fen,
    pub status: AppointmentStatus,
    pub order_id: OrderId,
    /// When an unpaid hold lapses, in the hospital's zone.
    pub hold_expires_at: String,
    /// The registration slip number, once paid.
    pub slip_no: Option<String>,
    pub cancel_reason: Option<CancelReason>,
    pub from_waitlist: bool,
    pub rescheduled_from: Option<AppointmentId>,
    #[serde(serialize_with = "hospital_domain::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
}

pub fn appointment_view(state: &AppState, a: &Appointment) -> AppointmentView {
    let idx = state.catalog();
    AppointmentView {
        id: a.id,
        slot_id: a.slot,
        place: a.place,
        doctor_id: a.doctor_id,
        doctor_name: idx.doctor(a.doctor_id).map(|d| d.name.clone()).unwrap_or_default(),
        department_id: a.department_id,
        department_name: idx.department(a.department_id).map(|d| d.name.clone()).unwrap_or_default(),
        date: a.date,
        period: a.period,
        patient_id: a.patient_id,
        patient_name: a.patient_name.clone(),
        fee: a.fee,
        status: a.status,
        order_id: a.order_id,
        hold_expires_at: state.zone.show(a.hold_expires_at),
        slip_no: a.slip_no.clone(),
        cancel_reason: a.cancel_reason,
        from_waitlist: a.from_waitlist,
        rescheduled_from: a.rescheduled_from,
        created_at: a.created_at,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub id: OrderId,
    /// The appointment a registration order pays for.
    pub appointment_id: Option<AppointmentId>,
    pub description: String,
    /// In fen.
    pub amount: Fen,
    pub status: OrderStatus,
    /// After this it can no longer be paid, in the hospital's zone.
    pub expires_at: String,
    #[serde(serialize_with = "hospital_domain::timestamp::serialize_opt")]
    pub paid_at: Option<DateTime<Utc>>,
    /// Fen refunded so far.
    pub refunded: Fen,
    /// Where to get the `wx.requestPayment` parameters.
    pub pay_with_wechat: String,
    /// Where to pay by Alipay.
    pub pay_with_alipay: String,
    /// `registration`, `fees` or `top_up`.
    pub kind: hospital_domain::order::OrderKind,
    /// The 就诊人 a fee order is for.
    pub patient_id: Option<hospital_domain::PatientId>,
    /// The cash channel once chosen (`wechat_pay`, `alipay`, `balance`).
    pub channel: Option<hospital_domain::ledger::Channel>,
    /// What it pays, line by line.
    pub items: Vec<hospital_domain::order::OrderItem>,
}

/// `/api/v1/orders/<id>/<action>`, written without `format!` (two per booking answer).
fn order_link(id: OrderId, action: &str) -> String {
    const BASE: &str = "/api/v1/orders/";
    let mut digits = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = id.0.hyphenated().encode_lower(&mut digits);
    let mut link = String::with_capacity(BASE.len() + id.len() + 1 + action.len());
    link.push_str(BASE);
    link.push_str(id);
    link.push('/');
    link.push_str(action);
    link
}

pub fn order_view(state: &AppState, o: &Order) -> OrderView {
    OrderView {
        id: o.id,
        appointment_id: o.appointment_id,
        description: o.description.clone(),
        amount: o.amount,
        status: o.status,
        expires_at: state.zone.show(o.expires_at),
        paid_at: o.paid_at,
        refunded: o.refunded_total(),
        pay_with_wechat: order_link(o.id, "wechat-pay"),
        pay_with_alipay: order_link(o.id, "alipay"),
        kind: o.kind,
        patient_id: o.patient_id,
        channel: o.channel,
        items: o.items.clone(),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookRequest {
    pub slot_id: String,
    pub patient_id: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BookResponse {
    pub appointment: AppointmentView,
    pub order: OrderView,
}

/// The `Idempotency-Key` header: a retried request with the same key gets the same answer.
/// Read from the request's own headers (the `HeaderMap` extractor copies all of them, a cost
/// every attempt of a release storm paid).
pub struct IdempotencyKey(pub Option<String>);

impl FromRequestParts<AppState> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        // A named constant: a name given as text is parsed (checked and lower-cased) at every lookup.
        const NAME: HeaderName = HeaderName::from_static("idempotency-key");
        let Some(v) = parts.headers.get(NAME) else { return Ok(IdempotencyKey(None)) };
        let s = v.to_str().ok().map(str::trim).filter(|s| !s.is_empty() && s.len() <= 64);
        match s {
            Some(s) if s.chars().all(|c| c.is_ascii_graphic()) => Ok(IdempotencyKey(Some(s.to_string()))),
            _ => Err(ValidationError::new("Idempotency-Key", "1 to 64 printable ASCII characters").into()),
        }
    }
}

/// Books a slot for one of the caller's patients: 201 with the hold and its payment order, or 409
/// `sold_out`, `not_released`, `session_stopped`, `department_closed` (staff switched the
/// department off) or `rule_violation` (with a `reason`). Send an
/// `Idempotency-Key` header: a retry with the same key books once and answers the same.
#[utoipa::path(post, path = "/api/v1/appointments", tag = "booking", security(("bearer" = [])), request_body = BookRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key book once")),
    responses((status = 201, body = BookResponse), (status = 409, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn book(
    State(state): State<AppState>,
    caller: AccountCaller,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(req): ApiJson<BookRequest>,
) -> ApiResult<(StatusCode, ApiJson<BookResponse>)> {
    let slot: SlotId = req.slot_id.parse()?;
    let patient = PatientId::parse(&req.patient_id)?;
    crate::http::catalog::refuse_closed(&state, slot.session_id).await?;
    let (a, o) =
        state.actors.book(caller.account_id, slot, patient, key).await.map_err(|e| booking_error(&state, e))?;
    Ok((
        StatusCode::CREATED,
        ApiJson(BookResponse { appointment: appointment_view(&state, &a), order: order_view(&state, &o) }),
    ))
}

/// The caller's appointments, newest first.
#[utoipa::path(get, path = "/api/v1/appointments", tag = "booking", security(("bearer" = [])),
    responses((status = 200, body = [AppointmentView]), (status = 401, body = ErrorBody)))]
async fn list(State(state): State<AppState>, caller: AccountCaller) -> ApiResult<ApiJson<Vec<AppointmentView>>> {
    let mut list = state.stores.data.appointments_of_account(caller.account_id).await?;
    list.reverse();
    Ok(ApiJson(list.iter().map(|a| appointment_view(&state, a)).collect()))
}

/// One of the caller's appointments (another account's is 404).
pub async fn owned(state: &AppState, caller: &AccountCaller, id: AppointmentId) -> ApiResult<Appointment> {
    state
        .stores
        .data
        .appointment(id)
        .await?
        .filter(|a| a.account_id == caller.account_id)
        .ok_or_else(|| ApiError::not_found("appointment"))
}

#[utoipa::path(get, path = "/api/v1/appointments/{id}", tag = "booking", security(("bearer" = [])),
    params(("id" = AppointmentId, Path)), responses((status = 200, body = AppointmentView), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<AppointmentId>,
) -> ApiResult<ApiJson<AppointmentView>> {
    let a = owned(&state, &caller, id).await?;
    Ok(ApiJson(appointment_view(&state, &a)))
}

/// Cancels a hold or a booking (BOOK-5). A paid booking is refunded; after the cutoff before
/// the visit: 409 `cancel_cutoff_passed`.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/cancel", tag = "booking", security(("bearer" = [])),
    params(("id" = AppointmentId, Path)), responses((status = 200, body = AppointmentView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<AppointmentId>,
) -> ApiResult<ApiJson<AppointmentView>> {
    let a = owned(&state, &caller, id).await?;
    let a =
        state.actors.cancel(a.doctor_id, id, Some(caller.account_id)).await.map_err(|e| booking_error(&state, e))?;
    Ok(ApiJson(appointment_view(&state, &a)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    pub slot_id: String,
}

/// Moves a booking to another slot of the same doctor (改约) in one durable step: the patient
/// never holds both places or neither; a refusal leaves the old booking as it was.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/reschedule", tag = "booking", security(("bearer" = [])),
    params(("id" = AppointmentId, Path)), request_body = RescheduleRequest,
    responses((status = 200, body = AppointmentView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn reschedule(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<AppointmentId>,
    ApiJson(req): ApiJson<RescheduleRequest>,
) -> ApiResult<ApiJson<AppointmentView>> {
    let slot: SlotId = req.slot_id.parse()?;
    owned(&state, &caller, id).await?;
    crate::http::catalog::refuse_closed(&state, slot.session_id).await?;
    let a = state.actors.reschedule(caller.account_id, id, slot).await.map_err(|e| booking_error(&state, e))?;
    Ok(ApiJson(appointment_view(&state, &a)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitlistRequest {
    pub patient_id: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WaitlistPosition {
    /// 1 is next in line.
    pub position: usize,
}

/// Joins a full session's waitlist (候补, BOOK-7): a freed place is offered to the first in line
/// as a time-limited hold, with a message.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/waitlist", tag = "booking", security(("bearer" = [])),
    params(("id" = SessionId, Path)), request_body = WaitlistRequest,
    responses((status = 201, body = WaitlistPosition), (status = 409, body = ErrorBody)))]
async fn join_waitlist(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(session): ApiPath<SessionId>,
    ApiJson(req): ApiJson<WaitlistRequest>,
) -> ApiResult<(StatusCode, ApiJson<WaitlistPosition>)> {
    let patient = PatientId::parse(&req.patient_id)?;
    crate::http::catalog::refuse_closed(&state, session).await?;
    let position =
        state.actors.join_waitlist(caller.account_id, session, patient).await.map_err(|e| booking_error(&state, e))?;
    Ok((StatusCode::CREATED, ApiJson(WaitlistPosition { position })))
}

/// Leaves a waitlist.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}/waitlist/{patient_id}", tag = "booking", security(("bearer" = [])),
    params(("id" = SessionId, Path), ("patient_id" = PatientId, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn leave_waitlist(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath((session, patient)): ApiPath<(SessionId, PatientId)>,
) -> ApiResult<StatusCode> {
    // Only the caller's own patients: another account's is "not found".
    if state.stores.data.patient(caller.account_id, patient).await?.is_none() {
        return Err(ApiError::not_found("patient"));
    }
    let s = state.stores.data.session(session).await?.ok_or_else(|| ApiError::not_found("session"))?;
    if state.actors.leave_waitlist(s.doctor_id, session, patient).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("not on this waitlist".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_link_is_the_path_of_the_order_s_action() {
        let id = OrderId::new();
        assert_eq!(order_link(id, "wechat-pay"), format!("/api/v1/orders/{id}/wechat-pay"));
        assert_eq!(order_link(id, "alipay"), format!("/api/v1/orders/{id}/alipay"));
    }
}
