//! The catalogue edited by staff (INFO-1, INFO-3; `catalog.write`): the hospital's information,
//! departments (tree and order) and doctors, created and changed. Each write goes to the store,
//! then every node rebuilds its catalogue index (`backoffice::changed`), so the patient API shows
//! the change on the next request; each is audited with what it changed.
//!
//! A department is switched off and on with `enabled` (patients stop seeing it, its sub-tree and
//! their doctors at once; bookings already made stay); staff see the whole catalogue, switched-off
//! parts marked, at `GET /api/v1/admin/catalogue`. A doctor's photo is uploaded as bytes (JPEG,
//! PNG or WebP judged by content, at most `PHOTO_MAX_BYTES`) into object storage under
//! `doctors/<id>/`; the doctor's own fee (`own_fee`) overrides the title's default for the
//! sessions made after it.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use hospital_domain::audit::Target;
use hospital_domain::catalog::{Department, Doctor, DoctorTitle, Hospital};
use hospital_domain::{DepartmentId, DoctorId, Permission, ValidationError};
use hospital_objects::{ContentType, Policy};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::backoffice::{changed, CATALOG_CHANGED};
use crate::catalog_index::DepartmentNode;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::files::read_capped;
use crate::http::catalog::{view, DoctorView};
use crate::state::AppState;
use crate::validate::Money;

/// The largest doctor's photo accepted (or `objects.max_image_bytes` if smaller): a portrait
/// for a phone screen needs far less.
pub const PHOTO_MAX_BYTES: u64 = 2 << 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(permit(Permission::CatalogWrite, routes!(put_hospital)))
        .routes(permit(Permission::CatalogWrite, routes!(staff_catalogue)))
        .routes(permit(Permission::CatalogWrite, routes!(create_department)))
        .routes(permit(Permission::CatalogWrite, routes!(update_department)))
        .routes(permit(Permission::CatalogWrite, routes!(create_doctor)))
        .routes(permit(Permission::CatalogWrite, routes!(update_doctor)))
        // Photos are capped by their policy (`read_capped`), not the router's small JSON limit.
        .merge(
            OpenApiRouter::new()
                .routes(permit(Permission::CatalogWrite, routes!(put_photo, delete_photo)))
                .layer(DefaultBodyLimit::disable()),
        )
}

/// What staff see of the catalogue: everything, switched off or not.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaffCatalogue {
    /// The whole department tree (`enabled: false` on those switched off).
    pub departments: Vec<DepartmentNode>,
    /// Departments patients do not see: switched off, or below one that is.
    pub closed: Vec<DepartmentId>,
    /// Every doctor, with the fee their new sessions get and their photo's URL.
    pub doctors: Vec<DoctorView>,
}

/// The whole catalogue as staff edit it: switched-off departments (marked) and their doctors too.
#[utoipa::path(get, path = "/api/v1/admin/catalogue", tag = "catalogue admin", security(("bearer" = [])),
    responses((status = 200, body = StaffCatalogue), (status = 403, body = ErrorBody)))]
async fn staff_catalogue(State(state): State<AppState>) -> ApiJson<StaffCatalogue> {
    let idx = state.catalog();
    let mut doctors: Vec<&Doctor> = idx.doctors.iter().collect();
    doctors.sort_by(|a, b| a.name.cmp(&b.name));
    ApiJson(StaffCatalogue {
        departments: idx.tree(),
        closed: idx.departments.iter().filter(|d| !idx.open(d.id)).map(|d| d.id).collect(),
        doctors: doctors.into_iter().map(|d| view(&idx, d)).collect(),
    })
}

/// 1 to `max` printable characters, trimmed.
fn text(field: &'static str, s: &str, max: usize, required: bool) -> Result<String, ValidationError> {
    let s = s.trim();
    if (required && s.is_empty()) || s.chars().count() > max || s.chars().any(|c| c.is_control() && c != '\n') {
        let what =
            if required { format!("1 to {max} printable characters") } else { format!("at most {max} characters") };
        return Err(ValidationError::new(field, what));
    }
    Ok(s.to_string())
}

