//! Images in customer-service chat and feedback with screenshots (CS-1, CS-4; issue 9 must-show
//! 4) against the real binary and a real S3-compatible server (moto) as well as the default data
//! directory: a patient's image and an agent's image go both ways, live and in the history, each
//! with a fresh signed link whose bytes are the bytes sent; a renamed executable and an oversize
//! file are refused; the same link is refused once expired; another patient gets nothing of it
//! (not the conversation, not a link, not by attaching its key). Feedback: up to 4 screenshots of
//! one's own, listed for the patient and, by month, for staff holding `chat.feedback`.

use reqwest::header;
use reqwest::Response;
use serde_json::{json, Value};

use crate::chat::{agent, console, live};
use crate::harness::{assert_error, expect_json, ok_json, phone, Opts, TestServer};
use hospital_testkit::S3Server;

/// The image cap the tests configure.
const MAX_IMAGE: usize = 300_000;
/// The links' lifetime the tests configure: short, so expiry is seen.
const TTL: u64 = 5;

fn opts() -> Opts {
    Opts::new()
        .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_PER_SECOND", 1_000_000)
        .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_BURST", 1_000_000)
        .env("HOSPITAL_OBJECTS__MAX_IMAGE_BYTES", MAX_IMAGE)
        .env("HOSPITAL_OBJECTS__LINK_TTL_SECS", TTL)
}

fn s3_opts(s3: &S3Server) -> Opts {
    opts().s3(s3)
}

pub(crate) fn png(len: usize, salt: u8) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend((0..len - 8).map(|i| ((i * 31 + salt as usize) % 253) as u8));
    v
}

fn jpeg(len: usize) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
    v.extend((0..len - 10).map(|i| (i % 199) as u8));
    v
}

/// Posts raw bytes with a declared type.
pub(crate) async fn post_bytes(s: &TestServer, path: &str, token: &str, content_type: &str, body: Vec<u8>) -> Response {
    s.client()
        .post(s.url(path))
        .bearer_auth(token)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .expect("upload")
}

async fn download(s: &TestServer, url: &str) -> Response {
    s.client().get(s.url(url)).send().await.expect("download")
}

/// Downloads `url` and checks the bytes and type.
async fn same_bytes(s: &TestServer, url: &str, expected: &[u8], mime: &str) {
    let r = download(s, url).await;
    assert_eq!(r.status(), 200, "{url}");
    assert_eq!(r.headers()[header::CONTENT_TYPE], mime);
    assert!(r.bytes().await.unwrap() == expected, "the bytes sent come back");
}

fn link(v: &Value) -> String {
    v["image_link"]["url"].as_str().unwrap_or_else(|| panic!("an image link in {v}")).to_string()
}

/// The next live `chat_message` (skipping other frames) from `sender`.
async fn next_message(ws: &mut crate::realtime::Ws, sender: &str) -> Value {
    loop {
        let v = ws.next_of("chat_message").await;
        if v["payload"]["sender"]["kind"] == sender {
            return v["payload"].clone();
        }
    }
}

