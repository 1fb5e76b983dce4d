//! Analytics for the back office (ADM-3): the report of a date range, read from the daily
//! counters the booking writes keep (`hospital_domain::analytics`, `BackOfficeStore::rollups`:
//! one range read per metric, never an appointment), and its export as CSV or XLSX (the same
//! tables, `analytics::report::tables`). Dates are the hospital's local days.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use hospital_domain::analytics::report::{self, Cell, Report};
use hospital_domain::analytics::{RollupRow, METRICS};
use hospital_domain::{Permission, ValidationError};
use serde::Deserialize;
use std::collections::HashMap;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(permit(Permission::AnalyticsRead, routes!(analytics_report)))
        .routes(permit(Permission::AnalyticsRead, routes!(analytics_export)))
}

/// The range of a report: local days, `YYYY-MM-DD`, at most 366 days; by default the 30 days
/// ending today.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// First day (`YYYY-MM-DD`), 29 days before `to` by default.
    pub from: Option<String>,
    /// Last day (`YYYY-MM-DD`), today by default.
    pub to: Option<String>,
    /// Export only: `xlsx` (default) or `csv`.
    pub format: Option<String>,
}

fn day(field: &'static str, v: &str) -> Result<NaiveDate, ValidationError> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| ValidationError::new(field, "a date, YYYY-MM-DD"))
}

impl RangeQuery {
    fn range(&self, state: &AppState) -> Result<(NaiveDate, NaiveDate), ValidationError> {
        let to = match &self.to {
            Some(v) => day("to", v)?,
            None => state.zone.local_date(chrono::Utc::now()),
        };
        let from = match &self.from {
            Some(v) => day("from", v)?,
            None => to - chrono::Days::new(29),
        };
        report::check_range(from, to)?;
        Ok((from, to))
    }
}

/// The report of `from..=to`, with department and doctor names from the catalogue.
async fn build(state: &AppState, from: NaiveDate, to: NaiveDate) -> ApiResult<Report> {
    let store = state.stores.data.as_ref();
    let mut rows: HashMap<&str, Vec<RollupRow>> = HashMap::new();
    for m in METRICS {
        rows.insert(m, store.rollups(m, from, to).await?);
    }
    let mut r = report::build(from, to, &rows);
    let departments: HashMap<String, String> =
        store.departments().await?.into_iter().map(|d| (d.id.to_string(), d.name)).collect();
    for d in &mut r.departments {
        d.name = departments.get(&d.id).cloned().unwrap_or_else(|| "（已删除的科室）".into());
    }
    let doctors: HashMap<String, String> =
        store.doctors().await?.into_iter().map(|d| (d.id.to_string(), d.name)).collect();
    for d in &mut r.doctors {
        d.name = doctors.get(&d.id).cloned().unwrap_or_else(|| "（已删除的医生）".into());
    }
    Ok(r)
}

/// The analytics report of a date range: totals and rates (cancellation, no-show, waitlist
/// conversion), every day, departments (with their share of bookings), doctors (bookings and
/// workload), time slots, the weekday × hour of booking, revenue by payment channel.
#[utoipa::path(get, path = "/api/v1/admin/analytics/report", tag = "analytics", security(("bearer" = [])),
    params(RangeQuery),
    responses((status = 200, body = Report), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn analytics_report(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<ApiJson<Report>> {
    if q.format.is_some() {
        return Err(ValidationError::new("format", "only the export takes a format").into());
    }
    let (from, to) = q.range(&state)?;
    Ok(ApiJson(build(&state, from, to).await?))
}

/// The same report as a file: XLSX (a sheet per table) or CSV (the tables one after another,
/// UTF-8 with a byte-order mark so Excel reads the Chinese). Money in yuan.
#[utoipa::path(get, path = "/api/v1/admin/analytics/export", tag = "analytics", security(("bearer" = [])),
    params(RangeQuery),
    responses(
        (status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn analytics_export(State(state): State<AppState>, ApiQuery(q): ApiQuery<RangeQuery>) -> ApiResult<Response> {
    let xlsx = match q.format.as_deref() {
        None | Some("xlsx") => true,
        Some("csv") => false,
        Some(_) => return Err(ValidationError::new("format", "xlsx or csv").into()),
    };
    let (from, to) = q.range(&state)?;
    let tables = report::tables(&build(&state, from, to).await?);
    let (mime, ext, body) = if xlsx {
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", workbook(&tables)?)
    } else {
        ("text/csv; charset=utf-8", "csv", report::csv(&tables).into_bytes())
    };
    let disposition = format!("attachment; filename=\"analytics-{from}-{to}.{ext}\"");
    Ok(([(header::CONTENT_TYPE, mime.to_string()), (header::CONTENT_DISPOSITION, disposition)], body).into_response())
}

/// The tables as an XLSX workbook, a sheet each; rates as percentages.
fn workbook(tables: &[report::Table]) -> ApiResult<Vec<u8>> {
    use rust_xlsxwriter::{Format, Workbook};
    let fail = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("cannot write the workbook: {e}"));
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let num = Format::new().set_num_format("0.00");
    for t in tables {
        let ws = wb.add_worksheet();
        ws.set_name(t.name).map_err(fail)?;
        for (c, h) in t.header.iter().enumerate() {
            ws.write_string_with_format(0, c as u16, *h, &bold).map_err(fail)?;
        }
        for (r, row) in t.rows.iter().enumerate() {
            let r = r as u32 + 1;
            for (c, cell) in row.iter().enumerate() {
                let c = c as u16;
                match cell {
                    Cell::Text(s) => ws.write_string(r, c, s).map(drop),
                    Cell::Int(n) => ws.write_number(r, c, *n as f64).map(drop),
                    Cell::Num(x) => ws.write_number_with_format(r, c, *x, &num).map(drop),
                }
                .map_err(fail)?;
            }
        }
        ws.set_column_width(0, 16).map_err(fail)?;
    }
    wb.save_to_buffer().map_err(fail)
}
