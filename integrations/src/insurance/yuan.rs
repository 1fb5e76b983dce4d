//! Amounts on the wire: the platform writes yuan with up to two decimals (`"350.00"`); we hold
//! integer fen. Converted digit by digit, never through a float.

use hospital_domain::Fen;
use serde_json::Value;

/// `Fen(35000)` → `"350.00"`, the form every amount is sent in.
pub fn to_yuan(fen: Fen) -> String {
    format!("{}.{:02}", fen.get() / 100, fen.get() % 100)
}

/// Reads `"350"`, `"350.5"`, `"350.50"` (or the same as a JSON number's literal) as fen.
/// Refuses signs, exponents, more than two decimals and anything that is not digits.
pub fn parse_yuan(text: &str) -> Option<Fen> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (text.contains('.') && !digits(fraction)) || fraction.len() > 2 || whole.len() > 15 {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let fraction: u64 = format!("{fraction:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(fraction).map(Fen::new)
}

/// An amount field of a JSON object: a string, or a number whose literal is read the same way.
pub fn yuan_field(value: Option<&Value>) -> Option<Fen> {
    match value? {
        Value::String(s) => parse_yuan(s),
        Value::Number(n) => parse_yuan(&n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_exactly_both_ways() {
        assert_eq!(to_yuan(Fen::new(35000)), "350.00");
        assert_eq!(to_yuan(Fen::new(5)), "0.05");
        assert_eq!(to_yuan(Fen::ZERO), "0.00");
        assert_eq!(parse_yuan("350.00"), Some(Fen::new(35000)));
        assert_eq!(parse_yuan("0.1"), Some(Fen::new(10)));
        assert_eq!(parse_yuan("12"), Some(Fen::new(1200)));
        // 0.1 + 0.2 as floats is 0.30000000000000004; here each is exact.
        assert_eq!(parse_yuan("0.29"), Some(Fen::new(29)));
        for bad in ["", "-1.00", "1.001", "1e3", "1.", ".5", "1,00", "+1", "abc", "12345678901234567890"] {
            assert_eq!(parse_yuan(bad), None, "{bad:?}");
        }
        assert_eq!(yuan_field(Some(&json!(350.1))), Some(Fen::new(35010)));
        assert_eq!(yuan_field(Some(&json!("0.07"))), Some(Fen::new(7)));
        assert_eq!(yuan_field(Some(&json!(true))), None);
        assert_eq!(yuan_field(None), None);
        for fen in [0u64, 1, 99, 100, 101, 123456789] {
            assert_eq!(parse_yuan(&to_yuan(Fen::new(fen))), Some(Fen::new(fen)));
        }
    }
}
