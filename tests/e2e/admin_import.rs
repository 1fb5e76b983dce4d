//! The catalogue import (issue 10, must-show 5) on a server with the demo data off: a workbook
//! made with an independent writer (`rust_xlsxwriter`) and CSV files are posted to
//! `POST /api/v1/admin/import`. A bad file's dry run reports every bad row with its sheet, row and
//! column and writes nothing (the patient API is as empty as before, and the real run is refused
//! whole); a good workbook writes every department, doctor and template session, which the
//! patient API shows and a patient books; imported again, nothing doubles; a CSV file updates a
//! doctor by code. Every import that writes is one audited staff action.

use chrono::{Duration as Days, Utc};
use reqwest::header::CONTENT_TYPE;
use rust_xlsxwriter::{Format, Workbook};
use serde_json::{json, Value};

use crate::booking_flow::{book_ok, booking_opts, person, set_release};
use crate::catalogue_admin::dir_with_admin;
use crate::harness::{assert_error, expect_json, ok_json, TestServer};

pub(crate) const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A workbook of named sheets. A cell `@08:00` is written as an Excel time (a number with a
/// time format, as Excel stores one typed in), a cell that parses as a number as a number, any
/// other as text; an empty string is left empty.
pub(crate) fn workbook(sheets: &[(&str, &[&[&str]])]) -> Vec<u8> {
    let mut wb = Workbook::new();
    let time = Format::new().set_num_format("hh:mm");
    for (name, rows) in sheets {
        let ws = wb.add_worksheet();
        ws.set_name(*name).unwrap();
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (r, c) = (r as u32, c as u16);
                if cell.is_empty() {
                    continue;
                }
                if let Some(t) = cell.strip_prefix('@') {
                    let (h, m) = t.split_once(':').unwrap();
                    let day = (h.parse::<f64>().unwrap() * 60.0 + m.parse::<f64>().unwrap()) / 1440.0;
                    ws.write_number_with_format(r, c, day, &time).unwrap();
                } else if let Ok(n) = cell.parse::<f64>() {
                    ws.write_number(r, c, n).unwrap();
                } else {
                    ws.write_string(r, c, *cell).unwrap();
                }
            }
        }
    }
    wb.save_to_buffer().unwrap()
}

