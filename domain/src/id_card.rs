//! Resident identity card numbers (居民身份证号, GB 11643-1999): 18 characters, a valid region
//! prefix, a real birth date, and the ISO 7064 MOD 11-2 check digit. Holding an `IdCardNo`
//! means all four were checked.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::{Gender, ValidationError};

#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdCardNo(String);

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

impl IdCardNo {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let err = |why: &str| ValidationError::new("id_card_no", why.to_string());
        let s = raw.trim().to_ascii_uppercase();
        let b = s.as_bytes();
        if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
            return Err(err("must be 18 characters: 17 digits and a digit or X"));
        }
        let province: u32 = s[..2].parse().unwrap_or(0);
        if !(11..=82).contains(&province) {
            return Err(err("region code is not a valid province"));
        }
        if Self::birth_date_of(&s).is_none() {
            return Err(err("birth date is not a real date"));
        }
        if Self::check_digit(&b[..17]) != b[17] as char {
            return Err(err("check digit does not match"));
        }
        Ok(Self(s))
    }

    /// ISO 7064 MOD 11-2 over the first 17 digits.
    pub fn check_digit(first17: &[u8]) -> char {
        let sum: u32 = first17.iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
        CHECK[(sum % 11) as usize]
    }

    fn birth_date_of(s: &str) -> Option<NaiveDate> {
        let y: i32 = s[6..10].parse().ok()?;
        let m: u32 = s[10..12].parse().ok()?;
        let d: u32 = s[12..14].parse().ok()?;
        if !(1900..=2100).contains(&y) {
            return None;
        }
        NaiveDate::from_ymd_opt(y, m, d)
    }

    pub fn birth_date(&self) -> NaiveDate {
        Self::birth_date_of(&self.0).expect("validated on construction")
    }

    /// The 17th digit is odd for men and even for women.
    pub fn gender(&self) -> Gender {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 {
            Gender::Male
        } else {
            Gender::Female
        }
    }

    /// The full number: only for encryption and the blind index, never for display.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `1101**********123X`: the first 4 and the last 4 characters.
    pub fn masked(&self) -> String {
        format!("{}**********{}", &self.0[..4], &self.0[14..])
    }
}

impl TryFrom<String> for IdCardNo {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<IdCardNo> for String {
    fn from(v: IdCardNo) -> String {
        v.0
    }
}
/// Debug and Display both mask, so the number cannot leak through a log line or a panic message.
impl fmt::Debug for IdCardNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdCardNo({})", self.masked())
    }
}
impl fmt::Display for IdCardNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Completes 17 digits with their check digit.
    fn complete(first17: &str) -> String {
        format!("{first17}{}", IdCardNo::check_digit(first17.as_bytes()))
    }

    #[test]
    fn known_valid_numbers() {
        // The GB 11643 worked example, and one ending in X.
        let a = IdCardNo::parse("11010519491231002X").unwrap();
        assert_eq!(a.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31).unwrap());
        assert_eq!(a.gender(), Gender::Female);
        assert_eq!(a.masked(), "1101**********002X");
        assert!(IdCardNo::parse("11010519491231002x").is_ok(), "lower-case x is accepted");
        let b = IdCardNo::parse("440524198001010013").unwrap();
        assert_eq!(b.gender(), Gender::Male);
        assert!(!format!("{b:?}").contains("198001010"), "Debug masks");
    }

    #[test]
    fn rejects() {
        for bad in [
            "110105194912310021", // wrong check digit
            "11010519491331002X", // month 13
            "11010519490230002X", // 30 February (check digit irrelevant, date first)
            "99010519491231002X", // no such province
            "1101051949123100",   // short
            "11010519491231002Y",
        ] {
            assert!(IdCardNo::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_single_digit_change_is_caught(pos in 0usize..17, delta in 1u8..10) {
            let good = complete("44052419800101001");
            let mut bytes = good.clone().into_bytes();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            // MOD 11-2 catches every single-digit substitution.
            prop_assert!(IdCardNo::parse(&changed).is_err() || changed == good);
        }
    }
}
