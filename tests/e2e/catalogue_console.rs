//! The console's catalogue, policy and staff-announcement pages in real headless Chromium
//! (INFO-1, INFO-3, SET-2, ADM-4), against the real binary: the hospital's information with its
//! buildings, floors and rooms; a doctor's own fee and photo (a refused file first); a department
//! switched off and on again; the privacy policy's versions published, which the consent gate
//! then asks patients to accept; a staff announcement arriving live as a banner. Screenshots,
//! empty and error states included, go to target/screenshots (docs/screenshots with
//! HOSPITAL_SCREENSHOTS=docs).

use chrono::{Duration as Days, SecondsFormat, Utc};
use serde_json::json;

use crate::booking_flow::{booking_opts, person};
use crate::browser::Browser;
use crate::catalogue_admin::dir_with_admin;
use crate::harness::{assert_error, expect_json, TestServer};

/// Logs `username` in at `/admin` and waits for the menu.
async fn sign_in(b: &Browser, s: &TestServer, username: &str, password: &str) {
    b.sign_in(&s.url("/admin"), username, password).await;
    b.find("header.topbar").await;
    // The pages ask before switching a department off or publishing a text: say yes.
    b.client.execute("window.confirm = () => true;", vec![]).await.unwrap();
}

/// Sets a form control's value from script (selects, whose typing depends on the platform).
async fn set_value(b: &Browser, css: &str, value: &str) {
    let el = b.find(css).await;
    b.client
        .execute("arguments[0].value = arguments[1];", vec![serde_json::to_value(&el).unwrap(), json!(value)])
        .await
        .unwrap();
}

