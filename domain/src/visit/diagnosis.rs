//! Diagnoses (诊断): the doctor's words, with an optional ICD-10 code checked by its format.
//! Chinese hospitals code with the national clinical edition (国家临床版), which refines WHO
//! ICD-10 with extra characters (J18.900, I10.x00x002); both forms are accepted, and
//! `Icd10Code::who_code` gives the WHO code a refined one falls under, for exchange (FHIR).

use serde::{Deserialize, Serialize};
use std::fmt;

use super::text::{invalid, text, Lines};
use crate::ValidationError;

/// Longest diagnosis text, in characters.
pub const MAX_DIAGNOSIS_CHARS: usize = 200;

/// An ICD-10 code in canonical form: upper-case chapter letter, two digits, then optionally a
/// dot, one to three digits or `x` placeholders, and an optional national extension `x` + three
/// digits. Examples: `J18`, `J18.9`, `J18.900`, `I10.x00x002`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "J18.9")]
pub struct Icd10Code(String);

impl Icd10Code {
    /// Parses a code as typed: surrounding spaces dropped, the letter upper-cased, `X` as `x`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Self::parse_item(raw, None)
    }

    pub(crate) fn parse_item(raw: &str, item: Option<usize>) -> Result<Self, ValidationError> {
        let err = || {
            invalid(
                "diagnoses.icd10",
                item,
                "must be an ICD-10 code: a letter, two digits, then optionally a dot and up to three \
                 digits or x, e.g. J18.9, J18.900 or I10.x00x002",
            )
        };
        let s = raw.trim();
        // ASCII only, so the byte slicing below is on character boundaries.
        if !s.is_ascii() {
            return Err(err());
        }
        let mut chars = s.chars();
        let letter = chars.next().filter(char::is_ascii_alphabetic).ok_or_else(err)?.to_ascii_uppercase();
        let rest: String = chars.map(|c| if c == 'X' { 'x' } else { c }).collect();
        let (category, sub) = match rest.split_once('.') {
            Some((c, s)) => (c, Some(s)),
            None => (rest.as_str(), None),
        };
        if category.len() != 2 || !category.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        if let Some(sub) = sub {
            // The refinement (1 to 3 digits or x), then an optional national extension "x" + 3 digits.
            let n = sub.len();
            let (head, ext) =
                if n >= 5 && sub.as_bytes()[n - 4] == b'x' { (&sub[..n - 4], &sub[n - 3..]) } else { (sub, "") };
            let head_ok = (1..=3).contains(&head.len()) && head.bytes().all(|b| b.is_ascii_digit() || b == b'x');
            if !head_ok || !ext.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
        }
        Ok(Self(format!("{letter}{rest}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The WHO ICD-10 code this code is or refines: the category (`I10`), or the category and
    /// the first digit of the subcategory (`J18.9` for `J18.900`).
    pub fn who_code(&self) -> &str {
        match self.0.as_bytes().get(4) {
            Some(b) if b.is_ascii_digit() => &self.0[..5],
            _ => &self.0[..3],
        }
    }

    /// Whether the code is itself a WHO ICD-10 code (no national refinement).
    pub fn is_who(&self) -> bool {
        self.who_code() == self.0
    }
}

impl fmt::Display for Icd10Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Icd10Code {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Icd10Code> for String {
    fn from(c: Icd10Code) -> String {
        c.0
    }
}

/// One diagnosis as the doctor sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DiagnosisInput {
    /// The diagnosis in words, e.g. 社区获得性肺炎.
    pub text: String,
    /// An ICD-10 code, e.g. J18.9; empty or absent for none.
    #[serde(default)]
    pub icd10: Option<String>,
}

/// A validated diagnosis. The first of a visit is the main one (主要诊断).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Diagnosis {
    pub text: String,
    pub icd10: Option<Icd10Code>,
}

impl Diagnosis {
    /// Validates the `item`-th (from 1) diagnosis of a list.
    pub fn parse(input: &DiagnosisInput, item: usize) -> Result<Self, ValidationError> {
        let text = text("diagnoses.text", Some(item), &input.text, MAX_DIAGNOSIS_CHARS, Lines::One)?;
        let icd10 = match input.icd10.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(code) => Some(Icd10Code::parse_item(code, Some(item))?),
        };
        Ok(Self { text, icd10 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_who_and_national_codes() {
        for (raw, canonical, who) in [
            ("J18", "J18", "J18"),
            (" j18.9 ", "J18.9", "J18.9"),
            ("J18.900", "J18.900", "J18.9"),
            ("I10.X00X002", "I10.x00x002", "I10"),
            ("E11.900x001", "E11.900x001", "E11.9"),
            ("U07.1", "U07.1", "U07.1"),
        ] {
            let c = Icd10Code::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!((c.as_str(), c.who_code()), (canonical, who), "{raw}");
            assert_eq!(c.is_who(), canonical == who);
        }
    }

    #[test]
    fn refuses_what_is_not_a_code() {
        for raw in
            ["", "18.9", "J1", "J189", "J18.", "J18.9999", "J18.9a", "JJ8.9", "J18,9", "J18.9†", "肺炎", "J18.x00x01"]
        {
            let e = Icd10Code::parse(raw).expect_err(raw);
            assert_eq!(e.field, "diagnoses.icd10");
        }
    }

    #[test]
    fn diagnosis_fields_are_checked_and_serde_round_trips() {
        let d = Diagnosis::parse(&DiagnosisInput { text: " 肺炎 ".into(), icd10: Some("j18.9".into()) }, 1).unwrap();
        assert_eq!((d.text.as_str(), d.icd10.as_ref().map(Icd10Code::as_str)), ("肺炎", Some("J18.9")));
        let none = Diagnosis::parse(&DiagnosisInput { text: "头痛".into(), icd10: Some(" ".into()) }, 1).unwrap();
        assert_eq!(none.icd10, None);
        let e = Diagnosis::parse(&DiagnosisInput { text: "x".into(), icd10: Some("bad".into()) }, 2).unwrap_err();
        assert!(e.reason.starts_with("item 2:"), "{e}");
        let e = Diagnosis::parse(&DiagnosisInput { text: "".into(), icd10: None }, 1).unwrap_err();
        assert_eq!(e.field, "diagnoses.text");
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["icd10"], "J18.9");
        assert_eq!(serde_json::from_value::<Diagnosis>(json).unwrap(), d);
        assert!(serde_json::from_str::<Icd10Code>("\"nope\"").is_err(), "stored codes are checked too");
    }
}
