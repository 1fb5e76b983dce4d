//! The catalogue import (`catalog.import`): departments, doctors and weekly schedule templates
//! from an XLSX workbook or a CSV file (`domain::import` says what the sheets hold). A dry run
//! reads and checks every row and answers what each would do, writing nothing; the real run
//! checks the same way and writes only a file without errors, all of it, as one audited action.
//!
//! Rows are matched by their codes: the code -> id map is kept as back-office documents
//! (`import_department`, `import_doctor`), so the second import of a file updates (or leaves
//! alone) what the first made. A template's sessions go through the doctor's schedule actor,
//! which adds only dates and periods the doctor has no session for: sessions already there,
//! booked or changed by hand, are left as they are. Each doctor's template lines are also stored
//! as the doctor's template (replacing the one stored), so the daily run keeps applying them to
//! the configured weeks ahead (`actors::templates`).

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap};
use chrono::{Duration as Days, Utc};
use hospital_domain::audit::Target;
use hospital_domain::catalog::{Department, Doctor};
use hospital_domain::import::{check, Known, Plan, RowError, SheetKind, SheetSummary};
use hospital_domain::schedule::{ClinicSession, StoredLine, StoredTemplate, WeeklyTemplate, TEMPLATE_DOCS};
use hospital_domain::{DepartmentId, DoctorId, Permission};
use hospital_store::Docs;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::backoffice::{changed, CATALOG_CHANGED};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::files::read_capped;
use crate::http::booking::booking_error;
use crate::spreadsheet::{is_xlsx, read_csv, read_xlsx};
use crate::state::AppState;

/// Where the code -> id maps are kept (back-office documents: id = the code).
pub const DEPARTMENT_CODES: &str = "import_department";
pub const DOCTOR_CODES: &str = "import_doctor";
/// The largest file accepted (a hospital's whole catalogue is a few hundred KiB).
const MAX_FILE_BYTES: u64 = 8 << 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().merge(
        OpenApiRouter::new()
            .routes(permit(Permission::CatalogImport, routes!(import)))
            .layer(DefaultBodyLimit::disable()),
    )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Check and report only, write nothing (default false).
    pub dry_run: Option<bool>,
    /// A CSV file's sheet: `departments`, `doctors` or `templates` (told by its columns when
    /// absent). Workbooks name theirs.
    pub kind: Option<String>,
    /// How many weeks of sessions the templates make, from tomorrow: 1 to 13 (4 by default).
    pub weeks: Option<u32>,
}

/// What happens (or would happen) to one good row.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RowOutcome {
    pub sheet: String,
    pub row: u32,
    /// The row's code (a template line: the doctor's code).
    pub key: String,
    /// `create`, `update`, `unchanged` (departments, doctors) or `sessions` (a template line).
    pub action: &'static str,
    /// A template line: the sessions it makes over the weeks asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<usize>,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub create: usize,
    pub update: usize,
    pub unchanged: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub dry_run: bool,
    /// Whether anything was written (never on a dry run or with errors).
    pub written: bool,
    pub sheets: Vec<SheetSummary>,
    /// Every bad row, by sheet and row; empty for a file that can be imported.
    pub errors: Vec<RowError>,
    /// Every good row and what it does.
    pub rows: Vec<RowOutcome>,
    pub departments: Counts,
    pub doctors: Counts,
    /// Sessions the templates make over the weeks asked for (before the schedule's own check).
    pub sessions_planned: usize,
    /// After a real run: sessions made, and those left out as the doctor had one already.
    pub sessions_created: usize,
    pub sessions_skipped: usize,
    /// Doctors whose stored template the file replaces (or would, on a dry run).
    pub templates: usize,
}