/// Waits until the page's text no longer contains `text` (up to 15 s).
async fn wait_gone(b: &Browser, text: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let body = b.find("body").await.text().await.unwrap_or_default();
        if !body.contains(text) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the page still shows {text:?}:\n{body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_page_sets_hospital_fees_photos_and_switches_departments() {
    let s = TestServer::start(booking_opts().env("HOSPITAL_DEMO_DATA", false).data_dir(dir_with_admin())).await;
    let b = Browser::start().await;
    sign_in(&b, &s, "boss", "First-admin-2026").await;
    b.click("nav a[data-page=catalogue]").await;
    b.wait_text("还没有填写医院信息").await;
    b.wait_text("还没有科室").await;
    b.screenshot("admin-catalogue-empty").await;

    // The hospital: a malformed buildings line is refused on the page, then the real thing.
    b.fill("#hospital-form input[name=hname]", "滨江人民医院").await;
    b.fill("#hospital-form input[name=level]", "三级甲等").await;
    b.fill("#hospital-form input[name=address]", "滨江路1号").await;
    b.fill("#hospital-form input[name=phone]", "0571-88888888").await;
    b.fill("#hospital-form input[name=hours]", "周一至周日 08:00-17:30").await;
    b.fill("#hospital-form input[name=lat]", "30.25").await;
    b.fill("#hospital-form input[name=lng]", "120.21").await;
    b.fill("#hospital-form textarea[name=introduction]", "始建于1952年，是一所综合性医院。").await;
    b.fill("#hospital-form textarea[name=buildings]", "A 门诊楼 一楼").await;
    b.click("#hospital-form button[type=submit]").await;
    b.wait_text("楼宇第1行").await;
    // A point off the map is the server's refusal, said in staff's words.
    b.fill("#hospital-form textarea[name=buildings]", "").await;
    b.fill("#hospital-form input[name=lat]", "95").await;
    b.click("#hospital-form button[type=submit]").await;
    b.wait_text("纬度须在 -90 至 90 之间").await;
    b.fill("#hospital-form input[name=lat]", "30.25").await;
    b.fill("#hospital-form textarea[name=buildings]", "A 门诊楼 一楼").await;
    b.click("#hospital-form button[type=submit]").await;
    b.wait_text("楼宇第1行").await;
    b.screenshot("admin-hospital-error").await;
    b.fill(
        "#hospital-form textarea[name=buildings]",
        "A 门诊楼 1 挂号收费,药房\nA 门诊楼 2 内科诊区\nB 医技楼 1 CT室,超声室",
    )
    .await;
    b.click("#hospital-form button[type=submit]").await;
    b.wait_text("滨江人民医院（三级甲等）").await;
    let hosp = s.get_json("/api/v1/hospital", None).await;
    assert_eq!(hosp["latitude"], 30.25);
    assert_eq!(hosp["service_hours"], "周一至周日 08:00-17:30");
    assert_eq!(hosp["buildings"][0]["floors"][1]["rooms"][0], "内科诊区", "{hosp}");
    assert_eq!(hosp["buildings"][1]["floors"][0]["rooms"], json!(["CT室", "超声室"]), "{hosp}");

    // Departments: 内科 and 心内科 below it.
    b.fill("#new-department input[name=dname]", "内科").await;
    b.click("#new-department button[type=submit]").await;
    b.wait_text("启用").await;
    let admin = s.staff_login("boss", "First-admin-2026").await;
    let all = s.get_json("/api/v1/admin/catalogue", Some(&admin)).await;
    let root = all["departments"][0]["id"].as_str().unwrap().to_string();
    b.fill("#new-department input[name=dname]", "心内科").await;
    set_value(&b, "#new-department select[name=parent]", &root).await;
    b.fill("#new-department input[name=location]", "门诊楼2层").await;
    b.click("#new-department button[type=submit]").await;
    b.wait_text("门诊楼2层").await;
    let all = s.get_json("/api/v1/admin/catalogue", Some(&admin)).await;
    let cardio = all["departments"][0]["children"][0]["id"].as_str().expect("心内科 below 内科").to_string();

    // A doctor with their own fee; the editor opens on them.
    b.fill("#new-doctor input[name=doctor_name]", "李建国").await;
    set_value(&b, "#new-doctor select[name=department]", &cardio).await;
    b.fill("#new-doctor input[name=specialties]", "高血压，冠心病").await;
    b.fill("#new-doctor input[name=fee]", "45").await;
    b.click("#new-doctor button[type=submit]").await;
    b.wait_text("编辑医生：李建国").await;
    b.wait_text("¥45.00（自定）").await;
    let doctors = s.get_json("/api/v1/doctors", None).await;
    let doctor = doctors.as_array().unwrap().iter().find(|d| d["name"] == "李建国").expect("listed").clone();
    assert_eq!((doctor["fee"].as_u64(), doctor["own_fee"].as_u64()), (Some(4500), Some(4500)), "{doctor}");
    let id = doctor["id"].as_str().unwrap().to_string();

    // A file that is not a photo is refused, and the page says so.
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("resume.png");
    std::fs::write(&text, "这不是图片").unwrap();
    b.find("#doctor-photo input[type=file]").await.send_keys(text.to_str().unwrap()).await.unwrap();
    b.click("#doctor-photo button[type=submit]").await;
    b.wait_text("只接受 JPEG、PNG 或 WebP 图片").await;
    b.client.execute("document.querySelector('#doctor-photo').scrollIntoView()", vec![]).await.unwrap();
    b.screenshot("admin-doctor-photo-error").await;
    assert!(s.get_json(&format!("/api/v1/doctors/{id}"), None).await.get("photo_url").is_none());

    // The real photo: stored, shown in the editor and the list, served to patients.
    let photo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/fixtures/doctor-photo.png");
    b.find("#doctor-photo input[type=file]").await.send_keys(photo.to_str().unwrap()).await.unwrap();
    b.click("#doctor-photo button[type=submit]").await;
    b.wait_text("更换照片").await;
    let view = s.get_json(&format!("/api/v1/doctors/{id}"), None).await;
    let url = view["photo_url"].as_str().expect("a photo URL").to_string();
    let r = s.client().get(s.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap() == std::fs::read(&photo).unwrap(), "the photo's bytes");
    // The browser shows it: the image loaded (its natural width is the file's, 120 px).
    let img = serde_json::to_value(b.find("#doctor-photo img.photo").await).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let width = b
            .client
            .execute("return arguments[0].complete ? arguments[0].naturalWidth : -1;", vec![img.clone()])
            .await
            .unwrap();
        if width != json!(-1) {
            assert_eq!(width, json!(120), "the photo renders in the page");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the photo never loaded");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The fee changed in the editor: back to the title's default when emptied.
    b.fill("#edit-doctor input[name=fee]", "").await;
    b.click("#edit-doctor button[type=submit]").await;
    b.wait_text("¥50.00").await;
    assert_eq!(s.get_json(&format!("/api/v1/doctors/{id}"), None).await["fee"], 5000, "the chief physician's");
    b.fill("#edit-doctor input[name=fee]", "4x").await;
    b.click("#edit-doctor button[type=submit]").await;
    b.wait_text("挂号费请填写金额").await;
    b.fill("#edit-doctor input[name=fee]", "38.5").await;
    b.click("#edit-doctor button[type=submit]").await;
    b.wait_text("¥38.50（自定）").await;
    assert_eq!(s.get_json(&format!("/api/v1/doctors/{id}"), None).await["fee"], 3850);
    b.screenshot("admin-doctor-editor").await;

    // 内科 off: marked for staff (and 心内科 below it), gone from the patient API; then on again.
    b.click(&format!("button[data-toggle-department='{root}']")).await;
    b.wait_text("上级已停用").await;
    b.wait_text("已停用").await;
    assert!(s.get_json("/api/v1/departments", None).await.as_array().unwrap().is_empty());
    assert_error(s.get(&format!("/api/v1/doctors/{id}"), None).await, 404, "not_found").await;
    b.screenshot("admin-catalogue-switched-off").await;
    b.click(&format!("button[data-toggle-department='{root}']")).await;
    wait_gone(&b, "已停用").await;
    let tree = s.get_json("/api/v1/departments", None).await;
    assert_eq!(tree[0]["children"][0]["name"], "心内科", "{tree}");
    assert_eq!(s.get_json(&format!("/api/v1/doctors/{id}"), None).await["fee"], 3850);
    let _ = b.client.clone().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_are_published_from_the_console_and_staff_notices_arrive_live() {
    let s = TestServer::start(booking_opts().env("HOSPITAL_ACTORS__JOBS__TICK_MS", 200)).await;
    // A patient signed up before any text is published (signing up is itself gated after).
    let p = person(&s, 7701).await;
    let b = Browser::start().await;
    sign_in(&b, &s, "admin", "admin-demo-2026").await;
    b.click("nav a[data-page=policies]").await;
    b.wait_text("尚未发布，患者无需同意任何文本").await;
    b.wait_text("还没有任何版本").await;
    b.screenshot("admin-policies-empty").await;

    // A text of only spaces is refused by the server, and the form says what the text must be
    // in staff's words, not the server's English.
    b.fill("#publish-policy input[name=title]", "隐私政策").await;
    b.fill("#publish-policy textarea[name=body]", "   ").await;
    b.click("#publish-policy button[type=submit]").await;
    b.wait_text("正文不能为空，最多 100000 个字").await;
    let shown = b.find("#publish-policy .error").await.text().await.unwrap();
    assert!(!shown.contains("must"), "{shown}");
    b.screenshot("admin-policies-error").await;
    b.fill("#publish-policy textarea[name=body]", "我们只为挂号、缴费和就诊收集必要的信息。").await;
    b.click("#publish-policy button[type=submit]").await;
    b.wait_text("第1版").await;
    b.fill("#publish-policy input[name=title]", "隐私政策（2026年修订）").await;
    b.fill(
        "#publish-policy textarea[name=body]",
        "我们只为挂号、缴费和就诊收集必要的信息。\n新增：检查报告的保存期限。",
    )
    .await;
    b.click("#publish-policy button[type=submit]").await;
    b.wait_text("第2版").await;
    b.wait_text("已被替代").await;
    b.click("a[data-version='privacy-1']").await;
    b.find("#policy-text").await;
    b.wait_text("发布于").await;
    b.screenshot("admin-policies").await;

    // The consent gate asks patients to accept version 2.
    let r = s.get("/api/v1/appointments", Some(&p.token)).await;
    let e = assert_error(r, 403, "consent_required").await;
    assert!(e["message"].as_str().unwrap().contains("第2版"), "{e}");
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let versions = s.get_json("/api/v1/admin/policies/versions", Some(&admin)).await;
    assert_eq!(versions.as_array().unwrap().len(), 2, "{versions}");
    assert_eq!((versions[0]["version"].as_u64(), versions[1]["version"].as_u64()), (Some(2), Some(1)));

    // A staff announcement set for a moment ahead shows up as the banner, live.
    b.find("#staff-news[data-live=yes]").await;
    let at = (Utc::now() + Days::seconds(2)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let body = json!({ "title": "今晚系统升级", "body": "22:00-23:00 挂号系统升级，请提前处理待办。",
        "audience": { "kind": "staff" }, "publish_at": at });
    expect_json(s.post("/api/v1/admin/announcements", Some(&admin), body).await, 201).await;
    b.wait_text("员工公告：今晚系统升级").await;
    b.screenshot("admin-staff-announcement").await;
    b.click("#dismiss-news").await;
    let banner = b.find("#staff-news").await;
    assert_eq!(banner.text().await.unwrap(), "", "dismissed");
    let _ = b.client.clone().close().await;
}
