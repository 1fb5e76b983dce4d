//! Bearer tokens: 32 random bytes, base64url, with a `hsp_` prefix so a leaked token is easy to
//! recognise in a scan. Only the SHA-256 of a token is ever stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("hsp_{}", URL_SAFE_NO_PAD.encode(b))
}

/// The SHA-256 of a token in lower-case hex: how a token is stored and looked up (every
/// authenticated request).
pub fn hash_token(token: &str) -> String {
    TokenHash::of(token).as_str().to_owned()
}

/// `hash_token`'s digits on the stack: the login cache is asked with them on every
/// authenticated request, and only a request it cannot answer needs them as a `String`.
/// (`hex::encode` collects them one `char` at a time into a growing `String`.)
pub struct TokenHash([u8; 64]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        let mut digits = [0u8; 64];
        hex::encode_to_slice(Sha256::digest(token.as_bytes()), &mut digits).expect("32 bytes are 64 hex digits");
        Self(digits)
    }

    pub fn as_str(&self) -> &str {
        // Hex digits only (written above): ASCII.
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with("hsp_") && a.len() == 4 + 43);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert!(constant_time_eq(b"123456", b"123456"));
        assert!(!constant_time_eq(b"123456", b"123457"));
        assert!(!constant_time_eq(b"12345", b"123456"));
    }

    #[test]
    fn the_hash_is_sha256_in_lower_case_hex() {
        // Stored sessions are keyed by it: the text must not change with the encoder.
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let token = new_token();
        assert_eq!(hash_token(&token), hex::encode(Sha256::digest(token.as_bytes())));
    }
}
