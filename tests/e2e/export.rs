//! SET-3's export (issue 11 must-show 6) end to end against the real binary: after a real visit
//! (a diagnosis, a prescription, an exam order), the lab's result and report file, the patient
//! downloads one zip archive: JSON of every object, the report file decrypted, and a FHIR R4
//! Bundle that passes an independent validator (fhir.resources 6.4.0, run here) and holds every
//! visit, record and report of the person. A second patient's data (their own exam and report)
//! never appears in it, nor the first's in theirs; a staff token and no token are refused.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;

use crate::harness::{assert_error, expect_json, TestServer};
use crate::reports::{lab_status, opts, pdf, treated, upload, upload_target, DIAGNOSIS};

/// Every file of a zip archive by name.
fn unzip(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip archive");
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).unwrap();
        out.insert(f.name().expect("a UTF-8 name").to_string(), buf);
    }
    out
}

async fn export(s: &TestServer, token: &str) -> BTreeMap<String, Vec<u8>> {
    let r = s.get("/api/v1/me/export", Some(token)).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    unzip(&r.bytes().await.unwrap())
}

fn json_of(files: &BTreeMap<String, Vec<u8>>, name: &str) -> Value {
    serde_json::from_slice(files.get(name).unwrap_or_else(|| panic!("{name} in {:?}", files.keys()))).unwrap()
}

