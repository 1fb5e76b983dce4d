//! Logins and sessions (AUTH-1..5): SMS codes, WeChat mini-program login, registration and
//! password login, staff login, logout, logout everywhere, the device list.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use hospital_domain::account::{check_password_policy, parse_name};
use hospital_domain::{AccountId, Email, Phone, Profile, ValidationError};
use hospital_store::{Account, Conflict, StoreError, Subject};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::session::{issue, TokenResponse};
use crate::auth::{codes, password};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};
use crate::http::views::{AccountView, StaffView};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sms_send))
        .routes(routes!(sms_login))
        .routes(routes!(wechat_login))
        .routes(routes!(register))
        .routes(routes!(password_login))
        .routes(routes!(staff_login))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(list_sessions))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmsSendRequest {
    #[schema(example = "13800138000")]
    pub phone: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SmsSendResponse {
    pub sent: bool,
    /// The phone, masked.
    pub phone: String,
    pub expires_in_secs: u64,
    pub resend_after_secs: u64,
}

/// Sends a login code by SMS: one per phone per 60 s, a daily cap, valid 5 minutes.
#[utoipa::path(post, path = "/api/v1/auth/sms/send", tag = "auth", request_body = SmsSendRequest,
    responses((status = 200, body = SmsSendResponse), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn sms_send(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SmsSendRequest>,
) -> ApiResult<ApiJson<SmsSendResponse>> {
    let phone = Phone::parse(&req.phone)?;
    state.limits.check_phone(phone.as_str())?;
    let code = codes::issue(&state, &phone).await?;
    if let Err(e) = state.sms.send_code(&phone, &code).await {
        tracing::warn!(phone = %phone, error = %e, "sending the login code failed");
        codes::withdraw(&state, &phone).await?;
        metrics::counter!("sms_sent_total", "outcome" => "failed").increment(1);
        return Err(ApiError::Upstream("the SMS could not be sent; try again".into()));
    }
    metrics::counter!("sms_sent_total", "outcome" => "ok").increment(1);
    let cfg = &state.config.auth;
    Ok(ApiJson(SmsSendResponse {
        sent: true,
        phone: phone.masked(),
        expires_in_secs: cfg.sms_code_ttl_secs,
        resend_after_secs: cfg.sms_cooldown_secs,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmsLoginRequest {
    #[schema(example = "13800138000")]
    pub phone: String,
    #[schema(example = "123456")]
    pub code: String,
    /// What the client is ("iPhone 15 / WeChat"), shown in the device list.
    pub device: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    #[serde(flatten)]
    pub token: TokenResponse,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff: Option<StaffView>,
    /// True when this login created the account.
    pub new_account: bool,
}

/// The account for a phone, created on first login. A concurrent first login for the same phone
/// loses the uniqueness race and reads the winner's account.
async fn account_for_phone(state: &AppState, phone: &Phone) -> ApiResult<(Account, bool)> {
    if let Some(a) = state.stores.data.account_by_phone(phone).await? {
        return Ok((a, false));
    }
    let a = Account {
        id: AccountId::new(),
        phone: Some(phone.clone()),
        email: None,
        password_hash: None,
        wechat_openid: None,
        wechat_unionid: None,
        profile: Profile::default(),
        created_at: Utc::now(),
    };
    match state.stores.data.create_account(&a).await {
        Ok(()) => Ok((a, true)),
        Err(StoreError::Conflict(_)) => {
            let a = state
                .stores
                .data
                .account_by_phone(phone)
                .await?
                .ok_or_else(|| ApiError::Internal("account vanished".into()))?;
            Ok((a, false))
        }
        Err(e) => Err(e.into()),
    }
}

async fn account_login(
    state: &AppState,
    account: Account,
    new_account: bool,
    device: Option<String>,
) -> ApiResult<LoginResponse> {
    let token = issue(state, Subject::Account { id: account.id }, device).await?;
    Ok(LoginResponse { token, account: Some(AccountView::from(&account)), staff: None, new_account })
}

/// Logs in with a code from `/auth/sms/send`; creates the account on first login.
#[utoipa::path(post, path = "/api/v1/auth/sms/login", tag = "auth", request_body = SmsLoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn sms_login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SmsLoginRequest>,
) -> ApiResult<ApiJson<LoginResponse>> {
    let phone = Phone::parse(&req.phone)?;
    state.limits.check_phone(phone.as_str())?;
    codes::verify(&state, &phone, &req.code).await?;
    let (account, new_account) = account_for_phone(&state, &phone).await?;
    Ok(ApiJson(account_login(&state, account, new_account, req.device).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WechatLoginRequest {
    /// The code from the mini-program's `wx.login()`.
    pub code: String,
    pub device: Option<String>,
}

/// WeChat mini-program login (AUTH-2): the code is exchanged with WeChat's `code2Session`; the
/// `session_key` stays on the server (sealed in the kv store). Bind a phone afterwards with
/// `POST /api/v1/me/phone`.
#[utoipa::path(post, path = "/api/v1/auth/wechat/login", tag = "auth", request_body = WechatLoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn wechat_login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<WechatLoginRequest>,
) -> ApiResult<ApiJson<LoginResponse>> {
    if req.code.trim().is_empty() || req.code.len() > 128 {
        return Err(ValidationError::new("code", "must be the code from wx.login()").into());
    }
    let ws = state.wechat.code2session(req.code.trim()).await.map_err(|e| {
        if e.is_bad_code() {
            ApiError::BadCredentials {
                code: "wechat_code_invalid",
                message: "the WeChat login code is invalid or used; call wx.login() again".into(),
            }
        } else {
            tracing::warn!(error = %e, "code2Session failed");
            ApiError::Upstream("WeChat login is unavailable; try again".into())
        }
    })?;
    let (account, new_account) = match state.stores.data.account_by_openid(&ws.openid).await? {
        Some(a) => (a, false),
        None => {
            let a = Account {
                id: AccountId::new(),
                phone: None,
                email: None,
                password_hash: None,
                wechat_openid: Some(ws.openid.clone()),
                wechat_unionid: ws.unionid.clone(),
                profile: Profile::default(),
                created_at: Utc::now(),
            };
            match state.stores.data.create_account(&a).await {
                Ok(()) => (a, true),
                Err(StoreError::Conflict(_)) => (
                    state
                        .stores
                        .data
                        .account_by_openid(&ws.openid)
                        .await?
                        .ok_or_else(|| ApiError::Internal("account vanished".into()))?,
                    false,
                ),
                Err(e) => return Err(e.into()),
            }
        }
    };
    // The session key decrypts the mini-program's encrypted data (e.g. getPhoneNumber); it must
    // never reach the client, so it is sealed and kept for as long as a session may live.
    use secrecy::ExposeSecret;
    let sealed = state.cipher.seal(ws.session_key.expose_secret());
    let ttl = std::time::Duration::from_secs(state.config.auth.absolute_lifetime_secs);
    state.stores.kv.put(&format!("wx:sk:{}", account.id), sealed.0.as_bytes(), ttl).await?;
    Ok(ApiJson(account_login(&state, account, new_account, req.device).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Register by phone (then `code`, from `/auth/sms/send`, is required) ...
    pub phone: Option<String>,
    pub code: Option<String>,
    /// ... or by e-mail.
    pub email: Option<String>,
    pub password: String,
    pub name: Option<String>,
    pub device: Option<String>,
}

/// Registration with a password (AUTH-3), by phone (verified by SMS code) or e-mail.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = LoginResponse), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, ApiJson<LoginResponse>)> {
    check_password_policy(&req.password)?;
    let name = req.name.as_deref().map(|n| parse_name("name", n)).transpose()?;
    let (phone, email) = match (&req.phone, &req.email) {
        (Some(p), None) => (Some(Phone::parse(p)?), None),
        (None, Some(e)) => (None, Some(Email::parse(e)?)),
        _ => return Err(ValidationError::new("phone", "give exactly one of phone and email").into()),
    };
    if let Some(p) = &phone {
        state.limits.check_phone(p.as_str())?;
        let code = req
            .code
            .as_deref()
            .ok_or_else(|| ValidationError::new("code", "registering by phone needs the SMS code"))?;
        codes::verify(&state, p, code).await?;
    }
    let account = Account {
        id: AccountId::new(),
        phone,
        email,
        password_hash: Some(password::hash(req.password).await?),
        wechat_openid: None,
        wechat_unionid: None,
        profile: Profile { name, ..Profile::default() },
        created_at: Utc::now(),
    };
    match state.stores.data.create_account(&account).await {
        Ok(()) => {}
        Err(StoreError::Conflict(what)) => {
            let code = if what == Conflict::Email { "email_taken" } else { "phone_taken" };
            return Err(ApiError::Conflict {
                code,
                message: format!("this {} is already registered: log in instead", what.what()),
            });
        }
        Err(e) => return Err(e.into()),
    }
    Ok((StatusCode::CREATED, ApiJson(account_login(&state, account, true, req.device).await?)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordLoginRequest {
    /// A phone number or an e-mail address.
    pub login: String,
    pub password: String,
    pub device: Option<String>,
}

fn bad_password() -> ApiError {
    ApiError::BadCredentials { code: "invalid_credentials", message: "wrong login or password".into() }
}

/// Password login for patients (AUTH-3); too many wrong passwords lock the login for a while.
#[utoipa::path(post, path = "/api/v1/auth/password/login", tag = "auth", request_body = PasswordLoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn password_login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<PasswordLoginRequest>,
) -> ApiResult<ApiJson<LoginResponse>> {
    // The lockout is keyed by the canonical login, so "+86 138..." and "138..." count together.
    let lock_key = match Phone::parse(&req.login) {
        Ok(p) => {
            state.limits.check_phone(p.as_str())?;
            p.as_str().to_string()
        }
        Err(_) => Email::parse(&req.login)
            .map_err(|_| ValidationError::new("login", "must be a phone number or an e-mail address"))?
            .as_str()
            .to_string(),
    };
    codes::check_password_lock(&state, &lock_key).await?;
    let account = match Phone::parse(&lock_key) {
        Ok(p) => state.stores.data.account_by_phone(&p).await?,
        Err(_) => state.stores.data.account_by_email(&Email::parse(&lock_key)?).await?,
    };
    let ok = password::verify(req.password, account.as_ref().and_then(|a| a.password_hash.clone())).await?;
    match account {
        Some(a) if ok => {
            codes::clear_wrong_passwords(&state, &lock_key).await?;
            Ok(ApiJson(account_login(&state, a, false, req.device).await?))
        }
        _ => {
            codes::record_wrong_password(&state, &lock_key).await?;
            Err(bad_password())
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffLoginRequest {
    pub username: String,
    pub password: String,
    pub device: Option<String>,
}

/// Staff login to the back office (AUTH-4); the session carries the staff member's roles.
#[utoipa::path(post, path = "/api/v1/auth/staff/login", tag = "auth", request_body = StaffLoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn staff_login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<StaffLoginRequest>,
) -> ApiResult<ApiJson<LoginResponse>> {
    let username = req.username.trim().to_lowercase();
    let lock_key = format!("staff:{username}");
    codes::check_password_lock(&state, &lock_key).await?;
    let staff = state.stores.data.staff_by_username(&username).await?.filter(|s| s.active);
    let ok = password::verify(req.password, staff.as_ref().map(|s| s.password_hash.clone())).await?;
    match staff {
        Some(s) if ok => {
            codes::clear_wrong_passwords(&state, &lock_key).await?;
            let token = issue(&state, Subject::Staff { id: s.id, roles: s.roles.clone() }, req.device).await?;
            Ok(ApiJson(LoginResponse { token, account: None, staff: Some(StaffView::from(&s)), new_account: false }))
        }
        _ => {
            codes::record_wrong_password(&state, &lock_key).await?;
            Err(ApiError::BadCredentials { code: "invalid_credentials", message: "wrong username or password".into() })
        }
    }
}

/// Ends this session: the token is refused from now on.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    state.sessions.delete(&caller.session).await?;
    // Its sockets close (4001) at once, on every node.
    state.realtime.revoke(&caller.session.subject, Some(&caller.session.token_hash)).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogoutAllResponse {
    /// How many sessions (devices) were ended, this one included.
    pub ended: usize,
}

/// Ends every session of the caller on every device ("revoke all").
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = LogoutAllResponse), (status = 401, body = ErrorBody)))]
async fn logout_all(State(state): State<AppState>, caller: Caller) -> ApiResult<ApiJson<LogoutAllResponse>> {
    let ended = state.sessions.delete_all(&caller.session.subject, Utc::now()).await?;
    state.realtime.revoke(&caller.session.subject, None).await;
    Ok(ApiJson(LogoutAllResponse { ended }))
}

/// One login session (a device) of the caller.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginSessionView {
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub device: Option<String>,
    /// The session this request was made with.
    pub current: bool,
}

/// The caller's live sessions (devices), newest first.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = [LoginSessionView]), (status = 401, body = ErrorBody)))]
async fn list_sessions(State(state): State<AppState>, caller: Caller) -> ApiResult<ApiJson<Vec<LoginSessionView>>> {
    let list = state.sessions.list(&caller.session.subject, Utc::now()).await?;
    Ok(ApiJson(
        list.into_iter()
            .map(|s| LoginSessionView {
                current: s.token_hash == caller.session.token_hash,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
                device: s.device,
            })
            .collect(),
    ))
}
