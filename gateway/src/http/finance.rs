//! Finance (PAY-7): income reports from the ledger, by day, department, fee type or channel, as
//! JSON, CSV or XLSX; and the payment records (every movement of money: payments, refunds,
//! top-ups) searched by date range, channel, kind, order status, patient and order number, as
//! JSON, CSV or XLSX. Both are computed from the ledger's movements of each business day
//! (`domain::income`), so a report's totals are the ledger's. Staff with `payments.read` (the
//! finance role) only; every report read is audited (`finance.report`, `finance.records`).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use hospital_domain::audit::Target;
use hospital_domain::income::{channel_of, income_report, GroupBy, IncomeReport};
use hospital_domain::ledger::{Channel, LedgerAccount, Movement, MovementKind};
use hospital_domain::order::{Order, OrderStatus};
use hospital_domain::text::csv_cell;
use hospital_domain::{AccountId, OrderId, PatientId, Permission};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

/// The longest span one report covers, in days.
pub const MAX_REPORT_DAYS: i64 = 92;
/// At most this many payment records in one answer.
pub const MAX_RECORDS: usize = 2000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(permit(Permission::PaymentsRead, routes!(income)))
        .routes(permit(Permission::PaymentsRead, routes!(records)))
}

/// How a report is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Xlsx,
}

fn format_of(f: Option<&str>) -> ApiResult<Format> {
    match f {
        None | Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some("xlsx") => Ok(Format::Xlsx),
        Some(_) => Err(ApiError::OutOfRange { field: "format".into(), message: "json, csv or xlsx".into() }),
    }
}

fn check_span(from: NaiveDate, to: NaiveDate) -> ApiResult<()> {
    let span = (to - from).num_days();
    if !(0..=MAX_REPORT_DAYS).contains(&span) {
        return Err(ApiError::OutOfRange {
            field: "to".into(),
            message: format!("0 to {MAX_REPORT_DAYS} days after from"),
        });
    }
    Ok(())
}

/// The ledger's movements of `from..=to`, day by day.
async fn movements(state: &AppState, from: NaiveDate, to: NaiveDate) -> ApiResult<Vec<Movement>> {
    let mut out = Vec::new();
    let mut day = from;
    while day <= to {
        out.extend(state.stores.data.movements_of_day(day).await?);
        day = day.succ_opt().ok_or_else(|| ApiError::BadRequest("date out of range".into()))?;
    }
    Ok(out)
}

/// A table as a download: CSV (UTF-8) or an XLSX workbook of one sheet (what Excel opens
/// directly). Numbers are numbers in the workbook.
fn download(name: &str, sheet: &str, header: &[&str], rows: &[Vec<Cell>], format: Format) -> ApiResult<Response> {
    let (bytes, content_type, ext) = match format {
        Format::Csv => {
            let mut out = header.join(",");
            out.push('\n');
            for r in rows {
                let line: Vec<String> = r
                    .iter()
                    .map(|c| match c {
                        Cell::Text(t) => csv_cell(t),
                        Cell::Int(n) => n.to_string(),
                    })
                    .collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
            (out.into_bytes(), "text/csv; charset=utf-8", "csv")
        }
        _ => (xlsx(sheet, header, rows)?, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    };
    let mut resp = (StatusCode::OK, bytes).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.{ext}\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// One cell of an exported table.
#[derive(Debug, Clone)]
enum Cell {
    Text(String),
    Int(i64),
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn xlsx(sheet: &str, header: &[&str], rows: &[Vec<Cell>]) -> ApiResult<Vec<u8>> {
    use rust_xlsxwriter::{Format as XFormat, Workbook};
    let fail = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("cannot write the workbook: {e}"));
    let mut book = Workbook::new();
    let ws = book.add_worksheet();
    ws.set_name(sheet).map_err(fail)?;
    let bold = XFormat::new().set_bold();
    for (c, h) in header.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &bold).map_err(fail)?;
    }
    for (r, row) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (c, cell) in row.iter().enumerate() {
            match cell {
                Cell::Text(t) => ws.write_string(r, c as u16, t).map(|_| ()).map_err(fail)?,
                // Fen as whole numbers: exact in a spreadsheet (f64 holds integers to 2^53).
                Cell::Int(n) => ws.write_number(r, c as u16, *n as f64).map(|_| ()).map_err(fail)?,
            }
        }
    }
    ws.set_freeze_panes(1, 0).map_err(fail)?;
    book.save_to_buffer().map_err(fail)
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
    /// `json` (the default), `csv` or `xlsx`.
    #[serde(default)]
    pub format: Option<String>,
}

