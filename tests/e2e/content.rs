//! News and health-education articles (INFO-5) against the real binary: written by staff with
//! `content.write`, sanitised on input (scripts, handlers and `javascript:` links gone, the text
//! kept), invisible to patients until published, then listed and read with no sign-in; a
//! revision names the version it read (a stale one is refused); every write is audited; patients
//! and staff without the permission are refused. And the console's page for them in Chromium.

use serde_json::{json, Value};

use crate::harness::{assert_error, expect_json, ok_json, Opts, TestServer};

const DIRTY: &str = r#"<h2 onclick="steal()">秋季流感预防</h2><script>alert('x')</script>
<p style="color:red">勤<strong>洗手</strong>，接种疫苗。</p><a href="javascript:alert(1)">点这里</a>
<img src="/static/flu.png" onerror="alert(2)">"#;

fn draft(title: &str, published: bool) -> Value {
    json!({ "kind": "health_education", "title": title, "summary": "流感季节的防护要点",
            "body_html": DIRTY, "department_id": null, "published": published })
}

fn assert_clean(body: &str) {
    for gone in ["<script", "onclick", "onerror", "style=", "javascript:", "alert"] {
        assert!(!body.contains(gone), "{gone} survived sanitising: {body}");
    }
    assert!(body.contains("勤<strong>洗手</strong>，接种疫苗。"), "the text is kept: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn articles_are_sanitised_hidden_until_published_and_read_without_sign_in() {
    let s = TestServer::start(Opts::new()).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;

    let made =
        expect_json(s.post("/api/v1/admin/articles", Some(&admin), draft("秋季流感预防", false)).await, 201).await;
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!((made["version"].as_u64(), made["published"].as_bool()), (Some(1), Some(false)), "{made}");
    assert_clean(made["body_html"].as_str().unwrap());

    // A draft is nobody's to read.
    let listed = ok_json(s.get("/api/v1/articles", None).await).await;
    assert!(!listed.to_string().contains(&id), "a draft listed: {listed}");
    assert_error(s.get(&format!("/api/v1/articles/{id}"), None).await, 404, "not_found").await;

    // Published by a revision of version 1; then readable by anyone.
    let mut revision = json!({ "version": 1, "article": draft("秋季流感预防（更新）", true) });
    let path = format!("/api/v1/admin/articles/{id}");
    let put = |body: Value| s.request(reqwest::Method::PUT, &path, Some(&admin), Some(body));
    let up = expect_json(put(revision.clone()).await, 200).await;
    assert_eq!((up["version"].as_u64(), up["published"].as_bool()), (Some(2), Some(true)), "{up}");
    assert!(up["published_at"].is_string(), "{up}");
    // Someone else's edit came first: the stale version is refused and nothing changes.
    revision["article"]["title"] = json!("被覆盖的标题");
    assert_error(put(revision.clone()).await, 409, "version_conflict").await;
    // A department that does not exist is named.
    revision["version"] = json!(2);
    revision["article"]["department_id"] = json!(uuid::Uuid::now_v7());
    let r = put(revision).await;
    assert_eq!(r.status().as_u16(), 422);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["field"], "department_id", "{err}");
    assert_eq!(ok_json(s.get(&format!("/api/v1/articles/{id}"), None).await).await["title"], "秋季流感预防（更新）");

    let listed = ok_json(s.get("/api/v1/articles?kind=health_education", None).await).await;
    let mine: Vec<&Value> = listed.as_array().unwrap().iter().filter(|a| a["id"] == id.as_str()).collect();
    assert_eq!(mine.len(), 1, "{listed}");
    assert_eq!(mine[0]["title"], "秋季流感预防（更新）");
    assert!(mine[0].get("body_html").is_none(), "a list carries no bodies: {listed}");
    assert!(!ok_json(s.get("/api/v1/articles?kind=news", None).await).await.to_string().contains(&id));
    let read = ok_json(s.get(&format!("/api/v1/articles/{id}"), None).await).await;
    assert_clean(read["body_html"].as_str().unwrap());

    // Patients and staff without `content.write` write nothing.
    let patient = crate::booking_flow::person(&s, 7701).await;
    let nurse_body =
        json!({ "username": "nurse_content", "name": "护士", "password": "Nurse-2026-pass", "roles": ["nurse"] });
    expect_json(s.post("/api/v1/admin/staff", Some(&admin), nurse_body).await, 201).await;
    let nurse = s.staff_login("nurse_content", "Nurse-2026-pass").await;
    for token in [patient.token.as_str(), nurse.as_str()] {
        assert_error(s.post("/api/v1/admin/articles", Some(token), draft("x", true)).await, 403, "forbidden").await;
        assert_error(s.delete(&path, Some(token)).await, 403, "forbidden").await;
        assert_error(s.get("/api/v1/admin/articles", Some(token)).await, 403, "forbidden").await;
    }
    assert_eq!(ok_json(s.get(&format!("/api/v1/articles/{id}"), None).await).await["title"], "秋季流感预防（更新）");

    // Deleted: gone for everyone; each write has its audit entry.
    let r = s.delete(&path, Some(&admin)).await;
    assert_eq!(r.status().as_u16(), 204);
    assert_error(s.get(&format!("/api/v1/articles/{id}"), None).await, 404, "not_found").await;
    assert_error(s.delete(&path, Some(&admin)).await, 404, "not_found").await;
    for (action, n) in [("article.create", 1), ("article.update", 1), ("article.delete", 1)] {
        let log = s.get_json(&format!("/api/v1/admin/audit?action={action}&limit=50"), Some(&admin)).await;
        let entries = log["entries"].as_array().unwrap();
        assert_eq!(entries.iter().filter(|e| e["event"]["target"]["id"] == id.as_str()).count(), n, "{action}: {log}");
    }
}

