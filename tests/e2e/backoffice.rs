//! Issue 10, must-show 1, in real headless Chromium on a server with the demo data off: the
//! first administrator creates a department and a doctor (with the hospital's code for them) in
//! the console, imports a template spreadsheet naming that code (written here with an
//! independent writer, `rust_xlsxwriter`); the sessions appear in the patient API, and a patient
//! books and pays one through the API. The analytics page, empty before, then shows the booking
//! in its charts (asserted on the SVG's marks), refuses a reversed range in Chinese, and its XLSX
//! export opens in an independent reader (Python's openpyxl) with the same figures.

use chrono::{Datelike, Duration as Days, Utc};
use serde_json::{json, Value};
use std::process::Command;

use crate::admin_import::workbook;
use crate::booking_flow::{booking_opts, person, set_release, today};
use crate::browser::Browser;
use crate::catalogue_admin::dir_with_admin;
use crate::harness::{ok_json, TestServer};

/// The workbook's sheets as openpyxl reads them: `{sheet: [[cell, ...], ...]}`.
fn read_with_openpyxl(path: &std::path::Path) -> Value {
    let script = r#"
import json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1], read_only=True, data_only=True)
print(json.dumps({ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}, ensure_ascii=False, default=str))
"#;
    let out = Command::new("python3").arg("-c").arg(script).arg(path).output().expect("python3");
    assert!(out.status.success(), "openpyxl (pip install openpyxl): {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON from the script")
}

