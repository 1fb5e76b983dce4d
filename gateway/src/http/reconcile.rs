//! Reconciliation for finance staff (PAY-4): a day run now (again: nothing is applied or listed
//! twice), the runs of a day with their differences, the differences of a span by status, and
//! a difference closed with a note (audited `reconciliation.handle`). The work is the
//! reconciler's (`hospital_actors::reconcile`), the same the daily job does.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use hospital_actors::{ReconcileError, Reconciler};
use hospital_domain::audit::Target;
use hospital_domain::reconcile::{Difference, DifferenceStatus, ReconRun};
use hospital_domain::Permission;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::finance::MAX_REPORT_DAYS;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(permit(Permission::PaymentsRead, routes!(runs_of_day)))
        .routes(permit(Permission::PaymentsReconcile, routes!(run_day)))
        .routes(permit(Permission::PaymentsRead, routes!(differences)))
        .routes(permit(Permission::PaymentsReconcile, routes!(handle_difference)))
}

/// The reconciler over this node's store, actors and provider clients.
pub fn reconciler(state: &AppState) -> Reconciler {
    Reconciler {
        data: state.stores.data.clone(),
        system: state.actors.clone(),
        wechat_pay: state.wechat_pay.clone(),
        alipay: state.alipay.clone(),
        insurance: state.insurance.clone(),
        zone: state.zone,
    }
}

impl From<ReconcileError> for ApiError {
    fn from(e: ReconcileError) -> Self {
        match e {
            ReconcileError::Store(e) => e.into(),
            ReconcileError::Busy(_) => ApiError::Unavailable(e.to_string()),
            ReconcileError::NotFound => ApiError::not_found("difference"),
            ReconcileError::AlreadyClosed => {
                ApiError::Conflict { code: "already_handled", message: "the difference is already closed".into() }
            }
        }
    }
}

fn not_future(state: &AppState, date: NaiveDate, field: &str) -> ApiResult<()> {
    if date > state.zone.local_date(chrono::Utc::now()) {
        return Err(ApiError::OutOfRange { field: field.into(), message: "not after today".into() });
    }
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The business day to reconcile (the hospital's date), `YYYY-MM-DD`, not after today.
    pub date: NaiveDate,
}

/// Reconciles a day now with every configured provider (WeChat Pay, Alipay, the insurance
/// centre): their bills downloaded and matched with the ledger, each new difference looked into.
/// Running a day again applies and lists nothing twice. One run per provider; a bill that could
/// not be had is a `failed` run.
#[utoipa::path(post, path = "/api/v1/admin/reconciliation/runs", tag = "back office", security(("bearer" = [])),
    request_body = RunRequest,
    responses((status = 200, body = [ReconRun]), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn run_day(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiJson(req): ApiJson<RunRequest>,
) -> ApiResult<ApiJson<Vec<ReconRun>>> {
    not_future(&state, req.date, "date")?;
    let runs = reconciler(&state).run_day(req.date).await?;
    audit.record(audit.event("reconciliation.run", Target::new("reconciliation", req.date)?)?).await?;
    Ok(ApiJson(runs))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DayQuery {
    /// The business day, `YYYY-MM-DD`.
    pub date: NaiveDate,
}

/// The runs of a day (one per provider that ran), with their differences.
#[utoipa::path(get, path = "/api/v1/admin/reconciliation/runs", tag = "back office", security(("bearer" = [])),
    params(DayQuery),
    responses((status = 200, body = [ReconRun]), (status = 403, body = ErrorBody)))]
async fn runs_of_day(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DayQuery>,
) -> ApiResult<ApiJson<Vec<ReconRun>>> {
    Ok(ApiJson(reconciler(&state).runs_of(q.date).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DifferencesQuery {
    /// First business day, `YYYY-MM-DD`.
    pub from: NaiveDate,
    /// Last business day, at most 92 days after `from`.
    pub to: NaiveDate,
    /// Only differences in this state (`open`, `resolved`, `for_finance`, `closed`).
    #[serde(default)]
    pub status: Option<DifferenceStatus>,
}

/// A difference with the day it belongs to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DatedDifference {
    pub date: NaiveDate,
    #[serde(flatten)]
    pub difference: Difference,
}

/// The differences of `from..=to`, oldest day first: what finance works through.
#[utoipa::path(get, path = "/api/v1/admin/reconciliation/differences", tag = "back office", security(("bearer" = [])),
    params(DifferencesQuery),
    responses((status = 200, body = [DatedDifference]), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn differences(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DifferencesQuery>,
) -> ApiResult<ApiJson<Vec<DatedDifference>>> {
    let span = (q.to - q.from).num_days();
    if !(0..=MAX_REPORT_DAYS).contains(&span) {
        return Err(ApiError::OutOfRange {
            field: "to".into(),
            message: format!("0 to {MAX_REPORT_DAYS} days after from"),
        });
    }
    let mut out = Vec::new();
    for run in reconciler(&state).runs_between(q.from, q.to).await? {
        for d in run.differences {
            if q.status.is_none_or(|s| s == d.status) {
                out.push(DatedDifference { date: run.date, difference: d });
            }
        }
    }
    Ok(ApiJson(out))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandleRequest {
    /// What was found and done (1 to 256 characters), kept on the difference and in the audit log.
    pub note: String,
}

/// Closes a difference of a day's run with a note: finance has dealt with it. Audited
/// (`reconciliation.handle`, the note as its purpose); a closed one cannot be closed again.
#[utoipa::path(post, path = "/api/v1/admin/reconciliation/runs/{date}/differences/{id}/handle", tag = "back office",
    security(("bearer" = [])),
    params(("date" = NaiveDate, Path), ("id" = String, Path, description = "the difference's id")),
    request_body = HandleRequest,
    responses((status = 200, body = Difference), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn handle_difference(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath((date, id)): ApiPath<(NaiveDate, String)>,
    ApiJson(req): ApiJson<HandleRequest>,
) -> ApiResult<(StatusCode, ApiJson<Difference>)> {
    let note = req.note.trim();
    // Checked before anything changes: the same rule as the audit entry's purpose.
    let event = audit.event("reconciliation.handle", Target::new("reconciliation", format!("{date}:{id}"))?)?;
    let event = event
        .purpose(note)
        .map_err(|_| ApiError::OutOfRange { field: "note".into(), message: "1 to 256 printable characters".into() })?;
    let by = audit.caller.staff_id.to_string();
    let closed = reconciler(&state).close_difference(date, &id, note, &by).await?;
    audit.record(event).await?;
    Ok((StatusCode::OK, ApiJson(closed)))
}
