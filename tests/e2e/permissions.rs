//! Roles and permissions end to end (ADM-2, ADM-1): every route that names a permission in the
//! OpenAPI document is called with a staff member of every built-in role and of a custom role
//! holding one permission, and each answer (403 or not) must match the role table the server
//! itself serves. Every one of those calls is in the audit log (one entry each, `denied` for the
//! refusals), and the chain verifies. Then a deactivated member's open session is refused on its
//! next request, a role change or password reset ends sessions, and a changed role applies to an
//! open session at once.

use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

use crate::harness::{assert_error, expect_json, ok_json, Opts, TestServer};

const PASSWORD: &str = "Walk-pass-2026";
const BUILTIN: &[&str] = &["admin", "doctor", "nurse", "agent", "finance", "scheduler"];

fn opts() -> Opts {
    Opts::new()
        .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_PER_SECOND", 1_000_000)
        .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_BURST", 1_000_000)
}

/// Creates a staff member with `roles` and logs them in; returns (id, token).
async fn member(s: &TestServer, admin: &str, username: &str, roles: &[&str]) -> (String, String) {
    let body = json!({ "username": username, "name": "测试员工", "password": PASSWORD, "roles": roles });
    let created = expect_json(s.post("/api/v1/admin/staff", Some(admin), body).await, 201).await;
    let token = s.staff_login(username, PASSWORD).await;
    (created["id"].as_str().unwrap().to_string(), token)
}

/// Every operation that names a permission: (method, path template, permission, whether a
/// success goes unaudited: `x-audit: refusals`, `access::permit_quiet`).
fn permitted_routes(doc: &Value) -> Vec<(Method, String, String, bool)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if let Some(p) = op["x-permission"].as_str() {
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                out.push((m, path.clone(), p.to_string(), op["x-audit"] == "refusals"));
            }
        }
    }
    out
}

