//! Real-name verification of a 就诊人 (身份二要素核验) before an account may add them: the name
//! must be the name of the ID number's holder, per the real-name provider. Positive answers are
//! cached in the store (by the ID number's blind index and a keyed hash of the name with the
//! number) for `real_name.cache_days`, so the provider, which bills every check, is asked once
//! per name and number. Failed checks are counted per account and local day and capped, so the
//! provider cannot be used as an oracle for guessing a known ID number's name.

use chrono::{Duration as ChronoDuration, NaiveTime, Utc};
use hospital_domain::{AccountId, IdCardNo};
use hospital_integrations::RealNameVerdict;
use hospital_store::RealNameCheck;
use std::time::Duration;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The keyed hash a confirmed name is cached under: of the number and the name together, so a
/// name is never stored and two persons of the same name hash differently.
fn name_hash(state: &AppState, name: &str, id_card: &IdCardNo) -> String {
    state.cipher.blind_index(&format!("real-name\u{0}{}\u{0}{name}", id_card.expose()))
}

fn failures_key(account: AccountId, day: chrono::NaiveDate) -> String {
    format!("realname:fail:{account}:{day}")
}

/// Checks `name` against `id_card` (whose blind index is `person`) for `account`. Errors: 422
/// `real_name_mismatch` (another name, or one the provider calls malformed) or
/// `real_name_no_record`; 429 `real_name_attempts` after too many failures today; 503
/// `unavailable` when the provider cannot answer.
pub async fn verify(
    state: &AppState,
    account: AccountId,
    name: &str,
    id_card: &IdCardNo,
    person: &str,
) -> ApiResult<()> {
    let data = state.stores.data.as_ref();
    let hash = name_hash(state, name, id_card);
    if data.real_name_check(person, &hash).await?.is_some() {
        return Ok(());
    }
    let cfg = &state.config.real_name;
    let kv = state.stores.kv.as_ref();
    let now = Utc::now();
    let today = state.zone.local_date(now);
    let key = failures_key(account, today);
    let failed: i64 =
        kv.get(&key).await?.and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse().ok()).unwrap_or(0);
    if failed >= cfg.daily_failures {
        let midnight = state.zone.to_utc(today + ChronoDuration::days(1), NaiveTime::MIN);
        return Err(ApiError::RateLimited {
            code: "real_name_attempts",
            message: format!(
                "{failed} names did not match their ID numbers today; check the 就诊人's documents and try again tomorrow"
            ),
            retry_after: (midnight - now).to_std().unwrap_or(Duration::from_secs(60)),
        });
    }
    let refused = |code: &'static str, message: &str| ApiError::Unprocessable { code, message: message.into() };
    let outcome = match state.real_name.verify(name, id_card).await {
        Ok(v) => match v.verdict {
            RealNameVerdict::Consistent => {
                let check = RealNameCheck {
                    person: person.to_string(),
                    name_hash: hash,
                    verified_at: now,
                    request_id: v.request_id,
                };
                // Only a cache: if it cannot be written, the next add asks the provider again.
                if let Err(e) = data.put_real_name_check(&check, cfg.cache_ttl()).await {
                    tracing::warn!(error = %e, "could not cache a real-name check");
                }
                return Ok(());
            }
            RealNameVerdict::Inconsistent => refused(
                "real_name_mismatch",
                "the name does not match the ID number at the real-name registry: enter the name exactly as on the ID card",
            ),
            RealNameVerdict::NoRecord => refused(
                "real_name_no_record",
                "the real-name registry has no record of this ID number: check the number",
            ),
        },
        Err(e) if e.is_invalid_input() => refused(
            "real_name_mismatch",
            "the real-name registry refused the name or the ID number as malformed: check both",
        ),
        Err(e) => {
            tracing::warn!(error = %e, %account, "real-name provider unavailable");
            return Err(ApiError::Unavailable(
                "the real-name verification service is unavailable; try again shortly".into(),
            ));
        }
    };
    // Two days: the key outlives the local day it counts whatever the zone.
    kv.incr(&key, Duration::from_secs(2 * 24 * 3600)).await?;
    Err(outcome)
}
