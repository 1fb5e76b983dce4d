//! The hospital catalogue (INFO-1..4) and doctors' schedules (BOOK-1): public, no login needed.
//! Everything but the schedule is answered from the in-memory `CatalogIndex`; the schedule
//! comes from the doctor's schedule actor. A department staff switched off (and those below it,
//! their doctors and sessions) is not here at all: 404, left out of lists, and a booking in it is
//! refused with 409 `department_closed` (`refuse_closed`). Doctors' photos are served here, from
//! object storage, under a URL that names the stored file (so it is cached for good).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use chrono::{Duration as ChronoDuration, NaiveDate, NaiveTime, Utc};
use hospital_actors::SessionAvailability;
use hospital_domain::catalog::{Department, Doctor, Hospital};
use hospital_domain::schedule::{Period, SessionStatus, SlotId};
use hospital_domain::{DepartmentId, DoctorId, Fen, SessionId};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::catalog_index::{CatalogIndex, DepartmentNode};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::validate::{Day, ListLimit, PopularLimit};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(hospital))
        .routes(routes!(clock))
        .routes(routes!(departments))
        .routes(routes!(department))
        .routes(routes!(doctors))
        .routes(routes!(popular_doctors))
        .routes(routes!(doctor))
        .routes(routes!(doctor_schedule))
        .routes(routes!(doctor_photo))
        .routes(routes!(search))
}

/// How long browsers and proxies keep a photo: its URL names a write-once object, so its bytes
/// never change under it; a new photo is a new URL.
const PHOTO_MAX_AGE_SECS: u64 = 7 * 24 * 3600;

/// Refuses a booking (or a waitlist) in a session whose department, or whose doctor's
/// department, is switched off: 409 `department_closed`. Free while no department is off; else
/// one read of the session.
pub async fn refuse_closed(state: &AppState, session: SessionId) -> ApiResult<()> {
    if !state.catalog().any_closed() {
        return Ok(());
    }
    let Some(s) = state.stores.data.session(session).await? else { return Ok(()) };
    let idx = state.catalog();
    let doctor_open = idx.doctor(s.doctor_id).is_none_or(|d| idx.open(d.department_id));
    if idx.open(s.department_id) && doctor_open {
        return Ok(());
    }
    Err(ApiError::Conflict {
        code: "department_closed",
        message: "this department is not taking bookings now; bookings already made stay".into(),
    })
}

/// A doctor as lists show it, with the department name and title label resolved.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DoctorView {
    #[serde(flatten)]
    pub doctor: Doctor,
    pub title_label: &'static str,
    pub department_name: String,
    /// The registration fee of the doctor's new sessions, in fen: their own (`own_fee`), else
    /// the title's default.
    pub fee: Fen,
    /// The photo (JPEG, PNG or WebP), if there is one: `GET` it, no sign-in needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photo_url: Option<String>,
}

/// Where a doctor's photo is served.
pub fn photo_url(d: &Doctor) -> Option<String> {
    d.photo_file().map(|f| format!("/api/v1/doctors/{}/photo/{f}", d.id))
}

pub(crate) fn view(idx: &CatalogIndex, d: &Doctor) -> DoctorView {
    DoctorView {
        doctor: d.clone(),
        title_label: d.title.label(),
        department_name: idx.department(d.department_id).map(|x| x.name.clone()).unwrap_or_default(),
        fee: d.fee(),
        photo_url: photo_url(d),
    }
}

/// The hospital: introduction, contacts, map position, buildings and floors (INFO-1).
#[utoipa::path(get, path = "/api/v1/hospital", tag = "catalogue", responses((status = 200, body = Hospital)))]
async fn hospital(State(state): State<AppState>) -> ApiResult<ApiJson<Hospital>> {
    state.catalog().hospital.clone().map(ApiJson).ok_or_else(|| ApiError::not_found("hospital"))
}

/// The hospital's clock: its zone and what day and time it is there, by the server.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Clock {
    /// IANA zone, e.g. `Asia/Shanghai` (`[gateway] timezone`).
    pub zone: String,
    pub now: chrono::DateTime<Utc>,
    /// The hospital's date now.
    pub today: NaiveDate,
}

/// The hospital's zone and today (times are stored in UTC and shown in the hospital's zone): the staff
/// pages show times and pick "today" by it rather than by the browser's zone and clock.
#[utoipa::path(get, path = "/api/v1/clock", tag = "catalogue", responses((status = 200, body = Clock)))]
async fn clock(State(state): State<AppState>) -> ApiJson<Clock> {
    let now = Utc::now();
    ApiJson(Clock { zone: state.zone.0.name().to_string(), now, today: state.zone.local_date(now) })
}

