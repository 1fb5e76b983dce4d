//! The analytics report of a date range (ADM-3), built from the daily counters alone: the
//! totals and rates, the days, departments, doctors, time slots, the weekday × hour of booking,
//! and revenue by channel; and the same figures as tables for the CSV and XLSX exports (one
//! piece of code for both, so the two files always agree with the page).

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

use super::RollupRow;
use crate::ValidationError;

/// The longest range a report covers (a year, leap or not).
pub const MAX_SPAN_DAYS: i64 = 366;

/// Checks a report's range: `from <= to`, at most `MAX_SPAN_DAYS` days.
pub fn check_range(from: NaiveDate, to: NaiveDate) -> Result<(), ValidationError> {
    if from > to {
        return Err(ValidationError::new("from", "from must not be after to"));
    }
    if (to - from).num_days() + 1 > MAX_SPAN_DAYS {
        return Err(ValidationError::new("to", format!("a report covers at most {MAX_SPAN_DAYS} days")));
    }
    Ok(())
}

/// Counts over the whole range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Totals {
    /// Bookings made (holds taken) in the range.
    pub booked: i64,
    /// Bookings paid, by visit day.
    pub paid: i64,
    pub cancelled: i64,
    /// Holds that lapsed unpaid.
    pub expired: i64,
    pub checked_in: i64,
    pub seen: i64,
    /// No-shows (爽约).
    pub missed: i64,
    pub waitlist_joined: i64,
    pub waitlist_offered: i64,
    pub waitlist_converted: i64,
    /// Patients seen through the queue.
    pub consults: i64,
    /// Fen received and refunded.
    pub revenue: i64,
    pub refunds: i64,
}

/// Quotients of the totals (0 when the divisor is 0), rounded to 4 places.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rates {
    /// cancelled / booked
    pub cancellation: f64,
    /// missed / paid
    pub no_show: f64,
    /// converted / joined
    pub waitlist_conversion: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DayRow {
    #[schema(value_type = String, format = Date)]
    pub day: NaiveDate,
    pub booked: i64,
    pub paid: i64,
    pub cancelled: i64,
    pub missed: i64,
    pub seen: i64,
}

/// A department: bookings made there (its share of all: the department choices) and, by visit
/// day, paid, cancelled and missed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DepartmentRow {
    pub id: String,
    /// Filled by the caller from the catalogue (empty for one no longer there).
    pub name: String,
    pub booked: i64,
    pub share: f64,
    pub paid: i64,
    pub cancelled: i64,
    pub missed: i64,
    pub no_show_rate: f64,
}

/// A doctor's bookings and workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DoctorRow {
    pub id: String,
    pub name: String,
    pub booked: i64,
    /// Patients seen through the queue.
    pub consults: i64,
    /// Sessions in which the doctor saw at least one patient.
    pub sessions: i64,
    pub patients_per_session: f64,
    /// Average seconds from one call to the next.
    pub avg_consult_secs: f64,
}

/// Bookings by the start of their time slot (`HH:MM`), by visit day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SlotRow {
    pub time: String,
    pub booked: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ChannelRow {
    pub channel: String,
    pub revenue: i64,
    pub refunds: i64,
}

/// The report of `from..=to` (local days of the hospital).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Report {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    pub totals: Totals,
    pub rates: Rates,
    /// Every day of the range, in order (days with nothing are zeros).
    pub daily: Vec<DayRow>,
    /// By bookings, most first.
    pub departments: Vec<DepartmentRow>,
    /// By bookings, then patients seen, most first.
    pub doctors: Vec<DoctorRow>,
    /// By time.
    pub slots: Vec<SlotRow>,
    /// Bookings made by weekday (Monday first) × local hour (0..23): when patients book.
    pub weekday_hour: Vec<Vec<i64>>,
    pub channels: Vec<ChannelRow>,
}

fn ratio(a: i64, b: i64) -> f64 {
    if b == 0 {
        0.0
    } else {
        (a as f64 / b as f64 * 10_000.0).round() / 10_000.0
    }
}

/// One metric's rows, summed by dim.
fn by_dim(rows: &HashMap<&str, Vec<RollupRow>>, metric: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for r in rows.get(metric).into_iter().flatten() {
        *out.entry(r.dim.clone()).or_insert(0) += r.n;
    }
    out
}

