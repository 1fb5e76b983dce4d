//! Yuan strings (`"12.50"`, `"-3.00"`) to and from integer fen, exactly: Alipay's API amounts
//! and both providers' bill files are decimal yuan, our types are `Fen`. No float ever touches
//! an amount (`0.29 * 100` is `28.999999999999996`).

use hospital_domain::Fen;

/// `Fen(1250)` -> `"12.50"`: the form Alipay's `total_amount`/`refund_amount` take.
pub fn fen_to_yuan(fen: Fen) -> String {
    signed_fen_to_yuan(i64::from(fen))
}

/// Signed fen -> `"-30.00"`, as refund lines in bills show them.
pub fn signed_fen_to_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Parses a non-negative yuan amount with at most two decimals (`"12"`, `"12.5"`, `"12.50"`).
/// More decimals, a sign, exponents, spaces or anything else is refused: an amount that does not
/// convert exactly is not an amount we can act on.
pub fn parse_yuan(s: &str) -> Option<Fen> {
    let fen = parse_signed_yuan(s)?;
    if s.trim_start().starts_with('-') {
        return None;
    }
    u64::try_from(fen).ok().map(Fen::new)
}

/// As [`parse_yuan`] but a leading `-` is allowed (refund lines in bills).
pub fn parse_signed_yuan(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, f),
        None => (digits, ""),
    };
    if whole.is_empty() || whole.len() > 15 || frac.len() > 2 || digits.ends_with('.') {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().ok()? };
    let fen = whole.checked_mul(100)?.checked_add(frac)?;
    Some(if negative { -fen } else { fen })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways_exactly() {
        assert_eq!(fen_to_yuan(Fen::new(1250)), "12.50");
        assert_eq!(fen_to_yuan(Fen::new(5)), "0.05");
        assert_eq!(fen_to_yuan(Fen::new(0)), "0.00");
        assert_eq!(fen_to_yuan(Fen::new(29)), "0.29");
        assert_eq!(signed_fen_to_yuan(-3000), "-30.00");
        assert_eq!(signed_fen_to_yuan(-7), "-0.07");
        for (s, fen) in
            [("12.50", 1250), ("12.5", 1250), ("12", 1200), ("0.29", 29), ("0.01", 1), ("100000000.00", 10_000_000_000)]
        {
            assert_eq!(parse_yuan(s), Some(Fen::new(fen)), "{s}");
        }
        for fen in [0u64, 1, 29, 99, 100, 1999, 123_456_789] {
            assert_eq!(parse_yuan(&fen_to_yuan(Fen::new(fen))), Some(Fen::new(fen)));
        }
        assert_eq!(parse_signed_yuan("-30.00"), Some(-3000));
        assert_eq!(parse_signed_yuan("-0.5"), Some(-50));
    }

    #[test]
    fn refuses_anything_inexact_or_malformed() {
        for bad in
            ["", ".5", "1.", "1.234", "-1.00", "+1.00", "1e2", " 1.00", "1.00 ", "1,00", "abc", "1.0a", "--1", "NaN"]
        {
            assert_eq!(parse_yuan(bad), None, "{bad:?}");
        }
        assert_eq!(parse_signed_yuan("1.234"), None);
        assert_eq!(parse_signed_yuan("-"), None);
        assert_eq!(parse_signed_yuan("9999999999999999"), None, "more digits than any amount has");
    }
}
