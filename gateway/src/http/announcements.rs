//! Announcements (ADM-4, `content.write`): staff publish a notice to every patient, to one
//! department's patients, or to staff, now or at a set time. The announcement is stored, then a
//! durable job is scheduled for its time (`hospital_actors::announce` does the sending: each
//! addressed patient's message centre and live socket), so one set for tonight goes out tonight
//! even if the process restarts meanwhile. A scheduled one can be withdrawn until its time.
//! Staff read the staff announcements in the console (`staff.self`).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use hospital_domain::announcement::{Announcement, AnnouncementState, Audience, ANNOUNCEMENT_DOCS};
use hospital_domain::audit::Target;
use hospital_domain::jobs::Job;
use hospital_domain::{Permission, ValidationError};
use hospital_store::Docs;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(permit(Permission::ContentWrite, routes!(create, list)))
        .routes(permit(Permission::ContentWrite, routes!(cancel)))
        .routes(permit(Permission::StaffSelf, routes!(for_staff)))
}

fn docs(state: &AppState) -> Docs<'_, Announcement> {
    Docs::new(state.stores.data.as_ref(), ANNOUNCEMENT_DOCS)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAnnouncement {
    /// 1 to 64 characters.
    pub title: String,
    /// 1 to 4000 characters, shown as text.
    pub body: String,
    pub audience: Audience,
    /// When it goes out (RFC 3339); now when absent.
    pub publish_at: Option<DateTime<Utc>>,
}

/// Publishes an announcement now or schedules it for `publish_at`.
#[utoipa::path(post, path = "/api/v1/admin/announcements", tag = "content", security(("bearer" = [])),
    request_body = NewAnnouncement,
    responses((status = 201, body = Announcement), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiJson(req): ApiJson<NewAnnouncement>,
) -> ApiResult<(StatusCode, ApiJson<Announcement>)> {
    if let Audience::Department { department_id } = req.audience {
        if state.catalog().department(department_id).is_none() {
            return Err(ValidationError::new("audience", "no such department").into());
        }
    }
    let now = Utc::now();
    let a = Announcement::new(&req.title, &req.body, req.audience, req.publish_at, audit.caller.staff_id, now)?;
    // The announcement first, then its job: a job that finds no announcement sends nothing, an
    // announcement without its job would never go out.
    if !docs(&state).put(&a.id.to_string(), &a, 0).await? {
        return Err(ApiError::Internal("a fresh announcement id was taken".into()));
    }
    state.stores.data.schedule_job(&Job::publish_announcement(a.id, a.publish_at, now)).await?;
    audit.record(audit.event("announcement.create", Target::new("announcement", a.id)?)?).await?;
    tracing::info!(id = %a.id, at = %a.publish_at, audience = ?a.audience, "announcement scheduled");
    Ok((StatusCode::CREATED, ApiJson(a)))
}

/// Every announcement, newest first.
#[utoipa::path(get, path = "/api/v1/admin/announcements", tag = "content", security(("bearer" = [])),
    responses((status = 200, body = [Announcement]), (status = 403, body = ErrorBody)))]
async fn list(State(state): State<AppState>) -> ApiResult<ApiJson<Vec<Announcement>>> {
    let mut all: Vec<Announcement> = docs(&state).list().await?.into_iter().map(|v| v.value).collect();
    all.sort_by_key(|a| std::cmp::Reverse(a.publish_at));
    Ok(ApiJson(all))
}

/// Withdraws a scheduled announcement before its time (409 `already_published` after).
#[utoipa::path(delete, path = "/api/v1/admin/announcements/{id}", tag = "content", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Announcement), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn cancel(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<ApiJson<Announcement>> {
    let docs = docs(&state);
    let stored = docs.get(&id.to_string()).await?.ok_or_else(|| ApiError::not_found("announcement"))?;
    let mut a = stored.value;
    if a.state != AnnouncementState::Scheduled {
        let message = "the announcement was already published or withdrawn".to_string();
        return Err(ApiError::Conflict { code: "already_published", message });
    }
    a.state = AnnouncementState::Cancelled;
    // Compare-and-set against the publishing job: whichever writes first wins.
    if !docs.put(&id.to_string(), &a, stored.version).await? {
        let message = "the announcement is being published".to_string();
        return Err(ApiError::Conflict { code: "already_published", message });
    }
    state.stores.data.cancel_job(&Announcement::job_id(id)).await?;
    audit.record(audit.event("announcement.cancel", Target::new("announcement", id)?)?).await?;
    Ok(ApiJson(a))
}

/// The published announcements for staff, newest first.
#[utoipa::path(get, path = "/api/v1/staff/announcements", tag = "content", security(("bearer" = [])),
    responses((status = 200, body = [Announcement]), (status = 403, body = ErrorBody)))]
async fn for_staff(State(state): State<AppState>) -> ApiResult<ApiJson<Vec<Announcement>>> {
    let mut out: Vec<Announcement> = docs(&state)
        .list()
        .await?
        .into_iter()
        .map(|v| v.value)
        .filter(|a| a.audience == Audience::Staff && a.state == AnnouncementState::Published)
        .collect();
    out.sort_by_key(|a| std::cmp::Reverse(a.publish_at));
    Ok(ApiJson(out))
}
