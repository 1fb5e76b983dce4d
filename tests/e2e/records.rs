//! Issue 11 must-show 7: every route of visits, records, notes, exams and report files, tried
//! with another patient's token and with a doctor of another department: refused, nothing
//! leaked, nothing changed. Table-driven, so a route added to the table is walked the same way.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{ok_json, TestServer};
use crate::reports::{opts, pdf, treated, upload, upload_target, DIAGNOSIS};

const NOTE: &str = "患者留言：昨晚起出现皮疹，是否与阿莫西林有关？";
const TITLE: &str = "血常规报告REC7";

/// One request: method, path, JSON body.
type Call = (Method, String, Option<Value>);

async fn send(s: &TestServer, token: &str, (method, path, body): &Call) -> (u16, String) {
    let r = s.request(method.clone(), path, Some(token), body.clone()).await;
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn every_records_route_refuses_another_patient_and_another_departments_doctor() {
    let s = TestServer::start(opts()).await;
    let t = treated(&s, 9501).await;
    let (visit, exam, p1) = (&t.visit, &t.exam, &t.p1.patient_id);

    // Something behind every id: a note for the doctor, a report file, a share link.
    let notes = ok_json(
        s.request(
            Method::POST,
            &format!("/api/v1/me/visits/{visit}/notes"),
            Some(&t.p1.token),
            Some(json!({ "text": NOTE })),
        )
        .await,
    )
    .await;
    assert_eq!(notes[0]["text"], NOTE, "{notes}");
    let uploaded =
        ok_json(upload(&s, &upload_target(exam, "LAB-REC7-1", TITLE, "lab"), "application/pdf", &pdf()).await).await;
    let report = uploaded["id"].as_str().unwrap().to_string();
    let share_body = json!({ "expires_in_secs": 3600 });
    let share =
        ok_json(s.post(&format!("/api/v1/me/reports/{report}/shares"), Some(&t.p1.token), share_body.clone()).await)
            .await;
    let share = share["share"]["id"].as_str().unwrap().to_string();

    // The patient's routes, as another patient: 404 (as if nothing existed), nothing leaked.
    let detail = ok_json(s.get(&format!("/api/v1/me/visits/{visit}"), Some(&t.p1.token)).await).await;
    let appointment = detail["visit"]["appointment_id"].as_str().expect("the visit's appointment").to_string();
    let patient_routes: Vec<Call> = vec![
        (Method::POST, format!("/api/v1/me/appointments/{appointment}/notes"), Some(json!({ "text": "别人的留言" }))),
        (Method::GET, format!("/api/v1/me/patients/{p1}/visits"), None),
        (Method::GET, format!("/api/v1/me/patients/{p1}/visits?q=肺炎"), None),
        (Method::GET, format!("/api/v1/me/visits/{visit}"), None),
        (Method::GET, format!("/api/v1/me/visits/{visit}/record.pdf"), None),
        (Method::POST, format!("/api/v1/me/visits/{visit}/notes"), Some(json!({ "text": "别人的留言" }))),
        (Method::GET, format!("/api/v1/me/patients/{p1}/reports"), None),
        (Method::GET, format!("/api/v1/me/reports/{report}"), None),
        (Method::GET, format!("/api/v1/me/reports/{report}/shares"), None),
        (Method::POST, format!("/api/v1/me/reports/{report}/shares"), Some(share_body.clone())),
        (Method::DELETE, format!("/api/v1/me/shares/{share}"), None),
        (Method::GET, format!("/api/v1/me/exams/{exam}"), None),
    ];
    let secrets = [DIAGNOSIS, NOTE, TITLE, "阿莫西林", "发热"];
    let leaked = |body: &str| secrets.iter().find(|x| body.contains(*x)).copied();
    for call in &patient_routes {
        let (status, body) = send(&s, &t.p2.token, call).await;
        assert_eq!(status, 404, "another patient on {} {}: {body}", call.0, call.1);
        assert_eq!(leaked(&body), None, "{} {} leaked: {body}", call.0, call.1);
        // A doctor's token is no patient's.
        let (status, body) = send(&s, &t.other, call).await;
        assert_eq!(status, 403, "a doctor on {} {}: {body}", call.0, call.1);
        assert_eq!(leaked(&body), None);
    }
    // Lists of the other patient's own stay empty of p1's data.
    for path in [
        format!("/api/v1/me/patients/{}/visits", t.p2.patient_id),
        format!("/api/v1/me/patients/{}/reports", t.p2.patient_id),
        "/api/v1/me/exams".to_string(),
        "/api/v1/me/access-history".to_string(),
    ] {
        let body = ok_json(s.get(&path, Some(&t.p2.token)).await).await.to_string();
        assert_eq!(leaked(&body), None, "{path} leaked: {body}");
        assert!(
            !body.contains(visit.as_str()) && !body.contains(exam.as_str()) && !body.contains(&report),
            "{path}: {body}"
        );
    }
    let export = s.get("/api/v1/me/export", Some(&t.p2.token)).await;
    assert_eq!(export.status().as_u16(), 200);
    let zip = export.bytes().await.unwrap();
    assert!(!zip.windows(visit.len()).any(|w| w == visit.as_bytes()), "p1's visit id in p2's export");

    // The doctor's routes, as a doctor of another department: 404; as a patient: 403.
    let doctor_routes: Vec<Call> = vec![
        (Method::GET, format!("/api/v1/doctor/visits/{visit}"), None),
        (Method::GET, format!("/api/v1/doctor/visits/{visit}/notes"), None),
        (Method::POST, format!("/api/v1/doctor/visits/{visit}/start"), None),
        (Method::PUT, format!("/api/v1/doctor/visits/{visit}"), Some(json!({ "chief_complaint": "改写" }))),
        (Method::POST, format!("/api/v1/doctor/visits/{visit}/finish"), None),
        (Method::GET, format!("/api/v1/doctor/reports/{report}"), None),
        (Method::GET, format!("/api/v1/doctor/appointments/{appointment}/notes"), None),
    ];
    for call in &doctor_routes {
        let (status, body) = send(&s, &t.other, call).await;
        assert_eq!(status, 404, "another department's doctor on {} {}: {body}", call.0, call.1);
        assert_eq!(leaked(&body), None, "{} {} leaked: {body}", call.0, call.1);
        for patient in [&t.p1.token, &t.p2.token] {
            let (status, body) = send(&s, patient, call).await;
            assert_eq!(status, 403, "a patient on {} {}: {body}", call.0, call.1);
            assert_eq!(leaked(&body), None);
        }
    }

    // Nothing changed: one note, the share still active, the visit as the doctor wrote it; the
    // treating doctor reads the note (audited, in the patient's access history).
    let notes = ok_json(s.get(&format!("/api/v1/doctor/visits/{visit}/notes"), Some(&t.dr)).await).await;
    assert_eq!(notes["notes"].as_array().map(Vec::len), Some(1), "{notes}");
    assert_eq!(notes["notes"][0]["text"], NOTE);
    let shares = ok_json(s.get(&format!("/api/v1/me/reports/{report}/shares"), Some(&t.p1.token)).await).await;
    assert_eq!(shares[0]["state"], "active", "{shares}");
    let detail = ok_json(s.get(&format!("/api/v1/me/visits/{visit}"), Some(&t.p1.token)).await).await;
    assert_eq!(detail["visit"]["chief_complaint"], "发热、咳嗽3天");
    assert_eq!(detail["visit"]["status"], "finished");
    let history = ok_json(s.get("/api/v1/me/access-history", Some(&t.p1.token)).await).await;
    assert!(history.to_string().contains("note.read"), "the note's read is in the access history: {history}");
}