/// fhir.resources 6.4.0 (FHIR 4.0.1 models) on `bundle`, as documents/tests/fhir.rs runs it:
/// the venv scripts/test.sh makes, or `FHIR_TEST_PYTHON`.
fn validate(bundle: &[u8]) -> Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("FHIR_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/fhir-venv/bin/python"));
    assert!(
        python.exists(),
        "no {}: run scripts/test.sh (it installs fhir.resources) or set FHIR_TEST_PYTHON",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bundle.json");
    std::fs::write(&file, bundle).unwrap();
    let out = Command::new(python).arg(root.join("documents/tests/fhir_validate.py")).arg(&file).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    assert!(out.status.success(), "the bundle does not validate: {report}");
    assert_eq!(report["fhir_version"], "4.0.1");
    assert_eq!(report["errors"], json!([]));
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_holds_all_of_the_persons_data_and_a_valid_fhir_bundle() {
    let s = TestServer::start(opts()).await;
    let t = treated(&s, 7401).await;
    lab_status(&s, &t.exam, json!({ "status": "in_progress" })).await;
    lab_status(&s, &t.exam, json!({ "status": "completed", "abnormal": true, "summary": "右下肺炎症" })).await;
    let target = upload_target(&t.exam, "LIS-EXP-1", "胸部CT报告", "lab");
    let report = expect_json(upload(&s, &target, "application/pdf", &pdf()).await, 201).await;
    let report_id = report["id"].as_str().unwrap().to_string();

    // The second patient: an exam booked by staff and a report of their own.
    let p2_account = s.get_json("/api/v1/me", Some(&t.p2.token)).await["id"].as_str().unwrap().to_string();
    let body = json!({ "account_id": p2_account, "patient_id": t.p2.patient_id, "name": "心电图", "kind": "imaging" });
    let exam2 = expect_json(s.post("/api/v1/admin/exams", Some(&t.admin), body).await, 201).await;
    let exam2 = exam2["id"].as_str().unwrap().to_string();
    let target2 = upload_target(&exam2, "LIS-EXP-2", "心电图报告", "lab");
    let report2 = expect_json(upload(&s, &target2, "application/pdf", &pdf()).await, 201).await;
    let report2 = report2["id"].as_str().unwrap().to_string();

    // Refused without a patient's token.
    assert_error(s.get("/api/v1/me/export", None).await, 401, "unauthenticated").await;
    assert_error(s.get("/api/v1/me/export", Some(&t.other)).await, 403, "forbidden").await;
    assert_error(s.get("/api/v1/me/export", Some(&t.dr)).await, 403, "forbidden").await;

    let files = export(&s, &t.p1.token).await;
    let dir = format!("patients/{}", t.p1.patient_id);
    for name in ["README.txt", "account.json", "consents.json", "messages.json", "orders.json"] {
        assert!(files.contains_key(name), "{name} in {:?}", files.keys());
    }
    let patient = json_of(&files, &format!("{dir}/patient.json"));
    assert_eq!(patient["id"], t.p1.patient_id.as_str());
    assert_eq!(patient["id_card_no"].as_str().map(str::len), Some(18), "the ID number, decrypted: {patient}");
    let visits = json_of(&files, &format!("{dir}/visits.json"));
    assert_eq!(visits.as_array().unwrap().len(), 1);
    assert_eq!(visits[0]["id"], t.visit.as_str());
    assert_eq!(visits[0]["diagnoses"][0]["text"], DIAGNOSIS, "decrypted: {visits}");
    let appointments = json_of(&files, &format!("{dir}/appointments.json"));
    assert_eq!(appointments.as_array().unwrap().len(), 1);
    assert_eq!(json_of(&files, &format!("{dir}/exams.json"))[0]["id"], t.exam.as_str());
    let reports = json_of(&files, &format!("{dir}/reports.json"));
    assert_eq!(reports.as_array().unwrap().len(), 1, "{reports}");
    assert_eq!(reports[0]["id"], report_id.as_str());
    let file = reports[0]["file"].as_str().unwrap();
    assert_eq!(files[&format!("{dir}/{file}")], pdf(), "the report file, decrypted");
    let orders = json_of(&files, "orders.json");
    assert!(!orders.as_array().unwrap().is_empty(), "the registration order: {orders}");

    // The FHIR bundle: valid, and every visit, record and report of the person in it.
    let raw = &files[&format!("{dir}/fhir-bundle.json")];
    let verdict = validate(raw);
    let counts = &verdict["counts"];
    for kind in [
        "Patient",
        "Appointment",
        "Encounter",
        "Condition",
        "MedicationRequest",
        "ServiceRequest",
        "DiagnosticReport",
        "Observation",
        "Composition",
        "DocumentReference",
    ] {
        assert!(counts[kind].as_u64().unwrap_or(0) >= 1, "no {kind}: {counts}");
    }
    let bundle: Value = serde_json::from_slice(raw).unwrap();
    let resources: Vec<&Value> = bundle["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).collect();
    let of = |kind: &str| resources.iter().filter(|r| r["resourceType"] == kind).copied().collect::<Vec<_>>();
    let encounters: Vec<&str> = of("Encounter").iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(encounters, vec![t.visit.as_str()], "every visit, once");
    assert_eq!(of("Composition").len(), 1, "the visit's record");
    assert!(bundle.to_string().contains("受凉后发热"), "the record's text");
    assert!(of("Condition").iter().any(|c| c.to_string().contains(DIAGNOSIS)), "the diagnosis");
    let docs = of("DocumentReference");
    assert_eq!(docs.len(), 1, "every report");
    let url = docs[0]["content"][0]["attachment"]["url"].as_str().unwrap();
    assert!(url.ends_with(&format!("/api/v1/me/reports/{report_id}")), "the report's address: {url}");
    assert_eq!(of("Patient")[0]["id"], t.p1.patient_id.as_str());

    // Nothing of the second patient anywhere in the first's archive, and the other way round.
    let p2_ids = [t.p2.patient_id.as_str(), exam2.as_str(), report2.as_str(), p2_account.as_str()];
    for (name, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        for id in p2_ids {
            assert!(!text.contains(id), "{id} of the second patient in {name}");
        }
        assert!(!name.contains(&t.p2.patient_id));
    }
    let theirs = export(&s, &t.p2.token).await;
    let p1_ids = [t.p1.patient_id.as_str(), t.visit.as_str(), t.exam.as_str(), report_id.as_str()];
    for (name, bytes) in &theirs {
        let text = String::from_utf8_lossy(bytes);
        for id in p1_ids {
            assert!(!text.contains(id), "{id} of the first patient in the second's {name}");
        }
    }
    let dir2 = format!("patients/{}", t.p2.patient_id);
    validate(&theirs[&format!("{dir2}/fhir-bundle.json")]);
    assert_eq!(json_of(&theirs, &format!("{dir2}/reports.json"))[0]["id"], report2.as_str());
}
