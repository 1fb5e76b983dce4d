//! The public catalogue (departments, doctor search, schedules), object-level access checks on
//! patients, and the operational endpoints (OpenAPI, metrics, readiness).

use serde_json::{json, Value};
use std::collections::BTreeSet;

use crate::harness::{assert_error, expect_json, ok_json, phone, Opts, RedisServer, TestServer};

fn count_departments(tree: &Value) -> usize {
    tree.as_array().map(|a| a.iter().map(|d| 1 + count_departments(&d["children"])).sum()).unwrap_or(0)
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().expect("a list").iter().map(|x| x["name"].as_str().expect("name").to_string()).collect()
}

#[tokio::test]
async fn departments_search_and_schedules() {
    let s = TestServer::start(Opts::new()).await;

    // The department tree.
    let tree = s.get_json("/api/v1/departments", None).await;
    assert!(count_departments(&tree) >= 20, "departments: {}", count_departments(&tree));
    let roots = tree.as_array().unwrap();
    let neike = roots.iter().find(|d| d["name"] == "内科").expect("root 内科");
    assert_eq!(neike["parent_id"], Value::Null);
    let children = names(&neike["children"]);
    assert!(children.contains(&"心血管内科".to_string()), "{children:?}");
    for c in neike["children"].as_array().unwrap() {
        assert_eq!(c["parent_id"], neike["id"], "children point at their parent");
    }
    let detail = s.get_json(&format!("/api/v1/departments/{}", neike["id"].as_str().unwrap()), None).await;
    assert!(!detail["doctors"].as_array().unwrap().is_empty(), "内科's doctors include its children's");

    // Doctor search: a Chinese fragment and pinyin initials both find 王建国 first.
    for q in ["建国", "wjg", "WJG"] {
        let found = s.get_json(&format!("/api/v1/doctors?q={q}"), None).await;
        let found = names(&found);
        assert_eq!(found.first().map(String::as_str), Some("王建国"), "q={q}: {found:?}");
    }
    let wang = s.get_json("/api/v1/doctors?q=建国", None).await[0].clone();
    assert_eq!(wang["department_name"], "心血管内科");
    assert!(wang["fee"].as_u64().is_some_and(|f| f > 0), "{wang}");

    // The home page's search box finds departments too.
    let hits = s.get_json("/api/v1/search?q=心内", None).await;
    let depts = names(&hits["departments"]);
    assert!(depts.contains(&"心血管内科".to_string()), "心内 finds 心血管内科: {hits}");
    let hits = s.get_json("/api/v1/search?q=骨科", None).await;
    assert_eq!(names(&hits["departments"]).first().map(String::as_str), Some("骨科"));
    assert!(!hits["doctors"].as_array().unwrap().is_empty(), "骨科's doctors match by department");

    // Popular doctors: non-empty, most popular first.
    let popular = s.get_json("/api/v1/doctors/popular", None).await;
    let popular = popular.as_array().unwrap();
    assert!(!popular.is_empty());
    let pops: Vec<u64> = popular.iter().map(|d| d["popularity"].as_u64().unwrap()).collect();
    assert!(pops.windows(2).all(|w| w[0] >= w[1]), "{pops:?}");
    assert_eq!(popular[0]["name"], "王建国");

    // The schedule: sessions over the next 14 days, each slot with `slot_id` and `remaining`.
    let id = wang["id"].as_str().unwrap();
    let sched = s.get_json(&format!("/api/v1/doctors/{id}/schedule"), None).await;
    assert_eq!(sched["doctor_id"], id);
    let sessions = sched["sessions"].as_array().unwrap();
    assert!(!sessions.is_empty(), "{sched}");
    let dates: BTreeSet<chrono::NaiveDate> =
        sessions.iter().map(|x| x["date"].as_str().unwrap().parse().expect("a date")).collect();
    let (first, last) = (*dates.first().unwrap(), *dates.last().unwrap());
    assert!((last - first).num_days() <= 13, "at most 14 days: {first}..{last}");
    assert!((last - first).num_days() >= 7, "two weeks of sessions, not one: {first}..{last}");
    let mut slot_ids = BTreeSet::new();
    for sess in sessions {
        let sid = sess["session_id"].as_str().unwrap();
        let slots = sess["slots"].as_array().unwrap();
        assert!(!slots.is_empty(), "{sess}");
        for slot in slots {
            let slot_id = slot["slot_id"].as_str().expect("slot_id");
            assert!(slot_id.starts_with(sid), "{slot_id} belongs to {sid}");
            assert!(slot_ids.insert(slot_id.to_string()), "slot ids are unique: {slot_id}");
            let remaining = slot["remaining"].as_u64().expect("remaining");
            assert!(remaining <= slot["quota"].as_u64().unwrap(), "{slot}");
        }
    }
    // A one-day window returns that day only.
    let day = s.get_json(&format!("/api/v1/doctors/{id}/schedule?from={first}&to={first}"), None).await;
    let day = day["sessions"].as_array().unwrap();
    assert!(!day.is_empty() && day.iter().all(|x| x["date"] == first.to_string()), "{day:?}");
}

