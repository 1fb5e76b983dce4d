//! Feedback with screenshots (意见反馈, CS-4). A patient uploads up to `MAX_SCREENSHOTS` images
//! (the chat's image checks: content, not name; `objects.max_image_bytes`), stored under
//! `chat/feedback/<their account>/`, then sends the feedback naming them; a key of anyone else's
//! (or one never uploaded) is refused, so nobody can attach, and so get a link to, another
//! patient's screenshot. Patients list their own; staff with `chat.feedback` list a month's,
//! newest first. Every screenshot in an answer carries a fresh short-lived link, never stored.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use chrono::Utc;
use hospital_domain::access::Permission;
use hospital_domain::chat::conversation::ImageRef;
use hospital_domain::chat::feedback::{month_of, previous_month, Feedback, MAX_SCREENSHOTS};
use hospital_domain::{AccountId, FeedbackId, ValidationError};
use hospital_objects::{ContentType, ObjectError};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AccountCaller, ApiJson, ApiQuery};
use crate::files::{read_capped, FileService};
use crate::image_links::{link_of, ImageLink};
use crate::state::AppState;
use crate::validate::ListLimit;

/// How many months back a patient's own list looks (feedback is stored by month).
const OWN_MONTHS: usize = 12;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(OpenApiRouter::new().routes(routes!(upload_screenshot)).layer(DefaultBodyLimit::disable()))
        .routes(routes!(give, mine))
        .routes(permit(Permission::ChatFeedback, routes!(of_month)))
}

/// Where an account's screenshots are stored.
fn prefix_of(account: AccountId) -> String {
    format!("chat/feedback/{account}")
}

/// A screenshot with a fresh link.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Screenshot {
    /// The key to name in `POST /api/v1/chat/feedback`.
    pub key: String,
    pub content_type: String,
    #[serde(flatten)]
    pub link: ImageLink,
}

fn screenshot(files: &FileService, i: &ImageRef) -> Screenshot {
    Screenshot { key: i.key.clone(), content_type: i.content_type.clone(), link: link_of(files, &i.key) }
}

/// Uploads a screenshot for a feedback (PNG, JPEG, GIF or WebP, judged by its content). Answers
/// with its key (to name in the feedback) and a link.
#[utoipa::path(post, path = "/api/v1/chat/feedback/screenshots", tag = "chat", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The image's bytes"),
    responses((status = 201, body = Screenshot), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn upload_screenshot(
    State(files): State<FileService>,
    caller: AccountCaller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, ApiJson<Screenshot>)> {
    let policy = &files.image_policy;
    let bytes = read_capped(body, policy.max_bytes).await?;
    let declared = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let stored = files.put(&prefix_of(caller.account_id), bytes, declared, policy).await?;
    let image = ImageRef::new(&stored.key, stored.content_type.mime())?;
    Ok((StatusCode::CREATED, ApiJson(screenshot(&files, &image))))
}

/// Feedback as its patient, or staff, read it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeedbackView {
    pub id: FeedbackId,
    pub account_id: AccountId,
    pub text: String,
    pub contact: Option<String>,
    pub screenshots: Vec<Screenshot>,
    pub created_at: chrono::DateTime<Utc>,
}

fn view(files: &FileService, f: Feedback) -> FeedbackView {
    FeedbackView {
        id: f.id,
        account_id: f.account_id,
        screenshots: f.screenshots.iter().map(|i| screenshot(files, i)).collect(),
        text: f.text,
        contact: f.contact,
        created_at: f.created_at,
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiveFeedback {
    /// 1 to 2000 characters, shown as text.
    pub text: String,
    /// How to reach the patient about it (optional, one line).
    pub contact: Option<String>,
    /// Keys from `POST /api/v1/chat/feedback/screenshots` by the caller, at most 4.
    #[serde(default)]
    pub screenshots: Vec<String>,
}

/// The caller's own uploaded screenshot named by `key`, or 422: a key of another account's, one
/// never uploaded, or anything else is refused alike (it says nothing about other accounts).
async fn own_screenshot(files: &FileService, account: AccountId, key: &str) -> ApiResult<ImageRef> {
    let refuse = || ApiError::from(ValidationError::new("screenshots", "must be keys of screenshots you uploaded"));
    let rest = key.strip_prefix(&prefix_of(account)).and_then(|r| r.strip_prefix('/')).ok_or_else(refuse)?;
    let kind = ContentType::of_key(key).filter(|_| !rest.contains('/')).ok_or_else(refuse)?;
    match files.objects.head(key).await {
        Ok(_) => Ok(ImageRef::new(key, kind.mime()).map_err(|_| refuse())?),
        Err(ObjectError::NotFound | ObjectError::BadKey(_)) => Err(refuse()),
        Err(e) => Err(e.into()),
    }
}

/// Gives feedback (text, optional contact, up to 4 of the caller's screenshots).
#[utoipa::path(post, path = "/api/v1/chat/feedback", tag = "chat", security(("bearer" = [])),
    request_body = GiveFeedback,
    responses((status = 201, body = FeedbackView), (status = 422, body = ErrorBody)))]
