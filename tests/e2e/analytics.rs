//! Analytics (issue 10, ADM-3) against the real binary: bookings, a payment, a cancellation, a
//! check-in and no-shows (a closed session) move the daily counters in the booking writes
//! themselves, and the report of the day shows exactly them (totals, rates, department, doctor,
//! time slot, weekday × hour). Killed with SIGKILL straight after more bookings and restarted on
//! the same data, the server has counted each booking once: nothing lost, nothing doubled. Bad
//! ranges and formats are refused with the field named; a nurse and a patient may not read it.

use chrono::Datelike;
use serde_json::Value;

use crate::booking_flow::{book_ok, booking_opts, departments_with_doctors, person, staff, today};
use crate::harness::{assert_error, ok_json, Opts, TestServer};
use crate::visits::{booked, session_today, status_becomes};

/// The report of today (the hospital's day).
pub(crate) async fn report_today(s: &TestServer, token: &str) -> Value {
    let d = today();
    ok_json(s.get(&format!("/api/v1/admin/analytics/report?from={d}&to={d}"), Some(token)).await).await
}

fn n(v: &Value, path: &[&str]) -> i64 {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_i64().unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}

/// A row of `list` (departments, doctors, slots) whose `key` is `id`; its `field`.
fn row_n(report: &Value, list: &str, key: &str, id: &str, field: &str) -> i64 {
    report[list].as_array().unwrap().iter().find(|r| r[key] == id).map_or(0, |r| r[field].as_i64().unwrap())
}

