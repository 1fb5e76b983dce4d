//! The back-office console in real headless Chromium, on a server with the demo data off: the
//! first administrator (made with `hospital create-staff`) logs in at `/admin`, creates a staff
//! member and a custom role, a department and a doctor, applies a weekly template; the patient
//! API shows the doctor and the sessions at once; the audit page lists the actions. Screenshots
//! of each page go to target/screenshots (and docs/screenshots with HOSPITAL_SCREENSHOTS=docs).

use chrono::Utc;

use crate::booking_flow::booking_opts;
use crate::browser::Browser;
use crate::catalogue_admin::dir_with_admin;
use crate::harness::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_sets_up_the_hospital_in_the_console() {
    let s = TestServer::start(booking_opts().env("HOSPITAL_DEMO_DATA", false).data_dir(dir_with_admin())).await;
    let b = Browser::start().await;
    b.client.goto(&s.url("/admin")).await.unwrap();
    b.wait_text("医院管理后台").await;
    b.fill("input[name=username]", "boss").await;
    b.fill("input[name=password]", "First-admin-2026").await;
    b.click("button[type=submit]").await;
    b.find("form#new-staff").await;
    b.wait_text("院办管理员").await;

    // Staff: a scheduler, through the form.
    b.fill("#new-staff input[name=username]", "wang_sched").await;
    b.fill("#new-staff input[name=name]", "王排班").await;
    b.fill("#new-staff input[name=password]", "Sched-pass-2026").await;
    b.click("#new-staff input[name=role][value=scheduler]").await;
    b.click("#new-staff button[type=submit]").await;
    b.wait_text("wang_sched").await;
    let admin = s.staff_login("boss", "First-admin-2026").await;
    let staff = s.get_json("/api/v1/admin/staff", Some(&admin)).await;
    assert!(
        staff.as_array().unwrap().iter().any(|m| m["username"] == "wang_sched" && m["roles"][0] == "scheduler"),
        "{staff}"
    );
    b.screenshot("admin-staff").await;

    // The same username again: refused in staff's words, not the server's English.
    b.fill("#new-staff input[name=username]", "wang_sched").await;
    b.fill("#new-staff input[name=name]", "王二").await;
    b.fill("#new-staff input[name=password]", "Sched-pass-2026").await;
    b.click("#new-staff input[name=role][value=scheduler]").await;
    b.click("#new-staff button[type=submit]").await;
    b.wait_text("该用户名已被使用，请换一个").await;
    let shown = b.find("#new-staff .error").await.text().await.unwrap();
    assert!(!shown.contains("taken"), "{shown}");
    b.screenshot("admin-staff-taken").await;

    // A password the policy refuses: what the policy is, in staff's words.
    b.fill("#new-staff input[name=username]", "li_nurse").await;
    b.fill("#new-staff input[name=name]", "李护士").await;
    b.fill("#new-staff input[name=password]", "onlyletters").await;
    b.click("#new-staff input[name=role][value=nurse]").await;
    b.click("#new-staff button[type=submit]").await;
    b.wait_text("密码须为 8 至 128 位，且同时含有字母和数字").await;
    // A table button's refusal has no form to show it: the bar under the top bar says it.
    b.click("button[data-act=toggle][data-user=boss]").await;
    b.wait_text("不能停用自己的账号").await;
    b.screenshot("admin-problem-bar").await;
    b.click("#problem button").await;
    b.wait_gone("#problem .text", "the closed bar").await;
    let staff = s.get_json("/api/v1/admin/staff", Some(&admin)).await;
    let boss = staff.as_array().unwrap().iter().find(|m| m["username"] == "boss").expect("boss listed").clone();
    assert_eq!(boss["active"], true, "{boss}");

    // Roles: a custom one with one permission.
    b.click("nav a[data-page=roles]").await;
    b.fill("#new-role input[name=rolename]", "refund_clerk").await;
    b.fill("#new-role input[name=label]", "退款专员").await;
    b.click("#new-role input[name=perm][value='payments.refund']").await;
    b.click("#new-role button[type=submit]").await;
    b.wait_text("退款专员").await;
    let roles = s.get_json("/api/v1/admin/roles", Some(&admin)).await;
    let clerk = roles.as_array().unwrap().iter().find(|r| r["name"] == "refund_clerk").expect("role stored").clone();
    assert_eq!(clerk["permissions"], serde_json::json!(["payments.refund"]));
    b.screenshot("admin-roles").await;

    // Catalogue: a department, then a doctor in it; the patient API has them at once.
    b.click("nav a[data-page=catalogue]").await;
    b.wait_text("还没有科室").await;
    b.fill("#new-department input[name=dname]", "心血管内科").await;
    b.fill("#new-department input[name=location]", "门诊楼3层").await;
    b.click("#new-department button[type=submit]").await;
    b.wait_text("门诊楼3层").await;
    b.fill("#new-doctor input[name=doctor_name]", "李建国").await;
    b.fill("#new-doctor input[name=specialties]", "高血压，冠心病").await;
    b.click("#new-doctor button[type=submit]").await;
    b.wait_text("高血压、冠心病").await;
    let doctors = s.get_json("/api/v1/doctors", None).await;
    let doctor =
        doctors.as_array().unwrap().iter().find(|d| d["name"] == "李建国").expect("in the patient API").clone();
    assert_eq!(doctor["department_name"], "心血管内科");
    b.screenshot("admin-catalogue").await;

    // Schedules: the weekly template (Mondays, four weeks) through the form.
    b.click("nav a[data-page=schedules]").await;
    b.click("#apply-template button[type=submit]").await;
    b.find("#applied").await;
    let id = doctor["id"].as_str().unwrap();
    let today = Utc::now().date_naive();
    let to = today + chrono::Duration::days(27);
    let sched = s.get_json(&format!("/api/v1/doctors/{id}/schedule?from={today}&to={to}"), None).await;
    let sessions = sched["sessions"].as_array().unwrap();
    assert!(!sessions.is_empty(), "sessions in the patient API: {sched}");
    assert!(
        sessions.iter().all(|x| x["slots"].as_array().unwrap().len() == 8),
        "08:00-12:00 in 30-minute slots: {sched}"
    );
    b.wait_text("余10").await;
    b.screenshot("admin-schedules").await;

    // The audit page lists what was done.
    b.click("nav a[data-page=audit]").await;
    b.wait_text("doctor.create").await;
    b.wait_text("role.create").await;
    b.screenshot("admin-audit").await;

    // A search from ten minutes ago, typed as the hospital's wall-clock time (Asia/Shanghai,
    // UTC+8, as the table shows times), still finds them: the page reads what is typed in the
    // hospital's zone, not the browser's (UTC here; read as UTC it would be eight hours ahead).
    let offset = b.client.execute("return new Date().getTimezoneOffset();", vec![]).await.unwrap();
    assert_ne!(offset, serde_json::json!(-480), "the browser must not run in the hospital's zone for this check");
    let from = b.find("#audit-search input[name=from]").await;
    let wall = (Utc::now() + chrono::Duration::hours(8) - chrono::Duration::minutes(10)).format("%Y-%m-%dT%H:%M");
    b.client
        .execute(
            "arguments[0].value = arguments[1];",
            vec![serde_json::to_value(&from).unwrap(), serde_json::json!(wall.to_string())],
        )
        .await
        .unwrap();
    b.fill("#audit-search input[name=action]", "role.create").await;
    b.click("#audit-search button[type=submit]").await;
    // The table is re-rendered with the search's answer: wait for it to hold only the role's.
    let actions = "return [...document.querySelectorAll('td code')].map((c) => c.textContent);";
    b.wait_js(actions, serde_json::json!(["role.create"])).await;
    // A staff ID that is not one is refused on the page, in staff's words.
    b.fill("#audit-search input[name=staff]", "boss").await;
    b.click("#audit-search button[type=submit]").await;
    b.wait_text("员工 ID应为 36 位的编号").await;
    b.screenshot("admin-audit-error").await;

    // Patients: a phone that is not one is refused in staff's words; a phone nobody has is said.
    b.click("nav a[data-page=patients]").await;
    b.fill("#patient-search input[name=phone]", "123").await;
    b.click("#patient-search button[type=submit]").await;
    b.wait_text("请输入 11 位手机号，如 13800138000").await;
    b.screenshot("admin-patients-error").await;
    b.fill("#patient-search input[name=phone]", "13800138000").await;
    b.click("#patient-search button[type=submit]").await;
    b.wait_text("没有找到该手机号的账号").await;
    b.screenshot("admin-patients-empty").await;
    let _ = b.client.clone().close().await;
}
