//! The patient's access history (REC-5): who among the staff read the account's records,
//! reports and exams, and when, from the audit log's index by account (`audit_by_account`). Only
//! staff reads (`*.read` entries that name the account) are shown; the staff member's name is
//! masked (李**), their roles shown as they were at the time.

use axum::extract::State;
use chrono::{DateTime, Utc};
use hospital_domain::audit::{Actor, Outcome};
use hospital_domain::chat::console::mask_name;
use hospital_domain::{PatientId, StaffId};
use hospital_store::audit::{search, AuditCursor, AuditIndex, AuditQuery};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AccountCaller, ApiJson, ApiQuery};
use crate::state::AppState;
use crate::validate::ListLimit;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(access_history))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only reads of this 就诊人's data.
    pub patient_id: Option<PatientId>,
    #[param(inline)]
    pub limit: Option<ListLimit>,
    /// The previous page's `next`.
    pub after: Option<String>,
}

/// One read of the account's data by a staff member.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessEntry {
    pub at: DateTime<Utc>,
    /// The staff member's name, masked (李**).
    pub staff_name: String,
    /// Their roles at the time (doctor, nurse, ...).
    pub roles: Vec<String>,
    /// What they read: `record.read`, `report.read`, ...
    pub action: String,
    /// 查看病历, 查看检查报告, ...
    pub action_label: String,
    /// The kind of thing read (visit, report, exam) and its id.
    pub target_kind: String,
    pub target_id: String,
    /// Whose data (one of the account's 就诊人), when the entry names one.
    pub patient_id: Option<PatientId>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessPage {
    pub entries: Vec<AccessEntry>,
    /// Pass as `after` for the next page; absent on the last.
    pub next: Option<String>,
}

fn label(action: &str) -> &'static str {
    match action {
        "record.read" => "查看病历",
        "report.read" => "查看检查报告",
        "exam.read" => "查看检查",
        "note.read" => "查看患者留言",
        _ => "查看就诊资料",
    }
}

/// Who read the account's records, reports and exams, newest first.
#[utoipa::path(get, path = "/api/v1/me/access-history", tag = "records", security(("bearer" = [])),
    params(HistoryQuery),
    responses((status = 200, body = AccessPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn access_history(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<ApiJson<AccessPage>> {
    if let Some(p) = q.patient_id {
        state.stores.data.patient(caller.account_id, p).await?.ok_or_else(|| ApiError::not_found("patient"))?;
    }
    let limit = q.limit.map_or(20, ListLimit::get);
    let mut query = AuditQuery::new(AuditIndex::Account(caller.account_id), DateTime::UNIX_EPOCH, Utc::now(), 200);
    query.filter.outcome = Some(Outcome::Success);
    if let Some(a) = &q.after {
        query.after = Some(AuditCursor::decode(a).ok_or_else(|| ApiError::BadRequest("after: a page's next".into()))?);
    }
    let mut entries = Vec::new();
    let mut names: std::collections::HashMap<StaffId, String> = Default::default();
    let mut next = None;
    'pages: loop {
        let page = search(state.stores.data.as_ref(), &query).await?;
        for e in page.entries {
            let cursor = AuditCursor::of(&e);
            let concerning = e.event.concerning.as_ref();
            let ours = concerning.is_some_and(|c| c.account == caller.account_id)
                && q.patient_id.is_none_or(|p| concerning.and_then(|c| c.patient) == Some(p));
            let Actor::Staff { id, roles } = &e.event.actor else { continue };
            let action = e.event.action.as_str();
            if !ours || !action.ends_with(".read") {
                continue;
            }
            let name = match names.get(id) {
                Some(n) => n.clone(),
                None => {
                    let n = state.stores.data.staff(*id).await?.map(|s| mask_name(&s.name)).unwrap_or("*".into());
                    names.insert(*id, n.clone());
                    n
                }
            };
            entries.push(AccessEntry {
                at: e.at,
                staff_name: name,
                roles: roles.iter().map(ToString::to_string).collect(),
                action: action.to_string(),
                action_label: label(action).to_string(),
                target_kind: e.event.target.kind.clone(),
                target_id: e.event.target.id.clone(),
                patient_id: concerning.and_then(|c| c.patient),
            });
            if entries.len() == limit {
                next = Some(cursor.encode());
                break 'pages;
            }
        }
        match page.next {
            Some(c) => query.after = Some(c),
            None => break,
        }
    }
    Ok(ApiJson(AccessPage { entries, next }))
}