/// The number in row `label` (first column) of a sheet.
fn figure(sheets: &Value, sheet: &str, label: &str, col: usize) -> f64 {
    let rows = sheets[sheet].as_array().unwrap_or_else(|| panic!("no sheet {sheet}: {sheets}"));
    let row = rows.iter().find(|r| r[0] == label).unwrap_or_else(|| panic!("no row {label} in {sheet}: {sheets}"));
    row[col].as_f64().unwrap_or_else(|| panic!("{sheet}/{label}: {row}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_sets_up_a_hospital_and_sees_the_first_booking_in_the_analytics() {
    let s = TestServer::start(booking_opts().env("HOSPITAL_DEMO_DATA", false).data_dir(dir_with_admin())).await;
    assert_eq!(s.get_json("/api/v1/departments", None).await, json!([]), "no demo data");
    let b = Browser::start().await;
    b.sign_in(&s.url("/admin#catalogue"), "boss", "First-admin-2026").await;
    b.click("nav a[data-page=catalogue]").await;

    // A department and a doctor, with the code the template file will use.
    b.wait_text("还没有科室").await;
    b.fill("#new-department input[name=dname]", "心血管内科").await;
    b.fill("#new-department input[name=location]", "门诊楼3层").await;
    b.click("#new-department button[type=submit]").await;
    b.wait_text("门诊楼3层").await;
    b.fill("#new-doctor input[name=doctor_name]", "李建国").await;
    b.fill("#new-doctor input[name=specialties]", "高血压").await;
    b.fill("#new-doctor input[name=code]", "XN001").await;
    b.click("#new-doctor button[type=submit]").await;
    b.wait_text("李建国").await;

    // The template spreadsheet: tomorrow's weekday, a morning of 08:00-10:00 in 30 minutes.
    let tomorrow = today() + Days::days(1);
    let weekday = tomorrow.weekday().number_from_monday().to_string();
    let header: &[&str] = &["医生编码", "星期", "时段", "开始时间", "结束时间", "每段分钟", "每段号数", "挂号费（元）"];
    let line: &[&str] = &["XN001", &weekday, "上午", "@08:00", "@10:00", "30", "3", "50"];
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("排班模板.xlsx");
    std::fs::write(&file, workbook(&[("排班模板", &[header, line])])).unwrap();
    b.click("nav a[data-page=import]").await;
    b.find("#import-form input[type=file]").await.send_keys(file.to_str().unwrap()).await.unwrap();
    b.fill("#import-form input[name=weeks]", "1").await;
    b.click("#import-check").await;
    b.wait_text("检查通过").await;
    b.click("#import-apply").await;
    b.wait_text("新建出诊 1 个").await;

    // The analytics page before any booking: its empty state.
    b.click("nav a[data-page=analytics]").await;
    b.wait_text("所选时间段内还没有预约数据").await;
    b.screenshot("admin-analytics-empty").await;

    // The session is in the patient API; a patient books and pays it.
    let doctors = s.get_json("/api/v1/doctors?q=李建国", None).await;
    let doctor = doctors[0]["id"].as_str().expect("the console's doctor in the patient API").to_string();
    assert_eq!(doctors[0]["department_name"], "心血管内科");
    let sched = s.get_json(&format!("/api/v1/doctors/{doctor}/schedule?from={tomorrow}&to={tomorrow}"), None).await;
    let session = &sched["sessions"][0];
    assert_eq!(session["slots"].as_array().map(Vec::len), Some(4), "08:00-10:00 by 30 minutes: {sched}");
    assert_eq!(session["fee"], 5000, "{session}");
    let admin = s.staff_login("boss", "First-admin-2026").await;
    set_release(&s, &admin, session["session_id"].as_str().unwrap(), Utc::now() - Days::minutes(1)).await;
    let p = person(&s, 9101).await;
    crate::visits::booked(&s, &p, session["slots"][1]["slot_id"].as_str().unwrap()).await;

    // The analytics page shows it: today's column (bookings by the day they were made), the
    // department's bar, the 08:30 slot (by visit day: the range is set to end tomorrow).
    let set = |css: &'static str, v: String| {
        let b = &b;
        async move {
            let el = b.find(css).await;
            b.client
                .execute("arguments[0].value = arguments[1];", vec![serde_json::to_value(&el).unwrap(), json!(v)])
                .await
        }
    };
    set("#analytics-range input[name=to]", tomorrow.to_string()).await.unwrap();
    b.click("#analytics-load").await;
    let day = today();
    let column = b.find(&format!("#chart-daily rect.mark[data-label='{day}']")).await;
    assert_eq!(column.attr("data-n").await.unwrap().as_deref(), Some("1"));
    let bar = b.find("#chart-departments rect.mark[data-label='心血管内科']").await;
    assert_eq!(bar.attr("data-n").await.unwrap().as_deref(), Some("1"));
    let slot = b.find("#chart-slots rect.mark[data-label='08:30']").await;
    assert_eq!(slot.attr("data-n").await.unwrap().as_deref(), Some("1"));
    let booked_on_page = b.find("#stat-booked strong").await.text().await.unwrap();
    assert_eq!(booked_on_page, "1");
    let heat: Vec<String> = {
        let mut v = Vec::new();
        for m in b.client.find_all(fantoccini::Locator::Css("#chart-heatmap rect.mark")).await.unwrap() {
            v.push(m.attr("data-n").await.unwrap().unwrap_or_default());
        }
        v
    };
    assert_eq!(heat.len(), 7 * 24);
    assert_eq!(heat.iter().filter(|n| *n == "1").count(), 1, "one booking, one cell: {heat:?}");
    b.wait_text("李建国").await;
    b.screenshot("admin-analytics").await;
    let charts = b.find("#chart-departments").await;
    b.client.execute("arguments[0].scrollIntoView()", vec![serde_json::to_value(&charts).unwrap()]).await.unwrap();
    b.screenshot("admin-analytics-charts").await;

    // The export the page's button fetches (the same range), read by openpyxl: the same figures
    // as the page and the API.
    let from = day - Days::days(29);
    let r = s.get(&format!("/api/v1/admin/analytics/export?from={from}&to={tomorrow}&format=xlsx"), Some(&admin)).await;
    assert_eq!(r.status(), 200);
    let path = files.path().join("统计分析.xlsx");
    std::fs::write(&path, r.bytes().await.unwrap()).unwrap();
    let sheets = read_with_openpyxl(&path);
    assert_eq!(figure(&sheets, "概览", "预约数", 1), 1.0, "{sheets}");
    assert_eq!(figure(&sheets, "概览", "已支付", 1), 1.0);
    assert_eq!(figure(&sheets, "概览", "收入（元）", 1), 50.0);
    assert_eq!(figure(&sheets, "科室", "心血管内科", 1), 1.0, "department bookings");
    assert_eq!(figure(&sheets, "医生", "李建国", 1), 1.0, "doctor bookings");
    assert_eq!(figure(&sheets, "时段", "08:30", 1), 1.0);
    assert_eq!(figure(&sheets, "每日", &day.to_string(), 1), 1.0, "today's bookings");
    assert_eq!(sheets["每日"].as_array().unwrap().len(), 32, "a header and 31 days");
    let json =
        ok_json(s.get(&format!("/api/v1/admin/analytics/report?from={from}&to={tomorrow}"), Some(&admin)).await).await;
    assert_eq!((json["totals"]["booked"].clone(), json["totals"]["paid"].clone()), (json!(1), json!(1)), "{json}");

    // A reversed range is refused, in Chinese, naming the field.
    set("#analytics-range input[name=from]", (day + Days::days(2)).to_string()).await.unwrap();
    b.click("#analytics-load").await;
    b.wait_text("日期范围无效（开始日期）").await;
    b.screenshot("admin-analytics-error").await;
    let _ = b.client.clone().close().await;
}