/// Imports (or, with `dry_run=true`, checks) departments, doctors and schedule templates from an
/// XLSX workbook (sheets `科室`/`departments`, `医生`/`doctors`, `排班模板`/`templates`) or a CSV
/// file. A file with any bad row is refused whole (422 `import_invalid`); run it dry to see
/// every error with its sheet, row and column.
#[utoipa::path(post, path = "/api/v1/admin/import", tag = "catalogue admin", security(("bearer" = [])),
    params(ImportQuery),
    request_body(content = Vec<u8>, content_type = "text/csv",
        description = "A CSV file, or an XLSX workbook (application/vnd.openxmlformats-officedocument.spreadsheetml.sheet)"),
    responses((status = 200, body = ImportReport), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn import(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiQuery(q): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<ApiJson<ImportReport>> {
    let dry_run = q.dry_run.unwrap_or(false);
    let weeks = q.weeks.unwrap_or(4);
    if !(1..=13).contains(&weeks) {
        return Err(ApiError::OutOfRange { field: "weeks".into(), message: "1 to 13".into() });
    }
    let kind = match q.kind.as_deref() {
        None => None,
        Some(k) => Some(SheetKind::from_name(k).ok_or_else(|| ApiError::OutOfRange {
            field: "kind".into(),
            message: "departments, doctors or templates".into(),
        })?),
    };
    let bytes = read_capped(body, MAX_FILE_BYTES).await?;
    let declared = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let sheets = if is_xlsx(&bytes) {
        let b = bytes.clone();
        tokio::task::spawn_blocking(move || read_xlsx(&b))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::Unprocessable { code: "import_unreadable", message: e.to_string() })?
    } else if declared.starts_with("text/csv") || declared.starts_with("text/plain") {
        let name = kind.map_or("CSV", |k| match k {
            SheetKind::Departments => "departments",
            SheetKind::Doctors => "doctors",
            SheetKind::Templates => "templates",
        });
        vec![read_csv(&bytes, name)
            .map_err(|e| ApiError::Unprocessable { code: "import_unreadable", message: e.to_string() })?]
    } else {
        return Err(ApiError::UnsupportedContent(
            "send a CSV file (text/csv) or an XLSX workbook (application/vnd.openxmlformats-officedocument.spreadsheetml.sheet)"
                .into(),
        ));
    };

    let data = state.stores.data.as_ref();
    let dep_codes: Docs<'_, DepartmentId> = Docs::new(data, DEPARTMENT_CODES);
    let doc_codes: Docs<'_, DoctorId> = Docs::new(data, DOCTOR_CODES);
    let dep_ids: HashMap<String, DepartmentId> = ids(data, DEPARTMENT_CODES).await?;
    let doc_ids: HashMap<String, DoctorId> = ids(data, DOCTOR_CODES).await?;
    let known = Known { departments: dep_ids.keys().cloned().collect(), doctors: doc_ids.keys().cloned().collect() };
    let (plan, errors) = check(&sheets, &known);
    let built = build(&state, &plan, &dep_ids, &doc_ids, weeks);
    let (built, mut report) = match built {
        Ok(b) => {
            let report = b.report(&plan, dry_run, errors);
            (Some(b), report)
        }
        Err(extra) => {
            let mut errors = errors;
            errors.extend(extra);
            (None, empty_report(&plan, dry_run, errors))
        }
    };
    if dry_run {
        return Ok(ApiJson(report));
    }
    let Some(built) = built.filter(|_| report.errors.is_empty()) else {
        let first = &report.errors[0];
        let message = format!(
            "{} rows have errors (the first: sheet {}, row {}: {}); nothing was written: run it with dry_run=true to see them all",
            report.errors.len(),
            first.sheet,
            first.row,
            first.message
        );
        return Err(ApiError::Unprocessable { code: "import_invalid", message });
    };

    // The codes first: a second import (or a retry after a failure part-way) finds the same ids.
    for (code, id) in &built.new_departments {
        if !dep_codes.put(code, id, 0).await? {
            return Err(raced());
        }
    }
    for (code, id) in &built.new_doctors {
        if !doc_codes.put(code, id, 0).await? {
            return Err(raced());
        }
    }
    let departments: Vec<Department> =
        built.departments.iter().filter(|d| d.1 != "unchanged").map(|d| d.0.clone()).collect();
    let doctors: Vec<Doctor> = built.doctors.iter().filter(|d| d.1 != "unchanged").map(|d| d.0.clone()).collect();
    if !departments.is_empty() {
        data.put_departments(&departments).await?;
    }
    if !doctors.is_empty() {
        data.put_doctors(&doctors).await?;
    }
    if !departments.is_empty() || !doctors.is_empty() {
        changed(&state, CATALOG_CHANGED).await?;
    }
    for (doctor, sessions) in built.sessions {
        let added = state.actors.add_sessions(doctor, sessions).await.map_err(|e| booking_error(&state, e))?;
        report.sessions_created += added.created.len();
        report.sessions_skipped += added.skipped;
    }
    // The file's lines become each doctor's stored template: the import made the weeks asked
    // for, the daily run keeps extending them to the configured weeks ahead.
    let templates: Docs<'_, StoredTemplate> = Docs::new(data, TEMPLATE_DOCS);
    for (doctor, lines) in built.stored {
        let id = doctor.to_string();
        let expected = templates.get(&id).await?.map_or(0, |t| t.version);
        let t = StoredTemplate { doctor_id: doctor, lines, updated_at: Utc::now() };
        if !templates.put(&id, &t, expected).await? {
            return Err(raced());
        }
    }
    report.written = true;
    let digest = hex::encode(&Sha256::digest(&bytes)[..16]);
    audit.record(audit.event("catalog.import", Target::new("import", digest)?)?).await?;
    tracing::info!(
        by = %audit.caller.staff_id,
        departments = departments.len(),
        doctors = doctors.len(),
        sessions = report.sessions_created,
        "catalogue imported"
    );
    Ok(ApiJson(report))
}

fn raced() -> ApiError {
    ApiError::Conflict { code: "import_conflict", message: "another import ran at the same time; import again".into() }
}

/// The code -> id map of one kind (the document id is the code).
async fn ids<T: serde::de::DeserializeOwned>(
    data: &dyn hospital_store::BackOfficeStore,
    kind: &str,
) -> ApiResult<HashMap<String, T>> {
    let docs = data.docs(kind).await?;
    Ok(docs.into_iter().filter_map(|d| Some((d.id, serde_json::from_str(&d.body).ok()?))).collect())
}

/// The plan made concrete: each department and doctor as it will be stored, with what happens
/// to it, and each doctor's new sessions.
struct Built {
    departments: Vec<(Department, &'static str, u32, String)>,
    doctors: Vec<(Doctor, &'static str, u32, String)>,
    new_departments: Vec<(String, DepartmentId)>,
    new_doctors: Vec<(String, DoctorId)>,
    /// Per template row: (row, doctor code, sessions).
    lines: Vec<(u32, String, usize)>,
    sessions: BTreeMap<DoctorId, Vec<ClinicSession>>,
    /// Each doctor's template lines, to store as the doctor's template.
    stored: BTreeMap<DoctorId, Vec<StoredLine>>,
}

fn build(
    state: &AppState,
    plan: &Plan,
    dep_ids: &HashMap<String, DepartmentId>,
    doc_ids: &HashMap<String, DoctorId>,
    weeks: u32,
) -> Result<Built, Vec<RowError>> {
    let catalog = state.catalog();
    let mut b = Built {
        departments: Vec::new(),
        doctors: Vec::new(),
        new_departments: Vec::new(),
        new_doctors: Vec::new(),
        lines: Vec::new(),
        sessions: BTreeMap::new(),
        stored: BTreeMap::new(),
    };
    let mut deps = dep_ids.clone();
    for d in &plan.departments {
        if !deps.contains_key(&d.code) {
            let id = DepartmentId::new();
            deps.insert(d.code.clone(), id);
            b.new_departments.push((d.code.clone(), id));
        }
    }
    for d in &plan.departments {
        let id = deps[&d.code];
        let dep = Department {
            id,
            parent_id: d.parent_code.as_ref().and_then(|p| deps.get(p).copied()),
            name: d.name.clone(),
            description: d.description.clone(),
            location: d.location.clone(),
            sort: d.sort,
            // A spreadsheet has no on/off column: a department switched off stays off.
            enabled: catalog.department(id).is_none_or(|o| o.enabled),
        };
        let action = match catalog.department(id) {
            None => "create",
            Some(old) if *old == dep => "unchanged",
            Some(_) => "update",
        };
        b.departments.push((dep, action, d.row, d.code.clone()));
    }
    let mut docs = doc_ids.clone();
    // Each doctor's fee and department, for their template rows.
    let mut titles: HashMap<DoctorId, (hospital_domain::Fen, DepartmentId)> = HashMap::new();
    for d in &plan.doctors {
        let id = *docs.entry(d.code.clone()).or_insert_with(|| {
            let id = DoctorId::new();
            b.new_doctors.push((d.code.clone(), id));
            id
        });
        let Some(department_id) = deps.get(&d.department_code).copied() else { continue };
        let old = catalog.doctor(id);
        let doctor = Doctor {
            id,
            department_id,
            name: d.name.clone(),
            title: d.title,
            specialties: d.specialties.clone(),
            introduction: d.introduction.clone(),
            popularity: old.map_or(0, |o| o.popularity),
            // Set in the console, not the spreadsheet: kept.
            own_fee: old.and_then(|o| o.own_fee),
            photo: old.and_then(|o| o.photo.clone()),
        };
        let action = match old {
            None => "create",
            Some(o) if *o == doctor => "unchanged",
            Some(_) => "update",
        };
        titles.insert(id, (doctor.fee(), doctor.department_id));
        b.doctors.push((doctor, action, d.row, d.code.clone()));
    }
    // Sessions from tomorrow (local) for the weeks asked.
    let from = state.zone.local_date(Utc::now()) + Days::days(1);
    let to = from + Days::days(i64::from(weeks) * 7 - 1);
    let mut errors = Vec::new();
    let sheet =
        plan.sheets.iter().find(|s| s.kind == SheetKind::Templates).map_or_else(String::new, |s| s.name.clone());
    for t in &plan.templates {
        let Some(doctor) = docs.get(&t.doctor_code).copied() else { continue };
        let Some((doctor_fee, department)) =
            titles.get(&doctor).copied().or_else(|| catalog.doctor(doctor).map(|d| (d.fee(), d.department_id)))
        else {
            // A code an earlier import made for a doctor no longer in the catalogue.
            errors.push(RowError {
                sheet: sheet.clone(),
                row: t.row,
                column: Some("doctor_code".into()),
                label: Some(SheetKind::Templates.column_label("doctor_code")),
                code: "unknown_doctor",
                message: format!("doctor {} is no longer in the catalogue", t.doctor_code),
                message_zh: format!("医生编码 {} 对应的医生已不在系统中", t.doctor_code),
            });
            continue;
        };
        let template = WeeklyTemplate {
            lines: vec![t.line],
            fee: t.fee.unwrap_or(doctor_fee),
            release_days_before: t.release_days_before,
            release_time: t.release_time,
        };
        match template.sessions(doctor, department, from, to, state.zone) {
            Ok(made) => {
                b.lines.push((t.row, t.doctor_code.clone(), made.len()));
                b.sessions.entry(doctor).or_default().extend(made);
                let line = StoredLine::new(t.line, t.fee, t.release_days_before, t.release_time);
                b.stored.entry(doctor).or_default().push(line);
            }
            // The rows' own checks leave only the segments to fail here (a session's times cut
            // into segments that do not fit).
            Err(e) => errors.push(RowError {
                sheet: sheet.clone(),
                row: t.row,
                column: None,
                label: None,
                code: "invalid",
                message: e.reason,
                message_zh: "号源时段有误：开始时间、结束时间和每段分钟切不出按时间顺序、互不重叠的时段".into(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(b)
    } else {
        Err(errors)
    }
}

fn sheet_name(plan: &Plan, kind: SheetKind) -> String {
    plan.sheets.iter().find(|s| s.kind == kind).map_or_else(String::new, |s| s.name.clone())
}

fn empty_report(plan: &Plan, dry_run: bool, mut errors: Vec<RowError>) -> ImportReport {
    errors.sort_by_key(|e| (plan.sheets.iter().position(|s| s.name == e.sheet), e.row));
    ImportReport {
        dry_run,
        written: false,
        sheets: plan.sheets.clone(),
        errors,
        rows: Vec::new(),
        departments: Counts::default(),
        doctors: Counts::default(),
        sessions_planned: 0,
        sessions_created: 0,
        sessions_skipped: 0,
        templates: 0,
    }
}

impl Built {
    fn report(&self, plan: &Plan, dry_run: bool, errors: Vec<RowError>) -> ImportReport {
        let mut r = empty_report(plan, dry_run, errors);
        let count = |c: &mut Counts, action: &str| match action {
            "create" => c.create += 1,
            "update" => c.update += 1,
            _ => c.unchanged += 1,
        };
        let sheet = sheet_name(plan, SheetKind::Departments);
        for (_, action, row, code) in &self.departments {
            count(&mut r.departments, action);
            r.rows.push(RowOutcome { sheet: sheet.clone(), row: *row, key: code.clone(), action, sessions: None });
        }
        let sheet = sheet_name(plan, SheetKind::Doctors);
        for (_, action, row, code) in &self.doctors {
            count(&mut r.doctors, action);
            r.rows.push(RowOutcome { sheet: sheet.clone(), row: *row, key: code.clone(), action, sessions: None });
        }
        r.templates = self.stored.len();
        let sheet = sheet_name(plan, SheetKind::Templates);
        for (row, code, n) in &self.lines {
            r.sessions_planned += n;
            let o = RowOutcome {
                sheet: sheet.clone(),
                row: *row,
                key: code.clone(),
                action: "sessions",
                sessions: Some(*n),
            };
            r.rows.push(o);
        }
        r
    }
}
