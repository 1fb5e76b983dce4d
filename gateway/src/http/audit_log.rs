//! Searching and exporting the audit log from the back office (ADM-2): by staff member, action or
//! patient account over a time range, newest first, in pages; the export is every matching entry
//! as CSV or JSON Lines (each line the stored, hashed entry, so it verifies elsewhere). Both read
//! through `hospital_store::audit` (the same code as `hospital audit export`).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use hospital_domain::audit::{AuditEntry, Outcome};
use hospital_domain::{AccountId, Permission, StaffId, ValidationError};
use hospital_store::audit::{export, search, AuditCursor, AuditIndex, AuditQuery, ExportFormat};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(permit(Permission::AuditRead, routes!(search_audit)))
        .routes(permit(Permission::AuditRead, routes!(export_audit)))
}

/// Which entries: at most one of `staff`, `action` (as an index) and `account`; `action` also
/// narrows a `staff` or `account` search.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditSearch {
    /// Start of the range (RFC 3339); 30 days before `to` by default.
    pub from: Option<DateTime<Utc>>,
    /// End of the range (RFC 3339); now by default.
    pub to: Option<DateTime<Utc>>,
    pub staff: Option<StaffId>,
    pub action: Option<String>,
    pub account: Option<AccountId>,
    /// `success`, `denied` or `failed`.
    pub outcome: Option<String>,
    /// The previous page's `next`.
    pub after: Option<String>,
    /// Entries per page, 1 to 500 (100 by default).
    pub limit: Option<usize>,
    /// Export only: `csv` (default) or `jsonl`.
    pub format: Option<String>,
}

impl AuditSearch {
    fn query(&self) -> Result<AuditQuery, ValidationError> {
        let to = self.to.unwrap_or_else(Utc::now);
        let from = self.from.unwrap_or(to - Duration::days(30));
        if from > to || to - from > Duration::days(366) {
            return Err(ValidationError::new("from", "from must be before to, at most a year apart"));
        }
        let index = match (self.staff, self.account) {
            (Some(_), Some(_)) => return Err(ValidationError::new("account", "give staff or account, not both")),
            (Some(s), None) => AuditIndex::staff(s),
            (None, Some(a)) => AuditIndex::account(a),
            (None, None) => match &self.action {
                Some(a) => AuditIndex::Action(a.clone()),
                None => AuditIndex::Time,
            },
        };
        let limit = self.limit.unwrap_or(100);
        if !(1..=500).contains(&limit) {
            return Err(ValidationError::new("limit", "1 to 500"));
        }
        let mut q = AuditQuery::new(index, from, to, limit);
        if let Some(a) = &self.action {
            q.filter.action = Some(hospital_domain::audit::Action::parse(a)?.as_str().to_string());
        }
        q.filter.outcome = match self.outcome.as_deref() {
            None => None,
            Some("success") => Some(Outcome::Success),
            Some("denied") => Some(Outcome::Denied),
            Some("failed") => Some(Outcome::Failed),
            Some(_) => return Err(ValidationError::new("outcome", "success, denied or failed")),
        };
        if let Some(a) = &self.after {
            q.after = Some(AuditCursor::decode(a).ok_or_else(|| ValidationError::new("after", "a page's next"))?);
        }
        Ok(q)
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPageView {
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<AuditEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// One page of audit entries, newest first.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "audit", security(("bearer" = [])), params(AuditSearch),
    responses((status = 200, body = AuditPageView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn search_audit(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditSearch>,
) -> ApiResult<ApiJson<AuditPageView>> {
    let page = search(state.stores.data.as_ref(), &q.query()?).await?;
    Ok(ApiJson(AuditPageView { entries: page.entries, next: page.next.map(|c| c.encode()) }))
}

/// Every matching entry as a file: CSV (a spreadsheet) or JSON Lines (verifiable).
#[utoipa::path(get, path = "/api/v1/admin/audit/export", tag = "audit", security(("bearer" = [])), params(AuditSearch),
    responses((status = 200, content_type = "text/csv"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn export_audit(State(state): State<AppState>, ApiQuery(q): ApiQuery<AuditSearch>) -> ApiResult<Response> {
    let (format, mime, ext) = match q.format.as_deref() {
        None | Some("csv") => (ExportFormat::Csv, "text/csv; charset=utf-8", "csv"),
        Some("jsonl") => (ExportFormat::JsonLines, "application/jsonl", "jsonl"),
        Some(_) => return Err(ValidationError::new("format", "csv or jsonl").into()),
    };
    let mut query = q.query()?;
    query.limit = 500;
    let mut out = Vec::new();
    export(state.stores.data.as_ref(), &query, format, &mut out).await?;
    let disposition = format!("attachment; filename=\"audit.{ext}\"");
    Ok(([(header::CONTENT_TYPE, mime.to_string()), (header::CONTENT_DISPOSITION, disposition)], out).into_response())
}