/// Income by day, department, fee type or channel (insurance fund, personal account, WeChat Pay,
/// Alipay, balance) over `from..=to`: paid, refunded and net per group, in fen. As CSV or XLSX
/// the rows then a `total` row. Role `finance`.
#[utoipa::path(get, path = "/api/v1/admin/finance/income", tag = "back office", security(("bearer" = [])),
    params(IncomeQuery),
    responses((status = 200, body = IncomeReport, description = "JSON, or CSV / XLSX with format=csv|xlsx"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn income(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiQuery(q): ApiQuery<IncomeQuery>,
) -> ApiResult<Response> {
    check_span(q.from, q.to)?;
    let format = format_of(q.format.as_deref())?;
    let movements = movements(&state, q.from, q.to).await?;
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
    if format == Format::Json {
        return Ok(ApiJson(report).into_response());
    }
    let mut rows: Vec<Vec<Cell>> = report
        .rows
        .iter()
        .map(|r| {
            vec![
                text(&r.key),
                text(&r.label),
                Cell::Int(r.paid),
                Cell::Int(r.refunded),
                Cell::Int(r.net),
                Cell::Int(r.movements as i64),
            ]
        })
        .collect();
    rows.push(vec![
        text("total"),
        text("合计"),
        Cell::Int(report.total_paid),
        Cell::Int(report.total_refunded),
        Cell::Int(report.total_net),
        text(""),
    ]);
    let name = format!("income-{}-{}-{}", q.from, q.to, q.by.as_str());
    let header = ["key", "label", "paid_fen", "refunded_fen", "net_fen", "movements"];
    download(&name, &format!("income-{}", q.by.as_str()), &header, &rows, format)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecordsQuery {
    /// First business day, `YYYY-MM-DD`.
    pub from: NaiveDate,
    /// Last business day, at most 92 days after `from`.
    pub to: NaiveDate,
    /// Only movements through this channel.
    #[serde(default)]
    pub channel: Option<Channel>,
    /// Only `payment`, `refund`, `top_up`, `cash_received` or `cash_returned`.
    #[serde(default)]
    pub kind: Option<MovementKind>,
    /// Only movements of orders now in this status (`paid`, `refunding`, `refunded`, ...).
    #[serde(default)]
    pub status: Option<String>,
    /// Only this patient account's.
    #[serde(default)]
    pub account_id: Option<AccountId>,
    /// Only this 就诊人's.
    #[serde(default)]
    pub patient_id: Option<PatientId>,
    /// An order id, or the order number the providers know (`out_trade_no`).
    #[serde(default)]
    pub order: Option<String>,
    /// At most this many, newest first (default 200, at most 2000).
    #[serde(default)]
    pub limit: Option<usize>,
    /// `json` (the default), `csv` or `xlsx`.
    #[serde(default)]
    pub format: Option<String>,
}

/// What one channel moved in a record: into the hospital when positive, back out when negative.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChannelAmount {
    pub channel: Channel,
    pub amount: i64,
}

/// One movement of money as finance sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PaymentRecord {
    /// The ledger movement's key (`pay:<order>`, `refund:<order>:<n>`, `topup:<order>`).
    pub key: String,
    pub kind: MovementKind,
    pub day: NaiveDate,
    pub at: DateTime<Utc>,
    /// Income in fen: positive for a payment, negative for a refund; for a top-up or cash held
    /// for an insurance checkout, what came in (or went back).
    pub amount: i64,
    pub channels: Vec<ChannelAmount>,
    pub order_id: Option<OrderId>,
    /// The order number at the providers.
    pub out_trade_no: Option<String>,
    /// The providers' ids of the trade or refund (`transaction_id`, `trade_no`, `payOrdId`).
    pub provider_nos: Vec<String>,
    pub order_status: Option<OrderStatus>,
    pub account_id: Option<AccountId>,
    pub patient_id: Option<PatientId>,
    pub description: String,
}

fn record_of(m: &Movement, order: Option<&Order>) -> PaymentRecord {
    let income: i64 =
        m.legs.iter().filter(|l| matches!(l.account, LedgerAccount::Income { .. })).map(|l| l.amount).sum();
    let mut channels: Vec<ChannelAmount> = Vec::new();
    for leg in &m.legs {
        // A payment or refund is attributed to every other leg's channel (a balance, suspense
        // for the order's cash channel); a top-up or cash held for an insurance checkout came
        // through its channel account only (the balance or suspense is where it went).
        let paying = matches!(m.kind, MovementKind::Payment | MovementKind::Refund);
        if !paying && !matches!(leg.account, LedgerAccount::Channel(_)) {
            continue;
        }
        let Some(channel) = channel_of(m, &leg.account) else { continue };
        match channels.iter_mut().find(|c| c.channel == channel) {
            Some(c) => c.amount -= leg.amount,
            None => channels.push(ChannelAmount { channel, amount: -leg.amount }),
        }
    }
    let amount = match m.kind {
        MovementKind::Payment | MovementKind::Refund => income,
        _ => channels.iter().map(|c| c.amount).sum(),
    };
    PaymentRecord {
        key: m.key.clone(),
        kind: m.kind,
        day: m.day,
        at: m.at,
        amount,
        channels,
        order_id: m.order_id,
        out_trade_no: m.order_id.map(|id| id.to_string().replace('-', "")),
        provider_nos: m.refs.iter().filter_map(|r| r.provider_no.clone()).collect(),
        order_status: order.map(|o| o.status),
        account_id: m.account_id,
        patient_id: order.and_then(|o| o.patient_id),
        description: m.description.clone(),
    }
}

/// Payment records: every movement of money over `from..=to` (payments, refunds, top-ups, cash
/// held for insurance checkouts), newest first, filtered by channel, kind, order status,
/// patient and order number; as JSON, CSV or XLSX. Role `finance`.
#[utoipa::path(get, path = "/api/v1/admin/finance/records", tag = "back office", security(("bearer" = [])),
    params(RecordsQuery),
    responses((status = 200, body = [PaymentRecord], description = "JSON, or CSV / XLSX with format=csv|xlsx"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn records(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiQuery(q): ApiQuery<RecordsQuery>,
) -> ApiResult<Response> {
    check_span(q.from, q.to)?;
    let format = format_of(q.format.as_deref())?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(OrderStatus::parse(s).ok_or_else(|| ApiError::OutOfRange {
            field: "status".into(),
            message: "an order status (created, paying, paid, refunding, refunded, closed)".into(),
        })?),
    };
    let limit = q.limit.unwrap_or(200);
    if !(1..=MAX_RECORDS).contains(&limit) {
        return Err(ApiError::OutOfRange { field: "limit".into(), message: format!("1 to {MAX_RECORDS}") });
    }
    let wanted_order = q.order.as_deref().map(|o| o.trim().replace('-', "").to_ascii_lowercase());
    let mut moves = movements(&state, q.from, q.to).await?;
    moves.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.key.cmp(&b.key)));
    let mut out = Vec::new();
    for m in &moves {
        if out.len() >= limit {
            break;
        }
        if q.kind.is_some_and(|k| k != m.kind) || q.account_id.is_some_and(|a| Some(a) != m.account_id) {
            continue;
        }
        if let Some(w) = &wanted_order {
            let no = m.order_id.map(|id| id.to_string().replace('-', ""));
            if no.as_deref() != Some(w.as_str()) {
                continue;
            }
        }
        // Orders are read only for what passed the ledger's own filters.
        let order = match m.order_id {
            Some(id) => state.stores.data.order(id).await?,
            None => None,
        };
        if status.is_some() && status != order.as_ref().map(|o| o.status) {
            continue;
        }
        if q.patient_id.is_some() && q.patient_id != order.as_ref().and_then(|o| o.patient_id) {
            continue;
        }
        let r = record_of(m, order.as_ref());
        if q.channel.is_some_and(|c| !r.channels.iter().any(|x| x.channel == c)) {
            continue;
        }
        out.push(r);
    }
    let target = Target::new("report", format!("records:{}:{}", q.from, q.to))?;
    audit.record(audit.event("finance.records", target)?).await?;
    if format == Format::Json {
        return Ok(ApiJson(out).into_response());
    }
    let mut header = vec!["time", "day", "kind", "amount_fen"];
    header.extend(Channel::ALL.iter().map(|c| c.as_str()));
    header.extend([
        "order_id",
        "out_trade_no",
        "order_status",
        "provider_nos",
        "account_id",
        "patient_id",
        "description",
    ]);
    let zone = state.zone;
    let rows: Vec<Vec<Cell>> = out
        .iter()
        .map(|r| {
            let mut row =
                vec![text(zone.show(r.at)), text(r.day.to_string()), text(r.kind.label()), Cell::Int(r.amount)];
            for c in Channel::ALL {
                row.push(Cell::Int(r.channels.iter().filter(|x| x.channel == c).map(|x| x.amount).sum()));
            }
            let opt = |v: Option<String>| text(v.unwrap_or_default());
            row.extend([
                opt(r.order_id.map(|i| i.to_string())),
                opt(r.out_trade_no.clone()),
                opt(r.order_status.map(|s| s.as_str().to_string())),
                text(r.provider_nos.join(" ")),
                opt(r.account_id.map(|i| i.to_string())),
                opt(r.patient_id.map(|i| i.to_string())),
                text(&r.description),
            ]);
            row
        })
        .collect();
    download(&format!("payments-{}-{}", q.from, q.to), "payments", &header, &rows, format)
}
