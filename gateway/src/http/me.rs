//! The caller's own account (AUTH-6): profile, phone binding, and 就诊人 (patients). Every read
//! goes through the caller's account id, so one account can never see another's patients.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use hospital_actors::ProfileChange;
use hospital_domain::account::{parse_name, Relation};
use hospital_domain::{Gender, IdCardNo, PatientId, Phone, ValidationError};
use hospital_store::{Account, PatientCaps, PatientRecord};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::codes;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AccountCaller, ApiJson, ApiPath};
use crate::http::views::{AccountView, PatientView};
use crate::real_name;
use crate::state::AppState;
use crate::validate::Day;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_me, update_me))
        .routes(routes!(bind_phone))
        .routes(routes!(list_patients, add_patient))
        .routes(routes!(get_patient, remove_patient))
}

async fn load(state: &AppState, caller: &AccountCaller) -> ApiResult<Account> {
    // A token outliving its account (deleted) is as good as revoked.
    state.stores.data.account(caller.account_id).await?.ok_or(ApiError::InvalidToken)
}

/// The caller's account and profile.
#[utoipa::path(get, path = "/api/v1/me", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = AccountView), (status = 401, body = ErrorBody)))]
async fn get_me(State(state): State<AppState>, caller: AccountCaller) -> ApiResult<ApiJson<AccountView>> {
    Ok(ApiJson(AccountView::from(&load(&state, &caller).await?)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfile {
    pub name: Option<String>,
    pub gender: Option<Gender>,
    pub birth_date: Option<Day>,
}

/// Edits the profile; fields left out stay as they are.
#[utoipa::path(patch, path = "/api/v1/me", tag = "me", security(("bearer" = [])), request_body = UpdateProfile,
    responses((status = 200, body = AccountView), (status = 422, body = ErrorBody)))]
async fn update_me(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiJson(req): ApiJson<UpdateProfile>,
) -> ApiResult<ApiJson<AccountView>> {
    let name = req.name.as_deref().map(|n| parse_name("name", n)).transpose()?;
    let birth_date = req.birth_date.map(Day::get);
    if birth_date.is_some_and(|d| d > state.zone.local_date(Utc::now())) {
        return Err(ValidationError::new("birth_date", "must be a date in the past").into());
    }
    // The account's actor changes it (and tells the account's other devices).
    let change = ProfileChange { name, gender: req.gender, birth_date };
    let a = state.actors.update_profile(caller.account_id, change).await?;
    Ok(ApiJson(AccountView::from(&a)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindPhone {
    pub phone: String,
    /// The code sent to that phone by `/auth/sms/send`.
    pub code: String,
}

/// Binds (or changes) the account's phone after a WeChat login, proven by an SMS code.
#[utoipa::path(post, path = "/api/v1/me/phone", tag = "me", security(("bearer" = [])), request_body = BindPhone,
    responses((status = 200, body = AccountView), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn bind_phone(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiJson(req): ApiJson<BindPhone>,
) -> ApiResult<ApiJson<AccountView>> {
    let phone = Phone::parse(&req.phone)?;
    state.limits.check_phone(phone.as_str())?;
    codes::verify(&state, &phone, &req.code).await?;
    let a = state.actors.bind_phone(caller.account_id, phone).await?;
    Ok(ApiJson(AccountView::from(&a)))
}

/// The account's patients (就诊人), oldest first, ID numbers masked.
#[utoipa::path(get, path = "/api/v1/me/patients", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = [PatientView]), (status = 401, body = ErrorBody)))]
async fn list_patients(State(state): State<AppState>, caller: AccountCaller) -> ApiResult<ApiJson<Vec<PatientView>>> {
    let list = state.actors.list_patients(caller.account_id).await?;
    Ok(ApiJson(list.iter().map(PatientView::from).collect()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddPatient {
    #[schema(example = "张三")]
    pub name: String,
    /// 18-character resident ID number; validated (region, birth date, check digit).
    #[schema(example = "11010519491231002X")]
    pub id_card_no: String,
    pub relation: Relation,
    pub phone: Option<String>,
}

/// Adds a 就诊人 under the account: the name is checked against the ID number with the
/// real-name registry (422 `real_name_mismatch` / `real_name_no_record`; 503 `unavailable` if it
/// cannot answer; 429 `real_name_attempts` after too many failures in a day), up to the
/// per-account cap (409 `patient_cap`) and the most accounts one person may be under (409
/// `person_account_cap`). The account holding the person's own (`self`) record is told in its
/// message centre. The ID number is encrypted at rest and only ever shown masked.
#[utoipa::path(post, path = "/api/v1/me/patients", tag = "me", security(("bearer" = [])), request_body = AddPatient,
    responses((status = 201, body = PatientView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn add_patient(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiJson(req): ApiJson<AddPatient>,
) -> ApiResult<(StatusCode, ApiJson<PatientView>)> {
    let name = parse_name("name", &req.name)?;
    let card = IdCardNo::parse(&req.id_card_no)?;
    // The check digit cannot tell a birth date in the future; the calendar can.
    if card.birth_date() > state.zone.local_date(Utc::now()) {
        return Err(ValidationError::new("id_card_no", "birth date is in the future").into());
    }
    let phone = req.phone.as_deref().map(Phone::parse).transpose()?;
    let person = state.cipher.blind_index(card.expose());
    let caps =
        PatientCaps { per_account: state.config.patient_cap, accounts_per_person: state.config.person_account_cap };
    // The refusals that cost nothing first: the registry bills every check. The actor and the
    // store check these again when adding.
    let held = state.actors.list_patients(caller.account_id).await?;
    hospital_actors::patient::check_account(&held, &person, caps.per_account)?;
    let holders = state.stores.data.holders_of_person(&person).await?;
    hospital_actors::patient::check_person(&holders, caller.account_id, caps.accounts_per_person)?;
    real_name::verify(&state, caller.account_id, &name, &card, &person).await?;
    let record = PatientRecord {
        id: PatientId::new(),
        account_id: caller.account_id,
        name,
        relation: req.relation,
        gender: card.gender(),
        birth_date: card.birth_date(),
        id_card_sealed: state.cipher.seal(card.expose()),
        id_card_masked: card.masked(),
        id_card_index: person,
        phone_sealed: phone.map(|p| state.cipher.seal(p.as_str())),
        created_at: Utc::now(),
    };
    let saved = state.actors.add_patient(record, caps).await?;
    Ok((StatusCode::CREATED, ApiJson(PatientView::from(&saved))))
}

/// One of the account's patients; another account's patient is 404, as if it did not exist.
#[utoipa::path(get, path = "/api/v1/me/patients/{id}", tag = "me", security(("bearer" = [])),
    params(("id" = PatientId, Path)), responses((status = 200, body = PatientView), (status = 404, body = ErrorBody)))]
async fn get_patient(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<PatientId>,
) -> ApiResult<ApiJson<PatientView>> {
    let p = state.stores.data.patient(caller.account_id, id).await?.ok_or_else(|| ApiError::not_found("patient"))?;
    Ok(ApiJson(PatientView::from(&p)))
}

/// Removes one of the account's patients.
#[utoipa::path(delete, path = "/api/v1/me/patients/{id}", tag = "me", security(("bearer" = [])),
    params(("id" = PatientId, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn remove_patient(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<PatientId>,
) -> ApiResult<StatusCode> {
    if state.actors.remove_patient(caller.account_id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("patient"))
    }
}