#[tokio::test]
async fn every_object_read_checks_the_caller() {
    let s = TestServer::start(Opts::new()).await;
    let mine = s.login(&phone(41)).await;
    let theirs = s.login(&phone(42)).await;
    let body = json!({ "name": "李四", "id_card_no": "11010519491231002X", "relation": "parent" });
    let p = expect_json(s.post("/api/v1/me/patients", Some(&mine), body.clone()).await, 201).await;
    let path = format!("/api/v1/me/patients/{}", p["id"].as_str().unwrap());

    assert_eq!(s.get_json(&path, Some(&mine)).await["name"], "李四");
    assert_error(s.get(&path, Some(&theirs)).await, 404, "not_found").await;
    assert_error(s.delete(&path, Some(&theirs)).await, 404, "not_found").await;
    assert_eq!(s.get_json("/api/v1/me/patients", Some(&theirs)).await, json!([]));
    // Still there for its owner; the other account may add the same person as its own patient.
    assert_eq!(s.get_json("/api/v1/me/patients", Some(&mine)).await.as_array().unwrap().len(), 1);
    assert_eq!(s.post("/api/v1/me/patients", Some(&theirs), body).await.status(), 201);

    let r = s.delete(&path, Some(&mine)).await;
    assert_eq!(r.status(), 204);
    assert_error(s.get(&path, Some(&mine)).await, 404, "not_found").await;
}

#[tokio::test]
async fn openapi_metrics_and_readiness() {
    let s = TestServer::start(Opts::new()).await;
    // Some traffic for the metrics.
    s.get_json("/api/v1/departments", None).await;
    let doctor = s.get_json("/api/v1/doctors?limit=1", None).await[0]["id"].as_str().unwrap().to_string();
    s.get_json(&format!("/api/v1/doctors/{doctor}/schedule"), None).await;
    assert_eq!(s.get("/api/v1/nope", None).await.status(), 404);

    let doc = s.get_json("/api/openapi.json", None).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "an OpenAPI 3 document");
    let paths = doc["paths"].as_object().expect("paths");
    let used = [
        "/api/v1/auth/sms/send",
        "/api/v1/auth/sms/login",
        "/api/v1/auth/wechat/login",
        "/api/v1/auth/register",
        "/api/v1/auth/password/login",
        "/api/v1/auth/staff/login",
        "/api/v1/auth/logout",
        "/api/v1/auth/logout-all",
        "/api/v1/auth/sessions",
        "/api/v1/me",
        "/api/v1/me/phone",
        "/api/v1/me/patients",
        "/api/v1/me/patients/{id}",
        "/api/v1/staff/me",
        "/api/v1/admin/staff",
        "/api/v1/departments",
        "/api/v1/departments/{id}",
        "/api/v1/doctors",
        "/api/v1/doctors/popular",
        "/api/v1/doctors/{id}",
        "/api/v1/doctors/{id}/schedule",
        "/api/v1/search",
        "/sandbox/sms",
        "/sandbox/wechat/login-code",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/openapi.json",
    ];
    let missing: Vec<&str> = used.iter().copied().filter(|p| !paths.contains_key(*p)).collect();
    assert!(missing.is_empty(), "routes missing from the OpenAPI document: {missing:?}");
    assert!(paths["/api/v1/me"].get("get").is_some() && paths["/api/v1/me"].get("patch").is_some());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object(), "bearer auth is described");

    let r = s.get("/metrics", None).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let lines = |name: &str| text.lines().filter(|l| l.starts_with(name)).map(str::to_string).collect::<Vec<_>>();
    let requests = lines("http_requests_total{");
    assert!(
        requests.iter().any(|l| l.contains("route=\"/api/v1/departments\"") && l.contains("status=\"200\"")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|l| l.contains("route=\"/api/v1/doctors/{id}/schedule\"")),
        "the route pattern, not the raw path: {requests:?}"
    );
    assert!(!text.contains(&doctor), "ids never become labels");
    assert!(lines("http_request_duration_seconds").iter().any(|l| l.contains("route=")), "{text}");

    let ready = s.get_json("/readyz", None).await;
    assert_eq!(ready["store"], "ok", "{ready}");
    assert_eq!(ready["kv"], "ok", "{ready}");
    assert_eq!(ready["status"], "ready");
}

/// With Redis: ready while Redis answers; not ready (503) once it is gone, while liveness stays up.
#[tokio::test]
async fn readiness_follows_redis() {
    let redis = RedisServer::start();
    // Without the login cache: a request must reach Redis (a cached login would answer for up
    // to its lifetime, which `auth::logout_on_one_node_is_refused_on_the_other_at_once` covers).
    let opts = Opts { redis_url: Some(redis.url()), ..Opts::new() }.env("HOSPITAL_GATEWAY__AUTH__SESSION_CACHE_MS", 0);
    let s = TestServer::start(opts).await;
    let ready = s.get_json("/readyz", None).await;
    assert_eq!((ready["store"].as_str(), ready["kv"].as_str()), (Some("ok"), Some("ok")), "{ready}");
    // Sessions really live in this Redis: a login works through it.
    let token = s.login(&phone(43)).await;
    assert_eq!(s.get("/api/v1/me", Some(&token)).await.status(), 200);

    drop(redis);
    let r = s.get("/readyz", None).await;
    let body = expect_json(r, 503).await;
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["store"], "ok");
    assert_ne!(body["kv"], "ok", "{body}");
    assert_eq!(ok_json(s.get("/healthz", None).await).await["status"], "ok");
    // A request that needs Redis fails with the error shape, not a hang or a panic.
    let r = s.get("/api/v1/me", Some(&token)).await;
    assert_error(r, 503, "unavailable").await;
}
