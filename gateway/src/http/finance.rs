//! Finance (PAY-7): income reports from the ledger, by day, department, fee type or channel,
//! as JSON or CSV. Computed from the ledger's movements of each business day
//! (`domain::income`), so a report's totals are the ledger's. Staff with the finance role only;
//! every report read is audited (`finance.report`).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use hospital_domain::audit::Target;
use hospital_domain::income::{income_report, GroupBy, IncomeReport};
use hospital_domain::text::csv_cell;
use hospital_domain::Permission;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

/// The longest span one report covers, in days.
pub const MAX_REPORT_DAYS: i64 = 92;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(permit(Permission::PaymentsRead, routes!(income)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncomeQuery {
    /// First business day (the hospital's date), `YYYY-MM-DD`.
    pub from: NaiveDate,
    /// Last business day, at most 92 days after `from`.
    pub to: NaiveDate,
    /// `day`, `department`, `fee_type` or `channel`.
    pub by: GroupBy,
    /// `json` (the default) or `csv`.
    #[serde(default)]
    pub format: Option<String>,
}

/// Income by day, department, fee type or channel (insurance fund, personal account, WeChat Pay,
/// Alipay, balance) over `from..=to`: paid, refunded and net per group, in fen. Role `finance`.
#[utoipa::path(get, path = "/api/v1/admin/finance/income", tag = "back office", security(("bearer" = [])),
    params(IncomeQuery),
    responses((status = 200, body = IncomeReport, description = "JSON, or CSV with format=csv"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn income(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiQuery(q): ApiQuery<IncomeQuery>,
) -> ApiResult<Response> {
    let span = (q.to - q.from).num_days();
    if !(0..=MAX_REPORT_DAYS).contains(&span) {
        return Err(ApiError::OutOfRange {
            field: "to".into(),
            message: format!("0 to {MAX_REPORT_DAYS} days after from"),
        });
    }
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::OutOfRange { field: "format".into(), message: "json or csv".into() }),
    };
    let mut movements = Vec::new();
    let mut day = q.from;
    while day <= q.to {
        movements.extend(state.stores.data.movements_of_day(day).await?);
        day = day.succ_opt().ok_or_else(|| ApiError::BadRequest("date out of range".into()))?;
    }
    let mut report = income_report(&movements, q.from, q.to, q.by);
    if q.by == GroupBy::Department {
        let catalog = state.catalog();
        for row in &mut report.rows {
            row.label = match row.key.parse() {
                Ok(id) => catalog.department(id).map(|d| d.name.clone()).unwrap_or_default(),
                Err(_) => "未分科室".into(),
            };
        }
    }
    let target = Target::new("report", format!("income:{}:{}:{}", q.from, q.to, q.by.as_str()))?;
    audit.record(audit.event("finance.report", target)?).await?;
    if !csv {
        return Ok(ApiJson(report).into_response());
    }
    let mut out = String::from("key,label,paid_fen,refunded_fen,net_fen,movements\n");
    for r in &report.rows {
        out.push_str(&format!(
            "{},{},{},{},{},{}\n",
            csv_cell(&r.key),
            csv_cell(&r.label),
            r.paid,
            r.refunded,
            r.net,
            r.movements
        ));
    }
    out.push_str(&format!("total,合计,{},{},{},\n", report.total_paid, report.total_refunded, report.total_net));
    let mut resp = (StatusCode::OK, out).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    let name = format!("attachment; filename=\"income-{}-{}-{}.csv\"", q.from, q.to, q.by.as_str());
    if let Ok(v) = HeaderValue::from_str(&name) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