/// A concrete path for a template: ids that exist nowhere, so no call changes anything.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|seg| match seg {
            "{segment}" => "0".to_string(),
            "{name}" => "zz_walk_none".to_string(),
            s if s.starts_with('{') => uuid::Uuid::new_v4().to_string(),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_with_every_role_answers_as_the_table_says_and_is_audited() {
    let s = TestServer::start(opts()).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;

    // A custom role with exactly one permission.
    let body = json!({ "label": "退款专员", "permissions": ["payments.refund"] });
    let role =
        expect_json(s.request(Method::PUT, "/api/v1/admin/roles/refunds_only", Some(&admin), Some(body)).await, 201)
            .await;
    assert_eq!(role["builtin"], false);
    let bad = json!({ "label": "x", "permissions": ["payments.everything"] });
    let e = assert_error(
        s.request(Method::PUT, "/api/v1/admin/roles/bad_one", Some(&admin), Some(bad)).await,
        422,
        "invalid_field",
    )
    .await;
    assert_eq!(e["field"], "permissions");

    // The table as the server serves it: role -> permissions (staff.self is everyone's).
    let roles = s.get_json("/api/v1/admin/roles", Some(&admin)).await;
    let all: Vec<String> = s
        .get_json("/api/v1/admin/permissions", Some(&admin))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    let mut table: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in roles.as_array().unwrap() {
        let name = r["name"].as_str().unwrap().to_string();
        let mut set: BTreeSet<String> = if name == "admin" {
            all.iter().cloned().collect()
        } else {
            r["permissions"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect()
        };
        set.insert("staff.self".into());
        table.insert(name, set);
    }
    for b in BUILTIN {
        assert!(table.contains_key(*b), "built-in role {b} in {roles}");
    }
    assert_eq!(table["refunds_only"], BTreeSet::from(["payments.refund".to_string(), "staff.self".to_string()]));

    let mut members = Vec::new();
    for r in BUILTIN.iter().copied().chain(["refunds_only"]) {
        let (id, token) = member(&s, &admin, &format!("walk_{r}"), &[r]).await;
        members.push((r, id, token));
    }

    let doc = s.get_json("/api/openapi.json", None).await;
    let routes = permitted_routes(&doc);
    assert!(routes.len() >= 25, "only {} routes name a permission", routes.len());
    // member -> (calls, refusals, quiet successes: not audited)
    let mut calls: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut mismatches = Vec::new();
    for (method, template, permission, quiet) in &routes {
        let path = concrete(template);
        let body = matches!(*method, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}));
        for (role, id, token) in &members {
            let r = s.request(method.clone(), &path, Some(token), body.clone()).await;
            let status = r.status().as_u16();
            let allowed = table[*role].contains(permission);
            let c = calls.entry(id.clone()).or_default();
            c.0 += 1;
            if *quiet && r.status().is_success() {
                c.2 += 1;
            }
            if status == 403 {
                c.1 += 1;
                let b: Value = r.json().await.unwrap();
                assert_eq!(b["error"]["code"], "forbidden", "{b}");
            }
            if allowed == (status == 403) || status == 401 {
                mismatches.push(format!("{role} {method} {template} ({permission}): {status}"));
            }
        }
    }
    assert!(mismatches.is_empty(), "answers that do not match the table:\n{}", mismatches.join("\n"));

    // The custom role can do exactly its permission: its only non-403 answers are on
    // payments.refund and staff.self routes.
    let (_, refunds_id, _) = members.iter().find(|m| m.0 == "refunds_only").unwrap();
    let allowed_routes = routes.iter().filter(|r| r.2 == "payments.refund" || r.2 == "staff.self").count();
    assert_eq!(calls[refunds_id].0 - calls[refunds_id].1, allowed_routes);

    // Every call of the walk is in the audit log: one entry per call, `denied` for each 403,
    // except the successes of quiet routes (routine console reads).
    for (role, id, _) in &members {
        let page = s.get_json(&format!("/api/v1/admin/audit?staff={id}&limit=500"), Some(&admin)).await;
        let entries = page["entries"].as_array().unwrap();
        let (n, refused, quiet) = calls[id];
        assert_eq!(entries.len(), n - quiet, "{role}: {} entries for {n} calls ({quiet} quiet)", entries.len());
        let denied = entries.iter().filter(|e| e["event"]["outcome"] == "denied").count();
        assert_eq!(denied, refused, "{role}");
        assert!(entries.iter().all(|e| e["event"]["actor"]["roles"] == json!([role])), "{role}");
    }
    // Searchable by action, exportable.
    let denied = s.get_json("/api/v1/admin/audit?action=payments.refund&outcome=denied&limit=500", Some(&admin)).await;
    assert!(!denied["entries"].as_array().unwrap().is_empty());
    let r = s.get("/api/v1/admin/audit/export?action=role.create&format=csv", Some(&admin)).await;
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("chain,seq,at,actor,roles,action"), "{csv}");
    assert!(csv.lines().any(|l| l.contains("role.create") && l.contains("refunds_only")), "{csv}");

    let dir = s.stop();
    let out = crate::harness::cli(&["audit", "verify"], dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_role_changes_and_resets_end_sessions_and_roles_apply_at_once() {
    let s = TestServer::start(opts()).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let (id, token) = member(&s, &admin, "lin_nurse", &["nurse"]).await;
    let me = s.get_json("/api/v1/staff/me", Some(&token)).await;
    assert_eq!(me["roles"], json!(["nurse"]));
    assert!(me["permissions"].as_array().unwrap().contains(&json!("queue.operate")));
    assert_error(s.get("/api/v1/admin/staff", Some(&token)).await, 403, "forbidden").await;

    // A role gains a permission: the open session may use it on its next request.
    let body = json!({ "label": "护士", "permissions": ["schedule.read", "queue.operate", "exams.write", "records.read", "staff.read"] });
    ok_json(s.request(Method::PUT, "/api/v1/admin/roles/nurse", Some(&admin), Some(body)).await).await;
    let list = s.get_json("/api/v1/admin/staff", Some(&token)).await;
    assert!(list.as_array().unwrap().iter().any(|m| m["username"] == "lin_nurse" && m["active"] == true), "{list}");
    // Built-in roles stay; admin's permissions are fixed.
    assert_error(s.delete("/api/v1/admin/roles/nurse", Some(&admin)).await, 409, "builtin_role").await;
    let body = json!({ "label": "管理员", "permissions": [] });
    assert_error(
        s.request(Method::PUT, "/api/v1/admin/roles/admin", Some(&admin), Some(body)).await,
        409,
        "admin_role_fixed",
    )
    .await;

    // A password reset ends the session; the new password works.
    let r = s
        .post(&format!("/api/v1/admin/staff/{id}/password"), Some(&admin), json!({ "password": "Newpass-2027" }))
        .await;
    assert_eq!(r.status(), 204);
    assert_error(s.get("/api/v1/staff/me", Some(&token)).await, 401, "invalid_token").await;
    let token = s.staff_login("lin_nurse", "Newpass-2027").await;

    // A role change ends the session (it held the old roles).
    let r = s.patch(&format!("/api/v1/admin/staff/{id}"), Some(&admin), json!({ "roles": ["scheduler"] })).await;
    assert_eq!(ok_json(r).await["roles"], json!(["scheduler"]));
    assert_error(s.get("/api/v1/staff/me", Some(&token)).await, 401, "invalid_token").await;
    let token = s.staff_login("lin_nurse", "Newpass-2027").await;
    assert_eq!(s.get_json("/api/v1/staff/me", Some(&token)).await["roles"], json!(["scheduler"]));

    // Deactivated: the open session is refused on its next request, and no new login.
    let r = s.patch(&format!("/api/v1/admin/staff/{id}"), Some(&admin), json!({ "active": false })).await;
    assert_eq!(ok_json(r).await["active"], false);
    assert_error(s.get("/api/v1/staff/me", Some(&token)).await, 401, "invalid_token").await;
    let r =
        s.post("/api/v1/auth/staff/login", None, json!({ "username": "lin_nurse", "password": "Newpass-2027" })).await;
    assert_eq!(r.status(), 401);
    // Nobody deactivates themselves; an unknown role is refused.
    let me = s.get_json("/api/v1/staff/me", Some(&admin)).await;
    let path = format!("/api/v1/admin/staff/{}", me["id"].as_str().unwrap());
    assert_error(s.patch(&path, Some(&admin), json!({ "active": false })).await, 409, "self_deactivation").await;
    let e = assert_error(s.patch(&path, Some(&admin), json!({ "roles": ["pilot"] })).await, 422, "invalid_field").await;
    assert_eq!(e["field"], "roles");

    // Each change is in the log with the member it concerns.
    let log =
        s.get_json(&format!("/api/v1/admin/audit?staff={}&limit=100", me["id"].as_str().unwrap()), Some(&admin)).await;
    let actions: Vec<&str> =
        log["entries"].as_array().unwrap().iter().map(|e| e["event"]["action"].as_str().unwrap()).collect();
    for a in ["staff.create", "role.update", "staff.password_reset", "staff.update", "staff.deactivate"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let deact = log["entries"].as_array().unwrap().iter().find(|e| e["event"]["action"] == "staff.deactivate").unwrap();
    assert_eq!(deact["event"]["target"]["id"], id.as_str());
}