/// The department tree (INFO-2), siblings in display order.
#[utoipa::path(get, path = "/api/v1/departments", tag = "catalogue", responses((status = 200, body = [DepartmentNode])))]
async fn departments(State(state): State<AppState>) -> ApiJson<Vec<DepartmentNode>> {
    ApiJson(state.catalog().public_tree())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DepartmentDetail {
    #[serde(flatten)]
    pub department: Department,
    /// Doctors of this department and of those below it.
    pub doctors: Vec<DoctorView>,
}

/// One department with its doctors.
#[utoipa::path(get, path = "/api/v1/departments/{id}", tag = "catalogue", params(("id" = DepartmentId, Path)),
    responses((status = 200, body = DepartmentDetail), (status = 404, body = ErrorBody)))]
async fn department(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<DepartmentId>,
) -> ApiResult<ApiJson<DepartmentDetail>> {
    let idx = state.catalog();
    let d = idx.public_department(id).ok_or_else(|| ApiError::not_found("department"))?;
    let doctors =
        idx.doctors_under(id).into_iter().filter(|x| idx.open(x.department_id)).map(|x| view(&idx, x)).collect();
    Ok(ApiJson(DepartmentDetail { department: d.clone(), doctors }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DoctorQuery {
    /// Name, specialty or department, in Chinese (any fragment) or pinyin initials (`wjg`).
    pub q: Option<String>,
    pub department_id: Option<DepartmentId>,
    /// At most this many (default 50, at most 200).
    #[param(inline)]
    pub limit: Option<ListLimit>,
}

/// Doctors, searched (INFO-3, INFO-4); best matches first, else most popular first.
#[utoipa::path(get, path = "/api/v1/doctors", tag = "catalogue", params(DoctorQuery),
    responses((status = 200, body = [DoctorView]), (status = 400, body = ErrorBody)))]
async fn doctors(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DoctorQuery>,
) -> ApiResult<ApiJson<Vec<DoctorView>>> {
    if q.q.as_ref().is_some_and(|s| s.chars().count() > 50) {
        return Err(ApiError::BadRequest("q: at most 50 characters".into()));
    }
    let idx = state.catalog();
    let limit = q.limit.map_or(50, ListLimit::get);
    let under = q.department_id.map(|d| idx.doctors_under(d).into_iter().map(|d| d.id).collect::<Vec<_>>());
    let list = idx
        .search_doctors(q.q.as_deref())
        .into_iter()
        .filter(|d| idx.open(d.department_id) && under.as_ref().is_none_or(|ids| ids.contains(&d.id)))
        .take(limit)
        .map(|d| view(&idx, d))
        .collect();
    Ok(ApiJson(list))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LimitQuery {
    /// At most this many (default 8, at most 50).
    #[param(inline)]
    pub limit: Option<PopularLimit>,
}

/// Popular doctors for the home page.
#[utoipa::path(get, path = "/api/v1/doctors/popular", tag = "catalogue", params(LimitQuery),
    responses((status = 200, body = [DoctorView])))]
async fn popular_doctors(State(state): State<AppState>, ApiQuery(q): ApiQuery<LimitQuery>) -> ApiJson<Vec<DoctorView>> {
    let idx = state.catalog();
    ApiJson(idx.popular(q.limit.map_or(8, PopularLimit::get)).into_iter().map(|d| view(&idx, d)).collect())
}

/// One doctor.
#[utoipa::path(get, path = "/api/v1/doctors/{id}", tag = "catalogue", params(("id" = DoctorId, Path)),
    responses((status = 200, body = DoctorView), (status = 404, body = ErrorBody)))]
