//! SMS login codes (AUTH-1) and password lockouts over the shared `EphemeralKv`, so the rules hold
//! across every gateway node: one send per phone per cooldown (60 s), a daily cap per phone, a
//! code valid 5 minutes, single use, void after too many wrong tries.

use chrono::{Duration as ChronoDuration, Utc};
use hospital_domain::Phone;
use rand::Rng;
use sha2::{Digest, Sha256};
use std::time::Duration;

use super::tokens::constant_time_eq;
use crate::error::ApiError;
use crate::state::AppState;

fn code_key(p: &Phone) -> String {
    format!("sms:code:{}", p.as_str())
}
fn wrong_key(p: &Phone) -> String {
    format!("sms:wrong:{}", p.as_str())
}
fn cooldown_key(p: &Phone) -> String {
    format!("sms:cool:{}", p.as_str())
}

/// The code is stored as a digest bound to the phone, never in clear.
fn digest(p: &Phone, code: &str) -> Vec<u8> {
    hex::encode(Sha256::digest(format!("{}:{code}", p.as_str()))).into_bytes()
}

/// Reserves a send for `phone` and makes a fresh code; the caller sends it. Errors: 429
/// `sms_cooldown` (with the seconds left) or `sms_daily_cap` (until local midnight).
pub async fn issue(state: &AppState, phone: &Phone) -> Result<String, ApiError> {
    let cfg = &state.config.auth;
    let kv = state.stores.kv.as_ref();
    if !kv.put_if_absent(&cooldown_key(phone), b"1", Duration::from_secs(cfg.sms_cooldown_secs)).await? {
        let left = kv.ttl(&cooldown_key(phone)).await?.unwrap_or(Duration::from_secs(1));
        return Err(ApiError::RateLimited {
            code: "sms_cooldown",
            message: format!(
                "a code was sent to this phone recently; wait {} s before asking again",
                left.as_secs().max(1)
            ),
            retry_after: left,
        });
    }
    let now = Utc::now();
    let today = state.zone.local_date(now);
    let sent_today =
        kv.incr(&format!("sms:day:{}:{today}", phone.as_str()), Duration::from_secs(2 * 24 * 3600)).await?;
    if sent_today > cfg.sms_daily_cap {
        let midnight = state.zone.to_utc(today + ChronoDuration::days(1), chrono::NaiveTime::MIN);
        return Err(ApiError::RateLimited {
            code: "sms_daily_cap",
            message: format!("at most {} codes a day may be sent to one phone; try again tomorrow", cfg.sms_daily_cap),
            retry_after: (midnight - now).to_std().unwrap_or(Duration::from_secs(60)),
        });
    }
    let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000));
    kv.put(&code_key(phone), &digest(phone, &code), cfg.code_ttl()).await?;
    kv.delete(&wrong_key(phone)).await?;
    Ok(code)
}

/// Undoes `issue` when the SMS could not be sent, so the patient can ask again at once.
pub async fn withdraw(state: &AppState, phone: &Phone) -> Result<(), ApiError> {
    let kv = state.stores.kv.as_ref();
    kv.delete(&code_key(phone)).await?;
    kv.delete(&cooldown_key(phone)).await?;
    Ok(())
}

/// Checks and consumes a code. Errors: 401 `code_invalid` (wrong, expired, used or never sent;
/// with the tries left) or `code_locked` (too many wrong tries: ask for a new code).
pub async fn verify(state: &AppState, phone: &Phone, code: &str) -> Result<(), ApiError> {
    let cfg = &state.config.auth;
    let kv = state.stores.kv.as_ref();
    let wrong: i64 = kv
        .get(&wrong_key(phone))
        .await?
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if wrong >= cfg.sms_max_wrong {
        return Err(locked(cfg.sms_max_wrong));
    }
    let Some(stored) = kv.get(&code_key(phone)).await? else {
        return Err(ApiError::BadCredentials {
            code: "code_invalid",
            message: "no valid code for this phone: it expired, was used, or was never sent".into(),
        });
    };
    if !constant_time_eq(&stored, &digest(phone, code.trim())) {
        let n = kv.incr(&wrong_key(phone), cfg.code_ttl()).await?;
        if n >= cfg.sms_max_wrong {
            kv.delete(&code_key(phone)).await?;
            return Err(locked(cfg.sms_max_wrong));
        }
        return Err(ApiError::BadCredentials {
            code: "code_invalid",
            message: format!("wrong code; {} tries left", cfg.sms_max_wrong - n),
        });
    }
    // Single use: of two concurrent logins with one code, only the one that takes it wins.
    if kv.take(&code_key(phone)).await?.is_none() {
        return Err(ApiError::BadCredentials { code: "code_invalid", message: "this code was already used".into() });
    }
    kv.delete(&wrong_key(phone)).await?;
    Ok(())
}

fn locked(max: i64) -> ApiError {
    ApiError::BadCredentials {
        code: "code_locked",
        message: format!("{max} wrong codes: this code is void; request a new one"),
    }
}

/// Password lockout: refuses while `login` has had too many wrong passwords recently.
pub async fn check_password_lock(state: &AppState, login: &str) -> Result<(), ApiError> {
    let key = format!("pw:wrong:{login}");
    let kv = state.stores.kv.as_ref();
    let n: i64 = kv.get(&key).await?.and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse().ok()).unwrap_or(0);
    if n >= state.config.auth.password_max_wrong {
        let left = kv.ttl(&key).await?.unwrap_or(Duration::from_secs(60));
        return Err(ApiError::RateLimited {
            code: "login_locked",
            message: "too many wrong passwords; try again later or log in with an SMS code".into(),
            retry_after: left,
        });
    }
    Ok(())
}

pub async fn record_wrong_password(state: &AppState, login: &str) -> Result<(), ApiError> {
    let ttl = Duration::from_secs(state.config.auth.password_lock_secs);
    state.stores.kv.incr(&format!("pw:wrong:{login}"), ttl).await?;
    Ok(())
}

pub async fn clear_wrong_passwords(state: &AppState, login: &str) -> Result<(), ApiError> {
    state.stores.kv.delete(&format!("pw:wrong:{login}")).await?;
    Ok(())
}