pub(crate) async fn import(
    s: &TestServer,
    token: &str,
    query: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    s.client()
        .post(s.url(&format!("/api/v1/admin/import{query}")))
        .bearer_auth(token)
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// (sheet, row, column, code) of every error of a report.
fn error_places(report: &Value) -> Vec<(String, u64, String, String)> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["sheet"].as_str().unwrap().to_string(),
                e["row"].as_u64().unwrap(),
                e["column"].as_str().unwrap_or("").to_string(),
                e["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Entries of real imports (those that wrote) in the audit log.
async fn import_entries(s: &TestServer, admin: &str) -> usize {
    let log = s.get_json("/api/v1/admin/audit?action=catalog.import&limit=500", Some(admin)).await;
    log["entries"].as_array().unwrap().iter().filter(|e| e["event"]["target"]["kind"] == "import").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_files_dry_run_reports_every_bad_row_and_nothing_is_written() {
    let s = TestServer::start(booking_opts().env("HOSPITAL_DEMO_DATA", false).data_dir(dir_with_admin())).await;
    let admin = s.staff_login("boss", "First-admin-2026").await;
    let bad = workbook(&[
        (
            "科室",
            &[
                &["科室编码", "科室名称", "上级科室编码", "位置"],
                &["NK", "内科", "", "门诊楼1层"],
                &["NK", "内科重复", "", ""],
                &["WK", "", "", ""],
            ],
        ),
        (
            "医生",
            &[
                &["医生编码", "姓名", "科室编码", "职称"],
                &["D001", "李建国", "NK", "主任医师"],
                &["D002", "王芳", "ERK", "主治医师"],
                &["D003", "张伟", "NK", "院长"],
            ],
        ),
        (
            "排班模板",
            &[
                &["医生编码", "星期", "时段", "开始时间", "结束时间", "每段分钟", "每段号数"],
                &["D001", "1", "上午", "@08:00", "@12:00", "30", "5"],
                &["D001", "2", "上午", "8点半", "12:00", "30", "5"],
                &["D001", "1", "上午", "08:00", "11:00", "30", "5"],
                &["D404", "3", "下午", "14:00", "17:00", "30", "5"],
                &["D001", "4", "下午", "17:00", "14:00", "30", "5"],
                &["D001", "5", "下午", "14:00", "17:00", "", "5"],
            ],
        ),
    ]);

    let report = ok_json(import(&s, &admin, "?dry_run=true", XLSX, bad.clone()).await).await;
    assert_eq!((report["dry_run"].clone(), report["written"].clone()), (json!(true), json!(false)));
    let want: Vec<(String, u64, String, String)> = [
        ("科室", 3, "code", "duplicate"),
        ("科室", 4, "name", "missing"),
        ("医生", 3, "department_code", "unknown_department"),
        ("医生", 4, "title", "invalid"),
        ("排班模板", 3, "start", "invalid"),
        ("排班模板", 4, "period", "duplicate"),
        ("排班模板", 5, "doctor_code", "unknown_doctor"),
        ("排班模板", 6, "end", "invalid"),
        ("排班模板", 7, "segment_minutes", "missing"),
    ]
    .iter()
    .map(|(a, b, c, d)| (a.to_string(), *b, c.to_string(), d.to_string()))
    .collect();
    assert_eq!(error_places(&report), want, "{report}");
    assert!(report["errors"].as_array().unwrap().iter().all(|e| !e["message"].as_str().unwrap().is_empty()));
    // Staff read each error in Chinese: the column as the sheet heads it, and what is wrong.
    let labels: Vec<&str> = report["errors"].as_array().unwrap().iter().map(|e| e["label"].as_str().unwrap()).collect();
    assert_eq!(
        labels,
        ["科室编码", "科室名称", "科室编码", "职称", "开始时间", "时段", "医生编码", "结束时间", "每段分钟"],
        "{report}"
    );
    let zh: Vec<&str> =
        report["errors"].as_array().unwrap().iter().map(|e| e["message_zh"].as_str().unwrap()).collect();
    assert_eq!(zh[1], "科室名称不能为空", "{report}");
    assert_eq!(zh[7], "结束时间 14:00 须晚于开始时间 17:00", "{report}");
    assert_eq!(zh[5], "医生 D001 在周一上午已有一行排班（第 2 行）", "{report}");
    assert!(zh.iter().all(|m| !m.is_empty() && !m.contains(" is ")), "{zh:?}");
    let sheets: Vec<(&str, &str, u64)> = report["sheets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["name"].as_str().unwrap(), x["kind"].as_str().unwrap(), x["rows"].as_u64().unwrap()))
        .collect();
    assert_eq!(sheets, [("科室", "departments", 3), ("医生", "doctors", 3), ("排班模板", "templates", 6)]);

    // The real run of the same file is refused whole.
    let e = assert_error(import(&s, &admin, "", XLSX, bad).await, 422, "import_invalid").await;
    assert!(e["message"].as_str().unwrap().starts_with("9 rows have errors"), "{e}");
    // A CSV file with a broken header is reported at its header row.
    let csv = "科室编码,科室名称,颜色\nNK,内科,红\n".as_bytes().to_vec();
    let report = ok_json(import(&s, &admin, "?dry_run=true&kind=departments", "text/csv", csv).await).await;
    assert_eq!(
        error_places(&report),
        [("departments".to_string(), 1, "颜色".to_string(), "unknown_column".to_string())]
    );
    // Not a spreadsheet at all.
    assert_error(import(&s, &admin, "", "image/png", b"\x89PNG....".to_vec()).await, 415, "unsupported_media_type")
        .await;

    // Nothing was written: the patient catalogue is as empty as before, and no import is logged.
    assert_eq!(s.get_json("/api/v1/departments", None).await, json!([]));
    assert_eq!(s.get_json("/api/v1/doctors", None).await, json!([]));
    assert_eq!(import_entries(&s, &admin).await, 0);
}

/// The good workbook of the tests (and the console's).
pub(crate) fn good_workbook() -> Vec<u8> {
    workbook(&[
        (
            "科室",
            &[
                &["科室编码", "科室名称", "上级科室编码", "位置", "排序"],
                &["NK", "内科", "", "门诊楼1层", "1"],
                &["XNK", "心内科", "NK", "门诊楼2层", "2"],
            ],
        ),
        (
            "医生",
            &[
                &["医生编码", "姓名", "科室编码", "职称", "专长"],
                &["D001", "李建国", "XNK", "主任医师", "高血压、冠心病"],
                &["D002", "王芳", "NK", "主治医师", ""],
            ],
        ),
        (
            "排班模板",
            &[
                &[
                    "医生编码",
                    "星期",
                    "时段",
                    "开始时间",
                    "结束时间",
                    "每段分钟",
                    "每段号数",
                    "挂号费（元）",
                    "提前放号天数",
                    "放号时间",
                ],
                &["D001", "周一", "上午", "@08:00", "@11:00", "30", "4", "60", "7", "08:00"],
                &["D001", "周三", "下午", "14:00", "17:00", "60", "3", "", "", ""],
                &["D002", "7", "夜间", "18:00", "20:00", "30", "2", "12.5", "14", "@07:30"],
            ],
        ),
        ("Sheet4", &[]),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_workbook_writes_everything_once_even_imported_twice() {
    let s = TestServer::start(booking_opts().env("HOSPITAL_DEMO_DATA", false).data_dir(dir_with_admin())).await;
    let admin = s.staff_login("boss", "First-admin-2026").await;
    let file = good_workbook();

    // The dry run says what would happen and writes nothing.
    let dry = ok_json(import(&s, &admin, "?dry_run=true&weeks=2", XLSX, file.clone()).await).await;
    assert_eq!(dry["errors"], json!([]), "{dry}");
    assert_eq!(dry["departments"], json!({ "create": 2, "update": 0, "unchanged": 0 }));
    assert_eq!(dry["doctors"], json!({ "create": 2, "update": 0, "unchanged": 0 }));
    assert_eq!(dry["sessions_planned"], 6, "two weeks of three weekly lines");
    assert_eq!(dry["rows"].as_array().unwrap().len(), 7, "{dry}");
    assert_eq!(s.get_json("/api/v1/departments", None).await, json!([]));

    let done = ok_json(import(&s, &admin, "?weeks=2", XLSX, file.clone()).await).await;
    assert_eq!((done["written"].clone(), done["sessions_created"].clone()), (json!(true), json!(6)), "{done}");

    // Everything is in the patient API at once: the tree, the doctors, their sessions.
    let tree = s.get_json("/api/v1/departments", None).await;
    assert_eq!(tree.as_array().unwrap().len(), 1, "one root: {tree}");
    assert_eq!(tree[0]["name"], "内科");
    assert_eq!(tree[0]["children"][0]["name"], "心内科", "{tree}");
    let doctors = s.get_json("/api/v1/doctors", None).await;
    assert_eq!(doctors.as_array().unwrap().len(), 2, "{doctors}");
    let li = s.get_json("/api/v1/doctors?q=李建国", None).await;
    let li_id = li[0]["id"].as_str().unwrap().to_string();
    assert_eq!(li[0]["title"], "chief_physician");
    let (from, to) = (Utc::now().date_naive(), Utc::now().date_naive() + Days::days(20));
    let schedule_path = format!("/api/v1/doctors/{li_id}/schedule?from={from}&to={to}");
    let sessions = s.get_json(&schedule_path, None).await["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 4, "two Mondays and two Wednesdays: {sessions:?}");
    let monday = sessions.iter().find(|x| x["period"] == "morning").unwrap();
    assert_eq!(monday["fee"], 6000, "the file's fee: {monday}");
    assert_eq!(monday["slots"].as_array().unwrap().len(), 6, "08:00-11:00 by 30 minutes");
    let wednesday = sessions.iter().find(|x| x["period"] == "afternoon").unwrap();
    assert_eq!(wednesday["fee"], 5000, "the title's fee when the file gives none");

    // A patient books one of the imported sessions.
    let session = monday["session_id"].as_str().unwrap().to_string();
    set_release(&s, &admin, &session, Utc::now() - Days::minutes(1)).await;
    let slot = monday["slots"][0]["slot_id"].as_str().unwrap().to_string();
    let p = person(&s, 7411).await;
    let booked = book_ok(&s, &p, &slot).await;
    assert_eq!(booked["order"]["amount"], 6000);

    // Imported again: everything is recognised by its code; nothing doubles, the booked session
    // is left as it is.
    let again = ok_json(import(&s, &admin, "?weeks=2", XLSX, file.clone()).await).await;
    assert_eq!(again["departments"], json!({ "create": 0, "update": 0, "unchanged": 2 }), "{again}");
    assert_eq!(again["doctors"], json!({ "create": 0, "update": 0, "unchanged": 2 }));
    assert_eq!((again["sessions_created"].clone(), again["sessions_skipped"].clone()), (json!(0), json!(6)));
    assert_eq!(s.get_json("/api/v1/departments", None).await, tree);
    assert_eq!(s.get_json("/api/v1/doctors", None).await.as_array().unwrap().len(), 2);
    let sessions = s.get_json(&schedule_path, None).await["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 4);
    let monday = sessions.iter().find(|x| x["session_id"] == session.as_str()).unwrap();
    assert_eq!(monday["slots"][0]["remaining"], 3, "the booking is still there: {monday}");

    // A CSV file (as Excel saves one: BOM, CRLF) changes a doctor by code.
    let csv = "\u{feff}code,name,department_code,title\r\nD002,王芳芳,NK,副主任医师\r\n".as_bytes().to_vec();
    let r = ok_json(import(&s, &admin, "?kind=doctors", "text/csv; charset=utf-8", csv).await).await;
    assert_eq!(r["doctors"], json!({ "create": 0, "update": 1, "unchanged": 0 }), "{r}");
    let wang = s.get_json("/api/v1/doctors?q=王芳芳", None).await;
    assert_eq!(wang[0]["title"], "associate_chief_physician", "{wang}");
    assert_eq!(s.get_json("/api/v1/doctors", None).await.as_array().unwrap().len(), 2);

    // Each import that wrote is one audited action; a scheduler may import, a nurse may not.
    assert_eq!(import_entries(&s, &admin).await, 3);
    for (name, role) in [("imp_sched", "scheduler"), ("imp_nurse", "nurse")] {
        let body = json!({ "username": name, "name": "员工", "password": "Import-pass-2026", "roles": [role] });
        expect_json(s.post("/api/v1/admin/staff", Some(&admin), body).await, 201).await;
    }
    let sched = s.staff_login("imp_sched", "Import-pass-2026").await;
    ok_json(import(&s, &sched, "?dry_run=true", XLSX, file.clone()).await).await;
    let nurse = s.staff_login("imp_nurse", "Import-pass-2026").await;
    assert_error(import(&s, &nurse, "?dry_run=true", XLSX, file).await, 403, "forbidden").await;
}

/// The console's import page in Chromium: a bad file's check shows its errors as a table and
/// leaves the import button off; the good workbook's check passes, the import writes it, and the
/// patient API has the doctors and their sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_checks_then_imports_a_workbook() {
    let s = TestServer::start(booking_opts().env("HOSPITAL_DEMO_DATA", false).data_dir(dir_with_admin())).await;
    let files = tempfile::tempdir().unwrap();
    let bad = files.path().join("科室有误.xlsx");
    std::fs::write(
        &bad,
        workbook(&[(
            "医生",
            &[
                &["医生编码", "姓名", "科室编码", "职称"],
                &["D001", "李建国", "NOPE", "主任医师"],
                &["D002", "", "NOPE", "教授"],
            ],
        )]),
    )
    .unwrap();
    let good = files.path().join("排班.xlsx");
    std::fs::write(&good, good_workbook()).unwrap();

    let b = crate::browser::Browser::start().await;
    b.sign_in(&s.url("/admin#import"), "boss", "First-admin-2026").await;
    b.click("nav a[data-page=import]").await;

    b.find("#import-form input[type=file]").await.send_keys(bad.to_str().unwrap()).await.unwrap();
    b.click("#import-check").await;
    b.wait_text("发现 3 处错误").await;
    b.wait_text("科室不存在").await;
    b.wait_text("没有科室编码为 NOPE 的科室").await;
    b.wait_text("“教授”不是职称").await;
    b.wait_text("姓名不能为空").await;
    let shown = b.find("#import-errors").await.text().await.unwrap();
    assert!(shown.contains("科室编码") && !shown.contains("department_code"), "{shown}");
    assert!(!shown.contains("no department") && !shown.contains("is required"), "{shown}");
    assert!(!b.find("#import-apply").await.is_enabled().await.unwrap(), "a file with errors cannot be imported");
    b.screenshot("admin-import-errors").await;

    b.find("#import-form input[type=file]").await.send_keys(good.to_str().unwrap()).await.unwrap();
    b.fill("#import-form input[name=weeks]", "2").await;
    b.click("#import-check").await;
    b.wait_text("检查通过").await;
    b.wait_text("将生成出诊 6 个").await;
    assert_eq!(s.get_json("/api/v1/doctors", None).await, json!([]), "a check writes nothing");
    b.click("#import-apply").await;
    b.wait_text("已导入").await;
    b.wait_text("新建出诊 6 个").await;
    b.screenshot("admin-import").await;
    let doctors = s.get_json("/api/v1/doctors", None).await;
    assert_eq!(doctors.as_array().unwrap().len(), 2, "{doctors}");
    let _ = b.client.clone().close().await;
}