fn total(rows: &HashMap<&str, Vec<RollupRow>>, metric: &str) -> i64 {
    rows.get(metric).into_iter().flatten().map(|r| r.n).sum()
}

fn by_day(rows: &HashMap<&str, Vec<RollupRow>>, metric: &str) -> BTreeMap<NaiveDate, i64> {
    let mut out = BTreeMap::new();
    for r in rows.get(metric).into_iter().flatten() {
        *out.entry(r.day).or_insert(0) += r.n;
    }
    out
}

/// Builds the report from each metric's rows over the range (`rows[metric]`, as
/// `BackOfficeStore::rollups` reads them; a metric missing is all zeros). Names are left empty.
pub fn build(from: NaiveDate, to: NaiveDate, rows: &HashMap<&str, Vec<RollupRow>>) -> Report {
    let t = |m| total(rows, m);
    let totals = Totals {
        booked: t("booked.total"),
        paid: t("paid.total"),
        cancelled: t("cancelled.total"),
        expired: t("expired.total"),
        checked_in: t("checked_in.total"),
        seen: t("seen.total"),
        missed: t("missed.total"),
        waitlist_joined: t("waitlist.joined"),
        waitlist_offered: t("waitlist.offered"),
        waitlist_converted: t("waitlist.converted"),
        consults: t("consults.doctor"),
        revenue: t("revenue.channel"),
        refunds: t("refunds.channel"),
    };
    let rates = Rates {
        cancellation: ratio(totals.cancelled, totals.booked),
        no_show: ratio(totals.missed, totals.paid),
        waitlist_conversion: ratio(totals.waitlist_converted, totals.waitlist_joined),
    };

    let days: Vec<_> = ["booked.total", "paid.total", "cancelled.total", "missed.total", "seen.total"]
        .iter()
        .map(|m| by_day(rows, m))
        .collect();
    let daily = from
        .iter_days()
        .take_while(|d| *d <= to)
        .map(|day| {
            let n = |i: usize| days[i].get(&day).copied().unwrap_or(0);
            DayRow { day, booked: n(0), paid: n(1), cancelled: n(2), missed: n(3), seen: n(4) }
        })
        .collect();

    let dept: Vec<_> =
        ["booked.dept", "paid.dept", "cancelled.dept", "missed.dept"].iter().map(|m| by_dim(rows, m)).collect();
    let mut ids: Vec<&String> = dept.iter().flat_map(|m| m.keys()).collect();
    ids.sort();
    ids.dedup();
    let mut departments: Vec<DepartmentRow> = ids
        .into_iter()
        .map(|id| {
            let n = |i: usize| dept[i].get(id).copied().unwrap_or(0);
            DepartmentRow {
                id: id.clone(),
                name: String::new(),
                booked: n(0),
                share: ratio(n(0), totals.booked),
                paid: n(1),
                cancelled: n(2),
                missed: n(3),
                no_show_rate: ratio(n(3), n(1)),
            }
        })
        .collect();
    departments.sort_by(|a, b| b.booked.cmp(&a.booked).then(b.paid.cmp(&a.paid)).then(a.id.cmp(&b.id)));

    let doc: Vec<_> = ["booked.doctor", "consults.doctor", "sessions.doctor", "consult_secs.doctor"]
        .iter()
        .map(|m| by_dim(rows, m))
        .collect();
    let mut ids: Vec<&String> = doc.iter().flat_map(|m| m.keys()).collect();
    ids.sort();
    ids.dedup();
    let mut doctors: Vec<DoctorRow> = ids
        .into_iter()
        .map(|id| {
            let n = |i: usize| doc[i].get(id).copied().unwrap_or(0);
            DoctorRow {
                id: id.clone(),
                name: String::new(),
                booked: n(0),
                consults: n(1),
                sessions: n(2),
                patients_per_session: ratio(n(1), n(2)),
                avg_consult_secs: ratio(n(3), n(1)),
            }
        })
        .collect();
    doctors.sort_by(|a, b| b.booked.cmp(&a.booked).then(b.consults.cmp(&a.consults)).then(a.id.cmp(&b.id)));

    let slots = by_dim(rows, "booked.slot").into_iter().map(|(time, booked)| SlotRow { time, booked }).collect();

    let mut weekday_hour = vec![vec![0i64; 24]; 7];
    for r in rows.get("booked.hour").into_iter().flatten() {
        if let Ok(h) = r.dim.parse::<usize>() {
            if h < 24 {
                weekday_hour[r.day.weekday().num_days_from_monday() as usize][h] += r.n;
            }
        }
    }

    let (rev, refunds) = (by_dim(rows, "revenue.channel"), by_dim(rows, "refunds.channel"));
    let mut names: Vec<&String> = rev.keys().chain(refunds.keys()).collect();
    names.sort();
    names.dedup();
    let channels = names
        .into_iter()
        .map(|c| ChannelRow {
            channel: c.clone(),
            revenue: rev.get(c).copied().unwrap_or(0),
            refunds: refunds.get(c).copied().unwrap_or(0),
        })
        .collect();

    Report { from, to, totals, rates, daily, departments, doctors, slots, weekday_hour, channels }
}