async fn give(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiJson(req): ApiJson<GiveFeedback>,
) -> ApiResult<(StatusCode, ApiJson<FeedbackView>)> {
    if req.screenshots.len() > MAX_SCREENSHOTS {
        return Err(ValidationError::new("screenshots", format!("at most {MAX_SCREENSHOTS}")).into());
    }
    let mut shots = Vec::with_capacity(req.screenshots.len());
    for key in &req.screenshots {
        shots.push(own_screenshot(&state.files, caller.account_id, key).await?);
    }
    let f = Feedback::new(FeedbackId::new(), caller.account_id, &req.text, req.contact.as_deref(), shots, Utc::now())?;
    state.stores.data.put_feedback(&f).await?;
    Ok((StatusCode::CREATED, ApiJson(view(&state.files, f))))
}

/// The caller's feedback of the last 12 months, newest first.
#[utoipa::path(get, path = "/api/v1/chat/feedback", tag = "chat", security(("bearer" = [])),
    responses((status = 200, body = Vec<FeedbackView>)))]
async fn mine(State(state): State<AppState>, caller: AccountCaller) -> ApiResult<ApiJson<Vec<FeedbackView>>> {
    // Feedback is kept by month for staff; a patient's own few are picked out of recent months
    // (a by-account table would serve this directly once there is much feedback).
    let mut month = month_of(Utc::now());
    let mut out = Vec::new();
    for _ in 0..OWN_MONTHS {
        let list = state.stores.data.feedback_of_month(month, 10_000).await?;
        out.extend(list.into_iter().filter(|f| f.account_id == caller.account_id).map(|f| view(&state.files, f)));
        month = previous_month(month);
    }
    Ok(ApiJson(out))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthQuery {
    /// `YYYYMM` (UTC); this month when absent.
    pub month: Option<String>,
    pub limit: Option<ListLimit>,
}

fn parse_month(s: &str) -> Result<i32, ValidationError> {
    let bad = || ValidationError::new("month", "YYYYMM, e.g. 202611");
    let m: i32 = s.parse().map_err(|_| bad())?;
    if s.len() == 6 && (2000..=2999).contains(&(m / 100)) && (1..=12).contains(&(m % 100)) {
        Ok(m)
    } else {
        Err(bad())
    }
}

/// Patients' feedback of a month (UTC), newest first, with screenshot links.
#[utoipa::path(get, path = "/api/v1/staff/chat/feedback", tag = "chat-staff", security(("bearer" = [])),
    params(MonthQuery),
    responses((status = 200, body = Vec<FeedbackView>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn of_month(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<MonthQuery>,
) -> ApiResult<ApiJson<Vec<FeedbackView>>> {
    let month = match q.month.as_deref() {
        Some(m) => parse_month(m)?,
        None => month_of(Utc::now()),
    };
    let limit = q.limit.map_or(50, ListLimit::get);
    let list = state.stores.data.feedback_of_month(month, limit).await?;
    Ok(ApiJson(list.into_iter().map(|f| view(&state.files, f)).collect()))
}

#[cfg(test)]
mod tests {
    use super::parse_month;

    #[test]
    fn months_are_yyyymm() {
        assert_eq!(parse_month("202611").unwrap(), 202611);
        for bad in ["2026-11", "202613", "202600", "20261", "abcdef", "-20261"] {
            assert!(parse_month(bad).is_err(), "{bad}");
        }
    }
}