fn opts() -> Opts {
    booking_opts()
        .env("HOSPITAL_ACTORS__JOBS__TICK_MS", 200)
        // Today's 18:00-18:30 session (`session_today`) would close by itself half an hour after
        // its end, marking the booked visits missed: from 19:00 in the hospital's zone this test
        // ran into it. It closes the session itself; the job's close waits a day.
        .env("HOSPITAL_ACTORS__JOBS__SESSION_CLOSE_GRACE_SECS", 86_400)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_changes_move_the_counters_once_across_a_kill_9() {
    let s = TestServer::start(opts()).await;
    let admin = staff(&s).await;
    let before = report_today(&s, &admin).await;

    // A doctor free this evening: a session of 5 places today.
    let mut found = None;
    'outer: for (dept, doctors) in departments_with_doctors(&s).await {
        for d in doctors {
            if let Some(made) = session_today(&s, &admin, &d).await {
                found = Some((dept.clone(), d.clone(), made));
                break 'outer;
            }
        }
    }
    let (dept, doctor, (session, slot)) = found.expect("a doctor free this evening");

    // Three book and pay, one books and cancels; the first checks in; the session is closed, so
    // the two who never came are no-shows.
    let (p1, p2, p3, p4) =
        (person(&s, 8301).await, person(&s, 8302).await, person(&s, 8303).await, person(&s, 8304).await);
    let a1 = booked(&s, &p1, &slot).await;
    let a2 = booked(&s, &p2, &slot).await;
    let a3 = booked(&s, &p3, &slot).await;
    let held = book_ok(&s, &p4, &slot).await;
    let a4 = held["appointment"]["id"].as_str().unwrap().to_string();
    ok_json(s.post_empty(&format!("/api/v1/appointments/{a4}/cancel"), Some(&p4.token)).await).await;
    ok_json(s.post_empty(&format!("/api/v1/appointments/{a1}/check-in"), Some(&p1.token)).await).await;
    crate::harness::expect_json(
        s.post_empty(&format!("/api/v1/admin/sessions/{session}/close"), Some(&admin)).await,
        202,
    )
    .await;
    for (p, a) in [(&p2, &a2), (&p3, &a3)] {
        status_becomes(&s, p, a, "missed").await;
    }

    let r = report_today(&s, &admin).await;
    let delta = |path: &[&str]| n(&r, path) - n(&before, path);
    assert_eq!(delta(&["totals", "booked"]), 4, "{r}");
    assert_eq!(delta(&["totals", "paid"]), 3, "{r}");
    assert_eq!(delta(&["totals", "cancelled"]), 1, "{r}");
    assert_eq!(delta(&["totals", "checked_in"]), 1, "{r}");
    assert_eq!(delta(&["totals", "missed"]), 2, "{r}");
    assert_eq!(delta(&["totals", "revenue"]), 3 * n(&held, &["order", "amount"]), "three fees received: {r}");
    assert_eq!(
        row_n(&r, "departments", "id", &dept, "booked") - row_n(&before, "departments", "id", &dept, "booked"),
        4
    );
    assert_eq!(
        row_n(&r, "departments", "id", &dept, "missed") - row_n(&before, "departments", "id", &dept, "missed"),
        2
    );
    assert_eq!(row_n(&r, "doctors", "id", &doctor, "booked") - row_n(&before, "doctors", "id", &doctor, "booked"), 4);
    assert_eq!(row_n(&r, "slots", "time", "18:00", "booked") - row_n(&before, "slots", "time", "18:00", "booked"), 4);
    let weekday = today().weekday().num_days_from_monday() as usize;
    let row_sum =
        |v: &Value| v["weekday_hour"][weekday].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).sum::<i64>();
    assert_eq!(row_sum(&r) - row_sum(&before), 4, "booked today, at the hour of booking: {r}");
    if n(&before, &["totals", "booked"]) == 0 {
        assert_eq!(r["rates"]["cancellation"], 0.25, "{r}");
        assert_eq!(r["rates"]["no_show"], 0.6667, "{r}");
    }
    let name = r["departments"].as_array().unwrap().iter().find(|x| x["id"] == dept.as_str()).unwrap()["name"].clone();
    assert!(name.as_str().is_some_and(|x| !x.is_empty() && !x.contains("已删除")), "named from the catalogue: {r}");

    // The exports carry the same figures.
    let d = today();
    let csv = s.get(&format!("/api/v1/admin/analytics/export?from={d}&to={d}&format=csv"), Some(&admin)).await;
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = csv.text().await.unwrap();
    assert!(csv.contains(&format!("预约数,{}\r\n", n(&r, &["totals", "booked"]))), "{csv}");
    assert!(csv.contains(&format!("爽约,{}\r\n", n(&r, &["totals", "missed"]))), "{csv}");
    let xlsx = s.get(&format!("/api/v1/admin/analytics/export?from={d}&to={d}"), Some(&admin)).await;
    assert_eq!(xlsx.status(), 200);
    assert!(xlsx.headers()["content-disposition"].to_str().unwrap().contains(".xlsx"));
    assert!(xlsx.bytes().await.unwrap().starts_with(b"PK"), "a zip (OOXML) file");

    // Bad input: each refusal names its field.
    for (query, field) in [
        ("from=2026-03-02&to=2026-03-01", "from"),
        ("from=2025-01-01&to=2026-03-01", "to"),
        ("from=2026-13-01&to=2026-03-01", "from"),
        ("from=2026-03-01&to=yesterday", "to"),
    ] {
        let e = assert_error(
            s.get(&format!("/api/v1/admin/analytics/report?{query}"), Some(&admin)).await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["field"], field, "{query}: {e}");
    }
    let e = assert_error(s.get("/api/v1/admin/analytics/export?format=pdf", Some(&admin)).await, 422, "invalid_field")
        .await;
    assert_eq!(e["field"], "format");
    // A whole year is one read per metric and day range, never the appointments.
    let year = ok_json(s.get("/api/v1/admin/analytics/report?from=2026-01-01&to=2026-12-31", Some(&admin)).await).await;
    assert_eq!(year["daily"].as_array().unwrap().len(), 365);
    // A patient and a nurse may not read it.
    assert_error(s.get("/api/v1/admin/analytics/report", Some(&p1.token)).await, 403, "forbidden").await;
    let body = serde_json::json!({ "username": "an_nurse", "name": "护士", "password": "Nurse-pass-2026", "roles": ["nurse"] });
    crate::harness::expect_json(s.post("/api/v1/admin/staff", Some(&admin), body).await, 201).await;
    let nurse = s.staff_login("an_nurse", "Nurse-pass-2026").await;
    assert_error(s.get("/api/v1/admin/analytics/report", Some(&nurse)).await, 403, "forbidden").await;

    // More bookings, then SIGKILL at once (no shutdown code runs): each answered booking was
    // counted in its own write, so after the restart the counters are exactly the bookings.
    let (_, later) =
        crate::booking_flow::create_session(&s, &admin, &doctor, crate::booking_flow::ahead(21), 30, 5, None).await;
    let mut more = Vec::new();
    for i in 0..3 {
        let p = person(&s, 8310 + i).await;
        more.push(book_ok(&s, &p, &later[0]).await["appointment"]["id"].as_str().unwrap().to_string());
    }
    let counted = report_today(&s, &admin).await;
    assert_eq!(n(&counted, &["totals", "booked"]) - n(&r, &["totals", "booked"]), 3);
    let data = s.kill_9();
    let s = TestServer::start(opts().data_dir(data)).await;
    let admin = staff(&s).await;
    let after = report_today(&s, &admin).await;
    assert_eq!(after["totals"], counted["totals"], "nothing lost or counted twice across the kill -9");
    assert_eq!(after["departments"], counted["departments"]);
    assert_eq!(after["weekday_hour"], counted["weekday_hour"]);
    // And the restarted server goes on counting: a fourth booking is one more.
    let p = person(&s, 8320).await;
    book_ok(&s, &p, &later[0]).await;
    let last = report_today(&s, &admin).await;
    assert_eq!(n(&last, &["totals", "booked"]), n(&after, &["totals", "booked"]) + 1, "{last}");
}