/// A cell of an exported table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    /// A fraction (shown as a percentage) or an average.
    Num(f64),
}

/// One exported table: a sheet of the XLSX file, a block of the CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: &'static str,
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

const WEEKDAYS: [&str; 7] = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];

fn yuan(fen: i64) -> Cell {
    Cell::Num(fen as f64 / 100.0)
}

/// The report as tables (Chinese headers, as the console shows them); money in yuan.
pub fn tables(r: &Report) -> Vec<Table> {
    use Cell::{Int, Num, Text};
    let t = &r.totals;
    let summary = vec![
        ("开始日期", Text(r.from.to_string())),
        ("结束日期", Text(r.to.to_string())),
        ("预约数", Int(t.booked)),
        ("已支付", Int(t.paid)),
        ("取消", Int(t.cancelled)),
        ("超时未付", Int(t.expired)),
        ("签到", Int(t.checked_in)),
        ("已就诊", Int(t.seen)),
        ("爽约", Int(t.missed)),
        ("取消率", Num(r.rates.cancellation)),
        ("爽约率", Num(r.rates.no_show)),
        ("候补登记", Int(t.waitlist_joined)),
        ("候补递补", Int(t.waitlist_offered)),
        ("候补成功", Int(t.waitlist_converted)),
        ("候补转化率", Num(r.rates.waitlist_conversion)),
        ("接诊人数", Int(t.consults)),
        ("收入（元）", yuan(t.revenue)),
        ("退款（元）", yuan(t.refunds)),
    ];
    vec![
        Table {
            name: "概览",
            header: vec!["指标", "数值"],
            rows: summary.into_iter().map(|(k, v)| vec![Text(k.into()), v]).collect(),
        },
        Table {
            name: "每日",
            header: vec!["日期", "预约", "已支付", "取消", "爽约", "已就诊"],
            rows: r
                .daily
                .iter()
                .map(|d| {
                    vec![
                        Text(d.day.to_string()),
                        Int(d.booked),
                        Int(d.paid),
                        Int(d.cancelled),
                        Int(d.missed),
                        Int(d.seen),
                    ]
                })
                .collect(),
        },
        Table {
            name: "科室",
            header: vec!["科室", "预约", "占比", "已支付", "取消", "爽约", "爽约率"],
            rows: r
                .departments
                .iter()
                .map(|d| {
                    vec![
                        Text(d.name.clone()),
                        Int(d.booked),
                        Num(d.share),
                        Int(d.paid),
                        Int(d.cancelled),
                        Int(d.missed),
                        Num(d.no_show_rate),
                    ]
                })
                .collect(),
        },
        Table {
            name: "医生",
            header: vec!["医生", "预约", "接诊人数", "出诊次数", "每次出诊接诊", "平均接诊秒数"],
            rows: r
                .doctors
                .iter()
                .map(|d| {
                    vec![
                        Text(d.name.clone()),
                        Int(d.booked),
                        Int(d.consults),
                        Int(d.sessions),
                        Num(d.patients_per_session),
                        Num(d.avg_consult_secs),
                    ]
                })
                .collect(),
        },
        Table {
            name: "时段",
            header: vec!["就诊时段", "预约"],
            rows: r.slots.iter().map(|s| vec![Text(s.time.clone()), Int(s.booked)]).collect(),
        },
        Table {
            name: "预约时间偏好",
            header: std::iter::once("星期")
                .chain([
                    "0时", "1时", "2时", "3时", "4时", "5时", "6时", "7时", "8时", "9时", "10时", "11时", "12时",
                    "13时", "14时", "15时", "16时", "17时", "18时", "19时", "20时", "21时", "22时", "23时",
                ])
                .collect(),
            rows: r
                .weekday_hour
                .iter()
                .zip(WEEKDAYS)
                .map(|(hours, w)| std::iter::once(Text(w.into())).chain(hours.iter().map(|n| Int(*n))).collect())
                .collect(),
        },
        Table {
            name: "收入",
            header: vec!["支付渠道", "收入（元）", "退款（元）"],
            rows: r.channels.iter().map(|c| vec![Text(c.channel.clone()), yuan(c.revenue), yuan(c.refunds)]).collect(),
        },
    ]
}

