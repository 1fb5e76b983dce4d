//! How a patient's account signs in (SET-1): change or set the password, unbind the phone, end
//! the sessions of every other device. Each change is proven by something a stolen token alone
//! does not carry (the current password, or an SMS code sent to the bound phone), is made by the
//! account's actor (two devices cannot interleave), and is shown live on the account's other
//! devices (`profile` event). Binding a phone is `me::bind_phone`; ending every session,
//! `auth::logout_all`.

use axum::extract::State;
use chrono::Utc;
use hospital_domain::account::check_password_policy;
use hospital_store::LoginSession;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{codes, password};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AccountCaller, ApiJson};
use crate::http::views::AccountView;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(change_password)).routes(routes!(unbind_phone)).routes(routes!(logout_others))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// Required when the account has a password.
    pub current_password: Option<String>,
    /// When the account has no password yet: a code sent to its bound phone (`/auth/sms/send`).
    pub code: Option<String>,
    pub new_password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasswordChanged {
    pub account: AccountView,
    /// Sessions of other devices ended (they sign in again with the new password).
    pub ended_sessions: usize,
}

/// Changes the password (or sets a first one), then ends every other session of the account.
/// Wrong current passwords count towards the same lock as wrong logins.
#[utoipa::path(put, path = "/api/v1/me/password", tag = "me", security(("bearer" = [])), request_body = ChangePassword,
    responses((status = 200, body = PasswordChanged), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn change_password(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiJson(req): ApiJson<ChangePassword>,
) -> ApiResult<ApiJson<PasswordChanged>> {
    check_password_policy(&req.new_password)?;
    let account = state.stores.data.account(caller.account_id).await?.ok_or(ApiError::InvalidToken)?;
    let expected = account.password_hash.clone();
    match (&expected, &req.current_password, &req.code, &account.phone) {
        (Some(_), Some(current), _, _) => {
            let lock_key = format!("account:{}", account.id);
            codes::check_password_lock(&state, &lock_key).await?;
            if !password::verify(current.clone(), expected.clone()).await? {
                codes::record_wrong_password(&state, &lock_key).await?;
                return Err(ApiError::BadCredentials {
                    code: "invalid_credentials",
                    message: "the current password is wrong".into(),
                });
            }
            codes::clear_wrong_passwords(&state, &lock_key).await?;
        }
        (Some(_), None, _, _) => {
            return Err(
                hospital_domain::ValidationError::new("current_password", "the current password is required").into()
            )
        }
        (None, _, Some(code), Some(phone)) => {
            state.limits.check_phone(phone.as_str())?;
            codes::verify(&state, phone, code).await?;
        }
        (None, _, None, Some(_)) => {
            return Err(
                hospital_domain::ValidationError::new("code", "a code sent to the bound phone is required").into()
            )
        }
        (None, _, _, None) => {
            return Err(ApiError::Conflict {
                code: "no_phone",
                message: "bind a phone first: a first password is confirmed by an SMS code".into(),
            })
        }
    }
    let hash = password::hash(req.new_password).await?;
    let a = state.actors.set_password(caller.account_id, expected, hash).await?;
    let ended = end_others(&state, &caller.session).await?;
    tracing::info!(account = %a.id, ended, "password changed");
    Ok(ApiJson(PasswordChanged { account: AccountView::from(&a), ended_sessions: ended }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnbindPhone {
    /// A code sent to the bound phone by `/auth/sms/send`.
    pub code: String,
}

/// Unbinds the account's phone, proven by a code sent to it; refused (409
/// `last_sign_in_method`) when the phone is the only way left to sign in.
#[utoipa::path(post, path = "/api/v1/me/phone/unbind", tag = "me", security(("bearer" = [])), request_body = UnbindPhone,
    responses((status = 200, body = AccountView), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn unbind_phone(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiJson(req): ApiJson<UnbindPhone>,
) -> ApiResult<ApiJson<AccountView>> {
    let account = state.stores.data.account(caller.account_id).await?.ok_or(ApiError::InvalidToken)?;
    let phone = account.phone.ok_or(ApiError::Conflict { code: "no_phone", message: "no phone is bound".into() })?;
    state.limits.check_phone(phone.as_str())?;
    codes::verify(&state, &phone, &req.code).await?;
    let a = state.actors.unbind_phone(caller.account_id).await?;
    Ok(ApiJson(AccountView::from(&a)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogoutOthers {
    /// How many other sessions (devices) were ended.
    pub ended: usize,
}

/// Ends every session of the caller except this one (a lost phone, a shared computer).
#[utoipa::path(post, path = "/api/v1/auth/logout-others", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = LogoutOthers), (status = 401, body = ErrorBody)))]
async fn logout_others(State(state): State<AppState>, caller: AccountCaller) -> ApiResult<ApiJson<LogoutOthers>> {
    Ok(ApiJson(LogoutOthers { ended: end_others(&state, &caller.session).await? }))
}

/// Ends every live session of `current`'s subject but `current`; their sockets close at once.
async fn end_others(state: &AppState, current: &LoginSession) -> ApiResult<usize> {
    let mut ended = 0;
    for s in state.sessions.list(&current.subject, Utc::now()).await? {
        if s.token_hash != current.token_hash {
            state.sessions.delete(&s).await?;
            state.realtime.revoke(&s.subject, Some(&s.token_hash)).await;
            ended += 1;
        }
    }
    Ok(ended)
}