/// Must-show 4 on whichever backend the server runs.
async fn exercise(s: &TestServer) {
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let (_, agent_token) = agent(s, &admin, "imgagent", &["booking"], 4).await;
    let (_, other_agent) = agent(s, &admin, "otheragent", &["billing"], 4).await;
    let mut desk = console(s, &agent_token, "online").await;

    let patient = s.login(&phone(9600)).await;
    let mut ws = live(s, &patient).await;
    let c = ok_json(s.post("/api/v1/chat/conversations", Some(&patient), json!({"group": "booking"})).await).await;
    assert_eq!(c["status"], "assigned", "{c}");
    let id = c["id"].as_str().unwrap().to_string();
    let images = format!("/api/v1/chat/conversations/{id}/images");

    // Patient -> agent: stored under the conversation, sent as an image message with a link.
    let photo = png(150_000, 1);
    let m = ok_json(post_bytes(s, &images, &patient, "image/png", photo.clone()).await).await;
    assert_eq!(m["body"]["kind"], "image", "{m}");
    assert_eq!(m["body"]["content_type"], "image/png");
    let key = m["body"]["key"].as_str().unwrap().to_string();
    assert!(key.starts_with(&format!("chat/{id}/")) && key.ends_with(".png"), "{key}");
    assert!(link(&m).starts_with(&format!("/api/v1/files/{key}?exp=")), "{m}");
    // Live on both sides, each with its own link.
    let pushed = next_message(&mut ws, "patient").await;
    assert_eq!(pushed["body"]["key"], key.as_str());
    same_bytes(s, &link(&pushed), &photo, "image/png").await;
    let on_console = loop {
        let v = desk.next_of("chat_message").await;
        if v["payload"]["body"]["kind"] == "image" {
            break v["payload"].clone();
        }
    };
    same_bytes(s, &link(&on_console), &photo, "image/png").await;

    // In the history of both sides, with links made at read time.
    let page = ok_json(s.get(&format!("/api/v1/chat/conversations/{id}/messages"), Some(&patient)).await).await;
    let listed = page["messages"].as_array().unwrap().iter().find(|m| m["body"]["kind"] == "image").unwrap().clone();
    same_bytes(s, &link(&listed), &photo, "image/png").await;
    let page =
        ok_json(s.get(&format!("/api/v1/chat/agent/conversations/{id}/messages"), Some(&agent_token)).await).await;
    let agents_copy = page["messages"].as_array().unwrap().iter().find(|m| m["body"]["kind"] == "image").unwrap();
    same_bytes(s, &link(agents_copy), &photo, "image/png").await;

    // Agent -> patient.
    let scan = jpeg(20_000);
    let agent_images = format!("/api/v1/chat/agent/conversations/{id}/images");
    let sent = ok_json(post_bytes(s, &agent_images, &agent_token, "image/jpeg", scan.clone()).await).await;
    assert_eq!(
        (sent["sender"]["kind"].as_str(), sent["body"]["content_type"].as_str()),
        (Some("agent"), Some("image/jpeg"))
    );
    let got = next_message(&mut ws, "agent").await;
    same_bytes(s, &link(&got), &scan, "image/jpeg").await;

    // Renamed executables: judged by their bytes, whatever the name and declared type say.
    let mut elf = b"\x7FELF\x02\x01\x01\0".to_vec();
    elf.resize(8_000, 0);
    let e = assert_error(post_bytes(s, &images, &patient, "image/png", elf).await, 415, "unsupported_media_type").await;
    assert!(e["message"].as_str().unwrap().contains("executable"), "{e}");
    let mut pe = b"MZ\x90\0\x03\0\0\0".to_vec();
    pe.resize(8_000, 0);
    assert_error(post_bytes(s, &agent_images, &agent_token, "image/png", pe).await, 415, "unsupported_media_type")
        .await;
    assert_error(
        post_bytes(s, &images, &patient, "image/png", b"just text".to_vec()).await,
        415,
        "unsupported_media_type",
    )
    .await;
    // Over the cap (objects.max_image_bytes); exactly the cap is fine.
    let e = assert_error(
        post_bytes(s, &images, &patient, "image/png", png(MAX_IMAGE + 1, 2)).await,
        413,
        "payload_too_large",
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains(&MAX_IMAGE.to_string()), "{e}");
    ok_json(post_bytes(s, &images, &patient, "image/png", png(MAX_IMAGE, 3)).await).await;
    // Nothing refused became a message: the patient's two images and the agent's one.
    let page = ok_json(s.get(&format!("/api/v1/chat/conversations/{id}/messages"), Some(&patient)).await).await;
    let kinds: Vec<&str> =
        page["messages"].as_array().unwrap().iter().filter_map(|m| m["body"]["kind"].as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "image").count(), 3, "{page}");

    // Another patient: not the conversation, not its images, not a link by any route.
    let intruder = s.login(&phone(9601)).await;
    assert_error(s.get(&format!("/api/v1/chat/conversations/{id}/messages"), Some(&intruder)).await, 404, "not_found")
        .await;
    assert_error(post_bytes(s, &images, &intruder, "image/png", png(1_000, 4)).await, 404, "not_found").await;
    let give = json!({"text": "看看这张", "screenshots": [key]});
    let e = assert_error(s.post("/api/v1/chat/feedback", Some(&intruder), give).await, 422, "invalid_field").await;
    assert_eq!(e["field"], "screenshots");
    // Their own image's signature does not open the other key.
    let theirs =
        ok_json(s.post("/api/v1/chat/conversations", Some(&intruder), json!({"group": "booking"})).await).await;
    let mine = ok_json(
        post_bytes(
            s,
            &format!("/api/v1/chat/conversations/{}/images", theirs["id"].as_str().unwrap()),
            &intruder,
            "image/png",
            png(1_000, 5),
        )
        .await,
    )
    .await;
    let (_, query) = link(&mine).split_once('?').map(|(a, b)| (a.to_string(), b.to_string())).unwrap();
    assert_error(download(s, &format!("/api/v1/files/{key}?{query}")).await, 403, "bad_signature").await;
    // An agent who does not serve it neither sees it nor sends in it.
    assert_error(
        s.get(&format!("/api/v1/chat/agent/conversations/{id}/messages"), Some(&other_agent)).await,
        404,
        "not_found",
    )
    .await;
    assert_error(post_bytes(s, &agent_images, &other_agent, "image/png", png(1_000, 6)).await, 404, "not_found").await;

    // The same link, once expired (objects.link_ttl_secs), is refused; a new read gives a new one.
    let url = link(&listed);
    let expires = listed["image_link"]["expires"].as_i64().unwrap();
    while chrono::Utc::now().timestamp() <= expires {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let e = assert_error(download(s, &url).await, 403, "link_expired").await;
    assert!(e["message"].as_str().unwrap().contains("expired"), "{e}");
    let page = ok_json(s.get(&format!("/api/v1/chat/conversations/{id}/messages"), Some(&patient)).await).await;
    let fresh = page["messages"].as_array().unwrap().iter().find(|m| m["body"]["key"] == key.as_str()).unwrap();
    assert_ne!(link(fresh), url);
    same_bytes(s, &link(fresh), &photo, "image/png").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_images_against_an_s3_compatible_server() {
    let s3 = tokio::task::spawn_blocking(|| S3Server::start("hospital-chat")).await.unwrap();
    let s = TestServer::start(s3_opts(&s3)).await;
    exercise(&s).await;
    let dir = s.stop();
    assert!(!dir.path().join("objects").exists(), "nothing went to the local directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_images_in_the_data_directory() {
    let s = TestServer::start(opts()).await;
    exercise(&s).await;
    let dir = s.stop();
    assert!(dir.path().join("objects").join("chat").is_dir(), "stored under objects/chat/");
}

/// Feedback with screenshots (CS-4): one's own screenshots only, listed for the patient and for
/// staff with `chat.feedback` (newest first), with links; refused without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_with_screenshots_is_the_patients_own() {
    let s = TestServer::start(opts()).await;
    let shots = "/api/v1/chat/feedback/screenshots";
    let alice = s.login(&phone(9700)).await;
    let bob = s.login(&phone(9701)).await;

    let a1 = png(5_000, 7);
    let up1 = expect_json(post_bytes(&s, shots, &alice, "image/png", a1.clone()).await, 201).await;
    let up2 = expect_json(post_bytes(&s, shots, &alice, "image/jpeg", jpeg(3_000)).await, 201).await;
    let k1 = up1["key"].as_str().unwrap().to_string();
    let k2 = up2["key"].as_str().unwrap().to_string();
    assert!(k1.starts_with("chat/feedback/") && k1.ends_with(".png"), "{up1}");
    same_bytes(&s, up1["url"].as_str().unwrap(), &a1, "image/png").await;
    let mut elf = b"\x7FELF\x02\x01\x01\0".to_vec();
    elf.resize(4_000, 0);
    assert_error(post_bytes(&s, shots, &alice, "image/png", elf).await, 415, "unsupported_media_type").await;
    assert_error(post_bytes(&s, shots, &alice, "image/png", png(MAX_IMAGE + 1, 8)).await, 413, "payload_too_large")
        .await;

    let first = expect_json(
        s.post("/api/v1/chat/feedback", Some(&alice), json!({"text": "预约页面太慢", "screenshots": [k1, k2]})).await,
        201,
    )
    .await;
    assert_eq!(first["screenshots"].as_array().unwrap().len(), 2, "{first}");
    same_bytes(&s, first["screenshots"][0]["url"].as_str().unwrap(), &a1, "image/png").await;
    let second = expect_json(
        s.post("/api/v1/chat/feedback", Some(&alice), json!({"text": "<b>谢谢</b>", "contact": "13800009700"})).await,
        201,
    )
    .await;
    let too_many = json!({"text": "x", "screenshots": [k1, k1, k1, k1, k1]});
    let e = assert_error(s.post("/api/v1/chat/feedback", Some(&alice), too_many).await, 422, "invalid_field").await;
    assert_eq!(e["field"], "screenshots");

    // Bob can attach neither Alice's screenshot nor a key he made up under his own prefix.
    let e = assert_error(
        s.post("/api/v1/chat/feedback", Some(&bob), json!({"text": "我也是", "screenshots": [k1]})).await,
        422,
        "invalid_field",
    )
    .await;
    assert_eq!(e["field"], "screenshots");
    let bobs = expect_json(post_bytes(&s, shots, &bob, "image/png", png(2_000, 9)).await, 201).await;
    let bob_key = bobs["key"].as_str().unwrap();
    let made_up = format!("{}/0190aaaabbbbccccddddeeeeffff0000.png", bob_key.rsplit_once('/').unwrap().0);
    let e = assert_error(
        s.post("/api/v1/chat/feedback", Some(&bob), json!({"text": "我也是", "screenshots": [made_up]})).await,
        422,
        "invalid_field",
    )
    .await;
    assert_eq!(e["field"], "screenshots");
    expect_json(
        s.post("/api/v1/chat/feedback", Some(&bob), json!({"text": "我也是", "screenshots": [bob_key]})).await,
        201,
    )
    .await;

    // Each patient lists their own only.
    let alices = ok_json(s.get("/api/v1/chat/feedback", Some(&alice)).await).await;
    let ids: Vec<&str> = alices.as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![second["id"].as_str().unwrap(), first["id"].as_str().unwrap()], "newest first: {alices}");
    let bobs_list = ok_json(s.get("/api/v1/chat/feedback", Some(&bob)).await).await;
    assert_eq!(bobs_list.as_array().unwrap().len(), 1);
    assert!(!bobs_list.to_string().contains(&k1), "none of Alice's screenshots in Bob's list");

    // Staff with chat.feedback (agents) list the month, newest first, with links.
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let (_, agent_token) = agent(&s, &admin, "fbagent", &["booking"], 4).await;
    let month = chrono::Utc::now().format("%Y%m").to_string();
    let all = ok_json(s.get(&format!("/api/v1/staff/chat/feedback?month={month}"), Some(&agent_token)).await).await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[0]["text"], "我也是");
    assert_eq!(all[1]["text"], "<b>谢谢</b>", "stored as text");
    assert_eq!(all[2]["id"], first["id"]);
    same_bytes(&s, all[2]["screenshots"][0]["url"].as_str().unwrap(), &a1, "image/png").await;
    let e = assert_error(
        s.get("/api/v1/staff/chat/feedback?month=2026-11", Some(&agent_token)).await,
        422,
        "invalid_field",
    )
    .await;
    assert_eq!(e["field"], "month");
    // Without the permission: a doctor, a patient.
    let doc = json!({"username": "fbdoctor", "name": "李医生", "password": "doctor-pass-2026", "roles": ["doctor"]});
    ok_json(s.post("/api/v1/admin/staff", Some(&admin), doc).await).await;
    let doctor = s.staff_login("fbdoctor", "doctor-pass-2026").await;
    assert_error(s.get("/api/v1/staff/chat/feedback", Some(&doctor)).await, 403, "forbidden").await;
    assert_error(s.get("/api/v1/staff/chat/feedback", Some(&alice)).await, 403, "forbidden").await;
}