/// The tables as one CSV file: each table's name on a line, its header, its rows, a blank line.
pub fn csv(tables: &[Table]) -> String {
    let mut out = String::from("\u{feff}");
    for t in tables {
        out.push_str(&crate::text::csv_cell(t.name));
        out.push_str("\r\n");
        let header: Vec<String> = t.header.iter().map(|h| crate::text::csv_cell(h)).collect();
        out.push_str(&header.join(","));
        out.push_str("\r\n");
        for row in &t.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| match c {
                    Cell::Text(s) => crate::text::csv_cell(s),
                    Cell::Int(n) => n.to_string(),
                    Cell::Num(x) => x.to_string(),
                })
                .collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(day: NaiveDate, dim: &str, n: i64) -> RollupRow {
        RollupRow { day, dim: dim.into(), n }
    }

    #[test]
    fn a_report_adds_the_days_and_divides_the_totals() {
        let d1 = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(); // a Monday
        let d2 = d1.succ_opt().unwrap();
        let mut rows: HashMap<&str, Vec<RollupRow>> = HashMap::new();
        rows.insert("booked.total", vec![row(d1, "", 3), row(d2, "", 1)]);
        rows.insert("booked.dept", vec![row(d1, "A", 3), row(d2, "B", 1)]);
        rows.insert("paid.total", vec![row(d2, "", 2)]);
        rows.insert("missed.total", vec![row(d2, "", 1)]);
        rows.insert("cancelled.total", vec![row(d2, "", 1)]);
        rows.insert("booked.hour", vec![row(d1, "09", 2), row(d2, "23", 1), row(d2, "xx", 5)]);
        rows.insert("consults.doctor", vec![row(d1, "X", 4)]);
        rows.insert("sessions.doctor", vec![row(d1, "X", 2)]);
        rows.insert("consult_secs.doctor", vec![row(d1, "X", 1200)]);
        let r = build(d1, d2, &rows);
        assert_eq!((r.totals.booked, r.totals.paid, r.totals.missed), (4, 2, 1));
        assert_eq!((r.rates.cancellation, r.rates.no_show), (0.25, 0.5));
        assert_eq!(r.daily.len(), 2);
        assert_eq!((r.daily[1].booked, r.daily[1].paid), (1, 2));
        assert_eq!(r.departments[0].id, "A");
        assert_eq!(r.departments[0].share, 0.75);
        assert_eq!((r.weekday_hour[0][9], r.weekday_hour[1][23]), (2, 1));
        assert_eq!(r.weekday_hour.iter().flatten().sum::<i64>(), 3, "a bad hour is skipped");
        assert_eq!((r.doctors[0].patients_per_session, r.doctors[0].avg_consult_secs), (2.0, 300.0));
        let ts = tables(&r);
        assert_eq!(ts[0].rows[2], vec![Cell::Text("预约数".into()), Cell::Int(4)]);
        let text = csv(&ts);
        assert!(text.contains("科室,预约,占比"), "{text}");
        assert!(check_range(d2, d1).is_err());
        assert!(check_range(d1, d1 + chrono::Days::new(365)).is_ok());
        assert_eq!(check_range(d1, d1 + chrono::Days::new(366)).unwrap_err().field, "to");
    }
}
