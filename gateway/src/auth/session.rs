//! Issuing sessions: a fresh token, its hashed session row, and the response the client keeps.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use hospital_store::{LoginSession, Subject};
use serde::Serialize;

use super::tokens::{hash_token, new_token};
use crate::error::ApiError;
use crate::state::AppState;

/// What a successful login returns.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub token_type: &'static str,
    /// Absolute expiry (UTC); the session also ends after `idle_timeout_secs` without use.
    pub expires_at: DateTime<Utc>,
    pub idle_timeout_secs: u64,
}

pub async fn issue(state: &AppState, subject: Subject, device: Option<String>) -> Result<TokenResponse, ApiError> {
    // Every login of a patient account comes here: one place refuses a disabled account (ADM-1).
    if let Subject::Account { id } = &subject {
        if crate::http::patients::is_disabled(state, *id).await? {
            return Err(ApiError::Denied {
                code: "account_disabled",
                message: "this account is disabled; contact the hospital".into(),
            });
        }
    }
    let cfg = &state.config.auth;
    let now = Utc::now();
    let token = new_token();
    let session = LoginSession {
        token_hash: hash_token(&token),
        subject,
        created_at: now,
        last_seen_at: now,
        expires_at: now + ChronoDuration::seconds(cfg.absolute_lifetime_secs as i64),
        idle_timeout_secs: cfg.idle_timeout_secs,
        device: device.map(|d| d.chars().take(80).collect()),
    };
    state.sessions.create(&session, now).await?;
    metrics::counter!("auth_sessions_issued_total").increment(1);
    Ok(TokenResponse {
        token,
        token_type: "Bearer",
        expires_at: session.expires_at,
        idle_timeout_secs: cfg.idle_timeout_secs,
    })
}