/// Sets the hospital's information (introduction, contacts, hours, map point, buildings).
#[utoipa::path(put, path = "/api/v1/admin/hospital", tag = "catalogue admin", security(("bearer" = [])),
    request_body = Hospital,
    responses((status = 200, body = Hospital), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_hospital(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiJson(mut h): ApiJson<Hospital>,
) -> ApiResult<ApiJson<Hospital>> {
    h.name = text("name", &h.name, 64, true)?;
    h.introduction = text("introduction", &h.introduction, 4000, false)?;
    if !(-90.0..=90.0).contains(&h.latitude) || !(-180.0..=180.0).contains(&h.longitude) {
        return Err(
            ValidationError::new("latitude", "a point on the map (latitude -90..90, longitude -180..180)").into()
        );
    }
    state.stores.data.put_hospital(&h).await?;
    audit.record(audit.event("hospital.update", Target::new("hospital", "main")?)?).await?;
    changed(&state, CATALOG_CHANGED).await?;
    Ok(ApiJson(h))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentInput {
    pub parent_id: Option<DepartmentId>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    /// Order among its siblings (smaller first).
    pub sort: Option<i32>,
    /// false switches the department (and those below it) off for patients: it leaves the
    /// patient API at once and takes no new booking (409 `department_closed`); bookings already
    /// made stay. true switches it back on.
    pub enabled: Option<bool>,
}

/// Checks the parent exists and is not the department itself or one below it.
fn check_parent(state: &AppState, id: DepartmentId, parent: Option<DepartmentId>) -> Result<(), ValidationError> {
    let Some(mut p) = parent else { return Ok(()) };
    let catalog = state.catalog();
    for _ in 0..64 {
        if p == id {
            return Err(ValidationError::new("parent_id", "a department cannot be below itself"));
        }
        match catalog.department(p) {
            Some(d) => match d.parent_id {
                Some(next) => p = next,
                None => return Ok(()),
            },
            None => return Err(ValidationError::new("parent_id", "no such department")),
        }
    }
    Err(ValidationError::new("parent_id", "the tree is too deep"))
}

fn apply_department(d: &mut Department, req: DepartmentInput) -> Result<(), ValidationError> {
    if req.parent_id.is_some() {
        d.parent_id = req.parent_id;
    }
    if let Some(n) = req.name {
        d.name = text("name", &n, 32, true)?;
    }
    if let Some(x) = req.description {
        d.description = text("description", &x, 2000, false)?;
    }
    if let Some(x) = req.location {
        d.location = text("location", &x, 64, false)?;
    }
    if let Some(s) = req.sort {
        d.sort = s;
    }
    if let Some(on) = req.enabled {
        d.enabled = on;
    }
    Ok(())
}

/// Creates a department (a root, or under `parent_id`).
#[utoipa::path(post, path = "/api/v1/admin/departments", tag = "catalogue admin", security(("bearer" = [])),
    request_body = DepartmentInput,
    responses((status = 201, body = Department), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_department(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiJson(req): ApiJson<DepartmentInput>,
) -> ApiResult<(StatusCode, ApiJson<Department>)> {
    if req.name.is_none() {
        return Err(ValidationError::new("name", "1 to 32 printable characters").into());
    }
    let id = DepartmentId::new();
    let mut d = Department {
        id,
        parent_id: None,
        name: String::new(),
        description: String::new(),
        location: String::new(),
        sort: 0,
        enabled: true,
    };
    apply_department(&mut d, req)?;
    check_parent(&state, id, d.parent_id)?;
    state.stores.data.put_departments(std::slice::from_ref(&d)).await?;
    audit.record(audit.event("department.create", Target::new("department", id)?)?).await?;
    changed(&state, CATALOG_CHANGED).await?;
    Ok((StatusCode::CREATED, ApiJson(d)))
}

/// Changes a department: name, place in the tree, order, description, location.
#[utoipa::path(patch, path = "/api/v1/admin/departments/{id}", tag = "catalogue admin", security(("bearer" = [])),
    params(("id" = DepartmentId, Path)), request_body = DepartmentInput,
    responses((status = 200, body = Department), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_department(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<DepartmentId>,
    ApiJson(req): ApiJson<DepartmentInput>,
) -> ApiResult<ApiJson<Department>> {
    let mut d = state.catalog().department(id).cloned().ok_or_else(|| ApiError::not_found("department"))?;
    let was_on = d.enabled;
    apply_department(&mut d, req)?;
    check_parent(&state, id, d.parent_id)?;
    state.stores.data.put_departments(std::slice::from_ref(&d)).await?;
    // Switching off or on is its own action in the log: it is the one patients feel.
    let action = match (was_on, d.enabled) {
        (true, false) => "department.disable",
        (false, true) => "department.enable",
        _ => "department.update",
    };
    audit.record(audit.event(action, Target::new("department", id)?)?).await?;
    changed(&state, CATALOG_CHANGED).await?;
    Ok(ApiJson(d))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoctorInput {
    pub department_id: Option<DepartmentId>,
    pub name: Option<String>,
    pub title: Option<DoctorTitle>,
    pub specialties: Option<Vec<String>>,
    pub introduction: Option<String>,
    /// Creation only: the hospital's own code for the doctor (工号), by which a template
    /// spreadsheet's rows name them (`POST /api/v1/admin/import`); unique.
    pub code: Option<String>,
    /// The doctor's own registration fee in fen, overriding the title's default for sessions
    /// made from now on; `null` goes back to the title's default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>)]
    pub own_fee: Option<Option<Money>>,
}

/// A field that may be given as `null` (Some(None)) or left out (None).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn apply_doctor(state: &AppState, d: &mut Doctor, req: DoctorInput) -> Result<(), ValidationError> {
    if let Some(dep) = req.department_id {
        if state.catalog().department(dep).is_none() {
            return Err(ValidationError::new("department_id", "no such department"));
        }
        d.department_id = dep;
    }
    if let Some(n) = req.name {
        d.name = text("name", &n, 32, true)?;
    }
    if let Some(t) = req.title {
        d.title = t;
    }
    if let Some(s) = req.specialties {
        if s.len() > 20 {
            return Err(ValidationError::new("specialties", "at most 20"));
        }
        d.specialties = s.iter().map(|x| text("specialties", x, 32, true)).collect::<Result<_, _>>()?;
    }
    if let Some(x) = req.introduction {
        d.introduction = text("introduction", &x, 4000, false)?;
    }
    if req.code.is_some() {
        return Err(ValidationError::new("code", "a doctor's code is given when the doctor is created"));
    }
    if let Some(fee) = req.own_fee {
        d.own_fee = fee.map(Money::fen);
    }
    Ok(())
}

/// Creates a doctor in a department.
#[utoipa::path(post, path = "/api/v1/admin/doctors", tag = "catalogue admin", security(("bearer" = [])),
    request_body = DoctorInput,
    responses((status = 201, body = Doctor), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_doctor(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiJson(mut req): ApiJson<DoctorInput>,
) -> ApiResult<(StatusCode, ApiJson<Doctor>)> {
    let (Some(department_id), Some(title)) = (req.department_id, req.title) else {
        return Err(ValidationError::new("department_id", "give department_id, name and title").into());
    };
    if req.name.is_none() {
        return Err(ValidationError::new("name", "1 to 32 printable characters").into());
    }
    let id = DoctorId::new();
    // The code first (as the import does): taken, nothing is written.
    if let Some(code) = req.code.take() {
        let code = text("code", &code, 32, true)?;
        let codes: hospital_store::backoffice::Docs<'_, DoctorId> =
            hospital_store::backoffice::Docs::new(state.stores.data.as_ref(), crate::http::import::DOCTOR_CODES);
        if !codes.put(&code, &id, 0).await? {
            return Err(ValidationError::new("code", "another doctor has this code").into());
        }
    }
    let mut d = Doctor {
        id,
        department_id,
        name: String::new(),
        title,
        specialties: Vec::new(),
        introduction: String::new(),
        popularity: 0,
        own_fee: None,
        photo: None,
    };
    apply_doctor(&state, &mut d, req)?;
    state.stores.data.put_doctors(std::slice::from_ref(&d)).await?;
    audit.record(audit.event("doctor.create", Target::new("doctor", id)?)?).await?;
    changed(&state, CATALOG_CHANGED).await?;
    Ok((StatusCode::CREATED, ApiJson(d)))
}

/// Changes a doctor: department, name, title, specialties, introduction, own fee.
#[utoipa::path(patch, path = "/api/v1/admin/doctors/{id}", tag = "catalogue admin", security(("bearer" = [])),
    params(("id" = DoctorId, Path)), request_body = DoctorInput,
    responses((status = 200, body = Doctor), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_doctor(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<DoctorId>,
    ApiJson(req): ApiJson<DoctorInput>,
) -> ApiResult<ApiJson<Doctor>> {
    let mut d = state.catalog().doctor(id).cloned().ok_or_else(|| ApiError::not_found("doctor"))?;
    apply_doctor(&state, &mut d, req)?;
    state.stores.data.put_doctors(std::slice::from_ref(&d)).await?;
    audit.record(audit.event("doctor.update", Target::new("doctor", id)?)?).await?;
    changed(&state, CATALOG_CHANGED).await?;
    Ok(ApiJson(d))
}

/// Where a doctor's photos are stored.
fn photo_prefix(id: DoctorId) -> String {
    format!("doctors/{id}")
}

/// Puts `d` (with a changed photo) in the store and tells every node; on failure the new
/// object, if any, is deleted again rather than left unreferenced. The old one is deleted after.
async fn save_photo(state: &AppState, d: &Doctor, old: Option<&str>, new: Option<&str>) -> ApiResult<()> {
    if let Err(e) = state.stores.data.put_doctors(std::slice::from_ref(d)).await {
        if let Some(key) = new {
            if let Err(x) = state.files.objects.delete(key).await {
                tracing::warn!(key, error = %x, "an unused doctor photo was not deleted");
            }
        }
        return Err(e.into());
    }
    changed(state, CATALOG_CHANGED).await?;
    if let Some(key) = old.filter(|k| Some(*k) != new) {
        // Old URLs answer 404 from now on; a failed delete leaves an unreachable file.
        if let Err(e) = state.files.objects.delete(key).await {
            tracing::warn!(key, error = %e, "a replaced doctor photo was not deleted");
        }
    }
    Ok(())
}

/// Uploads or replaces a doctor's photo. The body is the image's bytes: JPEG, PNG or WebP judged
/// by content (magic bytes; a declared `Content-Type` must agree), at most 2 MiB (less if
/// `objects.max_image_bytes` is smaller). Answers the
/// doctor as patients see them, with the new `photo_url`.
#[utoipa::path(put, path = "/api/v1/admin/doctors/{id}/photo", tag = "catalogue admin", security(("bearer" = [])),
    params(("id" = DoctorId, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The photo's bytes"),
    responses((status = 200, body = DoctorView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "Larger than 2 MiB"),
        (status = 415, body = ErrorBody, description = "Not a JPEG, PNG or WebP image, whatever its declared type")))]
async fn put_photo(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<DoctorId>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<ApiJson<DoctorView>> {
    let mut d = state.catalog().doctor(id).cloned().ok_or_else(|| ApiError::not_found("doctor"))?;
    let max_bytes = PHOTO_MAX_BYTES.min(state.files.image_policy.max_bytes);
    let policy = Policy { accepted: vec![ContentType::Jpeg, ContentType::Png, ContentType::Webp], max_bytes };
    let bytes = read_capped(body, policy.max_bytes).await?;
    let declared = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let stored = state.files.put(&photo_prefix(id), bytes, declared, &policy).await?;
    let old = d.photo.replace(stored.key.clone());
    save_photo(&state, &d, old.as_deref(), Some(&stored.key)).await?;
    audit.record(audit.event("doctor.photo", Target::new("doctor", id)?)?).await?;
    Ok(ApiJson(view(&state.catalog(), &d)))
}

/// Removes a doctor's photo (patients then see none).
#[utoipa::path(delete, path = "/api/v1/admin/doctors/{id}/photo", tag = "catalogue admin", security(("bearer" = [])),
    params(("id" = DoctorId, Path)),
    responses((status = 200, body = DoctorView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_photo(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<DoctorId>,
) -> ApiResult<ApiJson<DoctorView>> {
    let mut d = state.catalog().doctor(id).cloned().ok_or_else(|| ApiError::not_found("doctor"))?;
    let Some(old) = d.photo.take() else { return Err(ApiError::not_found("photo")) };
    save_photo(&state, &d, Some(&old), None).await?;
    audit.record(audit.event("doctor.photo_remove", Target::new("doctor", id)?)?).await?;
    Ok(ApiJson(view(&state.catalog(), &d)))
}