async fn doctor(State(state): State<AppState>, ApiPath(id): ApiPath<DoctorId>) -> ApiResult<ApiJson<DoctorView>> {
    let idx = state.catalog();
    let d = idx.public_doctor(id).ok_or_else(|| ApiError::not_found("doctor"))?;
    Ok(ApiJson(view(&idx, d)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScheduleQuery {
    /// First date (hospital's local date); default today.
    #[param(inline)]
    pub from: Option<Day>,
    /// Last date; default 13 days after `from`; at most 60 days after it.
    #[param(inline)]
    pub to: Option<Day>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SlotView {
    pub slot_id: SlotId,
    #[schema(value_type = String)]
    pub start: NaiveTime,
    #[schema(value_type = String)]
    pub end: NaiveTime,
    pub quota: u32,
    /// Places left.
    pub remaining: u32,
    /// Booking this slot has closed: its time is past (its end, plus the hospital's
    /// `late_booking`; or the hospital's `booking_cutoff` before its start), or the session is of
    /// an earlier day.
    pub closed: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub session_id: SessionId,
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    pub period: Period,
    pub period_label: &'static str,
    pub fee: Fen,
    /// When slots open (放号), in the hospital's zone.
    pub release_at: String,
    /// Whether booking is open yet.
    pub released: bool,
    pub status: SessionStatus,
    pub slots: Vec<SlotView>,
    /// Patients on the waitlist (候补).
    pub waiting: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    pub doctor_id: DoctorId,
    pub sessions: Vec<SessionView>,
}

fn session_view(state: &AppState, avail: &SessionAvailability) -> SessionView {
    let s = &avail.session;
    let now = Utc::now();
    // Slots before this one are closed to booking (their time is past).
    let open_from = s.open_from(&state.zone, state.actors.config().booking_close(), now);
    SessionView {
        session_id: s.id,
        date: s.date,
        period: s.period,
        period_label: s.period.label(),
        fee: s.fee,
        release_at: state.zone.show(s.release_at),
        released: now >= s.release_at,
        status: s.status,
        slots: s
            .segments
            .iter()
            .enumerate()
            .map(|(i, seg)| SlotView {
                slot_id: s.slot_id(i as u16),
                start: seg.start,
                end: seg.end,
                quota: seg.quota,
                remaining: avail.remaining.get(i).copied().unwrap_or(0),
                closed: i < open_from,
            })
            .collect(),
        waiting: avail.waiting,
    }
}

/// A doctor's sessions and slots (BOOK-1), each slot with `slot_id` and `remaining`.
#[utoipa::path(get, path = "/api/v1/doctors/{id}/schedule", tag = "catalogue", params(("id" = DoctorId, Path), ScheduleQuery),
    responses((status = 200, body = ScheduleView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn doctor_schedule(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<DoctorId>,
    ApiQuery(q): ApiQuery<ScheduleQuery>,
) -> ApiResult<ApiJson<ScheduleView>> {
    if state.catalog().public_doctor(id).is_none() {
        return Err(ApiError::not_found("doctor"));
    }
    schedule_of(&state, id, q).await.map(ApiJson)
}

/// A doctor's sessions over the query's dates as their schedule actor holds them: what patients
/// read here, and staff at `GET /api/v1/admin/doctors/{id}/schedule` (switched-off ones too).
pub(crate) async fn schedule_of(state: &AppState, id: DoctorId, q: ScheduleQuery) -> ApiResult<ScheduleView> {
    let from = q.from.map_or_else(|| state.zone.local_date(Utc::now()), Day::get);
    let to = q.to.map_or(from + ChronoDuration::days(13), Day::get);
    if to < from || to - from > ChronoDuration::days(60) {
        return Err(ApiError::BadRequest("to must be on or after from, and at most 60 days after it".into()));
    }
    let sessions = state.actors.get_schedule(id, from, to).await?;
    Ok(ScheduleView { doctor_id: id, sessions: sessions.iter().map(|s| session_view(state, s)).collect() })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    pub q: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchResults {
    pub departments: Vec<Department>,
    pub doctors: Vec<DoctorView>,
}

/// Searches departments and doctors at once (the home page's search box).
#[utoipa::path(get, path = "/api/v1/search", tag = "catalogue", params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 400, body = ErrorBody)))]
async fn search(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<ApiJson<SearchResults>> {
    let text = q.q.trim();
    if text.is_empty() || text.chars().count() > 50 {
        return Err(ApiError::BadRequest("q: 1 to 50 characters".into()));
    }
    let idx = state.catalog();
    Ok(ApiJson(SearchResults {
        departments: idx.search_departments(text).into_iter().filter(|d| idx.open(d.id)).take(20).cloned().collect(),
        doctors: idx
            .search_doctors(Some(text))
            .into_iter()
            .filter(|d| idx.open(d.department_id))
            .take(50)
            .map(|d| view(&idx, d))
            .collect(),
    }))
}

/// A doctor's photo, by the URL the doctor's entry gives (`photo_url`; no sign-in needed). The
/// URL names the stored file, so the answer is cacheable for good (`Cache-Control: public,
/// immutable`, with an `ETag`); a replaced photo's old URL is 404.
#[utoipa::path(get, path = "/api/v1/doctors/{id}/photo/{file}", tag = "catalogue",
    params(("id" = DoctorId, Path), ("file" = String, Path, description = "The file name in `photo_url`")),
    responses((status = 200, description = "The photo (image/jpeg, image/png or image/webp)", content_type = "image/jpeg"),
        (status = 304, description = "Not modified (If-None-Match)"), (status = 404, body = ErrorBody)))]
async fn doctor_photo(
    State(state): State<AppState>,
    ApiPath((id, file)): ApiPath<(DoctorId, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = {
        let idx = state.catalog();
        let d = idx.public_doctor(id).ok_or_else(|| ApiError::not_found("photo"))?;
        match (&d.photo, d.photo_file()) {
            (Some(key), Some(current)) if current == file => key.clone(),
            _ => return Err(ApiError::not_found("photo")),
        }
    };
    let max_age = i64::try_from(PHOTO_MAX_AGE_SECS).unwrap_or(i64::MAX);
    let mut res = crate::http::files::serve(&state.files, &key, &file, max_age, &headers).await?;
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={PHOTO_MAX_AGE_SECS}, immutable")).expect("ascii"),
    );
    Ok(res)
}