/// The console's 资讯与常见问题 page in Chromium: an empty list, an article written with a script
/// in it and published, its preview showing the sanitised body, and an FAQ entry added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_writes_publishes_and_previews_an_article() {
    let s = TestServer::start(Opts::new()).await;
    let b = crate::browser::Browser::start().await;
    b.sign_in(&s.url("/admin#content"), "admin", "admin-demo-2026").await;
    b.click("nav a[data-page=content]").await;
    b.wait_text("还没有文章").await;
    b.screenshot("admin-content-empty").await;

    b.fill("#article-form input[name=title]", "冬季心脑血管健康").await;
    b.fill("#article-form input[name=summary]", "寒冷天气注意保暖").await;
    b.fill(
        "#article-form textarea[name=body]",
        "<p>注意<strong>保暖</strong>。</p><script>document.title='x'</script>",
    )
    .await;
    b.click("#article-form input[name=published]").await;
    b.click("#article-form button[type=submit]").await;
    b.wait_text("已发布").await;
    b.wait_text("预览（患者看到的内容）").await;
    let preview = b.find("#article-preview").await;
    let srcdoc = preview.attr("srcdoc").await.unwrap().unwrap_or_default();
    assert!(srcdoc.contains("<strong>保暖</strong>") && !srcdoc.contains("script"), "{srcdoc}");
    assert_eq!(preview.attr("sandbox").await.unwrap().as_deref(), Some(""), "the preview runs no script");
    let listed = ok_json(s.get("/api/v1/articles", None).await).await;
    assert_eq!(listed[0]["title"], "冬季心脑血管健康", "{listed}");
    b.client.execute("window.scrollTo(0, 0);", vec![]).await.unwrap();
    b.screenshot("admin-content").await;

    b.fill("#new-faq input[name=question]", "如何取消预约？").await;
    b.fill("#new-faq textarea[name=answer]", "在“我的预约”中点击取消。").await;
    b.click("#new-faq button[type=submit]").await;
    b.wait_text("在“我的预约”中点击取消。").await;
    b.screenshot("admin-content-faq").await;
    let faq = ok_json(s.get("/api/v1/chat/faq?q=取消预约", None).await).await;
    assert_eq!(faq[0]["question"], "如何取消预约？", "{faq}");

    // Grouped: edited into the 预约挂号 service group; an unknown group is refused by name.
    let id = faq[0]["id"].as_str().unwrap();
    b.click(&format!("button[data-edit-faq='{id}']")).await;
    b.wait_text("编辑常见问题").await;
    b.fill("#new-faq input[name=group]", "no_such_group").await;
    b.click("#new-faq button[type=submit]").await;
    b.wait_text("没有代码为“no_such_group”的客服分组").await;
    let shown = b.find("#new-faq .error").await.text().await.unwrap();
    assert!(!shown.contains("no service group"), "{shown}");
    b.screenshot("admin-content-faq-error").await;
    b.fill("#new-faq input[name=group]", "booking").await;
    b.click("#new-faq button[type=submit]").await;
    b.wait_text("booking").await;
    let faq = ok_json(s.get("/api/v1/chat/faq?q=取消预约", None).await).await;
    assert_eq!((faq[0]["id"].as_str(), faq[0]["group"].as_str()), (Some(id), Some("booking")), "{faq}");
    let _ = b.client.clone().close().await;
}