/// A real PNG (`w` x `h`, RGB, stored deflate blocks) a browser can draw: a diagonal gradient with
/// a square in the middle, so the screenshot shows it.
fn real_png(w: u32, h: u32, tint: [u8; 3]) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for b in bytes {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        let crc = crc32(&out[start..]);
        out.extend(crc.to_be_bytes());
    }
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0); // no filter
        for x in 0..w {
            let inside = x > w / 3 && x < 2 * w / 3 && y > h / 3 && y < 2 * h / 3;
            let g = ((x + y) * 255 / (w + h)) as u8;
            let px = if inside { tint } else { [g, 200 - g / 2, 255 - g] };
            raw.extend(px);
        }
    }
    // zlib: header, stored blocks of at most 65535 bytes, Adler-32.
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, b) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        z.extend((b.len() as u16).to_le_bytes());
        z.extend((!(b.len() as u16)).to_le_bytes());
        z.extend(*b);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in &raw {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend(((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// In real Chromium: a patient's image shows in the agent's console as a thumbnail loaded through
/// its signed link (and a patient's markup next to it stays text); the agent sends an image with
/// the file input and the patient receives it live, the same bytes. Screenshot: `console-images.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_shows_and_sends_images_in_chromium() {
    use crate::browser::Browser;
    let s = TestServer::start(
        Opts::new()
            .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_PER_SECOND", 1_000_000)
            .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_BURST", 1_000_000),
    )
    .await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    agent(&s, &admin, "gina", &["booking"], 5).await;
    let b = Browser::start().await;
    b.sign_in(&s.url("/console"), "gina", "agent-pass-2026").await;
    b.wait_text("我的会话").await;
    b.wait_text("已连接").await;
    b.client.execute("window.alert = () => { window.__alerted = true; }", vec![]).await.unwrap();

    let patient = s.login(&phone(9800)).await;
    ok_json(s.request(reqwest::Method::PATCH, "/api/v1/me", Some(&patient), Some(json!({"name": "李雷"}))).await).await;
    let mut ws = live(&s, &patient).await;
    let c = ok_json(
        s.post(
            "/api/v1/chat/conversations",
            Some(&patient),
            json!({"group": "booking", "text": "请帮我看看这张缴费单"}),
        )
        .await,
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let photo = real_png(240, 160, [230, 80, 60]);
    ok_json(post_bytes(&s, &format!("/api/v1/chat/conversations/{id}/images"), &patient, "image/png", photo).await)
        .await;
    let markup = "<img src=x onerror=alert(1)>";
    ok_json(
        s.post(&format!("/api/v1/chat/conversations/{id}/messages"), Some(&patient), json!({"text": markup})).await,
    )
    .await;

    b.wait_text("李*").await;
    b.click(".inbox .item").await;
    b.wait_text(markup).await;
    // The thumbnail loaded (decoded: it has its width) through its signed link.
    b.wait_js(
        // Scrolled into view as the agent would look at it: thumbnails load lazily.
        "const i = document.querySelector('.log img.thumb'); if (i) i.scrollIntoView(); return i && i.complete ? i.naturalWidth : 0",
        json!(240),
    )
    .await;
    let src =
        b.client.execute("return document.querySelector('.log img.thumb').getAttribute('src')", vec![]).await.unwrap();
    assert!(src.as_str().unwrap().starts_with("/api/v1/files/chat/"), "{src}");
    // Only the image became an element; the markup is text and never ran.
    b.wait_js("return document.querySelectorAll('.log img').length", json!(1)).await;

    // The agent sends an image from a file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("挂号流程.png");
    let sent = real_png(200, 120, [40, 160, 90]);
    std::fs::write(&path, &sent).unwrap();
    let input = b.find(".reply input[type=file]").await;
    input.send_keys(path.to_str().unwrap()).await.unwrap();
    let got = next_message(&mut ws, "agent").await;
    assert_eq!(got["body"]["content_type"], "image/png");
    same_bytes(&s, &link(&got), &sent, "image/png").await;
    b.wait_js(
        "const i = document.querySelectorAll('.log img.thumb'); if (i[1]) i[1].scrollIntoView(); return i.length === 2 && i[1].complete ? i[1].naturalWidth : 0",
        json!(200),
    )
    .await;
    let alerted = b.client.execute("return typeof window.__alerted", vec![]).await.unwrap();
    assert_eq!(alerted, "undefined");
    // The patient's context beside it: their masked name, no appointments yet.
    b.wait_text("近期预约").await;
    b.wait_text("暂无预约").await;
    let shot = b.screenshot("console-images").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    let _ = b.client.clone().close().await;
}

/// The patient's context (masked name, upcoming appointments) is for the agent serving the
/// conversation and supervisors only, and each read is in the audit log as a read of that
/// patient's data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patients_context_is_for_the_serving_agent_and_audited() {
    use crate::realtime::{open_slot, patient};
    let s = TestServer::start(opts()).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let (_, serving) = agent(&s, &admin, "ctxagent", &["booking"], 4).await;
    let (_, other) = agent(&s, &admin, "ctxother", &["booking"], 4).await;
    let _desk = console(&s, &serving, "online").await;

    let (token, patient_id) = patient(&s, &phone(9900), "11010519491231002X").await;
    ok_json(s.request(reqwest::Method::PATCH, "/api/v1/me", Some(&token), Some(json!({"name": "王小明"}))).await).await;
    let (_, slot, ..) = open_slot(&s).await;
    let booked = expect_json(
        s.post("/api/v1/appointments", Some(&token), json!({"slot_id": slot, "patient_id": patient_id})).await,
        201,
    )
    .await;
    let c = ok_json(s.post("/api/v1/chat/conversations", Some(&token), json!({"group": "booking"})).await).await;
    assert_eq!(c["agent"]["name"], "客服ctxagent", "{c}");
    let id = c["id"].as_str().unwrap();
    let path = format!("/api/v1/chat/agent/conversations/{id}/context");

    let ctx = ok_json(s.get(&path, Some(&serving)).await).await;
    assert_eq!(ctx["patient"], "王**", "masked: {ctx}");
    let upcoming = ctx["upcoming"].as_array().unwrap();
    assert_eq!(upcoming.len(), 1, "{ctx}");
    assert_eq!(upcoming[0]["appointment_id"], booked["appointment"]["id"]);
    assert_eq!(upcoming[0]["patient"], "测*");
    assert_eq!(upcoming[0]["doctor_name"], "王建国");
    assert!(!upcoming[0]["department_name"].as_str().unwrap().is_empty());
    assert!(!ctx.to_string().contains("王小明") && !ctx.to_string().contains("测试"), "no full name: {ctx}");
    // Not for an agent who does not serve it (nothing said), nor for the patient; a supervisor may.
    assert_error(s.get(&path, Some(&other)).await, 404, "not_found").await;
    assert_error(s.get(&path, Some(&token)).await, 403, "forbidden").await;
    ok_json(s.get(&path, Some(&admin)).await).await;

    // Each read is audited as concerning the patient's account.
    let page = s.get_json("/api/v1/admin/audit?action=chat.context&limit=50", Some(&admin)).await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "the serving agent's read and the supervisor's: {page}");
    for e in entries {
        assert_eq!(e["event"]["target"]["id"], id, "{e}");
        assert!(e["event"]["concerning"]["account"].is_string(), "{e}");
    }
}
