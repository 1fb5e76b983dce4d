//! Password hashing with argon2id (AUTH-3, AUTH-4). Hashing is deliberately slow (~tens of ms),
//! so it runs on the blocking pool, never on the async workers that serve other requests.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::ApiError;

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id profile: 19 MiB, 2 iterations, 1 lane.
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(19 * 1024, 2, 1, None).expect("valid params"))
}

pub fn hash_blocking(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2().hash_password(password.as_bytes(), &salt).expect("argon2 hashing does not fail").to_string()
}

pub fn verify_blocking(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).map(|h| argon2().verify_password(password.as_bytes(), &h).is_ok()).unwrap_or(false)
}

pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await.map_err(|e| ApiError::Internal(e.to_string()))
}

/// Verifies against `phc`, or against a fixed dummy hash when there is no account, so that the
/// time taken does not tell an attacker which login names exist.
pub async fn verify(password: String, phc: Option<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || match phc {
        Some(h) => verify_blocking(&password, &h),
        None => {
            static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let d = DUMMY.get_or_init(|| hash_blocking("not-a-real-password-0"));
            let _ = verify_blocking(&password, d);
            false
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let h = hash_blocking("correct horse 1");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_blocking("correct horse 1", &h));
        assert!(!verify_blocking("correct horse 2", &h));
        assert!(!verify_blocking("x", "not a hash"));
    }
}
